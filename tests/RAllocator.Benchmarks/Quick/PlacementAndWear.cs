using System.Text.Json;
using System.Text.Json.Nodes;
using RAllocator.Blade;
using RAllocator.Coordinator;
using RAllocator.Embedded;
using RAllocator.Fabric;
using RAllocator.Node;
using RAllocator.Nvm;
using RAllocator.Protocol;
using RAllocator.Protocol.Layout;

namespace RAllocator.Benchmarks.Quick;

/// <summary>
/// Quick modes for issue 8, in-process blades on simulated NVM, every figure measured on the run:
/// <code>
///   placement [--seeds 3] [--ops 20000] [--out bench/results/placement.json]
///       4 blades, a skewed workload; utilization spread ((max - min) / mean) with the coordinator and with round robin
///   wear [--seeds 3] [--handouts 6000] [--out bench/results/wear.json]
///       slab churn on one blade; max/mean wear with least-worn-first refill and with first-in-first-out reuse
/// </code>
/// </summary>
internal static class PlacementAndWear
{
    private const ulong SlabSize = 64 * 1024;
    private const int OneSlabObject = 57344;
    // The 2 shared cores can starve an agent thread for a while; wait longer than the default before calling it a stall.
    private static readonly ProtocolOptions s_patient = new() { RingReadRetryLimit = 20000, AreaFullRetryLimit = 20000 };

    public static bool IsMode(string argument) => argument is "placement" or "wear";

    public static int Run(string[] args)
    {
        var options = QuickOptions.Parse(args.Skip(1));
        JsonObject result = args[0] == "placement"
            ? PlacementAsync(options).GetAwaiter().GetResult()
            : WearAsync(options).GetAwaiter().GetResult();
        return options.WriteResult(result, args[0]);
    }

    // ----------------------------------------------------------------------------------------------- placement

    private static async Task<JsonObject> PlacementAsync(QuickOptions options)
    {
        int seeds = options.Int("seeds", 3);
        int ops = options.Int("ops", 20000);
        var runs = new JsonArray();
        var coordinatorFinal = new List<double>();
        var roundRobinFinal = new List<double>();
        var coordinatorMean = new List<double>();
        var roundRobinMean = new List<double>();
        for (int seed = 1; seed <= seeds; seed++)
        {
            var rr = await PlacementRunAsync(seed, ops, coordinated: false);
            var co = await PlacementRunAsync(seed, ops, coordinated: true);
            roundRobinFinal.Add(rr.FinalSpread);
            coordinatorFinal.Add(co.FinalSpread);
            roundRobinMean.Add(rr.MeanSpread);
            coordinatorMean.Add(co.MeanSpread);
            runs.Add(new JsonObject { ["seed"] = seed, ["round_robin"] = rr.ToJson(), ["coordinator"] = co.ToJson() });
        }

        return new JsonObject
        {
            ["benchmark"] = "placement",
            ["description"] = "4 in-process blades (simulated NVM, 64 KiB slabs). Before the measured node starts, another tenant bound to single blades "
                + "holds 50% of blade 0 and 25% of blade 1. The measured node then runs a skewed mix: 60% of allocations in a hot 512 B class "
                + "(long-lived), 30% one-slab objects and 10% 16 KiB objects; a free picks a one-slab object 3x as readily as a 16 KiB one and 10x as readily as a 512 B one. The node holds about 45% of the cluster's slabs. "
                + "Utilization = (owned + freeing slabs) / slabs per blade; spread = (max - min) / mean over the 4 blades.",
            ["ops_per_run"] = ops,
            ["coordinator_high_water_mark"] = 0.85,
            ["coordinator_refresh_every_ops"] = 64,
            ["summary"] = new JsonObject
            {
                ["round_robin_final_spread_mean"] = roundRobinFinal.Average(),
                ["coordinator_final_spread_mean"] = coordinatorFinal.Average(),
                ["round_robin_time_averaged_spread_mean"] = roundRobinMean.Average(),
                ["coordinator_time_averaged_spread_mean"] = coordinatorMean.Average(),
            },
            ["runs"] = runs,
        };
    }

