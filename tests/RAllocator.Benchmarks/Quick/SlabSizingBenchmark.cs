using System.Text.Json;
using System.Text.Json.Nodes;
using RAllocator.Embedded;
using RAllocator.Node;
using RAllocator.Nvm;
using RAllocator.Protocol;
using RAllocator.Protocol.Layout;

namespace RAllocator.Benchmarks.Quick;

/// <summary>
/// <c>slab-sizing [--seed 1] [--scale 1] [--out bench/results/slab-sizing.json]</c>: three workload mixes on one
/// in-process blade (simulated NVM, 64 KiB base slabs, spans up to 16 = 1 MiB), each under fixed slab sizes of 1, 4
/// and 16 base slabs and under <see cref="AdaptiveSlabSizing"/>. Reports slab acquisitions per million allocations
/// (what the hardware charges: each acquisition is two round trips) and internal fragmentation (the share of the
/// carved slabs' bytes not in live objects), time-averaged over the run and at its peak footprint.
/// </summary>
internal static class SlabSizingBenchmark
{
    private const ulong BaseSlab = 64 * 1024;
    private const uint MaxSpan = 16;
    private static readonly ProtocolOptions s_patient = new() { RingReadRetryLimit = 20000, AreaFullRetryLimit = 20000 };

    public static bool IsMode(string argument) => argument is "slab-sizing";

    public static int Run(string[] args)
    {
        var options = QuickOptions.Parse(args.Skip(1));
        var result = MeasureAsync(options.Int("seed", 1), options.Int("scale", 1)).GetAwaiter().GetResult();
        return options.WriteResult(result, "slab-sizing");
    }

    private static readonly (string Name, ISlabSizingPolicy Policy)[] s_policies =
    [
        ("fixed-64KiB", new FixedSlabSizing(0)),
        ("fixed-256KiB", new FixedSlabSizing(2)),
        ("fixed-1MiB", new FixedSlabSizing(4)),
        ("adaptive", new AdaptiveSlabSizing()),
    ];

    private static readonly (string Name, string Description, Func<Random, int, IEnumerable<Op>> Ops)[] s_mixes =
    [
        ("many-small-classes", "12k long-lived objects over 40 size classes from 16 B to 8 KiB, class popularity 1/rank: the popular classes fill several slabs, the unpopular hold tens of objects.", ManySmallClasses),
        ("one-growing-class", "one hot 64 B class grows to 400k live objects (25 MiB) while a few cold classes stay small.", OneGrowingClass),
        ("churn", "a steady live set of 2 MiB across 256 B to 16 KiB objects with short-lived objects churning through it (alloc and free in equal numbers).", Churn),
    ];

    private static async Task<JsonObject> MeasureAsync(int seed, int scale)
    {
        var mixes = new JsonArray();
        foreach (var mix in s_mixes)
        {
            var policies = new JsonObject();
            foreach (var (name, policy) in s_policies)
            {
                policies[name] = await RunAsync(mix.Ops(new Random(seed), scale), policy);
                Console.Error.WriteLine($"slab-sizing: {mix.Name} / {name}: {policies[name]!.ToJsonString()}");
            }

            mixes.Add(new JsonObject { ["mix"] = mix.Name, ["description"] = mix.Description, ["policies"] = policies });
        }

        return new JsonObject
        {
            ["benchmark"] = "slab-sizing",
            ["description"] = "One in-process blade (simulated NVM, 64 KiB base slabs, maximum span 16, span rings of 4), agent running. "
                + "acquisitions_per_million_allocations = slabs acquired / allocations x 1e6 (each acquisition is 2 round trips). "
                + "Fragmentation = 1 - live object bytes / bytes of the carved slabs holding them, sampled every 1000 operations: "
                + "time_averaged over the run, and at_peak (when the slabs held were most). Rounding to size classes is not counted (same in every policy).",
            ["seed"] = seed,
            ["scale"] = scale,
            ["mixes"] = mixes,
        };
    }

