// SimulatedNvm: fault model
// ==========================
//
// What is modelled: a CPU write-back cache in front of persistent memory, and power failures.
//
// 1. Two images. The visible image is what loads see: every store, persisted or not. The durable image is
//    what survives a crash. Both start equal (zeroed, or FromDurableImage).
// 2. Stores are 8-byte words. Every store is recorded, in program order, as a pending store of one aligned
//    8-byte word: StoreUInt64, a CompareExchangeUInt64 that swapped, every FetchAddUInt64 (an RMW writes
//    even when delta is 0), and each word a bulk Write touches. A Write that covers only part of a word
//    records the whole resulting word (old bytes merged with new), because x86-64 and ARMv8 persist aligned
//    8-byte words atomically but promise nothing wider: a word is never half old and half new after a crash,
//    but two words of one Write may disagree. A CompareExchangeUInt64 that fails writes nothing.
// 3. Cache lines are 64 bytes. Persist(offset, length) is flush + fence of every line that overlaps the
//    range: every pending store in those lines becomes durable, in program order (the latest wins), and
//    leaves the pending list. Stores in other lines stay pending even if they are older.
// 4. A crash (power failure) writes back an arbitrary subset of the pending stores, as an untimely cache
//    eviction could: Crash(seed) keeps each one with probability 1/2 (System.Random(seed), so a seed
//    replays exactly), Crash(indices) keeps exactly the chosen ones, CrashKeepingNone and CrashKeepingAll
//    are the extremes. For each word the durable value becomes that of the latest kept store in program
//    order, or stays as it was if none of its stores is kept. This is deliberately more adversarial than
//    real hardware (which evicts whole lines, in time order): every real outcome is one of these subsets.
// 5. After a crash every pending store is dropped, the visible image is reset to the durable image, and
//    the region stays usable: that is the restart. PersistCount and CrashCount keep counting.
// 6. Crash points: BeforePersist is called with the 0-based index of each Persist call, before any line is
//    flushed and outside the region's lock. Throwing SimulatedPowerFailure from it stops that Persist with
//    nothing flushed, so the test can then Crash(...) "at persist point k".
//
// Not modelled: media errors, torn 8-byte words, reordering of loads, other processes. Every method takes
// one monitor lock (lock(object), not System.Threading.Lock, so that Coyote can schedule around it).

using System.Diagnostics.CodeAnalysis;

namespace RAllocator.Nvm;

/// <summary>
/// An in-memory <see cref="INvmRegion"/> with a write-back cache that can crash and lose unpersisted stores.
/// The fault model is written at the top of SimulatedNvm.cs.
/// </summary>
public sealed class SimulatedNvm : INvmRegion
{
    /// <summary>Size of a simulated cache line, the unit <see cref="Persist"/> flushes.</summary>
    public const int CacheLineBytes = 64;

    private const int WordBytes = NvmRangeChecks.WordBytes;

    // Guards every field below. A plain object monitor: Coyote models Monitor, not System.Threading.Lock.
    private readonly object _gate = new();

    // What loads see: the durable image plus every pending store.
    private readonly byte[] _visible;

    // What survives a crash.
    private readonly byte[] _durable;

    // Pending stores in program order: (word offset, value). Index in this list = SimulatedPendingStore.Index.
    private readonly List<(long Offset, ulong Value)> _pending = [];

    // Pending-store count per cache line, so that a Persist of clean lines costs nothing and does not scan
    // the whole pending list.
    private readonly Dictionary<long, int> _pendingPerLine = [];

    private long _persistCount;
    private long _crashCount;
    private bool _disposed;

    /// <summary>Creates a zeroed region of <paramref name="lengthBytes"/> bytes, a multiple of 8.</summary>
    public SimulatedNvm(long lengthBytes)
    {
        CheckLength(lengthBytes, nameof(lengthBytes));
        _visible = new byte[lengthBytes];
        _durable = new byte[lengthBytes];
    }

