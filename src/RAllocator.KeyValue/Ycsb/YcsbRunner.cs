using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace RAllocator.KeyValue.Ycsb;

/// <summary>What a YCSB run does.</summary>
public sealed record YcsbSettings
{
    /// <summary>The workload (default A).</summary>
    public YcsbWorkload Workload { get; init; } = YcsbWorkload.A;

    /// <summary>The key distribution (default: the workload's: zipfian, latest for D).</summary>
    public KeyDistribution? Distribution { get; init; }

    /// <summary>Records inserted by the load phase (default 10,000).</summary>
    public long RecordCount { get; init; } = 10_000;

    /// <summary>Operations of the run phase, over all threads (default 100,000).</summary>
    public long OperationCount { get; init; } = 100_000;

    /// <summary>Bytes per record value (default 1000, YCSB's 10 fields of 100 bytes as one value).</summary>
    public int RecordSizeBytes { get; init; } = 1000;

    /// <summary>Client threads of both phases (default 1).</summary>
    public int Threads { get; init; } = 1;

    /// <summary>Seed of the random streams (thread t uses seed + t).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>The distribution in force.</summary>
    public KeyDistribution EffectiveDistribution => Distribution ?? Workload.Distribution;
}

/// <summary>How far a phase is.</summary>
/// <param name="Phase">"load" or "run".</param>
/// <param name="Done">Operations completed.</param>
/// <param name="Total">Operations of the phase.</param>
/// <param name="Elapsed">Time since the phase began.</param>
public sealed record YcsbProgress(string Phase, long Done, long Total, TimeSpan Elapsed);

/// <summary>Latency of one operation type in the run phase.</summary>
/// <param name="Operation">The operation.</param>
/// <param name="Count">Operations completed.</param>
/// <param name="MeanNs">Mean latency.</param>
/// <param name="P50Ns">Median latency.</param>
/// <param name="P99Ns">99th percentile.</param>
/// <param name="MaxNs">Largest.</param>
/// <param name="NotFound">Reads (or the read of a read-modify-write) that found no record.</param>
public sealed record YcsbOperationStats(YcsbOperation Operation, long Count, double MeanNs, long P50Ns, long P99Ns, long MaxNs, long NotFound);

/// <summary>What a YCSB run measured.</summary>
/// <param name="Workload">The workload's letter.</param>
/// <param name="Distribution">The key distribution.</param>
/// <param name="RecordCount">Records loaded.</param>
/// <param name="OperationCount">Operations run.</param>
/// <param name="RecordSizeBytes">Bytes per value.</param>
/// <param name="Threads">Client threads.</param>
/// <param name="LoadSeconds">Wall time of the load phase.</param>
/// <param name="LoadOpsPerSecond">Inserts per second in the load phase.</param>
/// <param name="RunSeconds">Wall time of the run phase.</param>
/// <param name="ThroughputOpsPerSecond">Operations per second in the run phase.</param>
/// <param name="Operations">Latency per operation type of the run phase.</param>
public sealed record YcsbResult(
    string Workload,
    KeyDistribution Distribution,
    long RecordCount,
    long OperationCount,
    int RecordSizeBytes,
    int Threads,
    double LoadSeconds,
    double LoadOpsPerSecond,
    double RunSeconds,
    double ThroughputOpsPerSecond,
    IReadOnlyList<YcsbOperationStats> Operations);

/// <summary>
/// A YCSB-style driver: a load phase inserting <see cref="YcsbSettings.RecordCount"/> records ("user" + FNV-1a 64
/// of the record number, as YCSB names keys), then a run phase of <see cref="YcsbSettings.OperationCount"/>
/// operations in the workload's proportions on <see cref="YcsbSettings.Threads"/> threads, each operation timed.
/// </summary>
public static class YcsbRunner
{
    /// <summary>The key of record <paramref name="recordNumber"/>: "user" followed by its hash, as YCSB's unordered inserts.</summary>
    public static string KeyFor(long recordNumber) => "user" + Fnv.Hash64((ulong)recordNumber).ToString(CultureInfo.InvariantCulture);

    /// <summary>The chooser of record numbers for <paramref name="distribution"/> over <paramref name="recordCount"/> records.</summary>
    /// <param name="distribution">The distribution.</param>
    /// <param name="recordCount">Records loaded.</param>
    /// <param name="latest">The latest acknowledged record number (for <see cref="KeyDistribution.Latest"/>).</param>
    public static IKeyChooser CreateChooser(KeyDistribution distribution, long recordCount, Func<long> latest) => distribution switch
    {
        KeyDistribution.Uniform => new UniformKeyChooser(recordCount),
        KeyDistribution.Zipfian => new ScrambledZipfianKeyChooser(recordCount),
        KeyDistribution.Latest => new LatestKeyChooser(latest),
        _ => throw new ArgumentOutOfRangeException(nameof(distribution), distribution, "unknown distribution"),
    };

