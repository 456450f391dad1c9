using System.Diagnostics;
using RAllocator.Fabric;
using RAllocator.Protocol;

namespace RAllocator.Node;

// Defragmentation: compaction of sparse slabs and evacuation (migration) of a blade, through a relocation callback.
// The crash argument is in spec/durability.md, "Compaction and migration".
public sealed partial class WorkingNodeHeap
{
    // Bytes of one source slab's objects moved per step: its objects are read, written as one batch per destination
    // blade, then committed one by one. Bounds the step's buffers and the window in which copies wait for commits.
    private const int CompactionStepBytes = 1 << 20;

    // Live objects of a source this close are read by one READ spanning the dead objects between them: a round trip
    // costs more than a few KiB of payload.
    private const int ReadCoalesceGapBytes = 16 * 1024;

    private readonly SemaphoreSlim _compactionGate = new(1, 1);

    // The blade an evacuation is emptying: slab acquisitions skip it (AcquireFromSomeBladeAsync), so neither
    // compaction nor concurrent allocations put new slabs there. Not volatile: every acquisition runs under its class's
    // refill gate, which the evacuation takes and releases, class by class, after setting this, so the semaphore orders
    // the write before any later acquisition's read (and a volatile read would be a Coyote scheduling point per slab).
    private int _evacuatingBlade = -1;

    /// <summary>
    /// Current utilization: live object bytes over bytes of slabs held, in total and per size class
    /// (<see cref="HeapUtilization"/> defines it exactly).
    /// </summary>
    public HeapUtilization GetUtilization()
    {
        var byClass = new List<SizeClassUtilization>();
        long liveObjects = 0, liveBytes = 0, slabsHeld = 0, heldBytes = 0;
        foreach (var heap in _classes)
        {
            SizeClassTotals totals;
            lock (heap.Gate)
            {
                totals = heap.TotalsUnsynchronized();
            }

            if (totals.Slabs > 0)
            {
                byClass.Add(new SizeClassUtilization(heap.SizeClass, SizeClasses.Sizes[heap.SizeClass], totals.LiveObjects, totals.LiveBytes, totals.Slabs, totals.HeldBytes));
                liveObjects += totals.LiveObjects;
                liveBytes += totals.LiveBytes;
                slabsHeld += totals.Slabs;
                heldBytes += totals.HeldBytes;
            }
        }

        lock (_spareSlabs)
        {
            foreach (var spare in _spareSlabs)
            {
                slabsHeld++;
                heldBytes += (long)SlabBytesOf(spare);
            }
        }

        // Recovering slabs are counted as held and empty: which of their objects are live is not known yet. The list is
        // only cleared, once, by CompleteRecoveryAsync; a copy racing with that may hold nulls.
        foreach (var slab in _recovering.ToArray())
        {
            if (slab is not null)
            {
                slabsHeld++;
                heldBytes += slab.SlabBytes;
            }
        }

        return new HeapUtilization(liveObjects, liveBytes, slabsHeld, heldBytes, byClass);
    }

