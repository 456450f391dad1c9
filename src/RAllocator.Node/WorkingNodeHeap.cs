using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.InteropServices;
using RAllocator.Protocol;
using RAllocator.Protocol.Layout;

namespace RAllocator.Node;

/// <summary>
/// The allocator a working node's application uses: <see cref="AllocateAsync"/> returns a <see cref="RemotePtr"/>
/// into blade NVM and <see cref="FreeAsync"/> gives it back. Objects are carved from whole slabs acquired
/// one-sided; allocating and freeing objects never touches the network except to acquire or return a slab.
/// </summary>
/// <remarks>
/// <para><b>Threads.</b> Safe for any number of threads. Each size class has its own lock, held only for the
/// O(1) pop or push of an object index; slab acquisition runs outside it, one refill per class at a time, and
/// acquisitions to one blade are serialized by its <see cref="BladeClient"/>.</para>
/// <para><b>Durability contract.</b> After a crash and restart, <see cref="OpenAsync"/> gives back exactly the slabs
/// this node durably owned. Object state is recovered by reachability: the application passes the objects it can
/// still reach (from its root, <see cref="GetRoot"/>) to <see cref="CompleteRecoveryAsync"/>; every other object in
/// those slabs is free. An object's bytes are durable once the application persisted them
/// (<see cref="WriteAndPersistAsync"/>), and its slab's acknowledgement and header were posted before, on the same
/// ordered connection, so they are durable first.</para>
/// </remarks>
public sealed partial class WorkingNodeHeap
{
    private static readonly ulong s_slabHeaderMagic = BinaryPrimitives.ReadUInt64LittleEndian("RSLABv01"u8);

    private readonly BladeClient[] _blades;
    private readonly HeapOptions _options;
    private readonly SizeClassHeap[] _classes;
    private readonly CarvedSlab?[][] _slabsByBlade;
    private readonly (long DataOffset, ulong SlabSizeBytes)[] _slabGeometryByBlade;
    private readonly Queue<(int BladeId, OwnedSlab Slab)> _spareSlabs = new();
    private readonly List<CarvedSlab> _recovering = [];
    private readonly NodeRecovery[] _recoveries;
    private readonly EpochTable _epochs;

    // The largest size class whose objects fit, after the slab header, in a slab of every blade: a larger class
    // would carve slabs of zero objects (every allocation acquiring a slab and failing).
    private readonly int _largestSizeClass;

    // The largest span class every blade serves, and the smallest base slab: the policy's frame of reference.
    private readonly int _maxSpanClass;
    private readonly ulong _baseSlabBytes;
    private readonly long[] _slabsAcquiredBySpanClass = new long[BitOperations.Log2(BladeGeometry.MaxSlabSpanLimit) + 1];
    private long _allocations;
    private long _frees;
    private long _slabsAcquired;
    private long _slabsReturned;

    private WorkingNodeHeap(BladeClient[] blades, NodeRecovery[] recoveries, HeapOptions options)
    {
        _blades = blades;
        _recoveries = recoveries;
        _options = options;
        _classes = Enumerable.Range(0, SizeClasses.Count).Select(c => new SizeClassHeap(c)).ToArray();
        _slabsByBlade = blades.Select(b => new CarvedSlab?[b.Geometry.SlabCount]).ToArray();
        // Computed once: the geometry derives its layout on demand, which is too slow for every FreeAsync.
        _slabGeometryByBlade = blades.Select(b => (b.Geometry.DataOffset, b.Geometry.SlabSizeBytes)).ToArray();
        _epochs = new EpochTable(recoveries.Select(r => r.GlobalEpoch).ToArray());
        _maxSpanClass = blades.Min(b => b.Rings.Count - 1);
        _baseSlabBytes = blades.Min(b => b.Geometry.SlabSizeBytes);
        long usableSlabBytes = blades.Min(b => (long)(b.Geometry.SlabSizeBytes << _maxSpanClass)) - CarvedSlab.HeaderBytes;
        _largestSizeClass = SizeClasses.Sizes.Count(size => size <= usableSlabBytes) - 1;
    }

