namespace RAllocator.Nvm;

/// <summary>
/// A byte-addressable persistent region: the blade's NVM. Offsets are bytes from the start of the region.
/// </summary>
/// <remarks>
/// <para>Stores become durable only after <see cref="Persist"/> covers them: that is the flush of the cache
/// lines plus the fence (pmem_persist, msync, or "mark persisted" in the simulation).</para>
/// <para>The 8-byte operations are single-copy atomic and require an 8-byte-aligned offset, because that is
/// what both CPU atomics and RDMA atomics guarantee. Every method throws
/// <see cref="ArgumentOutOfRangeException"/> for a range outside the region and
/// <see cref="NvmAlignmentException"/> for a misaligned atomic.</para>
/// </remarks>
public interface INvmRegion : IDisposable
{
    /// <summary>Length of the region in bytes.</summary>
    long Length { get; }

    /// <summary>How stores reach persistence in this region.</summary>
    NvmPersistenceDomain PersistenceDomain { get; }

    /// <summary>A human-readable description, for logs and <c>inspect</c>: backend, path, persistence.</summary>
    string Description { get; }

    /// <summary>Atomically loads the aligned 8-byte word at <paramref name="offset"/>.</summary>
    ulong LoadUInt64(long offset);

    /// <summary>Atomically stores the aligned 8-byte word at <paramref name="offset"/> (not yet durable).</summary>
    void StoreUInt64(long offset, ulong value);

    /// <summary>Atomic compare-and-swap of an aligned 8-byte word; returns the value found before the operation.</summary>
    ulong CompareExchangeUInt64(long offset, ulong expected, ulong desired);

    /// <summary>Atomic fetch-and-add of an aligned 8-byte word; returns the value found before the addition.</summary>
    ulong FetchAddUInt64(long offset, ulong delta);

    /// <summary>Copies bytes out of the region (no atomicity beyond aligned 8-byte words).</summary>
    void Read(long offset, Span<byte> destination);

    /// <summary>Copies bytes into the region (volatile until persisted).</summary>
    void Write(long offset, ReadOnlySpan<byte> source);

    /// <summary>Makes every store to [offset, offset + length) durable: flush the covering lines, then fence.</summary>
    void Persist(long offset, long length);
}

/// <summary>How a region's stores reach the persistence domain.</summary>
public enum NvmPersistenceDomain
{
    /// <summary>Real persistent memory mapped with libpmem: user-space cache flushes (pmem_persist).</summary>
    PersistentMemory,

    /// <summary>A memory-mapped file made durable with msync (libpmem's fallback, or libpmem absent).</summary>
    MappedFileMsync,

    /// <summary>A simulated write-back cache that can crash and lose unflushed stores.</summary>
    Simulated,
}

/// <summary>Thrown when an 8-byte atomic operation is given an offset that is not 8-byte aligned.</summary>
public sealed class NvmAlignmentException(long offset)
    : ArgumentException($"NVM offset {offset} (0x{offset:x}) is not 8-byte aligned; 8-byte atomics need aligned words.")
{
    /// <summary>The misaligned offset.</summary>
    public long Offset { get; } = offset;
}
