using System.Collections.Concurrent;

namespace RAllocator.Protocol.Tests;

public sealed class WorkingNodeHeapTests
{
    private const ulong SlabSize = 64 * 1024;

    private static EmbeddedBlade NewBlade(int bladeId = 0, long regionBytes = 32 << 20, uint leaseTicks = 1000) =>
        EmbeddedBlade.Format(bladeId, new SimulatedNvm(regionBytes), SlabSize,
            new BladeFormatOptions { MaxNodes = 4, RingCapacity = 16, NodeLeaseTicks = leaseTicks });

    private static ProtocolOptions AgentDrivenBackoff(params EmbeddedBlade[] blades) => new()
    {
        // Single-threaded tests drive the agent from the retry loop instead of running it in the background.
        Backoff = (_, _) =>
        {
            lock (blades)
            {
                foreach (var blade in blades)
                {
                    blade.Agent.RunOnce();
                }
            }

            return Task.CompletedTask;
        },
    };

    [Fact]
    public void SizeClassesCoverSixteenBytesToAQuarterMebibyteWithBoundedWaste()
    {
        SizeClasses.Sizes[0].ShouldBe(16);
        SizeClasses.Sizes[^1].ShouldBe(SizeClasses.MaxSizeBytes);
        for (int size = 1; size <= SizeClasses.MaxSizeBytes; size += 7)
        {
            int objectSize = SizeClasses.Sizes[SizeClasses.ClassOf(size)];
            objectSize.ShouldBeGreaterThanOrEqualTo(size);
            objectSize.ShouldBeLessThanOrEqualTo(Math.Max(16, size * 5 / 4 + 16), $"class for {size} B wastes too much");
            (objectSize % 16).ShouldBe(0, "objects are 16-byte aligned");
        }

        Should.Throw<ArgumentOutOfRangeException>(() => SizeClasses.ClassOf(0));
        Should.Throw<ArgumentOutOfRangeException>(() => SizeClasses.ClassOf(SizeClasses.MaxSizeBytes + 1));
    }

    [Fact]
    public async Task ManyThreadsAllocateAndFreeWithoutEverHandingOutAnObjectTwice()
    {
        var blade = NewBlade(regionBytes: 96 << 20);
        using var stop = new CancellationTokenSource();
        var agent = Task.Run(() => blade.RunAgentAsync(stop.Token));
        var heap = await EmbeddedNode.OpenHeapAsync([blade], 0);
        var live = new ConcurrentDictionary<RemotePtr, int>();
        int[] sizes = [16, 48, 64, 200, 1000, 4096, 30000];

        await Task.WhenAll(Enumerable.Range(0, 8).Select(thread => Task.Run(async () =>
        {
            var random = new Random(thread);
            var mine = new List<RemotePtr>();
            for (int i = 0; i < 1500; i++)
            {
                if (mine.Count > 0 && random.Next(3) == 0)
                {
                    int at = random.Next(mine.Count);
                    live.TryRemove(mine[at], out _).ShouldBeTrue();
                    await heap.FreeAsync(mine[at]);
                    mine.RemoveAt(at);
                }
                else
                {
                    var ptr = await heap.AllocateAsync(sizes[random.Next(sizes.Length)]);
                    live.TryAdd(ptr, thread).ShouldBeTrue($"{ptr} was handed out while still live (no double allocation)");
                    mine.Add(ptr);
                }
            }
        })).ToArray());

        stop.Cancel();
        await agent;
        var stats = heap.GetStatistics();
        stats.LiveObjects.ShouldBe(live.Count);
        (stats.Allocations - stats.Frees).ShouldBe(live.Count);
    }

    [Fact]
    public async Task EmptySlabsBeyondTheThresholdGoBackToTheBlade()
    {
        var blade = NewBlade();
        blade.Agent.RunOnce();
        var heap = await EmbeddedNode.OpenHeapAsync([blade], 0, new HeapOptions { EmptySlabThreshold = 1 }, AgentDrivenBackoff(blade));
        int perSlab = (int)((SlabSize - 64) / 4096);
        var ptrs = new List<RemotePtr>();
        for (int i = 0; i < perSlab * 4; i++)
        {
            ptrs.Add(await heap.AllocateAsync(4096));
        }

        heap.GetStatistics().SlabsOwned.ShouldBe(4);
        foreach (var ptr in ptrs)
        {
            await heap.FreeAsync(ptr);
        }

        var stats = heap.GetStatistics();
        stats.SlabsReturned.ShouldBe(3, "one empty slab is kept, the others go back");
        stats.SlabsOwned.ShouldBe(1);
        blade.Agent.RunOnce();
        blade.Image.Scan().Count(SlabState.Freeing).ShouldBe(3);
    }

