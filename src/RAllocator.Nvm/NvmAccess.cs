namespace RAllocator.Nvm;

/// <summary>How <see cref="MappedFileNvm.Open(string, NvmAccess)"/> maps a file.</summary>
public enum NvmAccess
{
    /// <summary>
    /// Mapped <c>PROT_READ</c> only: the process cannot modify the image, whatever the code does. For
    /// inspection and checking tools; every store throws <see cref="InvalidOperationException"/>.
    /// </summary>
    ReadOnly,

    /// <summary>Mapped read-write and shared with the file: stores reach the file once persisted.</summary>
    ReadWrite,
}
