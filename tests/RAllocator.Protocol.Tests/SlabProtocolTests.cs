namespace RAllocator.Protocol.Tests;

public sealed class SlabProtocolTests
{
    private const ulong SlabSize = 64 * 1024;

    private static EmbeddedBlade NewBlade(long regionBytes = 16 << 20, BladeFormatOptions? options = null) =>
        EmbeddedBlade.Format(0, new SimulatedNvm(regionBytes), SlabSize, options ?? new BladeFormatOptions { MaxNodes = 4, RingCapacity = 8 });

    [Fact]
    public async Task AcquiringASlabTakesTwoDependentRoundTripsAndNoBladeCall()
    {
        var blade = NewBlade();
        blade.Agent.RunOnce();
        var client = await BladeClient.ConnectAsync(blade.Connect(1), 1);
        await client.RegisterAsync();
        long callsBefore = blade.Agent.HandlerCalls;
        var before = client.Counters.Snapshot();

        var slab = await client.AcquireSlabAsync();

        var cost = client.Counters.Snapshot().Since(before);
        cost.RoundTrips.ShouldBe(2, "a slab costs FETCH_AND_ADD + READ, the acknowledgement is posted");
        cost.FetchAdds.ShouldBe(1);
        cost.Reads.ShouldBe(1);
        cost.UnsignaledPosts.ShouldBe(3, "announce, claim and acknowledgement are posted unsignaled");
        blade.Agent.HandlerCalls.ShouldBe(callsBefore, "no blade handler runs on the acquisition path");
        slab.SlabIndex.ShouldBeLessThan(blade.Image.Geometry.SlabCount);
    }

    /// <summary>The CPU-bypass check: blade handler calls counted across an acquisition must not move.</summary>
    private static async Task<OwnedSlab> AcquireCountingBladeCalls(EmbeddedBlade blade, BladeClient client)
    {
        long before = blade.Agent.HandlerCalls;
        var slab = await client.AcquireSlabAsync();
        long calls = blade.Agent.HandlerCalls - before;
        if (calls != 0)
        {
            throw new Xunit.Sdk.XunitException($"[CPU bypass] {calls} blade handler call(s) ran between the request and the use of slab {slab.SlabIndex}");
        }

        return slab;
    }

    [Fact]
    public async Task TheCpuBypassCheckPassesForAnAcquisitionFromAFilledRing()
    {
        var blade = NewBlade();
        blade.Agent.RunOnce();
        var client = await BladeClient.ConnectAsync(blade.Connect(1), 1);
        await client.RegisterAsync();
        await AcquireCountingBladeCalls(blade, client);
    }

    [Fact]
    public async Task TheCpuBypassCheckCatchesASeededAcquisitionThatWaitsForTheBladeCpu()
    {
        // Seeded bug: the ring was never pre-filled, so the acquisition can only finish by having the blade's
        // handler run on its path (here from the retry loop), as a two-sided RPC allocator would.
        var blade = NewBlade();
        var client = await BladeClient.ConnectAsync(blade.Connect(1), 1, new ProtocolOptions
        {
            Backoff = (_, _) => { blade.Agent.RunOnce(); return Task.CompletedTask; },
        });
        await client.RegisterAsync();
        var caught = await Should.ThrowAsync<Xunit.Sdk.XunitException>(() => AcquireCountingBladeCalls(blade, client));
        caught.Message.ShouldContain("[CPU bypass]");
    }

    [Fact]
    public async Task AllocationsSucceedWhileTheAgentIsPausedAsLongAsTheRingHoldsEntries()
    {
        var blade = NewBlade();
        blade.Agent.RunOnce();
        var heap = await EmbeddedNode.OpenHeapAsync([blade], 1);
        long calls = blade.Agent.HandlerCalls;
        var objectsPerSlab = (int)((SlabSize - 64) / 64);

        for (int i = 0; i < objectsPerSlab * 8; i++)
        {
            await heap.AllocateAsync(64);
        }

        heap.GetStatistics().SlabsAcquired.ShouldBe(8);
        blade.Agent.HandlerCalls.ShouldBe(calls, "the agent was paused: 8 slabs came from the ring with no blade call");
    }

    [Fact]
    public async Task AckedSlabsAreAppliedToTheBladeAndRecoveredByARestartedNode()
    {
        var blade = NewBlade();
        blade.Agent.RunOnce();
        var heap = await EmbeddedNode.OpenHeapAsync([blade], 2);
        var ptrs = new List<RemotePtr>();
        for (int i = 0; i < 3000; i++)
        {
            ptrs.Add(await heap.AllocateAsync(100));
        }

        var owned = heap.OwnedSlabIndexes(0);
        blade.Agent.RunOnce();
        blade.Image.Scan().OwnedByNode[2].Select(s => s.Index).ShouldBe(owned);

        // The node "restarts": a new heap for the same node id gets exactly its slabs back.
        var restarted = await EmbeddedNode.OpenHeapAsync([blade], 2);
        restarted.Recoveries[0].OwnedSlabs.Select(s => s.SlabIndex).ShouldBe(owned);
        await restarted.CompleteRecoveryAsync(ptrs.Take(10));
        restarted.GetStatistics().LiveObjects.ShouldBe(10);
    }