    /// <summary>
    /// Defragments the heap: moves the live objects of sparse slabs into denser slabs of their size class and returns
    /// the emptied slabs to their blades; or, with <see cref="CompactionOptions.EvacuateBlade"/>, moves every live
    /// object off one blade and returns all its slabs (migration). The application learns each move through
    /// <paramref name="relocate"/> and updates its references there.
    /// </summary>
    /// <param name="relocate">Redirects the application's references from the old address to the new one, durably.
    /// Its return is the commit point of the move (<see cref="RelocationCallback"/>).</param>
    /// <param name="options">Which slabs to empty (default: sparse slabs below half full, every blade).</param>
    /// <param name="progress">Told once the sources are out of allocation, then after each source slab; its
    /// <see cref="IProgress{T}.Report"/> is called on the compacting task.</param>
    /// <param name="cancellationToken">Stops between moves; the moves committed stay done, the unfinished sources go
    /// back into allocation.</param>
    /// <returns>Objects and bytes moved, slabs returned, the fabric cost, and utilization before and after.</returns>
    /// <remarks>
    /// <para><b>Each move.</b> Destination objects are reserved (allocated) first; the old objects are READ; the copies
    /// are written and persisted in one batch per destination blade, and waited for; then, one object at a time,
    /// <paramref name="relocate"/>(from, to) is called and, once it returned, the old object is freed (locally, no
    /// network operation). When a source is empty it goes back to its blade through the usual free request; the blade
    /// reuses it only after every node has passed the epoch of the return, so a reader that took the old pointer inside
    /// an <see cref="EnterEpoch"/> guard may keep reading the old bytes until it closes the guard.</para>
    /// <para><b>Crashes.</b> Before the commit the old object is intact and still allocated (the copy is an unreachable
    /// object recovery frees); after it the copy is durable and the application refers to it (the old object is
    /// unreachable). So after a crash anywhere, recovery by reachability (<see cref="CompleteRecoveryAsync"/>) finds
    /// every object exactly once with its bytes. spec/durability.md, "Compaction and migration", has the argument.</para>
    /// <para><b>What the application must not do meanwhile.</b> Write or free an object that existed when compaction
    /// chose its sources (any of them may be a source's): its copy could miss the write, or the application could free
    /// an object it no longer refers to. Reading is fine. Objects allocated after the first <paramref name="progress"/>
    /// report (made once the sources are out of allocation) never land in a source, so the application may write and
    /// free those freely. An object freed before compaction reached it is skipped.</para>
    /// <para><b>Failures.</b> If <paramref name="relocate"/> throws, the copy is freed, the object stays where it was,
    /// the unfinished sources go back into allocation, and <see cref="RelocationFailedException"/> (with the partial
    /// report) is thrown. A fabric failure or cancellation leaves the heap as consistent, without network clean-up:
    /// a copy reserved and not yet committed is freed locally. If compaction stops early, a partly emptied source goes
    /// back into allocation and its freed objects can be reused at once, as after <see cref="FreeAsync"/>.</para>
    /// <para>One compaction at a time per heap (a second call waits). Call it after <see cref="CompleteRecoveryAsync"/>.</para>
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">The threshold is not in (0, 1], or the blade to evacuate is not one of
    /// this heap's.</exception>
    /// <exception cref="ArgumentException">Evacuating the heap's only blade.</exception>
    /// <exception cref="InvalidOperationException">Recovery is pending (which objects are live is not known yet).</exception>
    /// <exception cref="RelocationFailedException">The callback threw.</exception>
    /// <exception cref="BladeOutOfMemoryException">A destination slab was needed and no blade (other than the one evacuated) had one.</exception>
    public async Task<CompactionReport> CompactAsync(RelocationCallback relocate, CompactionOptions? options = null, IProgress<CompactionProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(relocate);
        options ??= new CompactionOptions();
        ValidateCompactionOptions(options);
        await _compactionGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (RecoveryPending)
            {
                throw new InvalidOperationException("compaction needs to know which objects are live: call CompleteRecoveryAsync first.");
            }

            var run = new CompactionRun(options.EvacuateBlade, GetUtilization(), FabricCountersNow());
            try
            {
                if (options.EvacuateBlade is int evacuated)
                {
                    _evacuatingBlade = evacuated;
                    await ReturnSparesOnAsync(evacuated, run, cancellationToken).ConfigureAwait(false);
                    foreach (var heap in _classes)
                    {
                        // A refill that started before the blade was excluded may still bring a slab of it: wait it out.
                        await heap.RefillGate.WaitAsync(cancellationToken).ConfigureAwait(false);
                        try
                        {
                            lock (heap.Gate)
                            {
                                run.AddSources(heap, heap.WithdrawBladeUnsynchronized(evacuated));
                            }
                        }
                        finally
                        {
                            heap.RefillGate.Release();
                        }
                    }
                }
                else
                {
                    foreach (var heap in _classes)
                    {
                        lock (heap.Gate)
                        {
                            run.AddSources(heap, heap.WithdrawSparseUnsynchronized(options.OccupancyThreshold));
                        }
                    }
                }

                progress?.Report(new CompactionProgress(null, 0, run.Sources.Count, 0, 0, run.SlabsReturned));
                for (int i = 0; i < run.Sources.Count; i++)
                {
                    var (heap, source) = run.Sources[i];
                    await EmptySourceAsync(heap, source, relocate, run, cancellationToken).ConfigureAwait(false);
                    progress?.Report(new CompactionProgress(heap.SizeClass, i + 1, run.Sources.Count, run.ObjectsMoved, run.BytesMoved, run.SlabsReturned));
                }
            }
            catch (Exception failure)
            {
                RestoreUnfinishedSources(run);
                if (failure is RelocationFailedException relocationFailed)
                {
                    relocationFailed.Report = Report(run);
                }

                throw;
            }
            finally
            {
                _evacuatingBlade = -1;
            }

            return Report(run);
        }
        finally
        {
            _compactionGate.Release();
        }
    }

    private void ValidateCompactionOptions(CompactionOptions options)
    {
        if (!(options.OccupancyThreshold > 0 && options.OccupancyThreshold <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.OccupancyThreshold, "the occupancy threshold must be in (0, 1].");
        }

        if (options.EvacuateBlade is int blade)
        {
            if ((uint)blade >= (uint)_blades.Length)
            {
                throw new ArgumentOutOfRangeException(nameof(options), blade, $"blade {blade} is not one of this heap's {_blades.Length} blades.");
            }

            if (_blades.Length == 1)
            {
                throw new ArgumentException("evacuating the only blade leaves nowhere to move its objects.", nameof(options));
            }
        }
    }

    /// <summary>Moves every live object out of <paramref name="source"/>, then returns it to its blade.</summary>
    private async Task EmptySourceAsync(SizeClassHeap heap, CarvedSlab source, RelocationCallback relocate, CompactionRun run, CancellationToken cancellationToken)
    {
        List<RemotePtr> live;
        lock (heap.Gate)
        {
            live = [.. source.LiveObjects()];
        }

        int perStep = Math.Max(1, CompactionStepBytes / source.ObjectSizeBytes);
        for (int start = 0; start < live.Count; start += perStep)
        {
            cancellationToken.ThrowIfCancellationRequested();
            await MoveStepAsync(heap, source, live.GetRange(start, Math.Min(perStep, live.Count - start)), relocate, run, cancellationToken).ConfigureAwait(false);
        }

        bool retire;
        lock (heap.Gate)
        {
            // Not empty only if something allocated into a withdrawn slab; then it simply goes back into allocation.
            retire = source.List == SlabList.Withdrawn && source.IsEmpty;
            if (retire)
            {
                heap.RetireUnsynchronized(source);
            }
            else if (source.List == SlabList.Withdrawn)
            {
                heap.RestoreUnsynchronized(source, int.MaxValue);
            }
        }

        if (retire)
        {
            // Every move out of it has committed, so nothing the application reaches is in it any more.
            await ReturnSlabAsync(source, cancellationToken).ConfigureAwait(false);
            run.Returned(heap.SizeClass);
        }
    }

    private async Task MoveStepAsync(SizeClassHeap heap, CarvedSlab source, List<RemotePtr> objects, RelocationCallback relocate, CompactionRun run,
        CancellationToken cancellationToken)
    {
        var faults = CompactionFaults;
        int size = source.ObjectSizeBytes;
        var moves = new List<Relocation>(objects.Count);
        try
        {
            foreach (var from in objects)
            {
                lock (heap.Gate)
                {
                    if (!source.IsAllocated(from))
                    {
                        continue;
                    }
                }

                var (to, destination) = await ReserveDestinationAsync(heap, run, cancellationToken).ConfigureAwait(false);
                moves.Add(new Relocation(from, to, destination));
                if (faults.ReserveDestinationLate)
                {
                    lock (heap.Gate)
                    {
                        heap.FreeUnsynchronized(destination, to, int.MaxValue);
                    }
                }
            }

            if (moves.Count == 0)
            {
                return;
            }

            var copies = await ReadObjectsAsync(source, moves, cancellationToken).ConfigureAwait(false);

            // Durable before any commit: after a crash the application may refer to either address.
            foreach (var group in Enumerable.Range(0, moves.Count).GroupBy(i => moves[i].To.BladeId))
            {
                var batch = _blades[group.Key].Connection.CreateBatch();
                foreach (int i in group)
                {
                    batch.Write(moves[i].To.Offset, copies[i]);
                    if (!faults.CommitBeforeCopyPersisted)
                    {
                        batch.Persist(moves[i].To.Offset, size);
                    }
                }

                await batch.PostAndWaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            // No commit happened: the copies are unreachable garbage. Local clean-up only (the fabric may be down).
            ReleaseReservations(heap, moves, 0, int.MaxValue);
            throw;
        }

        for (int i = 0; i < moves.Count; i++)
        {
            var move = moves[i];
            if (faults.FreeSourceBeforeCommit)
            {
                await FreeMovedSourceObjectAsync(heap, source, move.From, returnEmptied: true, run, cancellationToken).ConfigureAwait(false);
            }

            try
            {
                await relocate(move.From, move.To, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception error)
            {
                // The callback did not commit: the application still refers to From, so this copy and the later ones go.
                // After a fabric failure or a cancellation the clean-up stays local (an emptied destination is kept).
                bool localOnly = error is FabricException || (error is OperationCanceledException && cancellationToken.IsCancellationRequested);
                var emptied = ReleaseReservations(heap, moves, i, localOnly ? int.MaxValue : _options.EmptySlabThreshold);
                if (localOnly)
                {
                    throw;
                }

                foreach (var slab in emptied)
                {
                    await ReturnSlabAsync(slab, cancellationToken).ConfigureAwait(false);
                }

                throw new RelocationFailedException(move.From, move.To, error);
            }

            if (faults.CommitBeforeCopyPersisted)
            {
                await PersistAsync(move.To, size, cancellationToken).ConfigureAwait(false);
            }

            if (faults.ReserveDestinationLate)
            {
                lock (heap.Gate)
                {
                    move.Destination.MarkLive(move.To);
                    heap.RelistUnsynchronized(move.Destination);
                }
            }

            if (!faults.FreeSourceBeforeCommit)
            {
                await FreeMovedSourceObjectAsync(heap, source, move.From, returnEmptied: false, run, cancellationToken).ConfigureAwait(false);
            }

            run.Moved(heap.SizeClass, size);
        }
    }

    /// <summary>Frees a moved object at its old address; <paramref name="returnEmptied"/> only in the seeded bug.</summary>
    private async Task FreeMovedSourceObjectAsync(SizeClassHeap heap, CarvedSlab source, RemotePtr from, bool returnEmptied, CompactionRun run, CancellationToken cancellationToken)
    {
        bool retire = false;
        lock (heap.Gate)
        {
            // Already free if the application freed it during its move (against the contract); its references now
            // point at the copy, which stays allocated.
            if (source.List == SlabList.Withdrawn && source.IsAllocated(from))
            {
                source.Free(from);
                retire = returnEmptied && source.IsEmpty;
                if (retire)
                {
                    heap.RetireUnsynchronized(source);
                }
            }
        }

        if (retire)
        {
            await ReturnSlabAsync(source, cancellationToken).ConfigureAwait(false);
            run.Returned(heap.SizeClass);
        }
    }

    /// <summary>Frees the destinations of <paramref name="moves"/> from <paramref name="first"/> on; returns the slabs that must go back to their blades.</summary>
    private static List<CarvedSlab> ReleaseReservations(SizeClassHeap heap, List<Relocation> moves, int first, int emptySlabThreshold)
    {
        var emptied = new List<CarvedSlab>();
        lock (heap.Gate)
        {
            for (int i = first; i < moves.Count; i++)
            {
                var (_, to, destination) = moves[i];
                if (destination.List is not SlabList.Returned and not SlabList.Withdrawn && destination.IsAllocated(to)
                    && heap.FreeUnsynchronized(destination, to, emptySlabThreshold))
                {
                    emptied.Add(destination);
                }
            }
        }

        return emptied;
    }

    private async Task<(RemotePtr To, CarvedSlab Destination)> ReserveDestinationAsync(SizeClassHeap heap, CompactionRun run, CancellationToken cancellationToken)
    {
        int avoid = run.EvacuatedBlade ?? -1;
        lock (heap.Gate)
        {
            if (heap.TryReserveDestinationUnsynchronized(avoid, out var ptr, out var slab))
            {
                return (ptr, slab!);
            }
        }

        // No room left in the class's other slabs: carve one, as an allocation would (one refill per class at a time).
        await heap.RefillGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            lock (heap.Gate)
            {
                if (heap.TryReserveDestinationUnsynchronized(avoid, out var ptr, out var slab))
                {
                    return (ptr, slab!);
                }
            }

            var carved = await CarveSlabAsync(heap.SizeClass, cancellationToken).ConfigureAwait(false);
            run.SlabsAdded++;
            lock (heap.Gate)
            {
                heap.AddUnsynchronized(carved, int.MaxValue);
                return (heap.ReserveInUnsynchronized(carved), carved);
            }
        }
        finally
        {
            heap.RefillGate.Release();
        }
    }

    /// <summary>Reads the objects being moved out of <paramref name="source"/>; nearby objects share a READ.</summary>
    private async Task<ReadOnlyMemory<byte>[]> ReadObjectsAsync(CarvedSlab source, List<Relocation> moves, CancellationToken cancellationToken)
    {
        int size = source.ObjectSizeBytes;
        var copies = new ReadOnlyMemory<byte>[moves.Count];
        var connection = _blades[source.BladeId].Connection;
        int first = 0;
        while (first < moves.Count)
        {
            // Moves are in address order (LiveObjects walks the slab front to back).
            int last = first;
            while (last + 1 < moves.Count && moves[last + 1].From.Offset - (moves[last].From.Offset + size) <= ReadCoalesceGapBytes)
            {
                last++;
            }

            long start = moves[first].From.Offset;
            var bytes = new byte[moves[last].From.Offset + size - start];
            await connection.ReadAsync(start, bytes, cancellationToken).ConfigureAwait(false);
            for (int i = first; i <= last; i++)
            {
                copies[i] = bytes.AsMemory((int)(moves[i].From.Offset - start), size);
            }

            first = last + 1;
        }

        return copies;
    }

    private async Task ReturnSparesOnAsync(int bladeId, CompactionRun run, CancellationToken cancellationToken)
    {
        var spares = new List<OwnedSlab>();
        lock (_spareSlabs)
        {
            int count = _spareSlabs.Count;
            for (int i = 0; i < count; i++)
            {
                var spare = _spareSlabs.Dequeue();
                if (spare.BladeId == bladeId)
                {
                    spares.Add(spare.Slab);
                }
                else
                {
                    _spareSlabs.Enqueue(spare);
                }
            }
        }

        foreach (var spare in spares)
        {
            await _blades[bladeId].ReturnSlabAsync(spare.SlabIndex, cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _slabsReturned);
            run.SlabsReturned++;
        }
    }

    /// <summary>After a failure: every source compaction has not finished goes back into allocation (locally).</summary>
    private static void RestoreUnfinishedSources(CompactionRun run)
    {
        foreach (var (heap, source) in run.Sources)
        {
            lock (heap.Gate)
            {
                if (source.List == SlabList.Withdrawn)
                {
                    heap.RestoreUnsynchronized(source, int.MaxValue);
                }
            }
        }
    }

    private CompactionReport Report(CompactionRun run)
    {
        var after = GetUtilization();
        var classes = run.Before.ByClass.Select(c => c.SizeClass).Union(after.ByClass.Select(c => c.SizeClass)).Order()
            .Select(c =>
            {
                var tally = run.ByClass.GetValueOrDefault(c) ?? new ClassTally();
                return new SizeClassCompaction(c, SizeClasses.Sizes[c], tally.Sources, tally.Objects, tally.Bytes, tally.Returned,
                    run.Before.ByClass.FirstOrDefault(u => u.SizeClass == c) with { SizeClass = c, ObjectSizeBytes = SizeClasses.Sizes[c] },
                    after.ByClass.FirstOrDefault(u => u.SizeClass == c) with { SizeClass = c, ObjectSizeBytes = SizeClasses.Sizes[c] });
            })
            .ToArray();
        return new CompactionReport
        {
            EvacuatedBlade = run.EvacuatedBlade,
            SourceSlabs = run.Sources.Count,
            ObjectsMoved = run.ObjectsMoved,
            BytesMoved = run.BytesMoved,
            SlabsReturned = run.SlabsReturned,
            SlabsAdded = run.SlabsAdded,
            Fabric = FabricCountersNow().Since(run.FabricBefore),
            Before = run.Before,
            After = after,
            Classes = classes,
            Elapsed = run.Clock.Elapsed,
        };
    }

    private FabricCounterSnapshot FabricCountersNow() =>
        _blades.Aggregate(default(FabricCounterSnapshot), (sum, blade) => sum.Plus(blade.Counters.Snapshot()));

    private readonly record struct Relocation(RemotePtr From, RemotePtr To, CarvedSlab Destination);

    private sealed class ClassTally
    {
        public int Sources;
        public long Objects;
        public long Bytes;
        public int Returned;
    }

    /// <summary>One compaction's sources and tallies (touched by the compacting task only).</summary>
    private sealed class CompactionRun(int? evacuatedBlade, HeapUtilization before, FabricCounterSnapshot fabricBefore)
    {
        public int? EvacuatedBlade { get; } = evacuatedBlade;

        public HeapUtilization Before { get; } = before;

        public FabricCounterSnapshot FabricBefore { get; } = fabricBefore;

        public Stopwatch Clock { get; } = Stopwatch.StartNew();

        public List<(SizeClassHeap Heap, CarvedSlab Slab)> Sources { get; } = [];

        public Dictionary<int, ClassTally> ByClass { get; } = [];

        public long ObjectsMoved { get; private set; }

        public long BytesMoved { get; private set; }

        public int SlabsReturned { get; set; }

        public int SlabsAdded { get; set; }

        public void AddSources(SizeClassHeap heap, List<CarvedSlab> sources)
        {
            if (sources.Count > 0)
            {
                Sources.AddRange(sources.Select(s => (heap, s)));
                Tally(heap.SizeClass).Sources += sources.Count;
            }
        }

        public void Moved(int sizeClass, int bytes)
        {
            ObjectsMoved++;
            BytesMoved += bytes;
            var tally = Tally(sizeClass);
            tally.Objects++;
            tally.Bytes += bytes;
        }

        public void Returned(int sizeClass)
        {
            SlabsReturned++;
            Tally(sizeClass).Returned++;
        }

        private ClassTally Tally(int sizeClass)
        {
            if (!ByClass.TryGetValue(sizeClass, out var tally))
            {
                ByClass[sizeClass] = tally = new ClassTally();
            }

            return tally;
        }
    }
}
