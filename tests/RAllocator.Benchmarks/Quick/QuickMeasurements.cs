using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using RAllocator.Benchmarks.Workloads;
using RAllocator.Protocol.Layout;

namespace RAllocator.Benchmarks.Quick;

/// <summary>
/// Quick measurements without BenchmarkDotNet, for scripts: one process, a warm-up, then a few timed runs whose
/// median is reported, with the fabric costs counted on the same runs. Each mode prints one JSON object per line
/// with <c>--json</c>, else a readable line.
/// <code>
///   pairs    --size BYTES --ops N [--threads T] [--runs R]   allocate+free pairs, steady state
///   acquire  [--batches B]                                   slab acquisitions (batches of 512)
///   recovery [--sizes-gib 1,4,16,64] [--runs R]              open+scan of formatted sparse images
///   report   --raw DIR --out DIR                             markdown and JSON from the raw lines of bench.sh
/// </code>
/// </summary>
internal static class QuickMeasurements
{
    private static readonly string[] s_modes = ["pairs", "acquire", "recovery", "report"];

    private static readonly JsonSerializerOptions s_json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static bool IsQuickMode(string argument) => s_modes.Contains(argument);

    public static int Run(string[] args)
    {
        var options = QuickOptions.Parse(args.Skip(1));
        try
        {
            IEnumerable<Dictionary<string, object>> results = args[0] switch
            {
                "pairs" => [Pairs(options)],
                "acquire" => [Acquire(options)],
                "recovery" => Recovery(options),
                "report" => ComparisonReport.Write(options),
                _ => throw new ArgumentException($"unknown mode {args[0]}"),
            };

            foreach (var result in results)
            {
                Console.WriteLine(options.Json ? JsonSerializer.Serialize(result, s_json) : string.Join(", ", result.Select(kv => $"{kv.Key}={Format(kv.Value)}")));
            }

            return 0;
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or IOException or JsonException)
        {
            Console.Error.WriteLine($"{args[0]}: {ex.Message}");
            return 2;
        }
    }

    /// <summary>
    /// <c>ops</c> allocate+free pairs per thread per run, after a warm-up of the same length. With several threads,
    /// all share one heap and one size class; <c>alloc_free_pair_ns</c> is wall time / ops per thread (a thread's
    /// mean pair time) and <c>pairs_per_sec</c> counts every thread.
    /// </summary>
    private static Dictionary<string, object> Pairs(QuickOptions options)
    {
        int size = options.Int("size", 64);
        long ops = options.Long("ops", 1_000_000);
        int threads = options.Int("threads", 1);
        int runs = options.Int("runs", 5);
        using var workload = ObjectPairWorkload.StartAsync(size, ObjectAllocationBenchmarks.Burst).GetAwaiter().GetResult();

        RunPairs(workload, Math.Min(ops, 1_000_000), threads);
        var before = workload.Counters.Snapshot();
        long callsBefore = workload.BladeHandlerCalls;
        long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var runNs = new List<double>();
        for (int run = 0; run < runs; run++)
        {
            var elapsed = RunPairs(workload, ops, threads);
            runNs.Add(elapsed.TotalNanoseconds / ops);
        }

        long allocatedBytes = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        var cost = workload.Counters.Snapshot().Since(before);
        double totalPairs = (double)ops * threads * runs;
        double median = Median(runNs);
        return new Dictionary<string, object>
        {
            ["impl"] = "rallocator",
            ["size"] = size,
            ["ops"] = ops,
            ["threads"] = threads,
            ["runs"] = runs,
            ["alloc_free_pair_ns"] = Round(median),
            ["alloc_free_pair_ns_min"] = Round(runNs.Min()),
            ["alloc_free_pair_ns_max"] = Round(runNs.Max()),
            ["pairs_per_sec"] = Math.Round(threads * 1e9 / median),
            ["round_trips_per_pair"] = cost.RoundTrips / totalPairs,
            ["verbs_per_pair"] = cost.TotalVerbs / totalPairs,
            ["blade_handler_calls"] = workload.BladeHandlerCalls - callsBefore,
            ["managed_bytes_allocated_per_pair"] = Round(allocatedBytes / totalPairs),
            ["fabric"] = "loopback",
            ["nvm"] = workload.NvmDescription,
            ["persist"] = PmemModel.Describe(),
            ["slab_size_bytes"] = BenchBlade.DefaultSlabSizeBytes,
            ["source"] = "tests/RAllocator.Benchmarks pairs",
        };
    }