    [Fact]
    public async Task FreedSlabsReturnToTheRingOnlyAfterEveryNodePassedTheirEpoch()
    {
        var blade = NewBlade();
        blade.Agent.RunOnce();
        var a = await EmbeddedNode.OpenHeapAsync([blade], 0, new HeapOptions { EmptySlabThreshold = 0 });
        var b = await EmbeddedNode.OpenHeapAsync([blade], 1);
        var ptr = await a.AllocateAsync(1000);
        ulong slab = a.OwnedSlabIndexes(0).Single();
        blade.Agent.RunOnce();

        var guard = b.EnterEpoch();
        await a.FreeAsync(ptr);
        for (int i = 0; i < 5; i++)
        {
            await a.PublishEpochsAsync();
            await b.PublishEpochsAsync();
            blade.Agent.RunOnce();
        }

        blade.Image.Scan().Slabs[(int)slab].State.ShouldBe(SlabState.Freeing, "node b holds a guard from before the free");
        guard.Dispose();
        for (int i = 0; i < 5; i++)
        {
            await a.PublishEpochsAsync();
            await b.PublishEpochsAsync();
            blade.Agent.RunOnce();
        }

        blade.Image.Scan().Slabs[(int)slab].State.ShouldNotBe(SlabState.Freeing, "every node passed the free's epoch");
    }

    [Fact]
    public async Task AFullBladeAnswersOutOfMemoryAndLeaksNothing()
    {
        var blade = NewBlade(2 << 20, new BladeFormatOptions { MaxNodes = 2, RingCapacity = 4 });
        blade.Agent.RunOnce();
        var client = await BladeClient.ConnectAsync(blade.Connect(0), 0, new ProtocolOptions { Backoff = (_, _) => { blade.Agent.RunOnce(); return Task.CompletedTask; } });
        await client.RegisterAsync();
        var got = new List<ulong>();
        var error = await Should.ThrowAsync<BladeOutOfMemoryException>(async () =>
        {
            while (true)
            {
                got.Add((await client.AcquireSlabAsync()).SlabIndex);
                blade.Agent.RunOnce();
            }
        });
        error.Message.ShouldContain("out of memory");
        got.Count.ShouldBe((int)blade.Image.Geometry.SlabCount);
        got.Distinct().Count().ShouldBe(got.Count, "no slab handed out twice");
        blade.Agent.RunOnce();
        var state = blade.Image.Scan();
        state.IsConsistent.ShouldBeTrue(string.Join("; ", state.Problems));
        state.Count(SlabState.Owned).ShouldBe(got.Count, "every slab is owned: none leaked into a dead ticket");
    }

    [Fact]
    public async Task AnExhaustedEntryOverwrittenByALaterRoundIsReadAsOutOfMemoryNotAStall()
    {
        // The refill may overwrite a taken ticket's Exhausted entry one ring later (nothing tracks it as unresolved);
        // the taker then finds a later ticket's entry in its slot and must answer out of memory, not spin until it stalls.
        var blade = NewBlade(2 << 20, new BladeFormatOptions { MaxNodes = 2, RingCapacity = 4 });
        var client = await BladeClient.ConnectAsync(blade.Connect(0), 0, new ProtocolOptions { RingReadRetryLimit = 3, Backoff = (_, _) => Task.CompletedTask });
        await client.RegisterAsync();
        ulong next = blade.Image.Scan().Sequencer;
        var ring = blade.Image.Layout.Ring(blade.Region, (long)(next % blade.Image.Geometry.RingCapacity));
        ring.StoreWord(RingEntryWord.ForSlab(next + blade.Image.Geometry.RingCapacity, 0).Pack());

        var error = await Should.ThrowAsync<BladeOutOfMemoryException>(() => client.AcquireSlabAsync());
        error.Message.ShouldContain($"ticket {next}");

        // An entry from an earlier round is the usual "not filled yet": the node keeps reading, then stalls.
        ulong after = next + 1;
        var earlier = blade.Image.Layout.Ring(blade.Region, (long)(after % blade.Image.Geometry.RingCapacity));
        earlier.StoreWord(RingEntryWord.ForExhausted(after + blade.Image.Geometry.RingCapacity * 3).Pack());
        earlier.StoreWord(RingEntryWord.ForSlab(after - blade.Image.Geometry.RingCapacity, 0).Pack());
        await Should.ThrowAsync<ProtocolStallException>(() => client.AcquireSlabAsync());
    }
}