    private sealed record PlacementRun(double FinalSpread, double MeanSpread, double MaxSpread, double[] FinalUtilization, long SlabsAcquired,
        long CoordinatorRefreshes, FabricCounterSnapshot CoordinatorCost)
    {
        public JsonObject ToJson() => new()
        {
            ["final_spread"] = FinalSpread,
            ["time_averaged_spread"] = MeanSpread,
            ["max_spread"] = MaxSpread,
            ["final_utilization"] = new JsonArray(FinalUtilization.Select(u => (JsonNode)JsonValue.Create(Math.Round(u, 4))).ToArray()),
            ["slabs_acquired"] = SlabsAcquired,
            ["coordinator_refreshes"] = CoordinatorRefreshes,
            ["coordinator_reads"] = CoordinatorCost.Reads,
            ["coordinator_round_trips"] = CoordinatorCost.RoundTrips,
            ["coordinator_bytes_read"] = CoordinatorCost.BytesFromBlade,
            ["coordinator_writes_and_atomics"] = CoordinatorCost.Writes + CoordinatorCost.FetchAdds + CoordinatorCost.CompareSwaps + CoordinatorCost.Persists,
        };
    }

    private static async Task<PlacementRun> PlacementRunAsync(int seed, int ops, bool coordinated)
    {
        var random = new Random(seed);
        using var stop = new CancellationTokenSource();
        var blades = Enumerable.Range(0, 4)
            .Select(id => EmbeddedBlade.Format(id, new SimulatedNvm(8 << 20), SlabSize, new BladeFormatOptions { MaxNodes = 4, RingCapacity = 4 }))
            .ToArray();
        var agents = blades.Select(b => b.RunAgentAsync(stop.Token)).ToArray();
        try
        {
            // Pre-existing skew: a tenant pinned to blade 0 (half of it) and blade 1 (a quarter).
            await PinAsync(blades, 0, (int)(blades[0].Image.Geometry.SlabCount / 2), nodeId: 1);
            await PinAsync(blades, 1, (int)(blades[1].Image.Geometry.SlabCount / 4), nodeId: 2);

            // The measurement's own one-sided readers (same for both variants).
            var probes = blades.Select(b => new BladeLoadReader(b.Fabric.Connect(b.BladeId, FabricAccess.ReadOnly, "probe"))).ToArray();
            PlacementCoordinator? coordinator = null;
            IPlacementPolicy placement = new RoundRobinPlacement();
            if (coordinated)
            {
                coordinator = new PlacementCoordinator(
                    blades.Select(b => (IFabricConnection)b.Fabric.Connect(b.BladeId, FabricAccess.ReadOnly, "coordinator")).ToArray(),
                    new CoordinatorOptions { HighWaterMark = 0.85 });
                var policy = new CoordinatedPlacement();
                coordinator.Attach(policy);
                placement = policy;
            }

            var heap = await EmbeddedNode.OpenHeapAsync(blades, nodeId: 3, new HeapOptions { Placement = placement }, s_patient);
            var live = new List<(RemotePtr Ptr, int Kind)>();
            var spreads = new List<double>();
            long refreshes = 0;
            // Keep the measured node's live set near 45% of the cluster's slabs: allocate while below, free while above.
            long totalSlabs = blades.Sum(b => (long)b.Image.Geometry.SlabCount);
            for (int op = 0; op < ops; op++)
            {
                if (coordinator is not null && op % 64 == 0)
                {
                    await coordinator.RefreshAsync();
                    refreshes++;
                }

                if (op % 128 == 0)
                {
                    spreads.Add(Spread(await Task.WhenAll(probes.Select(p => p.ReadAsync()))));
                }

                bool allocate = heap.GetStatistics().SlabsOwned < totalSlabs * 45 / 100 ? random.NextDouble() < 0.7 : random.NextDouble() < 0.3;
                if (allocate || live.Count == 0)
                {
                    double pick = random.NextDouble();
                    int kind = pick < 0.6 ? 0 : pick < 0.9 ? 1 : 2;
                    int size = kind switch { 0 => 512, 1 => OneSlabObject, _ => 16 * 1024 };
                    live.Add((await heap.AllocateAsync(size), kind));
                }
                else
                {
                    // Uneven frees: one-slab objects are 3x as likely to be chosen as 16 KiB ones, small ones rarely.
                    int index = PickVictim(live, random);
                    await heap.FreeAsync(live[index].Ptr);
                    live[index] = live[^1];
                    live.RemoveAt(live.Count - 1);
                }

                if (op % 256 == 0)
                {
                    await heap.PublishEpochsAsync();
                }
            }

            await SettleAsync(blades);
            var final = await Task.WhenAll(probes.Select(p => p.ReadAsync()));
            spreads.Add(Spread(final));
            return new PlacementRun(Spread(final), spreads.Average(), spreads.Max(), final.Select(l => l.Utilization).ToArray(),
                heap.GetStatistics().SlabsAcquired, refreshes, coordinator?.Counters() ?? default);
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(agents);
        }
    }

