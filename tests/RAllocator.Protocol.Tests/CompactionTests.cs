using RAllocator.Protocol.Tests.Compaction;

namespace RAllocator.Protocol.Tests;

/// <summary>
/// WorkingNodeHeap.CompactAsync without crashes: what it moves and returns, what it reports, how it behaves when the
/// callback fails or the caller cancels, migration off a blade, and what the application may do meanwhile.
/// </summary>
public sealed class CompactionTests
{
    private const ulong SlabSize = 64 * 1024;
    private static readonly BladeFormatOptions s_format = new() { MaxNodes = 2, RingCapacity = 4, AckSlotsPerNode = 8, FreeSlotsPerNode = 8, NodeLeaseTicks = 1000 };

    [Fact]
    public async Task CompactionEmptiesSparseSlabsIntoDenserOnesAndReportsIt()
    {
        var (blades, app) = await FragmentedAsync(bladeCount: 1, objects: 100, freePercent: 70);
        var heap = app.Heap;
        var statsBefore = heap.GetStatistics();
        var progress = new List<CompactionProgress>();

        var report = await heap.CompactAsync(app.RelocateAsync, progress: new SynchronousProgress<CompactionProgress>(progress.Add));

        report.ObjectsMoved.ShouldBe(app.Relocations);
        report.ObjectsMoved.ShouldBeGreaterThan(0);
        report.SlabsReturned.ShouldBeGreaterThan(0);
        report.SlabsAdded.ShouldBe(0, "sources are chosen so that denser slabs absorb them");
        report.BytesMoved.ShouldBe(report.Classes.Sum(c => c.BytesMoved));
        report.ObjectsMoved.ShouldBe(report.Classes.Sum(c => c.ObjectsMoved));
        report.After.SlabsHeld.ShouldBe(report.Before.SlabsHeld - report.SlabsReturned);
        report.After.LiveBytes.ShouldBe(report.Before.LiveBytes, "compaction moves objects, it neither adds nor drops any");
        report.After.Utilization.ShouldBeGreaterThan(report.Before.Utilization);
        report.Fabric.RoundTrips.ShouldBeGreaterThan(0);
        report.Fabric.BytesFromBlade.ShouldBeGreaterThanOrEqualTo(report.BytesMoved, "every moved byte is read once");
        progress.Count.ShouldBe(report.SourceSlabs + 1, "once when the sources are chosen, then once per source");
        progress[0].ShouldBe(new CompactionProgress(null, 0, report.SourceSlabs, 0, 0, 0));
        progress[^1].ObjectsMoved.ShouldBe(report.ObjectsMoved);

        foreach (var c in report.Classes.Where(c => c.SourceSlabs > 0))
        {
            c.After.SlabsHeld.ShouldBeLessThan(c.Before.SlabsHeld);
            c.After.Utilization.ShouldBeGreaterThan(c.Before.Utilization);
        }

        var statsAfter = heap.GetStatistics();
        statsAfter.LiveObjects.ShouldBe(statsBefore.LiveObjects);
        statsAfter.SlabsOwned.ShouldBe(statsBefore.SlabsOwned - report.SlabsReturned);
        await CheckApplicationAsync(app);
        GC.KeepAlive(blades);
    }

    [Fact]
    public async Task UtilizationIsLiveObjectBytesOverBytesOfSlabsHeld()
    {
        var blade = EmbeddedBlade.Format(0, new SimulatedNvm(2 << 20), SlabSize, s_format);
        var heap = await EmbeddedNode.OpenHeapAsync([blade], 0, protocolOptions: AgentInBackoff([blade]));
        heap.GetUtilization().ShouldBe(new HeapUtilization(0, 0, 0, 0, []), new UtilizationComparer());

        var a = await heap.AllocateAsync(4000);
        await heap.AllocateAsync(4096);
        await heap.AllocateAsync(100);
        var utilization = heap.GetUtilization();

        utilization.LiveObjects.ShouldBe(3);
        utilization.LiveBytes.ShouldBe(4096 + 4096 + 112);
        utilization.SlabsHeld.ShouldBe(2);
        utilization.HeldBytes.ShouldBe(2 * (long)SlabSize);
        utilization.Utilization.ShouldBe((4096 + 4096 + 112) / (2.0 * SlabSize));
        utilization.ByClass.Select(c => (c.ObjectSizeBytes, c.LiveObjects, c.SlabsHeld)).ShouldBe([(112, 1L, 1L), (4096, 2L, 1L)]);

        await heap.FreeAsync(a);
        heap.GetUtilization().LiveBytes.ShouldBe(4096 + 112);
    }

