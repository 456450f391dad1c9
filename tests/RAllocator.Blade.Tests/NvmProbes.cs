using RAllocator.Nvm;

namespace RAllocator.Blade.Tests;

/// <summary>
/// A decorator that counts what a caller does to a region: bytes read (bulk reads and 8-byte loads), the highest
/// byte read, and every mutating call (writes, stores, atomics, persists). It changes nothing it forwards.
/// </summary>
internal sealed class CountingNvmRegion(INvmRegion inner) : INvmRegion
{
    public INvmRegion Inner { get; } = inner;

    public long BytesRead { get; private set; }

    public long ReadCalls { get; private set; }

    /// <summary>First byte past the highest byte read, or 0 when nothing was read.</summary>
    public long ReadEndOffsetMax { get; private set; }

    /// <summary>Writes, stores, compare-exchanges, fetch-adds and persists forwarded so far.</summary>
    public long MutatingCalls { get; private set; }

    public long Length => Inner.Length;

    public NvmPersistenceDomain PersistenceDomain => Inner.PersistenceDomain;

    public string Description => $"counting({Inner.Description})";

    public void ResetCounts()
    {
        BytesRead = 0;
        ReadCalls = 0;
        ReadEndOffsetMax = 0;
        MutatingCalls = 0;
    }

    public ulong LoadUInt64(long offset)
    {
        CountRead(offset, sizeof(ulong));
        return Inner.LoadUInt64(offset);
    }

    public void Read(long offset, Span<byte> destination)
    {
        CountRead(offset, destination.Length);
        Inner.Read(offset, destination);
    }

    public void StoreUInt64(long offset, ulong value)
    {
        MutatingCalls++;
        Inner.StoreUInt64(offset, value);
    }

    public ulong CompareExchangeUInt64(long offset, ulong expected, ulong desired)
    {
        MutatingCalls++;
        return Inner.CompareExchangeUInt64(offset, expected, desired);
    }

    public ulong FetchAddUInt64(long offset, ulong delta)
    {
        MutatingCalls++;
        return Inner.FetchAddUInt64(offset, delta);
    }

    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        MutatingCalls++;
        Inner.Write(offset, source);
    }

    public void Persist(long offset, long length)
    {
        MutatingCalls++;
        Inner.Persist(offset, length);
    }

    public void Dispose() => Inner.Dispose();

    private void CountRead(long offset, long length)
    {
        BytesRead += length;
        ReadCalls++;
        ReadEndOffsetMax = Math.Max(ReadEndOffsetMax, offset + length);
    }
}

/// <summary>
/// Faulty hardware by decoration: persist calls that <c>drop(offset, length)</c> selects are acknowledged but never
/// reach the region, as if a flush were silently lost. Used to plant a missing-persist bug in code that has no fault
/// hook of its own (Format), without copying that code.
/// </summary>
internal sealed class PersistDroppingNvmRegion(INvmRegion inner, Func<long, long, bool> drop) : INvmRegion
{
    public long DroppedPersists { get; private set; }

    public long Length => inner.Length;

    public NvmPersistenceDomain PersistenceDomain => inner.PersistenceDomain;

    public string Description => $"persist-dropping({inner.Description})";

    public ulong LoadUInt64(long offset) => inner.LoadUInt64(offset);

    public void StoreUInt64(long offset, ulong value) => inner.StoreUInt64(offset, value);

    public ulong CompareExchangeUInt64(long offset, ulong expected, ulong desired) => inner.CompareExchangeUInt64(offset, expected, desired);

    public ulong FetchAddUInt64(long offset, ulong delta) => inner.FetchAddUInt64(offset, delta);

    public void Read(long offset, Span<byte> destination) => inner.Read(offset, destination);

    public void Write(long offset, ReadOnlySpan<byte> source) => inner.Write(offset, source);

    public void Persist(long offset, long length)
    {
        if (drop(offset, length))
        {
            DroppedPersists++;
            return;
        }

        inner.Persist(offset, length);
    }

    public void Dispose() => inner.Dispose();
}