    /// <summary>Loads the records, then runs the workload; reports progress about every 100 ms.</summary>
    public static async Task<YcsbResult> RunAsync(IKeyValueStore store, YcsbSettings settings, IProgress<YcsbProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.RecordCount, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(settings.OperationCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.Threads, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(settings.RecordSizeBytes);

        int threads = settings.Threads;
        var loadTime = await PhaseAsync("load", settings.RecordCount, threads, progress, async (t, from, to, counter, ct) =>
        {
            var rng = new Random(settings.Seed + t);
            var value = new byte[settings.RecordSizeBytes];
            for (long i = from; i < to; i++)
            {
                rng.NextBytes(value);
                await store.PutAsync(Encoding.ASCII.GetBytes(KeyFor(i)), value, ct).ConfigureAwait(false);
                Volatile.Write(ref counter[0], i - from + 1);
            }
        }, cancellationToken).ConfigureAwait(false);

        var inserts = new InsertCounter(settings.RecordCount);
        var chooser = CreateChooser(settings.EffectiveDistribution, settings.RecordCount, inserts.LatestAcknowledged);
        var histograms = new LatencyHistogram[threads, 4];
        var notFound = new long[threads, 4];
        var runTime = await PhaseAsync("run", settings.OperationCount, threads, progress, async (t, from, to, counter, ct) =>
        {
            var rng = new Random(settings.Seed + 1000 + t);
            var value = new byte[settings.RecordSizeBytes];
            for (int op = 0; op < 4; op++)
            {
                histograms[t, op] = new LatencyHistogram();
            }

            for (long i = from; i < to; i++)
            {
                var operation = settings.Workload.Choose(rng.NextDouble());
                long start = Stopwatch.GetTimestamp();
                switch (operation)
                {
                    case YcsbOperation.Read:
                        if (await store.GetAsync(Encoding.ASCII.GetBytes(KeyFor(chooser.Next(rng))), ct).ConfigureAwait(false) is null)
                        {
                            notFound[t, (int)operation]++;
                        }

                        break;
                    case YcsbOperation.Update:
                        rng.NextBytes(value);
                        await store.PutAsync(Encoding.ASCII.GetBytes(KeyFor(chooser.Next(rng))), value, ct).ConfigureAwait(false);
                        break;
                    case YcsbOperation.Insert:
                        long record = inserts.Begin();
                        rng.NextBytes(value);
                        await store.PutAsync(Encoding.ASCII.GetBytes(KeyFor(record)), value, ct).ConfigureAwait(false);
                        inserts.Acknowledge(record);
                        break;
                    default:
                        var key = Encoding.ASCII.GetBytes(KeyFor(chooser.Next(rng)));
                        var old = await store.GetAsync(key, ct).ConfigureAwait(false);
                        if (old is null)
                        {
                            notFound[t, (int)operation]++;
                        }

                        rng.NextBytes(value);
                        value[0] = old is { Length: > 0 } ? (byte)(old[0] + 1) : value[0];
                        await store.PutAsync(key, value, ct).ConfigureAwait(false);
                        break;
                }

                histograms[t, (int)operation].Record((long)((Stopwatch.GetTimestamp() - start) * (1e9 / Stopwatch.Frequency)));
                Volatile.Write(ref counter[0], i - from + 1);
            }
        }, cancellationToken).ConfigureAwait(false);

        var stats = new List<YcsbOperationStats>();
        for (int op = 0; op < 4; op++)
        {
            var merged = new LatencyHistogram();
            long missing = 0;
            for (int t = 0; t < threads; t++)
            {
                if (histograms[t, op] is { } h)
                {
                    merged.Add(h);
                }

                missing += notFound[t, op];
            }

            if (merged.Count > 0)
            {
                stats.Add(new YcsbOperationStats((YcsbOperation)op, merged.Count, Math.Round(merged.Mean, 1), merged.Percentile(0.50), merged.Percentile(0.99), merged.Max, missing));
            }
        }

        return new YcsbResult(
            settings.Workload.Name,
            settings.EffectiveDistribution,
            settings.RecordCount,
            settings.OperationCount,
            settings.RecordSizeBytes,
            threads,
            Math.Round(loadTime.TotalSeconds, 4),
            Math.Round(settings.RecordCount / Math.Max(loadTime.TotalSeconds, 1e-9), 1),
            Math.Round(runTime.TotalSeconds, 4),
            Math.Round(settings.OperationCount / Math.Max(runTime.TotalSeconds, 1e-9), 1),
            stats);
    }

    private static async Task<TimeSpan> PhaseAsync(string phase, long total, int threads, IProgress<YcsbProgress>? progress,
        Func<int, long, long, long[], CancellationToken, Task> worker, CancellationToken cancellationToken)
    {
        var counters = Enumerable.Range(0, threads).Select(_ => new long[1]).ToArray();
        long perThread = (total + threads - 1) / threads;
        var clock = Stopwatch.StartNew();
        var tasks = new Task[threads];
        for (int t = 0; t < threads; t++)
        {
            int thread = t;
            long from = Math.Min(total, t * perThread), to = Math.Min(total, (t + 1) * perThread);
            tasks[t] = Task.Run(() => worker(thread, from, to, counters[thread], cancellationToken), cancellationToken);
        }

        var all = Task.WhenAll(tasks);
        if (progress is not null)
        {
            while (!all.IsCompleted)
            {
                await Task.WhenAny(all, Task.Delay(100, cancellationToken)).ConfigureAwait(false);
                progress.Report(new YcsbProgress(phase, counters.Sum(c => Volatile.Read(ref c[0])), total, clock.Elapsed));
            }
        }

        await all.ConfigureAwait(false);
        var elapsed = clock.Elapsed;
        progress?.Report(new YcsbProgress(phase, total, total, elapsed));
        return elapsed;
    }

    /// <summary>Record numbers for inserts, and the latest one acknowledged with every earlier one (YCSB's acknowledged counter).</summary>
    private sealed class InsertCounter(long recordCount)
    {
        private readonly object _gate = new();
        private readonly SortedSet<long> _ahead = [];
        private long _next = recordCount;
        private long _latest = recordCount - 1;

        public long Begin() => Interlocked.Increment(ref _next) - 1;

        public long LatestAcknowledged() => Interlocked.Read(ref _latest);

        public void Acknowledge(long record)
        {
            lock (_gate)
            {
                _ahead.Add(record);
                long latest = _latest;
                while (_ahead.Remove(latest + 1))
                {
                    latest++;
                }

                Interlocked.Exchange(ref _latest, latest);
            }
        }
    }
}