    [Fact]
    public async Task ADenseHeapHasNothingToCompact()
    {
        var (_, app) = await FragmentedAsync(bladeCount: 1, objects: 60, freePercent: 0);
        var before = app.Heap.GetStatistics();

        var report = await app.Heap.CompactAsync(app.RelocateAsync);

        report.ObjectsMoved.ShouldBe(0);
        report.SlabsReturned.ShouldBe(0);
        app.Heap.GetStatistics().SlabsOwned.ShouldBe(before.SlabsOwned);
    }

    [Fact]
    public async Task ACallbackThatThrowsKeepsTheObjectFreesTheCopyAndLeavesTheHeapConsistent()
    {
        var (_, app) = await FragmentedAsync(bladeCount: 1, objects: 100, freePercent: 70);
        var heap = app.Heap;
        var liveBefore = heap.GetStatistics().LiveObjects;
        int calls = 0;
        app.BeforeCommit = (_, _) => ++calls == 3 ? throw new TimeoutException("the application's index is busy") : ValueTask.CompletedTask;

        var failure = await Should.ThrowAsync<RelocationFailedException>(() => heap.CompactAsync(app.RelocateAsync));

        failure.InnerException.ShouldBeOfType<TimeoutException>();
        heap.IsAllocated(failure.From).ShouldBeTrue("the object stays where the application still refers to it");
        heap.IsAllocated(failure.To).ShouldBeFalse("its copy is freed");
        failure.Report.ShouldNotBeNull().ObjectsMoved.ShouldBe(2);
        heap.GetStatistics().LiveObjects.ShouldBe(liveBefore, "two objects moved, none lost, no copy leaked");
        await CheckApplicationAsync(app);

        // The unfinished sources went back into allocation: a second compaction finishes the job.
        app.BeforeCommit = null;
        var report = await heap.CompactAsync(app.RelocateAsync);
        report.ObjectsMoved.ShouldBeGreaterThan(0);
        heap.GetStatistics().LiveObjects.ShouldBe(liveBefore);
        await CheckApplicationAsync(app);
    }

    [Fact]
    public async Task CancellationStopsBetweenMovesAndLeavesTheHeapConsistent()
    {
        var (_, app) = await FragmentedAsync(bladeCount: 1, objects: 100, freePercent: 70);
        var heap = app.Heap;
        var liveBefore = heap.GetStatistics().LiveObjects;
        using var cancel = new CancellationTokenSource();
        app.BeforeCommit = (_, _) =>
        {
            if (app.Relocations == 1)
            {
                cancel.Cancel();
            }

            return ValueTask.CompletedTask;
        };

        await Should.ThrowAsync<OperationCanceledException>(() => heap.CompactAsync(app.RelocateAsync, cancellationToken: cancel.Token));

        heap.GetStatistics().LiveObjects.ShouldBe(liveBefore);
        await CheckApplicationAsync(app);
        app.BeforeCommit = null;
        (await heap.CompactAsync(app.RelocateAsync)).ObjectsMoved.ShouldBeGreaterThan(0);
        await CheckApplicationAsync(app);
    }