    private SimulatedNvm(byte[] durableImage)
    {
        _durable = durableImage;
        _visible = (byte[])durableImage.Clone();
    }

    /// <summary>
    /// Called at the start of every <see cref="Persist"/> with its 0-based index, before any line is flushed.
    /// Throw <see cref="SimulatedPowerFailure"/> from it to crash at that persist point: the Persist then
    /// flushes nothing. Called outside the region's lock, so it may call back into the region.
    /// </summary>
    public Action<long>? BeforePersist { get; set; }

    /// <inheritdoc />
    public long Length => _visible.LongLength;

    /// <inheritdoc />
    public NvmPersistenceDomain PersistenceDomain => NvmPersistenceDomain.Simulated;

    /// <inheritdoc />
    public string Description
    {
        get
        {
            lock (_gate)
            {
                return $"simulated NVM ({Length} bytes, {CacheLineBytes}-byte lines, {_pending.Count} pending stores, "
                    + $"{_persistCount} persists, {_crashCount} crashes)";
            }
        }
    }

    /// <summary>The stores not yet durable, in program order; a snapshot.</summary>
    public IReadOnlyList<SimulatedPendingStore> PendingStores
    {
        get
        {
            lock (_gate)
            {
                var stores = new SimulatedPendingStore[_pending.Count];
                for (int i = 0; i < stores.Length; i++)
                {
                    stores[i] = new SimulatedPendingStore(i, _pending[i].Offset, _pending[i].Value);
                }

                return stores;
            }
        }
    }

    /// <summary>How many times <see cref="Persist"/> has been called (including calls stopped by the hook).</summary>
    public long PersistCount
    {
        get
        {
            lock (_gate)
            {
                return _persistCount;
            }
        }
    }

    /// <summary>How many crashes have been simulated.</summary>
    public long CrashCount
    {
        get
        {
            lock (_gate)
            {
                return _crashCount;
            }
        }
    }

    /// <summary>
    /// Creates a region whose durable and visible images are a copy of <paramref name="image"/> (a multiple of
    /// 8 bytes), as if a machine restarted on that image.
    /// </summary>
    public static SimulatedNvm FromDurableImage(byte[] image)
    {
        ArgumentNullException.ThrowIfNull(image);
        CheckLength(image.LongLength, nameof(image));
        return new SimulatedNvm((byte[])image.Clone());
    }

