namespace RAllocator.Testing;

/// <summary>A fresh directory under the system temp directory, removed with everything in it on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    /// <summary>Creates a directory under <c>$TMPDIR/rallocator-tests</c>.</summary>
    public TempDirectory()
    {
        FullPath = Path.Combine(Path.GetTempPath(), "rallocator-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(FullPath);
    }

    /// <summary>The directory's absolute path.</summary>
    public string FullPath { get; }

    /// <summary>The path of <paramref name="name"/> inside the directory.</summary>
    public string File(string name) => Path.Combine(FullPath, name);

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            Directory.Delete(FullPath, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp file must not fail a test that passed.
        }
    }
}