    [Fact]
    public async Task NewObjectsNeverLandInASourceWhileCompactionRuns()
    {
        var (_, app) = await FragmentedAsync(bladeCount: 1, objects: 100, freePercent: 70);
        var heap = app.Heap;
        var geometry = heap.Blades[0].Geometry;
        long SlabOf(RemotePtr p) => (p.Offset - geometry.DataOffset) / (long)geometry.SlabSizeBytes;
        var sources = new HashSet<long>();
        var allocated = new List<RemotePtr>();
        app.BeforeCommit = async (from, _) =>
        {
            sources.Add(SlabOf(from));

            // The application allocates, writes and frees new objects meanwhile, in the class being compacted too.
            int size = from == app.Table ? PointerTableApp.TableBytes : app.Sizes[Array.IndexOf(app.Objects, from)];
            var kept = await heap.AllocateAsync(size);
            allocated.Add(kept);
            await heap.WriteAndPersistAsync(kept, new byte[16]);
            var transient = await heap.AllocateAsync(16);
            await heap.FreeAsync(transient);
        };

        var report = await heap.CompactAsync(app.RelocateAsync);

        report.ObjectsMoved.ShouldBeGreaterThan(0);
        allocated.Where(p => sources.Contains(SlabOf(p))).ShouldBeEmpty("no new object lands in a slab being emptied");
        foreach (var ptr in allocated)
        {
            await heap.FreeAsync(ptr);
        }

        await CheckApplicationAsync(app);
    }

    [Fact]
    public async Task EvacuatingABladeMovesEveryObjectOffItAndReturnsAllItsSlabs()
    {
        var (blades, app) = await FragmentedAsync(bladeCount: 2, objects: 80, freePercent: 50);
        var heap = app.Heap;
        heap.OwnedSlabIndexes(1).Count.ShouldBeGreaterThan(0, "round robin put slabs on both blades");
        int onBlade1 = heap.OwnedSlabIndexes(1).Count;

        var report = await heap.CompactAsync(app.RelocateAsync, new CompactionOptions { EvacuateBlade = 1 });

        report.EvacuatedBlade.ShouldBe(1);
        report.SlabsReturned.ShouldBe(onBlade1);
        heap.OwnedSlabIndexes(1).ShouldBeEmpty();
        app.Reachable().ShouldAllBe(p => p.BladeId == 0);
        await CheckApplicationAsync(app);

        // Once its epoch passes, blade 1 has no slab of this node left.
        await PassFreedEpochsAsync(heap, blades[1]);

        blades[1].Image.Scan().DurablyOwnedBy(0).ShouldBeEmpty();
    }

    [Fact]
    public async Task CompactionAndMigrationMoveObjectsBetweenMultiSlabSpans()
    {
        // Every slab a span of 4 base slabs (256 KiB): two 100 KB objects each, 20 of the 12 KiB ones.
        var format = s_format with { MaxSlabSpan = 4, SpanRingCapacity = 2 };
        var (blades, app) = await FragmentedAsync(bladeCount: 2, objects: 60, freePercent: 60, [12288, 100_000], format, new FixedSlabSizing(SpanClass: 2));
        var heap = app.Heap;
        var bigClass = SizeClasses.ClassOf(100_000);
        heap.GetUtilization().ByClass.Single(c => c.SizeClass == bigClass).HeldBytes.ShouldBeGreaterThan(4 * (long)SlabSize);

        // Two objects per span: a half-full span is a source only above the default threshold.
        var compaction = await heap.CompactAsync(app.RelocateAsync, new CompactionOptions { OccupancyThreshold = 0.6 });
        compaction.Classes.Single(c => c.SizeClass == bigClass).ObjectsMoved.ShouldBeGreaterThan(0, "objects in spans move like any other");
        compaction.After.HeldBytes.ShouldBeLessThan(compaction.Before.HeldBytes);
        await CheckApplicationAsync(app);

        // The returned spans are reused once their epoch passes; the evacuation needs room on blade 0.
        await PassFreedEpochsAsync(heap, blades[0]);

        var migration = await heap.CompactAsync(app.RelocateAsync, new CompactionOptions { EvacuateBlade = 1 });
        migration.ObjectsMoved.ShouldBeGreaterThan(0);
        heap.OwnedSlabIndexes(1).ShouldBeEmpty();
        app.Reachable().ShouldAllBe(p => p.BladeId == 0);
        await CheckApplicationAsync(app);
        await PassFreedEpochsAsync(heap, blades[1]);

        blades[1].Image.Scan().DurablyOwnedBy(0).ShouldBeEmpty();
    }