    /// <summary>A copy of the durable image: what a crash now with no pending store kept would leave.</summary>
    public byte[] DurableImageCopy()
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            return (byte[])_durable.Clone();
        }
    }

    /// <inheritdoc />
    public ulong LoadUInt64(long offset)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            NvmRangeChecks.CheckWord(offset, Length);
            return ReadWord(_visible, offset);
        }
    }

    /// <inheritdoc />
    public void StoreUInt64(long offset, ulong value)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            NvmRangeChecks.CheckWord(offset, Length);
            StoreWordUnsynchronized(offset, value);
        }
    }

    /// <inheritdoc />
    public ulong CompareExchangeUInt64(long offset, ulong expected, ulong desired)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            NvmRangeChecks.CheckWord(offset, Length);
            ulong found = ReadWord(_visible, offset);
            if (found == expected)
            {
                StoreWordUnsynchronized(offset, desired);
            }

            return found;
        }
    }

    /// <inheritdoc />
    public ulong FetchAddUInt64(long offset, ulong delta)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            NvmRangeChecks.CheckWord(offset, Length);
            ulong found = ReadWord(_visible, offset);
            StoreWordUnsynchronized(offset, unchecked(found + delta));
            return found;
        }
    }

    /// <inheritdoc />
    public void Read(long offset, Span<byte> destination)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            NvmRangeChecks.CheckRange(offset, destination.Length, Length);
            _visible.AsSpan(checked((int)offset), destination.Length).CopyTo(destination);
        }
    }

    /// <inheritdoc />
    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            NvmRangeChecks.CheckRange(offset, source.Length, Length);
            if (source.IsEmpty)
            {
                return;
            }

            // Merge into the visible image, then record each touched word whole: 8-byte atomicity.
            source.CopyTo(_visible.AsSpan(checked((int)offset)));
            long firstWord = offset & ~(long)(WordBytes - 1);
            long end = offset + source.Length;
            for (long word = firstWord; word < end; word += WordBytes)
            {
                RecordPendingUnsynchronized(word, ReadWord(_visible, word));
            }
        }
    }

    /// <inheritdoc />
    public void Persist(long offset, long length)
    {
        long persistIndex;
        lock (_gate)
        {
            ThrowIfDisposed();
            NvmRangeChecks.CheckRange(offset, length, Length);
            persistIndex = _persistCount++;
        }

        // Outside the lock: the hook may inspect the region, crash it, or block on another thread's use of it.
        BeforePersist?.Invoke(persistIndex);

        if (length == 0)
        {
            return;
        }

        lock (_gate)
        {
            ThrowIfDisposed();
            long firstLine = offset / CacheLineBytes;
            long lastLine = (offset + length - 1) / CacheLineBytes;
            if (!AnyPendingInLinesUnsynchronized(firstLine, lastLine))
            {
                return;
            }

            // Program order: a later store to the same word overwrites an earlier one in the durable image.
            int kept = 0;
            for (int i = 0; i < _pending.Count; i++)
            {
                (long storeOffset, ulong value) = _pending[i];
                long line = storeOffset / CacheLineBytes;
                if (line >= firstLine && line <= lastLine)
                {
                    WriteWord(_durable, storeOffset, value);
                    ForgetPendingInLineUnsynchronized(line);
                }
                else
                {
                    _pending[kept++] = _pending[i];
                }
            }

            _pending.RemoveRange(kept, _pending.Count - kept);
        }
    }

    /// <summary>Power failure keeping each pending store with probability 1/2, drawn from <c>new Random(seed)</c>.</summary>
    public void Crash(int seed)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            var random = new Random(seed);
            var keep = new bool[_pending.Count];
            for (int i = 0; i < keep.Length; i++)
            {
                keep[i] = random.Next(2) == 0;
            }

            CrashUnsynchronized(keep);
        }
    }

    /// <summary>
    /// Power failure keeping exactly the pending stores whose <see cref="SimulatedPendingStore.Index"/> is
    /// listed (indices of <see cref="PendingStores"/> as it is now).
    /// </summary>
    public void Crash(IEnumerable<int> keptPendingStoreIndices)
    {
        ArgumentNullException.ThrowIfNull(keptPendingStoreIndices);
        lock (_gate)
        {
            ThrowIfDisposed();
            var keep = new bool[_pending.Count];
            foreach (int index in keptPendingStoreIndices)
            {
                if ((uint)index >= (uint)keep.Length)
                {
                    throw new ArgumentOutOfRangeException(
                        nameof(keptPendingStoreIndices),
                        index,
                        $"Pending store index {index} does not exist; there are {keep.Length} pending stores.");
                }

                keep[index] = true;
            }

            CrashUnsynchronized(keep);
        }
    }

    /// <summary>Power failure losing every pending store: the durable image is unchanged.</summary>
    public void CrashKeepingNone()
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            CrashUnsynchronized(new bool[_pending.Count]);
        }
    }

    /// <summary>Power failure that happens to write back every pending store: the visible image survives.</summary>
    public void CrashKeepingAll()
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            var keep = new bool[_pending.Count];
            Array.Fill(keep, true);
            CrashUnsynchronized(keep);
        }
    }

    /// <summary>Marks the region disposed; later calls throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
        }
    }

    /// <inheritdoc />
    public override string ToString() => Description;

    private static void CheckLength(long lengthBytes, string paramName)
    {
        if (lengthBytes <= 0 || lengthBytes % WordBytes != 0 || lengthBytes > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(
                paramName,
                lengthBytes,
                $"A simulated NVM region must be a positive multiple of {WordBytes} bytes, at most {Array.MaxLength} bytes.");
        }
    }

    private static ulong ReadWord(byte[] image, long offset) =>
        BitConverter.ToUInt64(image, checked((int)offset));

    private static void WriteWord(byte[] image, long offset, ulong value) =>
        BitConverter.TryWriteBytes(image.AsSpan(checked((int)offset), WordBytes), value);

    private void StoreWordUnsynchronized(long offset, ulong value)
    {
        WriteWord(_visible, offset, value);
        RecordPendingUnsynchronized(offset, value);
    }

    private void RecordPendingUnsynchronized(long wordOffset, ulong value)
    {
        _pending.Add((wordOffset, value));
        long line = wordOffset / CacheLineBytes;
        _pendingPerLine[line] = _pendingPerLine.GetValueOrDefault(line) + 1;
    }

    private void ForgetPendingInLineUnsynchronized(long line)
    {
        int remaining = _pendingPerLine[line] - 1;
        if (remaining == 0)
        {
            _pendingPerLine.Remove(line);
        }
        else
        {
            _pendingPerLine[line] = remaining;
        }
    }

    private bool AnyPendingInLinesUnsynchronized(long firstLine, long lastLine)
    {
        // Probe whichever side is smaller: the covered lines, or the lines that hold pending stores.
        if (lastLine - firstLine + 1 <= _pendingPerLine.Count)
        {
            for (long line = firstLine; line <= lastLine; line++)
            {
                if (_pendingPerLine.ContainsKey(line))
                {
                    return true;
                }
            }

            return false;
        }

        foreach (long line in _pendingPerLine.Keys)
        {
            if (line >= firstLine && line <= lastLine)
            {
                return true;
            }
        }

        return false;
    }

    private void CrashUnsynchronized(bool[] keep)
    {
        // Program order, so the latest kept store of a word is the one that lands.
        for (int i = 0; i < _pending.Count; i++)
        {
            if (keep[i])
            {
                WriteWord(_durable, _pending[i].Offset, _pending[i].Value);
            }
        }

        _pending.Clear();
        _pendingPerLine.Clear();
        _durable.CopyTo(_visible, 0);
        _crashCount++;
    }

    private void ThrowIfDisposed()
    {
        if (_disposed)
        {
            ThrowDisposed();
        }
    }

    [DoesNotReturn]
    private static void ThrowDisposed() =>
        throw new ObjectDisposedException(nameof(SimulatedNvm), "The simulated NVM region has been disposed.");
}