    private static int PickVictim(List<(RemotePtr Ptr, int Kind)> live, Random random)
    {
        for (int attempt = 0; attempt < 16; attempt++)
        {
            int index = random.Next(live.Count);
            double keep = live[index].Kind switch { 0 => 0.9, 1 => 0.0, _ => 0.67 };
            if (random.NextDouble() >= keep)
            {
                return index;
            }
        }

        return random.Next(live.Count);
    }

    private static double Spread(IReadOnlyList<BladeLoad> loads)
    {
        double mean = loads.Average(l => l.Utilization);
        return mean == 0 ? 0 : (loads.Max(l => l.Utilization) - loads.Min(l => l.Utilization)) / mean;
    }

    private static async Task PinAsync(EmbeddedBlade[] blades, int blade, int slabs, uint nodeId)
    {
        var heap = await EmbeddedNode.OpenHeapAsync(blades.Take(blade + 1).ToArray(), nodeId, new HeapOptions { Placement = new Pinned(blade) }, s_patient);
        for (int i = 0; i < slabs; i++)
        {
            await heap.AllocateAsync(OneSlabObject);
        }
    }

    private static async Task SettleAsync(IEnumerable<EmbeddedBlade> blades)
    {
        foreach (var blade in blades)
        {
            long target = blade.Agent.HandlerCalls + 2;
            while (blade.Agent.HandlerCalls < target)
            {
                await Task.Delay(1);
            }
        }
    }

    private sealed class Pinned(int blade) : IPlacementPolicy
    {
        public IEnumerable<int> Order(IReadOnlyList<BladeClient> blades, int sizeClass) => [blade];
    }

    // ---------------------------------------------------------------------------------------------------- wear

    private static async Task<JsonObject> WearAsync(QuickOptions options)
    {
        int seeds = options.Int("seeds", 3);
        int handOuts = options.Int("handouts", 6000);
        var runs = new JsonArray();
        var leastWorn = new List<double>();
        var fifo = new List<double>();
        for (int seed = 1; seed <= seeds; seed++)
        {
            var lw = await WearRunAsync(seed, handOuts, firstInFirstOut: false);
            var ff = await WearRunAsync(seed, handOuts, firstInFirstOut: true);
            leastWorn.Add((double)lw["max_over_mean"]!);
            fifo.Add((double)ff["max_over_mean"]!);
            runs.Add(new JsonObject { ["seed"] = seed, ["least_worn_first"] = lw, ["first_in_first_out"] = ff });
        }

        return new JsonObject
        {
            ["benchmark"] = "wear",
            ["description"] = "One in-process blade (simulated NVM, 4 MiB, 64 KiB slabs, ring of 4). One node churns one-slab objects, every "
                + "empty slab returned at once: phases of 500 hand-outs in which a random 30% of the blade is held for the whole phase and the "
                + "rest churns with short lifetimes. Wear = hand-outs per slab from the blade's persisted wear counters. FIFO baseline: the "
                + "agent's RefillFirstInFirstOut test hook (the slab freed longest ago is reused first).",
            ["handouts_per_run"] = handOuts,
            ["summary"] = new JsonObject
            {
                ["least_worn_first_max_over_mean"] = leastWorn.Average(),
                ["first_in_first_out_max_over_mean"] = fifo.Average(),
            },
            ["runs"] = runs,
        };
    }