    /// <summary>The blades this heap allocates from, by blade id.</summary>
    public IReadOnlyList<BladeClient> Blades => _blades;

    /// <summary>What registration returned from each blade (owned slabs, roots).</summary>
    public IReadOnlyList<NodeRecovery> Recoveries => _recoveries;

    /// <summary>Whether recovered slabs wait for <see cref="CompleteRecoveryAsync"/>.</summary>
    public bool RecoveryPending => _recovering.Count > 0;

    /// <summary>
    /// Registers this node with every blade (a new incarnation) and takes back the slabs it durably owns. If any
    /// slab holds objects, call <see cref="CompleteRecoveryAsync"/> before allocating from that slab's class.
    /// </summary>
    /// <param name="blades">One client per blade, where list position equals <see cref="BladeClient.BladeId"/>.</param>
    /// <param name="options">Heap tuning.</param>
    /// <param name="cancellationToken">Cancels registration.</param>
    public static async Task<WorkingNodeHeap> OpenAsync(IReadOnlyList<BladeClient> blades, HeapOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(blades);
        if (blades.Count == 0)
        {
            throw new ArgumentException("a working node needs at least one blade.", nameof(blades));
        }

        for (int i = 0; i < blades.Count; i++)
        {
            if (blades[i].BladeId != i)
            {
                throw new ArgumentException($"blade client at position {i} has blade id {blades[i].BladeId}; ids must equal positions.", nameof(blades));
            }
        }

        var recoveries = new NodeRecovery[blades.Count];
        for (int i = 0; i < blades.Count; i++)
        {
            recoveries[i] = await blades[i].RegisterAsync(cancellationToken).ConfigureAwait(false);
        }

        var heap = new WorkingNodeHeap([.. blades], recoveries, options ?? new HeapOptions());
        await heap.AdoptRecoveredSlabsAsync(cancellationToken).ConfigureAwait(false);
        return heap;
    }

    /// <summary>The root pointer this node last stored on blade <paramref name="bladeId"/> (as of registration or the last set).</summary>
    public RemotePtr GetRoot(int bladeId = 0) => _recoveries[bladeId].Root;

    /// <summary>Stores and persists this node's root pointer on blade <paramref name="bladeId"/> (one round trip).</summary>
    public async Task SetRootAsync(RemotePtr root, int bladeId = 0, CancellationToken cancellationToken = default)
    {
        await _blades[bladeId].SetRootAsync(root, cancellationToken).ConfigureAwait(false);
        _recoveries[bladeId] = _recoveries[bladeId] with { Root = root };
    }

