namespace RAllocator.Nvm;

/// <summary>
/// Thrown by <see cref="MappedFileNvm.Create(string, long)"/> when the path already exists: creating a region never
/// overwrites an image, because that image may be the only copy of a blade's state.
/// </summary>
public sealed class NvmFileExistsException : IOException
{
    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public NvmFileExistsException(string path, Exception? innerException = null)
        : base($"Cannot create NVM file '{path}': it already exists. Open it with MappedFileNvm.Open, or remove it first.", innerException)
    {
        Path = path;
    }

    /// <summary>The full path that already exists.</summary>
    public string Path { get; }
}
