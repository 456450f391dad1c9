namespace RAllocator.Coordinator.Tests;

public sealed class CoordinatorTests
{
    [Fact]
    public async Task Reads_are_one_sided_cost_no_agent_call_and_match_the_blades_state()
    {
        await using var cluster = new Cluster(blades: 2);
        var filler = await cluster.FillAsync(blade: 1, slabs: 7, nodeId: 1);
        await cluster.SettleAsync();
        await cluster.StopAgentsAsync();
        var coordinator = cluster.Coordinator();
        long[] passesBefore = cluster.Blades.Select(b => b.Agent.HandlerCalls).ToArray();

        await coordinator.RefreshAsync();
        var first = coordinator.Counters();
        await coordinator.RefreshAsync();
        var second = coordinator.Counters().Since(first);

        cluster.Blades.Select(b => b.Agent.HandlerCalls).ShouldBe(passesBefore);
        // First refresh: two superblock READs and one control-block READ per blade; then one READ per blade.
        first.Reads.ShouldBe(3 * 2);
        second.Reads.ShouldBe(2);
        second.RoundTrips.ShouldBe(2);
        second.BytesFromBlade.ShouldBe(2 * BladeControlBlock.SizeBytes);
        (second.Writes + second.FetchAdds + second.CompareSwaps + second.Persists + first.Writes + first.FetchAdds).ShouldBe(0);

        var loads = coordinator.Loads;
        for (int b = 0; b < 2; b++)
        {
            var state = cluster.Blades[b].Image.Scan();
            loads[b].Reachable.ShouldBeTrue();
            loads[b].SlabCount.ShouldBe((ulong)state.Slabs.Count);
            loads[b].OwnedSlabs.ShouldBe((ulong)state.Count(SlabState.Owned));
            loads[b].FreeSlabs.ShouldBe((ulong)(state.Count(SlabState.Free) + state.Count(SlabState.Ringed)));
        }

        loads[1].OwnedSlabs.ShouldBe(7UL);
        loads[0].OwnedSlabs.ShouldBe(0UL);
        filler.GetStatistics().SlabsOwned.ShouldBe(7);
    }

    [Fact]
    public async Task A_blade_above_the_high_water_mark_gets_no_slab_request_while_others_have_room()
    {
        (await ShedScenarioAsync(CoordinatorFaults.None)).ShouldBe(0);
    }

    [Fact]
    public async Task Hints_follow_each_blades_identity_when_the_coordinator_lists_the_blades_in_another_order()
    {
        // The coordinator's list is the node's reversed (an operator passed --blade in another order): hints carry each
        // blade's superblock uid, so the full blade 0 still sheds and the node's slabs go to blade 1.
        await using var cluster = new Cluster(blades: 2);
        await cluster.FillAsync(blade: 0, slabs: (int)(cluster.SlabCount(0) * 6 / 10), nodeId: 1);
        await cluster.SettleAsync();
        var reversed = new IFabricConnection[]
        {
            cluster.Blades[1].Fabric.Connect(0, FabricAccess.ReadOnly, "coordinator"),
            cluster.Blades[0].Fabric.Connect(1, FabricAccess.ReadOnly, "coordinator"),
        };
        var coordinator = new PlacementCoordinator(reversed, new CoordinatorOptions { HighWaterMark = 0.5 });
        var policy = new CoordinatedPlacement();
        coordinator.Attach(policy);
        var hints = await coordinator.RefreshAsync();
        hints.Blades[1].Shed.ShouldBeTrue("the coordinator's blade 1 is the node's blade 0, 60% full");
        hints.Blades[1].BladeUid.ShouldBe(cluster.Blades[0].Image.Superblock.BladeUid);

        var heap = await EmbeddedNode.OpenHeapAsync(cluster.Blades, nodeId: 2, new HeapOptions { Placement = policy });
        for (int i = 0; i < 8; i++)
        {
            (await heap.AllocateAsync(Cluster.SlabObject)).BladeId.ShouldBe(1, "blade 0 is above the mark, whatever position the coordinator gave it");
        }
    }