    [Fact]
    public async Task AnEvacuationWithNowhereToGoStopsAndLeavesTheHeapConsistent()
    {
        var (blades, app) = await FragmentedAsync(bladeCount: 2, objects: 40, freePercent: 50);
        var heap = app.Heap;

        // Fill both blades with one-slab objects, then keep one on blade 1 and none on blade 0's free space.
        var fillers = new List<RemotePtr>();
        while (true)
        {
            try
            {
                fillers.Add(await heap.AllocateAsync(50_000));
            }
            catch (BladeOutOfMemoryException)
            {
                break;
            }
        }

        var keep = fillers.First(p => p.BladeId == 1);
        foreach (var ptr in fillers.Where(p => p.BladeId == 1 && p != keep))
        {
            await heap.FreeAsync(ptr);
        }

        int onBlade1 = heap.OwnedSlabIndexes(1).Count;
        await Should.ThrowAsync<BladeOutOfMemoryException>(() => heap.CompactAsync(app.RelocateAsync, new CompactionOptions { EvacuateBlade = 1 }));

        heap.IsAllocated(keep).ShouldBeTrue("an object compaction could not place stays where it is");
        heap.OwnedSlabIndexes(1).Count.ShouldBeGreaterThan(0);
        heap.OwnedSlabIndexes(1).Count.ShouldBeLessThanOrEqualTo(onBlade1);
        await CheckApplicationAsync(app, extraLive: fillers.Count(p => p.BladeId == 0) + 1);

        // Blade 1 serves allocations again once the evacuation has stopped, and its withdrawn slabs are back in use.
        foreach (var ptr in fillers.Where(p => p.BladeId == 0))
        {
            await heap.FreeAsync(ptr);
        }

        await heap.FreeAsync(keep);
        for (int i = 0; i < 3; i++)
        {
            await heap.PublishEpochsAsync();
            foreach (var blade in blades)
            {
                blade.Agent.RunOnce();
            }
        }

        var again = new List<RemotePtr>();
        for (int i = 0; i < 4; i++)
        {
            again.Add(await heap.AllocateAsync(50_000));
        }

        again.ShouldContain(p => p.BladeId == 1);
    }

    [Fact]
    public async Task CompactAsyncRefusesWhatItCannotDo()
    {
        var (_, app) = await FragmentedAsync(bladeCount: 1, objects: 10, freePercent: 50);
        var heap = app.Heap;

        await Should.ThrowAsync<ArgumentOutOfRangeException>(() => heap.CompactAsync(app.RelocateAsync, new CompactionOptions { OccupancyThreshold = 0 }));
        await Should.ThrowAsync<ArgumentOutOfRangeException>(() => heap.CompactAsync(app.RelocateAsync, new CompactionOptions { OccupancyThreshold = 1.5 }));
        await Should.ThrowAsync<ArgumentOutOfRangeException>(() => heap.CompactAsync(app.RelocateAsync, new CompactionOptions { EvacuateBlade = 3 }));
        await Should.ThrowAsync<ArgumentException>(() => heap.CompactAsync(app.RelocateAsync, new CompactionOptions { EvacuateBlade = 0 }));
    }

    [Fact]
    public async Task CompactionWaitsForRecoveryToComplete()
    {
        var blade = EmbeddedBlade.Format(0, new SimulatedNvm(2 << 20), SlabSize, s_format);
        var heap = await EmbeddedNode.OpenHeapAsync([blade], 0, protocolOptions: AgentInBackoff([blade]));
        var ptr = await heap.AllocateAsync(100);
        await heap.SetRootAsync(ptr);

        var reopened = await EmbeddedNode.OpenHeapAsync([blade], 0, protocolOptions: AgentInBackoff([blade]));
        await Should.ThrowAsync<InvalidOperationException>(() => reopened.CompactAsync((_, _, _) => ValueTask.CompletedTask));
        await reopened.CompleteRecoveryAsync([ptr]);
        (await reopened.CompactAsync((_, _, _) => ValueTask.CompletedTask)).ObjectsMoved.ShouldBe(0);
    }