    private static async Task<JsonObject> RunAsync(IEnumerable<Op> ops, ISlabSizingPolicy policy)
    {
        using var stop = new CancellationTokenSource();
        var blade = EmbeddedBlade.Format(0, new SimulatedNvm(192 << 20), BaseSlab,
            new BladeFormatOptions { MaxNodes = 2, RingCapacity = 16, MaxSlabSpan = MaxSpan, SpanRingCapacity = 4 });
        var agent = blade.RunAgentAsync(stop.Token);
        try
        {
            var heap = await EmbeddedNode.OpenHeapAsync([blade], 1, new HeapOptions { SlabSizing = policy }, s_patient);
            var live = new List<RemotePtr>();
            double fragmentationSum = 0;
            int samples = 0;
            long peakHeld = 0;
            double fragmentationAtPeak = 0;
            long count = 0;
            foreach (var op in ops)
            {
                if (op.SizeBytes > 0)
                {
                    live.Add(await heap.AllocateAsync(op.SizeBytes));
                }
                else if (live.Count > 0)
                {
                    int victim = op.Victim % live.Count;
                    var ptr = live[victim];
                    live[victim] = live[^1];
                    live.RemoveAt(live.Count - 1);
                    await heap.FreeAsync(ptr);
                }

                if (++count % 1000 == 0)
                {
                    var sample = heap.GetStatistics();
                    fragmentationSum += sample.Fragmentation;
                    samples++;
                    if (sample.HeldBytes > peakHeld)
                    {
                        peakHeld = sample.HeldBytes;
                        fragmentationAtPeak = sample.Fragmentation;
                    }
                }
            }

            var stats = heap.GetStatistics();
            return new JsonObject
            {
                ["allocations"] = stats.Allocations,
                ["slabs_acquired"] = stats.SlabsAcquired,
                ["acquisitions_per_million_allocations"] = Math.Round(stats.SlabsAcquired * 1e6 / Math.Max(1, stats.Allocations), 1),
                ["fragmentation_time_averaged"] = Math.Round(samples == 0 ? stats.Fragmentation : fragmentationSum / samples, 4),
                ["fragmentation_at_peak"] = Math.Round(fragmentationAtPeak, 4),
                ["peak_held_mib"] = Math.Round(peakHeld / 1048576.0, 2),
                ["slabs_by_span"] = new JsonArray(stats.SlabsBySpanClass!.Take(5).Select(c => (JsonNode)JsonValue.Create(c)).ToArray()),
            };
        }
        finally
        {
            await stop.CancelAsync();
            await agent;
        }
    }

    /// <summary>An allocation (SizeBytes &gt; 0) or a free of a random live object (SizeBytes 0).</summary>
    private readonly record struct Op(int SizeBytes, int Victim);

    private static IEnumerable<Op> ManySmallClasses(Random random, int scale)
    {
        int[] sizes = [.. Enumerable.Range(0, 40).Select(i => (int)Math.Round(16 * Math.Pow(512, i / 39.0)))];
        double[] weights = [.. Enumerable.Range(1, 40).Select(rank => 1.0 / rank)];
        double total = weights.Sum();
        for (int i = 0; i < 12_000 * scale; i++)
        {
            double pick = random.NextDouble() * total;
            int index = 0;
            while (pick > weights[index] && index < weights.Length - 1)
            {
                pick -= weights[index++];
            }

            // Shuffle ranks over sizes deterministically, so popular classes are not all small.
            yield return new Op(sizes[(index * 17) % sizes.Length], 0);
        }
    }

    private static IEnumerable<Op> OneGrowingClass(Random random, int scale)
    {
        for (int i = 0; i < 400_000 * scale; i++)
        {
            yield return new Op(random.Next(100) < 97 ? 64 : 1024 + (random.Next(4) * 1024), 0);
        }
    }

    private static IEnumerable<Op> Churn(Random random, int scale)
    {
        int[] sizes = [256, 512, 1024, 2048, 4096, 8192, 16384];
        long liveBytes = 0;
        for (int i = 0; i < 400_000 * scale; i++)
        {
            // Grow to about 2 MiB live, then alloc and free in equal numbers.
            if (liveBytes < 2 << 20 || random.Next(2) == 0)
            {
                int size = sizes[random.Next(sizes.Length)];
                liveBytes += size;
                yield return new Op(size, 0);
            }
            else
            {
                liveBytes -= 4 * 1024; // an approximation that keeps the mix stationary; the heap measures the truth
                yield return new Op(0, random.Next());
            }
        }
    }
}