    private static TimeSpan RunPairs(ObjectPairWorkload workload, long ops, int threads)
    {
        if (threads <= 1)
        {
            long start = Stopwatch.GetTimestamp();
            for (long i = 0; i < ops; i++)
            {
                workload.AllocateFreePair();
            }

            return Stopwatch.GetElapsedTime(start);
        }

        using var ready = new Barrier(threads + 1);
        var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            ready.SignalAndWait();
            for (long i = 0; i < ops; i++)
            {
                workload.AllocateFreePair();
            }
        })).ToArray();
        foreach (var worker in workers)
        {
            worker.Start();
        }

        ready.SignalAndWait();
        long begin = Stopwatch.GetTimestamp();
        foreach (var worker in workers)
        {
            worker.Join();
        }

        return Stopwatch.GetElapsedTime(begin);
    }

    /// <summary>Batches of 512 acquisitions (and of 512 acquire+return), agent passes between batches only.</summary>
    private static Dictionary<string, object> Acquire(QuickOptions options)
    {
        int batches = options.Int("batches", 8);
        using var workload = SlabAcquisitionWorkload.StartAsync(options.Int("batch", SlabAcquisitionWorkload.DefaultBatchLength)).GetAwaiter().GetResult();
        int batch = workload.BatchLength;

        // Warm-up batch of each kind.
        workload.AcquireBatchAsync().GetAwaiter().GetResult();
        workload.ReturnBatchAsync().GetAwaiter().GetResult();
        workload.SettleAsync().GetAwaiter().GetResult();
        workload.AcquireAndReturnBatchAsync().GetAwaiter().GetResult();

        var acquireNs = new List<double>();
        var pairNs = new List<double>();
        long acquireRoundTrips = 0, acquireVerbs = 0, acquireCalls = 0, pairRoundTrips = 0;
        for (int b = 0; b < batches; b++)
        {
            workload.SettleAsync().GetAwaiter().GetResult();
            var before = workload.Client.Counters.Snapshot();
            long callsBefore = workload.BladeHandlerCalls;
            long start = Stopwatch.GetTimestamp();
            workload.AcquireBatchAsync().GetAwaiter().GetResult();
            acquireNs.Add(Stopwatch.GetElapsedTime(start).TotalNanoseconds / batch);
            var cost = workload.Client.Counters.Snapshot().Since(before);
            acquireRoundTrips += cost.RoundTrips;
            acquireVerbs += cost.TotalVerbs;
            acquireCalls += workload.BladeHandlerCalls - callsBefore;
            workload.ReturnBatchAsync().GetAwaiter().GetResult();

            workload.SettleAsync().GetAwaiter().GetResult();
            before = workload.Client.Counters.Snapshot();
            start = Stopwatch.GetTimestamp();
            workload.AcquireAndReturnBatchAsync().GetAwaiter().GetResult();
            pairNs.Add(Stopwatch.GetElapsedTime(start).TotalNanoseconds / batch);
            pairRoundTrips += workload.Client.Counters.Snapshot().Since(before).RoundTrips;
        }

        double acquisitions = (double)batches * batch;
        return new Dictionary<string, object>
        {
            ["impl"] = "rallocator",
            ["batches"] = batches,
            ["batch"] = batch,
            ["acquire_ns"] = Round(Median(acquireNs)),
            ["acquire_ns_min"] = Round(acquireNs.Min()),
            ["acquire_return_ns"] = Round(Median(pairNs)),
            ["round_trips_per_acquire"] = acquireRoundTrips / acquisitions,
            ["verbs_per_acquire"] = acquireVerbs / acquisitions,
            ["blade_handler_calls_during_batches"] = acquireCalls,
            ["round_trips_per_acquire_return"] = pairRoundTrips / acquisitions,
            ["fabric"] = "loopback",
            ["nvm"] = workload.NvmDescription,
            ["persist"] = PmemModel.Describe(),
        };
    }

    /// <summary>Per size: warm open+scan (median of runs), cold open+scan (page cache dropped), blade server restart.</summary>
    private static IEnumerable<Dictionary<string, object>> Recovery(QuickOptions options)
    {
        int runs = options.Int("runs", 5);
        var sizes = options.String("sizes-gib", "1,4,16,64").Split(',', StringSplitOptions.RemoveEmptyEntries)
            .Select(s => int.Parse(s, CultureInfo.InvariantCulture));
        foreach (int gib in sizes)
        {
            using var workload = RecoveryWorkload.Create((long)gib << 30);
            var geometry = workload.Geometry;
            workload.OpenReadOnlyAndScan();

            var warm = Time(runs, workload.OpenReadOnlyAndScan);
            bool dropped = true;
            var cold = Time(runs, () => workload.OpenReadOnlyAndScan(), before: () => dropped &= workload.DropPageCache());
            var restart = Time(runs, () => workload.RestartBladeServer());
            var phases = Enumerable.Range(0, runs).Select(_ => workload.OpenReadOnlyAndScanPhases()).ToList();
            var state = workload.OpenReadOnlyAndScan();
            yield return new Dictionary<string, object>
            {
                ["region_gib"] = gib,
                ["region_bytes"] = workload.RegionBytes,
                ["slab_size_bytes"] = RecoveryWorkload.SlabSizeBytes,
                ["slabs"] = geometry.SlabCount,
                ["metadata_bytes"] = workload.MetadataBytes,
                ["scanned_array_bytes"] = workload.ScannedArrayBytes,
                ["ownership_entry_bytes"] = OwnershipEntry.SizeBytes,
                ["wear_counter_bytes"] = WearCounter.SizeBytes,
                ["file_allocated_bytes"] = workload.AllocatedBytesOnDisk,
                ["open_scan_warm_us"] = Round(Median(warm) / 1000),
                ["open_scan_warm_us_min"] = Round(warm.Min() / 1000),
                ["open_scan_cold_us"] = Round(Median(cold) / 1000),
                ["warm_map_us"] = Round(Median(phases.Select(p => p.MapNs).ToList()) / 1000),
                ["warm_image_open_us"] = Round(Median(phases.Select(p => p.ImageOpenNs).ToList()) / 1000),
                ["warm_scan_us"] = Round(Median(phases.Select(p => p.ScanNs).ToList()) / 1000),
                ["warm_unmap_us"] = Round(Median(phases.Select(p => p.UnmapNs).ToList()) / 1000),
                ["cold_cache_dropped"] = dropped,
                ["restart_blade_server_us"] = Round(Median(restart) / 1000),
                ["consistent"] = state.IsConsistent,
                ["persist"] = PmemModel.Describe(),
                ["runs"] = runs,
            };
        }
    }

    private static List<double> Time(int runs, Func<object> action, Action? before = null)
    {
        var ns = new List<double>();
        for (int i = 0; i < runs; i++)
        {
            before?.Invoke();
            long start = Stopwatch.GetTimestamp();
            GC.KeepAlive(action());
            ns.Add(Stopwatch.GetElapsedTime(start).TotalNanoseconds);
        }

        return ns;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static double Round(double value) => Math.Round(value, value < 100 ? 2 : 1);

    private static string Format(object value) => value is IFormattable f ? f.ToString(null, CultureInfo.InvariantCulture) : value.ToString() ?? string.Empty;
}