    /// <summary>A heap of <paramref name="objects"/> application objects in four classes, <paramref name="freePercent"/> of them freed.</summary>
    private static async Task<(EmbeddedBlade[] Blades, PointerTableApp App)> FragmentedAsync(int bladeCount, int objects, int freePercent,
        int[]? sizes = null, BladeFormatOptions? format = null, ISlabSizingPolicy? sizing = null)
    {
        sizes ??= CompactionScenario.Sizes;
        var blades = Enumerable.Range(0, bladeCount).Select(b => EmbeddedBlade.Format(b, new SimulatedNvm(4 << 20), SlabSize, format ?? s_format)).ToArray();
        var heap = await EmbeddedNode.OpenHeapAsync(blades, 0, new HeapOptions { EmptySlabThreshold = 0, SlabSizing = sizing ?? new FixedSlabSizing() }, AgentInBackoff(blades));
        var app = await PointerTableApp.CreateAsync(heap);
        var random = new Random(42);
        for (int slot = 0; slot < objects; slot++)
        {
            await app.AddAsync(slot, sizes[random.Next(sizes.Length)]);
        }

        foreach (int slot in Enumerable.Range(0, objects).OrderBy(_ => random.Next()).Take(objects * freePercent / 100).ToArray())
        {
            await app.RemoveAsync(slot);
        }

        return (blades, app);
    }

    /// <summary>No agent thread: a node that waits for the ring or its areas runs one pass of every blade's agent.</summary>
    /// <summary>Three rounds of (the node publishes its epochs, the blade's agent runs a pass): enough for the slabs the node freed to be reclaimed.</summary>
    private static async Task PassFreedEpochsAsync(WorkingNodeHeap heap, EmbeddedBlade blade)
    {
        for (int i = 0; i < 3; i++)
        {
            await heap.PublishEpochsAsync();
            blade.Agent.RunOnce();
        }
    }

    private static ProtocolOptions AgentInBackoff(EmbeddedBlade[] blades) => new()
    {
        Backoff = (_, _) =>
        {
            foreach (var blade in blades)
            {
                blade.Agent.RunOnce();
            }

            return Task.CompletedTask;
        },
    };

    /// <summary>The table (as the heap reads it) matches the application's mirror, and every object holds its content and is allocated.</summary>
    private static async Task CheckApplicationAsync(PointerTableApp app, int extraLive = 0)
    {
        var heap = app.Heap;
        heap.GetRoot().ShouldBe(app.Table);
        heap.IsAllocated(app.Table).ShouldBeTrue();
        var slots = await PointerTableApp.ReadTableAsync(heap, app.Table);
        slots.ShouldBe(app.Objects);
        for (int slot = 0; slot < PointerTableApp.Slots; slot++)
        {
            if (slots[slot].IsNull)
            {
                continue;
            }

            heap.IsAllocated(slots[slot]).ShouldBeTrue();
            int size = PointerTableApp.ObjectSize(app.Sizes[slot]);
            var actual = new byte[size];
            await heap.ReadBytesAsync(slots[slot], actual);
            actual.ShouldBe(PointerTableApp.Content(slot, size), $"object {slot} at {slots[slot]}");
        }

        heap.GetStatistics().LiveObjects.ShouldBe(app.Reachable().Count() + extraLive);
    }

    /// <summary>IProgress that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    private sealed class UtilizationComparer : IEqualityComparer<HeapUtilization>
    {
        public bool Equals(HeapUtilization? x, HeapUtilization? y) =>
            x is not null && y is not null && x with { ByClass = [] } == y with { ByClass = [] } && x.ByClass.SequenceEqual(y.ByClass);

        public int GetHashCode(HeapUtilization obj) => 0;
    }
}