/// <summary>
/// A store that is not yet durable: the whole aligned 8-byte word at <see cref="Offset"/> will hold
/// <see cref="Value"/> if this store is kept by a crash (and no later kept store to the word overrides it).
/// </summary>
/// <param name="Index">Position in <see cref="SimulatedNvm.PendingStores"/> (program order); what
/// <see cref="SimulatedNvm.Crash(IEnumerable{int})"/> takes.</param>
/// <param name="Offset">The 8-byte-aligned word offset.</param>
/// <param name="Value">The whole word's value after the store.</param>
public readonly record struct SimulatedPendingStore(int Index, long Offset, ulong Value);

/// <summary>
/// Thrown by tests from <see cref="SimulatedNvm.BeforePersist"/> to stop the program at a persist point, as a
/// power failure would; the stores that Persist would have flushed stay pending.
/// </summary>
public sealed class SimulatedPowerFailure : Exception
{
    /// <summary>A power failure before persist number <paramref name="persistIndex"/> (0-based).</summary>
    public SimulatedPowerFailure(long persistIndex)
        : base($"Simulated power failure before persist #{persistIndex}.")
    {
        PersistIndex = persistIndex;
    }

    /// <summary>A power failure with a custom message.</summary>
    public SimulatedPowerFailure(string message)
        : base(message)
    {
        PersistIndex = -1;
    }

    /// <summary>The persist index at which power failed, or -1 when not given.</summary>
    public long PersistIndex { get; }
}
