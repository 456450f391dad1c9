using System.Runtime.InteropServices;

namespace RAllocator.Nvm;

/// <summary>
/// A reference that keeps a <see cref="MappedFileNvm"/>'s mapping alive while native code holds its address.
/// Dispose it after the native registration is released.
/// </summary>
public sealed class MappedFilePin : IDisposable
{
    private SafeHandle? _mapping;

    internal MappedFilePin(SafeHandle mapping, nint baseAddress, long length)
    {
        _mapping = mapping;
        BaseAddress = baseAddress;
        Length = length;
    }

    /// <summary>The mapping's first byte (page-aligned).</summary>
    public nint BaseAddress { get; }

    /// <summary>Bytes mapped from <see cref="BaseAddress"/>.</summary>
    public long Length { get; }

    /// <summary>Releases the pin; the mapping is unmapped once its region is disposed too. Idempotent.</summary>
    public void Dispose() => Interlocked.Exchange(ref _mapping, null)?.DangerousRelease();
}