    [Fact]
    public async Task Seeded_bug_ignoring_the_high_water_mark_is_caught()
    {
        (await ShedScenarioAsync(new CoordinatorFaults { IgnoreHighWaterMark = true })).ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task Stale_hints_keep_working_when_the_coordinator_is_gone()
    {
        await using var cluster = new Cluster(blades: 3);
        int fill = (int)(cluster.SlabCount(0) * 6 / 10);
        await cluster.FillAsync(blade: 0, slabs: fill, nodeId: 1);
        await cluster.SettleAsync();
        var coordinator = cluster.Coordinator(new CoordinatorOptions { HighWaterMark = 0.5 });
        var policy = new CoordinatedPlacement();
        coordinator.Attach(policy);
        var hints = await coordinator.RefreshAsync();
        hints.Blades[0].Shed.ShouldBeTrue();
        // The coordinator goes away: no refresh ever again.
        coordinator.Detach(policy);

        var heap = await EmbeddedNode.OpenHeapAsync(cluster.Blades, nodeId: 2, new HeapOptions { Placement = policy, EmptySlabThreshold = 0 });
        int roomElsewhere = (int)(cluster.SlabCount(1) + cluster.SlabCount(2));
        var perBlade = new int[3];
        for (int i = 0; i < roomElsewhere; i++)
        {
            perBlade[(await heap.AllocateAsync(Cluster.SlabObject)).BladeId]++;
        }

        policy.Hints!.Version.ShouldBe(hints.Version);
        perBlade[0].ShouldBe(0);
        perBlade[1].ShouldBe((int)cluster.SlabCount(1));
        perBlade[2].ShouldBe((int)cluster.SlabCount(2));

        // Blades 1 and 2 are now full; with the same stale hints the shed blade is the last resort, not a failure.
        var next = await heap.AllocateAsync(Cluster.SlabObject);
        next.BladeId.ShouldBe(0);
    }

    [Fact]
    public async Task An_unreachable_blade_is_never_tried_while_another_has_room()
    {
        (await UnreachableScenarioAsync(CoordinatorFaults.None)).ShouldBeNull();
    }

    [Fact]
    public async Task Seeded_bug_ignoring_unreachable_blades_is_caught()
    {
        (await UnreachableScenarioAsync(new CoordinatorFaults { IgnoreUnreachable = true })).ShouldNotBeNull();
    }

    [Fact]
    public void Picks_follow_the_headroom_weights_and_never_start_at_a_shed_or_unreachable_blade()
    {
        var random = new Random(8);
        for (int round = 0; round < 300; round++)
        {
            int blades = random.Next(1, 7);
            double mark = 0.3 + (random.NextDouble() * 0.7);
            var loads = Enumerable.Range(0, blades).Select(id =>
            {
                ulong slabs = (ulong)random.Next(1, 200);
                ulong owned = (ulong)random.Next(0, (int)slabs + 1);
                ulong freeing = (ulong)random.Next(0, (int)(slabs - owned) + 1);
                return new BladeLoad(id, random.Next(5) != 0, slabs, 1UL << random.Next(16, 22), owned, 0, freeing, 1);
            }).ToArray();
            var hints = PlacementHints.Compute(round + 1, loads, mark);
            var policy = new CoordinatedPlacement();
            policy.Update(hints);
            var firsts = new int[blades];
            for (int pick = 0; pick < 64; pick++)
            {
                int[] order = policy.OrderByHints(hints);
                order.Order().ShouldBe(Enumerable.Range(0, blades), "every blade is listed exactly once");
                int first = order[0];
                firsts[first]++;
                var withRoom = loads.Where(l => l.Reachable && l.Utilization < mark && Math.Floor(mark * l.SlabCount) > l.UsedSlabs).ToArray();
                if (withRoom.Length > 0)
                {
                    withRoom.Select(l => l.BladeId).ShouldContain(first);
                    // Everything not shed comes before everything shed, which comes before everything unreachable.
                    int rank(int id) => !loads[id].Reachable ? 2 : hints.Blades[id].Shed ? 1 : 0;
                    order.Select(rank).ShouldBeInOrder();
                }
            }
        }
    }

    [Fact]
    public void Weighted_picks_split_in_proportion_to_headroom()
    {
        // Headroom below the 0.8 mark: blade 0 has 60 slabs, blade 1 has 20, blade 2 is above the mark.
        var loads = new[]
        {
            new BladeLoad(0, true, 100, 1 << 20, 20, 0, 0, 1),
            new BladeLoad(1, true, 100, 1 << 20, 60, 0, 0, 1),
            new BladeLoad(2, true, 100, 1 << 20, 85, 0, 0, 1),
        };
        var hints = PlacementHints.Compute(1, loads, 0.8);
        var policy = new CoordinatedPlacement();
        policy.Update(hints);
        var firsts = new int[3];
        for (int i = 0; i < 400; i++)
        {
            firsts[policy.OrderByHints(hints)[0]]++;
        }

        firsts.ShouldBe([300, 100, 0]);
    }

    [Fact]
    public void Older_hints_never_replace_newer_ones()
    {
        var loads = new[] { new BladeLoad(0, true, 10, 1 << 16, 0, 0, 0, 1) };
        var policy = new CoordinatedPlacement();
        policy.Update(PlacementHints.Compute(5, loads, 0.9));
        policy.Update(PlacementHints.Compute(3, loads, 0.9));
        policy.Hints!.Version.ShouldBe(5);
    }

    /// <summary>Blade 0 is 60 % full under a 50 % mark; returns how many of a node's slabs still landed on it.</summary>
    private static async Task<int> ShedScenarioAsync(CoordinatorFaults faults)
    {
        await using var cluster = new Cluster(blades: 3);
        int fill = (int)(cluster.SlabCount(0) * 6 / 10);
        await cluster.FillAsync(blade: 0, slabs: fill, nodeId: 1);
        await cluster.SettleAsync();
        var coordinator = cluster.Coordinator(new CoordinatorOptions { HighWaterMark = 0.5 });
        coordinator.Faults = faults;
        var policy = new CoordinatedPlacement();
        coordinator.Attach(policy);
        var heap = await EmbeddedNode.OpenHeapAsync(cluster.Blades, nodeId: 2, new HeapOptions { Placement = policy });
        var onShed = 0;
        for (int i = 0; i < 40; i++)
        {
            if (i % 8 == 0)
            {
                await cluster.SettleAsync();
                await coordinator.RefreshAsync();
            }

            if ((await heap.AllocateAsync(Cluster.SlabObject)).BladeId == 0)
            {
                onShed++;
            }
        }

        return onShed;
    }

    /// <summary>Blade 1 becomes unreachable after the node connected; returns the failure of an allocation, if any.</summary>
    private static async Task<Exception?> UnreachableScenarioAsync(CoordinatorFaults faults)
    {
        await using var cluster = new Cluster(blades: 3);
        // Blade 1 is the emptiest and largest by far, so only its reachability keeps it from being picked.
        await cluster.FillAsync(blade: 0, slabs: (int)cluster.SlabCount(0) / 2, nodeId: 1);
        await cluster.FillAsync(blade: 2, slabs: (int)cluster.SlabCount(2) / 2, nodeId: 1);
        await cluster.SettleAsync();
        var placement = new CoordinatedPlacement();
        // The node registers with every blade while all are reachable.
        var node = await EmbeddedNode.OpenHeapAsync(cluster.Blades, nodeId: 2, new HeapOptions { Placement = placement });
        var coordinator = cluster.Coordinator();
        coordinator.Faults = faults;
        coordinator.Attach(placement);
        await coordinator.RefreshAsync();
        cluster.Blades[1].Fabric.SetReachable(false);
        var hints = await coordinator.RefreshAsync();
        hints.Blades[1].Reachable.ShouldBe(faults.IgnoreUnreachable);

        try
        {
            for (int i = 0; i < 20; i++)
            {
                (await node.AllocateAsync(Cluster.SlabObject)).BladeId.ShouldNotBe(1);
            }
        }
        catch (FabricException ex)
        {
            return ex;
        }
        catch (ShouldAssertException ex)
        {
            return ex;
        }

        return null;
    }
}