    /// <summary>
    /// Finishes recovery by reachability: <paramref name="liveObjects"/> are the objects the application can still
    /// reach; they stay allocated, every other object of the recovered slabs becomes free, and empty slabs beyond
    /// the threshold go back to their blades.
    /// </summary>
    /// <exception cref="InvalidOperationException">A pointer is not an object of a recovered slab.</exception>
    public async Task CompleteRecoveryAsync(IEnumerable<RemotePtr> liveObjects, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(liveObjects);
        foreach (var ptr in liveObjects)
        {
            var slab = SlabOf(ptr) ?? throw new InvalidOperationException($"{ptr} is not in a slab this node owns.");
            slab.MarkLive(ptr);
        }

        var toReturn = new List<CarvedSlab>();
        foreach (var slab in _recovering)
        {
            var sizeClass = _classes[slab.SizeClass];
            lock (sizeClass.Gate)
            {
                if (sizeClass.AddUnsynchronized(slab, _options.EmptySlabThreshold))
                {
                    toReturn.Add(slab);
                }
            }
        }

        _recovering.Clear();
        foreach (var slab in toReturn)
        {
            await ReturnSlabAsync(slab, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Allocates an object of at least <paramref name="sizeBytes"/> bytes (16-byte aligned). Completes
    /// synchronously, with no network operation, unless the size class needs a new slab.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The size is not between 1 byte and 4 MiB, or its size class's
    /// objects do not fit in the largest slab of every blade (base slab × maximum span, less a 64-byte header).</exception>
    /// <exception cref="BladeOutOfMemoryException">No blade had a free slab.</exception>
    public ValueTask<RemotePtr> AllocateAsync(int sizeBytes, CancellationToken cancellationToken = default)
    {
        int sizeClass = SizeClasses.ClassOf(sizeBytes);
        if (sizeClass > _largestSizeClass)
        {
            ThrowObjectLargerThanSlab(sizeBytes, sizeClass);
        }

        var heap = _classes[sizeClass];
        lock (heap.Gate)
        {
            if (heap.TryAllocateUnsynchronized(out var ptr))
            {
                Interlocked.Increment(ref _allocations);
                return new ValueTask<RemotePtr>(ptr);
            }
        }

        return AllocateSlowAsync(sizeClass, cancellationToken);
    }

    /// <summary>
    /// Frees an object. No network operation unless its slab becomes empty beyond the threshold, in which case
    /// the slab's free request is posted to its blade.
    /// </summary>
    /// <exception cref="InvalidOperationException">The pointer is not an allocated object of this node (double free, foreign pointer).</exception>
    public ValueTask FreeAsync(RemotePtr ptr, CancellationToken cancellationToken = default)
    {
        var slab = SlabOf(ptr) ?? throw new InvalidOperationException($"free of {ptr}: it is not in a slab this node owns.");
        var heap = _classes[slab.SizeClass];
        bool returnSlab;
        lock (heap.Gate)
        {
            if (slab.List == SlabList.Returned)
            {
                throw new InvalidOperationException($"free of {ptr}: its slab was already returned to blade {slab.BladeId}.");
            }

            returnSlab = heap.FreeUnsynchronized(slab, ptr, _options.EmptySlabThreshold);
        }

        Interlocked.Increment(ref _frees);
        return returnSlab ? new ValueTask(ReturnSlabAsync(slab, cancellationToken)) : ValueTask.CompletedTask;
    }

    /// <summary>Whether <paramref name="ptr"/> is an allocated object of this node.</summary>
    public bool IsAllocated(RemotePtr ptr)
    {
        var slab = SlabOf(ptr);
        if (slab is null)
        {
            return false;
        }

        lock (_classes[slab.SizeClass].Gate)
        {
            return slab.List != SlabList.Returned && slab.IsAllocated(ptr);
        }
    }

    /// <summary>Writes <paramref name="value"/> at <paramref name="ptr"/> (one WRITE; not yet durable).</summary>
    public ValueTask WriteAsync<T>(RemotePtr ptr, T value, CancellationToken cancellationToken = default)
        where T : unmanaged
    {
        var bytes = new byte[Marshal.SizeOf<T>()];
        MemoryMarshal.Write(bytes, in value);
        return _blades[ptr.BladeId].Connection.WriteAsync(ptr.Offset, bytes, cancellationToken);
    }

    /// <summary>Reads a <typeparamref name="T"/> at <paramref name="ptr"/> (one READ).</summary>
    public async ValueTask<T> ReadAsync<T>(RemotePtr ptr, CancellationToken cancellationToken = default)
        where T : unmanaged
    {
        var bytes = new byte[Marshal.SizeOf<T>()];
        await _blades[ptr.BladeId].Connection.ReadAsync(ptr.Offset, bytes, cancellationToken).ConfigureAwait(false);
        return MemoryMarshal.Read<T>(bytes);
    }

    /// <summary>Reads <c>destination.Length</c> bytes at <paramref name="ptr"/> (one READ).</summary>
    public ValueTask ReadBytesAsync(RemotePtr ptr, Memory<byte> destination, CancellationToken cancellationToken = default) =>
        _blades[ptr.BladeId].Connection.ReadAsync(ptr.Offset, destination, cancellationToken);

    /// <summary>Writes <paramref name="source"/> at <paramref name="ptr"/> and persists it: one round trip, durable on return.</summary>
    public ValueTask WriteAndPersistAsync(RemotePtr ptr, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default) =>
        _blades[ptr.BladeId].Connection.CreateBatch().Write(ptr.Offset, source).Persist(ptr.Offset, source.Length).PostAndWaitAsync(cancellationToken);

    /// <summary>Persists <paramref name="lengthBytes"/> bytes at <paramref name="ptr"/> (one round trip).</summary>
    public ValueTask PersistAsync(RemotePtr ptr, long lengthBytes, CancellationToken cancellationToken = default) =>
        _blades[ptr.BladeId].Connection.PersistAsync(ptr.Offset, lengthBytes, cancellationToken);

    /// <summary>
    /// Protects the references the calling code takes until the guard is disposed: no slab freed after this
    /// call is reused by any blade while the guard is open (epoch-based reclamation).
    /// </summary>
    public EpochGuard EnterEpoch() => _epochs.Enter();

    /// <summary>
    /// Tells every blade which epoch this node has passed and beats its heartbeat: one READ and one posted WRITE per
    /// blade. Call it periodically (or run <see cref="MaintainAsync"/>); a node that stops is fenced after its lease.
    /// </summary>
    public async Task PublishEpochsAsync(CancellationToken cancellationToken = default)
    {
        var current = new ulong[_blades.Length];
        for (int b = 0; b < _blades.Length; b++)
        {
            current[b] = await _blades[b].ReadGlobalEpochAsync(cancellationToken).ConfigureAwait(false);
        }

        var safe = _epochs.Advance(current);
        for (int b = 0; b < _blades.Length; b++)
        {
            await _blades[b].PublishEpochAsync(safe[b], cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Publishes epochs every <paramref name="interval"/> until cancelled.</summary>
    public async Task MaintainAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                await PublishEpochsAsync(cancellationToken).ConfigureAwait(false);
                await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Cancellation is how the loop ends, wherever it lands (a publish in flight included).
        }
    }

    /// <summary>Current counters.</summary>
    public HeapStatistics GetStatistics()
    {
        long slabs = 0, live = 0, liveBytes = 0, heldBytes = 0;
        foreach (var heap in _classes)
        {
            SizeClassTotals totals;
            lock (heap.Gate)
            {
                totals = heap.TotalsUnsynchronized();
            }

            slabs += totals.Slabs;
            live += totals.LiveObjects;
            liveBytes += totals.LiveBytes;
            heldBytes += totals.HeldBytes;
        }

        return new HeapStatistics(Interlocked.Read(ref _allocations), Interlocked.Read(ref _frees),
            Interlocked.Read(ref _slabsAcquired), Interlocked.Read(ref _slabsReturned), slabs + _spareSlabs.Count + _recovering.Count, live, liveBytes,
            heldBytes, Enumerable.Range(0, _slabsAcquiredBySpanClass.Length).Select(c => Interlocked.Read(ref _slabsAcquiredBySpanClass[c])).ToArray());
    }

    /// <summary>Slabs this node owns on <paramref name="bladeId"/> (carved, spare or recovering), by index.</summary>
    public IReadOnlyList<ulong> OwnedSlabIndexes(int bladeId)
    {
        var owned = new List<ulong>();
        var slabs = _slabsByBlade[bladeId];
        for (int i = 0; i < slabs.Length; i++)
        {
            var slab = Volatile.Read(ref slabs[i]);
            if (slab is not null && slab.List != SlabList.Returned && slab.Slab.SlabIndex == (ulong)i)
            {
                owned.Add((ulong)i);
            }
        }

        lock (_spareSlabs)
        {
            owned.AddRange(_spareSlabs.Where(s => s.BladeId == bladeId).Select(s => s.Slab.SlabIndex));
        }

        owned.Sort();
        return owned;
    }

    [DoesNotReturn]
    private void ThrowObjectLargerThanSlab(int sizeBytes, int sizeClass) =>
        throw new ArgumentOutOfRangeException(nameof(sizeBytes), sizeBytes,
            $"an object of {sizeBytes} bytes needs the {SizeClasses.Sizes[sizeClass]}-byte size class, but the largest that fits in a slab of every blade is {SizeClasses.Sizes[_largestSizeClass]} bytes; format blades with larger slabs or a larger maximum span (--max-span).");

    private async ValueTask<RemotePtr> AllocateSlowAsync(int sizeClass, CancellationToken cancellationToken)
    {
        var heap = _classes[sizeClass];
        await heap.RefillGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            RemotePtr ptr;
            lock (heap.Gate)
            {
                if (heap.TryAllocateUnsynchronized(out ptr))
                {
                    Interlocked.Increment(ref _allocations);
                    return ptr;
                }
            }

            var slab = await CarveSlabAsync(sizeClass, cancellationToken).ConfigureAwait(false);
            lock (heap.Gate)
            {
                heap.AddUnsynchronized(slab, int.MaxValue);
                heap.TryAllocateUnsynchronized(out ptr);
            }

            Interlocked.Increment(ref _allocations);
            return ptr;
        }
        finally
        {
            heap.RefillGate.Release();
        }
    }

    private async Task<CarvedSlab> CarveSlabAsync(int sizeClass, CancellationToken cancellationToken)
    {
        int objectSize = SizeClasses.Sizes[sizeClass];
        (int BladeId, OwnedSlab Slab)? spare = null;
        lock (_spareSlabs)
        {
            // A spare (acknowledged, never carved) slab serves any class whose object it holds.
            if (_spareSlabs.Count > 0 && SlabBytesOf(_spareSlabs.Peek()) >= (ulong)objectSize + CarvedSlab.HeaderBytes)
            {
                spare = _spareSlabs.Dequeue();
            }
        }

        var heap = _classes[sizeClass];
        var (bladeId, owned) = spare ?? await AcquireFromSomeBladeAsync(sizeClass, ChooseSpanClass(heap), cancellationToken).ConfigureAwait(false);
        var blade = _blades[bladeId];
        var slab = new CarvedSlab(bladeId, owned, SlabBytesOf((bladeId, owned)), sizeClass);
        lock (heap.Gate)
        {
            heap.LastAcquisition = (heap.Allocations, BitOperations.Log2(owned.Span), slab.Capacity);
        }

        // The header is posted on the same ordered connection as the acknowledgement, before any object of the
        // slab can be written, so it is durable before any of them.
        var header = new SlabHeader
        {
            Magic = s_slabHeaderMagic,
            SizeClass = (uint)sizeClass,
            ObjectSizeBytes = (uint)slab.ObjectSizeBytes,
            Node = blade.NodeId,
            Ticket = owned.Ticket,
        };
        var bytes = new byte[SlabHeader.SizeBytes];
        header.CopyTo(bytes);
        await blade.Connection.CreateBatch().Write(owned.Offset, bytes).Persist(owned.Offset, bytes.Length)
            .PostUnsignaled(cancellationToken).ConfigureAwait(false);
        MapSlab(slab, slab);
        return slab;
    }

    /// <summary>The span class the sizing policy picks for <paramref name="heap"/>'s next slab (under its refill gate).</summary>
    private int ChooseSpanClass(SizeClassHeap heap)
    {
        int objectSize = SizeClasses.Sizes[heap.SizeClass];
        long allocations;
        SizeClassTotals totals;
        lock (heap.Gate)
        {
            allocations = heap.Allocations;
            totals = heap.TotalsUnsynchronized();
        }

        var last = heap.LastAcquisition;
        int minSpanClass = Math.Min(SpanClasses.Smallest(objectSize, _baseSlabBytes), _maxSpanClass);
        var context = new SlabSizingContext(heap.SizeClass, objectSize, _baseSlabBytes, minSpanClass, _maxSpanClass,
            allocations - last.AllocationsThen, last.SpanClass, last.Capacity, totals.LiveBytes, totals.HeldBytes);
        return Math.Clamp(_options.SlabSizing.ChooseSpanClass(context), minSpanClass, _maxSpanClass);
    }

    private async Task<(int BladeId, OwnedSlab Slab)> AcquireFromSomeBladeAsync(int sizeClass, int spanClass, CancellationToken cancellationToken)
    {
        BladeOutOfMemoryException? lastFull = null;
        int objectSize = SizeClasses.Sizes[sizeClass];
        // A larger slab than needed is an optimization: when no blade has a free run that long, take the smallest.
        int smallest = Math.Min(SpanClasses.Smallest(objectSize, _baseSlabBytes), spanClass);
        foreach (int attemptClass in spanClass == smallest ? [spanClass] : new[] { spanClass, smallest })
        {
            foreach (int bladeId in _options.Placement.Order(_blades, sizeClass))
            {
                if (bladeId == _evacuatingBlade)
                {
                    continue;
                }

                var blade = _blades[bladeId];
                // A blade with larger base slabs may need a smaller span class for the same object.
                int bladeClass = Math.Clamp(attemptClass, SpanClasses.Smallest(objectSize, blade.Geometry.SlabSizeBytes), blade.Rings.Count - 1);
                try
                {
                    var slab = await blade.AcquireSlabAsync(bladeClass, cancellationToken).ConfigureAwait(false);
                    Interlocked.Increment(ref _slabsAcquired);
                    Interlocked.Increment(ref _slabsAcquiredBySpanClass[bladeClass]);
                    return (bladeId, slab);
                }
                catch (BladeOutOfMemoryException ex)
                {
                    lastFull = ex;
                }
            }
        }

        throw lastFull ?? new BladeOutOfMemoryException(0, 0);
    }

    private ulong SlabBytesOf((int BladeId, OwnedSlab Slab) owned) => _blades[owned.BladeId].Geometry.SlabSizeBytes * owned.Slab.Span;

    /// <summary>Points every base slab of <paramref name="slab"/> at <paramref name="value"/>, so a pointer anywhere in a span finds it.</summary>
    private void MapSlab(CarvedSlab slab, CarvedSlab? value)
    {
        var slabs = _slabsByBlade[slab.BladeId];
        for (ulong member = slab.Slab.SlabIndex; member < slab.Slab.SlabIndex + slab.Slab.Span; member++)
        {
            Volatile.Write(ref slabs[member], value);
        }
    }

    private async Task ReturnSlabAsync(CarvedSlab slab, CancellationToken cancellationToken)
    {
        MapSlab(slab, null);
        await _blades[slab.BladeId].ReturnSlabAsync(slab.Slab.SlabIndex, cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _slabsReturned);
    }

    private CarvedSlab? SlabOf(RemotePtr ptr)
    {
        if ((uint)ptr.BladeId >= (uint)_blades.Length)
        {
            return null;
        }

        var (dataOffset, slabSizeBytes) = _slabGeometryByBlade[ptr.BladeId];
        long relative = ptr.Offset - dataOffset;
        if (relative < 0)
        {
            return null;
        }

        var slabs = _slabsByBlade[ptr.BladeId];
        ulong index = (ulong)relative / slabSizeBytes;
        return index < (ulong)slabs.Length ? Volatile.Read(ref slabs[index]) : null;
    }

    private async Task AdoptRecoveredSlabsAsync(CancellationToken cancellationToken)
    {
        var headerBytes = new byte[SlabHeader.SizeBytes];
        for (int bladeId = 0; bladeId < _blades.Length; bladeId++)
        {
            var blade = _blades[bladeId];
            foreach (var owned in _recoveries[bladeId].OwnedSlabs)
            {
                await blade.Connection.ReadAsync(owned.Offset, headerBytes, cancellationToken).ConfigureAwait(false);
                var header = SlabHeader.FromBytes(headerBytes);
                bool carved = header.Magic == s_slabHeaderMagic && header.Node == blade.NodeId && header.Ticket == owned.Ticket
                    && header.SizeClass < SizeClasses.Count && header.ObjectSizeBytes == SizeClasses.Sizes[(int)header.SizeClass];
                if (!carved)
                {
                    // Acknowledged but never carved (the node crashed first): no object can be in it.
                    _spareSlabs.Enqueue((bladeId, owned));
                    continue;
                }

                var slab = new CarvedSlab(bladeId, owned, SlabBytesOf((bladeId, owned)), (int)header.SizeClass);
                MapSlab(slab, slab);
                _recovering.Add(slab);
            }
        }
    }
}
