namespace RAllocator.Integration.Tests;

/// <summary>Where the built CLI and worker are, in this test's configuration, and how to run them.</summary>
internal static class Built
{
    private static readonly string Configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";

    public static string CliDll => Existing(RepositoryPaths.Combine("src", "RAllocator.Cli", "bin", Configuration, "net10.0", "rallocator.dll"));

    public static string WorkerDll => Existing(RepositoryPaths.Combine("tests", "RAllocator.Integration.Worker", "bin", Configuration, "net10.0", "RAllocator.Integration.Worker.dll"));

    /// <summary>The fabrics the worker was built with.</summary>
    public static IReadOnlyList<string> Fabrics { get; } = ["shm", "ucx:tcp"];

    public static ChildProcess StartCli(string name, params string[] arguments) => ChildProcess.StartDll(name, CliDll, arguments);

    public static ChildProcess StartWorker(string name, params string[] arguments) => ChildProcess.StartDll(name, WorkerDll, arguments);

    public static async Task<int> RunCliAsync(params string[] arguments)
    {
        using var process = StartCli($"rallocator {arguments[0]}", arguments);
        var exit = await process.WaitForExitAsync(TimeSpan.FromSeconds(120));
        if (exit != 0)
        {
            TestContext.Current.SendDiagnosticMessage(process.Describe());
        }

        return exit;
    }

    public static async Task<(int Exit, string Stdout)> RunCliCaptureAsync(params string[] arguments)
    {
        using var process = StartCli($"rallocator {arguments[0]}", arguments);
        var exit = await process.WaitForExitAsync(TimeSpan.FromSeconds(120));
        return (exit, string.Join('\n', process.Output));
    }

    private static string Existing(string path) =>
        File.Exists(path) ? path : throw new FileNotFoundException($"{path} is not built; build the solution first (scripts/test.sh does).", path);
}