    private static async Task<JsonObject> WearRunAsync(int seed, int handOuts, bool firstInFirstOut)
    {
        var random = new Random(seed);
        using var stop = new CancellationTokenSource();
        var blade = EmbeddedBlade.Format(0, new SimulatedNvm(4 << 20), SlabSize, new BladeFormatOptions { MaxNodes = 2, RingCapacity = 4 });
        if (firstInFirstOut)
        {
            blade.Agent.Faults = new BladeAgentFaults { RefillFirstInFirstOut = true };
        }

        var agent = blade.RunAgentAsync(stop.Token);
        try
        {
            int slabs = (int)blade.Image.Geometry.SlabCount;
            var heap = await EmbeddedNode.OpenHeapAsync([blade], nodeId: 1, new HeapOptions { EmptySlabThreshold = 0 }, s_patient);
            var pinned = new List<RemotePtr>();
            var churn = new Queue<(RemotePtr Ptr, int FreeAt)>();
            int pinTarget = slabs * 30 / 100;
            int churnTarget = slabs * 30 / 100;
            long before = heap.GetStatistics().SlabsAcquired;
            int step = 0;
            long nextPhaseAt = 0;
            while (heap.GetStatistics().SlabsAcquired - before < handOuts)
            {
                step++;
                long acquired = heap.GetStatistics().SlabsAcquired - before;
                if (acquired >= nextPhaseAt)
                {
                    nextPhaseAt = acquired + 500;
                    // A new phase: release the previous phase's long-lived objects, pin a new set.
                    foreach (var ptr in pinned)
                    {
                        await heap.FreeAsync(ptr);
                    }

                    pinned.Clear();
                    await heap.PublishEpochsAsync();
                    for (int i = 0; i < pinTarget; i++)
                    {
                        pinned.Add(await heap.AllocateAsync(OneSlabObject));
                    }
                }

                while (churn.Count > 0 && churn.Peek().FreeAt <= step)
                {
                    await heap.FreeAsync(churn.Dequeue().Ptr);
                }

                if (churn.Count < churnTarget)
                {
                    churn.Enqueue((await heap.AllocateAsync(OneSlabObject), step + random.Next(1, 12)));
                }

                if (step % 8 == 0)
                {
                    await heap.PublishEpochsAsync();
                }
            }

            await stop.CancelAsync();
            await agent;
            var wear = blade.Image.Scan().Slabs.Select(s => (double)s.WearHandOuts).ToArray();
            double mean = wear.Average();
            double stddev = Math.Sqrt(wear.Average(w => (w - mean) * (w - mean)));
            return new JsonObject
            {
                ["slabs"] = slabs,
                ["handouts"] = wear.Sum(),
                ["max_wear"] = wear.Max(),
                ["min_wear"] = wear.Min(),
                ["mean_wear"] = Math.Round(mean, 3),
                ["stddev_wear"] = Math.Round(stddev, 3),
                ["max_over_mean"] = Math.Round(wear.Max() / mean, 4),
            };
        }
        finally
        {
            await stop.CancelAsync();
            await agent;
        }
    }
}
