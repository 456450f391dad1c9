namespace RAllocator.Testing;

/// <summary>Paths in the repository, found from the test binary's location (tests compare checked-in files).</summary>
public static class RepositoryPaths
{
    /// <summary>The repository root: the nearest directory above the test binary holding RAllocator.sln.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>An absolute path from parts relative to the repository root.</summary>
    public static string Combine(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "RAllocator.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException($"no RAllocator.sln above {AppContext.BaseDirectory}");
    }
}