    [Fact]
    public async Task ObjectOperationsTouchTheNetworkOnlyToAcquireOrReturnASlab()
    {
        var blade = NewBlade();
        blade.Agent.RunOnce();
        var heap = await EmbeddedNode.OpenHeapAsync([blade], 0);
        var counters = heap.Blades[0].Counters;
        await heap.FreeAsync(await heap.AllocateAsync(64));
        var before = counters.Snapshot();

        var ptrs = new List<RemotePtr>();
        for (int i = 0; i < 500; i++)
        {
            ptrs.Add(await heap.AllocateAsync(64));
        }

        foreach (var ptr in ptrs)
        {
            await heap.FreeAsync(ptr);
        }

        counters.Snapshot().Since(before).TotalVerbs.ShouldBe(0, "500 allocations and frees inside one slab issue no verb");
    }

    [Fact]
    public async Task SlabsArePlacedAcrossBladesAndAFullBladeIsSkipped()
    {
        var small = EmbeddedBlade.Format(0, new SimulatedNvm(2 << 20), SlabSize, new BladeFormatOptions { MaxNodes = 2, RingCapacity = 4 });
        var large = NewBlade(bladeId: 1);
        small.Agent.RunOnce();
        large.Agent.RunOnce();
        var heap = await EmbeddedNode.OpenHeapAsync([small, large], 0, protocolOptions: AgentDrivenBackoff(small, large));
        for (int i = 0; i < 90; i++)
        {
            await heap.AllocateAsync(48 * 1024);
            small.Agent.RunOnce();
            large.Agent.RunOnce();
        }

        heap.OwnedSlabIndexes(0).Count.ShouldBe((int)small.Image.Geometry.SlabCount, "the small blade was filled");
        heap.OwnedSlabIndexes(1).Count.ShouldBeGreaterThan(0, "the rest went to the other blade");
    }

    [Fact]
    public async Task ACrashedNodeStopsHoldingBackReclamationOnceItsLeaseExpires()
    {
        var blade = NewBlade(leaseTicks: 5);
        blade.Agent.RunOnce();
        var freer = await EmbeddedNode.OpenHeapAsync([blade], 0, new HeapOptions { EmptySlabThreshold = 0 });
        var crashed = await EmbeddedNode.OpenHeapAsync([blade], 1);
        var expired = new List<uint>();
        blade.Agent.NodeLeaseExpired += expired.Add;
        var ptr = await freer.AllocateAsync(100);
        ulong slab = freer.OwnedSlabIndexes(0).Single();
        blade.Agent.RunOnce();
        await freer.FreeAsync(ptr);

        // Node 1 never publishes again (it crashed); node 0 keeps publishing.
        for (int pass = 0; pass < 3; pass++)
        {
            await freer.PublishEpochsAsync();
            blade.Agent.RunOnce();
        }

        blade.Image.Scan().Slabs[(int)slab].State.ShouldBe(SlabState.Freeing, "the silent node may still hold a reference");
        for (int pass = 0; pass < 10; pass++)
        {
            await freer.PublishEpochsAsync();
            blade.Agent.RunOnce();
        }

        expired.ShouldBe([1u], "node 1's lease expired and it was reported for fencing");
        blade.Image.Scan().Slabs[(int)slab].State.ShouldNotBe(SlabState.Freeing, "reclamation went on without the crashed node");
        _ = crashed;
    }

    [Fact]
    public async Task DoubleFreeAndForeignPointersAreRejectedWithClearErrors()
    {
        var blade = NewBlade();
        blade.Agent.RunOnce();
        var heap = await EmbeddedNode.OpenHeapAsync([blade], 0);
        var ptr = await heap.AllocateAsync(64);
        await heap.AllocateAsync(64);
        await heap.FreeAsync(ptr);
        (await Should.ThrowAsync<InvalidOperationException>(async () => await heap.FreeAsync(ptr))).Message.ShouldContain("double free");
        (await Should.ThrowAsync<InvalidOperationException>(async () => await heap.FreeAsync(new RemotePtr(0, 12345))))
            .Message.ShouldContain("not in a slab this node owns");
    }
}
