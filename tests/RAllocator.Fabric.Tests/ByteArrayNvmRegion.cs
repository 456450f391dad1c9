using System.Runtime.CompilerServices;

namespace RAllocator.Fabric.Tests;

/// <summary>
/// A volatile INvmRegion over a pinned byte array, for fabric tests that must not depend on the NVM backends.
/// Atomics are real Interlocked operations on the array's aligned words; every write and persist is logged in
/// order so tests can check what reached the region and when.
/// </summary>
internal sealed class ByteArrayNvmRegion : INvmRegion
{
    // Pinned so that the 8-byte words never move while an Interlocked operation holds a reference into them, and
    // because the array data of a pinned array starts 8-byte aligned, so region offset alignment is word alignment.
    private readonly byte[] _bytes;
    private readonly object _logGate = new();
    private readonly List<string> _log = [];
    private readonly List<(long Offset, long Length)> _persists = [];

    public ByteArrayNvmRegion(long length)
    {
        _bytes = GC.AllocateArray<byte>(checked((int)length), pinned: true);
    }

    public long Length => _bytes.Length;

    public NvmPersistenceDomain PersistenceDomain => NvmPersistenceDomain.Simulated;

    public string Description => $"test byte array of {Length} bytes";

    /// <summary>Every write and persist that reached the region, in order, as "write 0x10+8" and "persist 0x10+8".</summary>
    public IReadOnlyList<string> Log
    {
        get { lock (_logGate) { return [.. _log]; } }
    }

    public IReadOnlyList<(long Offset, long Length)> Persists
    {
        get { lock (_logGate) { return [.. _persists]; } }
    }

    public byte[] Snapshot() => [.. _bytes];

    public ulong LoadUInt64(long offset) => Volatile.Read(ref Word(offset));

    public void StoreUInt64(long offset, ulong value) => Volatile.Write(ref Word(offset), value);

    public ulong CompareExchangeUInt64(long offset, ulong expected, ulong desired) =>
        Interlocked.CompareExchange(ref Word(offset), desired, expected);

    public ulong FetchAddUInt64(long offset, ulong delta) => Interlocked.Add(ref Word(offset), delta) - delta;

    public void Read(long offset, Span<byte> destination)
    {
        CheckRange(offset, destination.Length);
        _bytes.AsSpan((int)offset, destination.Length).CopyTo(destination);
    }

    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        CheckRange(offset, source.Length);
        source.CopyTo(_bytes.AsSpan((int)offset));
        Record($"write 0x{offset:x}+{source.Length}");
    }

    public void Persist(long offset, long length)
    {
        CheckRange(offset, length);
        lock (_logGate)
        {
            _persists.Add((offset, length));
        }

        Record($"persist 0x{offset:x}+{length}");
    }

    public void Dispose()
    {
    }

    private ref ulong Word(long offset)
    {
        CheckRange(offset, sizeof(ulong));
        if (offset % sizeof(ulong) != 0)
        {
            throw new NvmAlignmentException(offset);
        }

        return ref Unsafe.As<byte, ulong>(ref _bytes[offset]);
    }

    private void CheckRange(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"[{offset}, {offset}+{length}) is outside [0, {Length}).");
        }
    }

    private void Record(string entry)
    {
        lock (_logGate)
        {
            _log.Add(entry);
        }
    }
}
