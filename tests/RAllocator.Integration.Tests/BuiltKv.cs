namespace RAllocator.Integration.Tests;

/// <summary>Where the built KV worker is, in this test's configuration, and how to run it (next to <see cref="Built"/>).</summary>
internal static class BuiltKv
{
    private static readonly string Configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";

    public static string KvWorkerDll
    {
        get
        {
            var path = RepositoryPaths.Combine("tests", "RAllocator.Integration.KvWorker", "bin", Configuration, "net10.0", "RAllocator.Integration.KvWorker.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is not built; build the solution first (scripts/test.sh does).", path);
        }
    }

    public static ChildProcess StartKvWorker(string name, params string[] arguments) => ChildProcess.StartDll(name, KvWorkerDll, ["kv", .. arguments]);
}
