using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using RAllocator.Cli.Commands.Ycsb;
using RAllocator.Cli.Reporting;
using RAllocator.Hosting;
using RAllocator.KeyValue;
using RAllocator.KeyValue.Ycsb;
using RAllocator.Node;

namespace RAllocator.Cli.Commands;

/// <summary>
/// <c>ycsb</c>: YCSB workloads A, B, C, D and F on a <see cref="PersistentKvStore"/> over a working-node heap — by
/// default one blade in-process on a mapped file (<see cref="EmbeddedYcsbTarget"/>); with <c>--blade HOST:PORT</c>
/// on running blade servers as a working node (<see cref="RemoteYcsbTarget"/>); or on another
/// <see cref="YcsbHeapFactory"/>. Throughput and p50/p99 latency per operation type, a progress bar on stderr
/// (terminals only, runs over a second, never with <c>--json</c>), or exactly one JSON object with <c>--json</c>.
/// </summary>
internal static class YcsbCommand
{
    /// <summary>Creates the command; <paramref name="heapFactory"/> (used without <c>--blade</c>) defaults to the embedded blade.</summary>
    public static Command Create(CliContext cli, YcsbHeapFactory? heapFactory = null)
    {
        heapFactory ??= EmbeddedYcsbTarget.CreateAsync;
        var workload = new Option<string>("--workload", "-w")
        {
            Description = "YCSB core workload: a (50% read, 50% update), b (95/5), c (read only), d (95% read latest, 5% insert), f (50% read, 50% read-modify-write).",
            HelpName = "a|b|c|d|f",
            DefaultValueFactory = _ => "a",
        };
        workload.OneOf("a", "b", "c", "d", "f", "A", "B", "C", "D", "F");
        var distribution = new Option<string>("--distribution")
        {
            Description = "Key distribution: uniform, zipfian (YCSB's scrambled zipfian, constant 0.99) or latest. Default: the workload's (zipfian; latest for d).",
            HelpName = "uniform|zipfian|latest",
        };
        distribution.OneOf("uniform", "zipfian", "latest");
        var records = new Option<long>("--records")
        {
            Description = "Records inserted by the load phase.",
            HelpName = "N",
            DefaultValueFactory = _ => 10_000,
        }.InRange(1L, 100_000_000L);
        var operations = new Option<long>("--operations")
        {
            Description = "Operations of the run phase, over all threads.",
            HelpName = "N",
            DefaultValueFactory = _ => 100_000,
        }.InRange(0L, 1_000_000_000L);
        var recordSize = CliOptions.Size("--record-size", "Bytes per record value (default 1000).", 1000)
            .CheckSize((value, text) => value <= 64 * 1024 ? null : $"--record-size {text} is out of range: at most 64KiB per value.");
        var threads = new Option<int>("--threads")
        {
            Description = "Client threads (one store: writes are serialized, reads run concurrently).",
            HelpName = "T",
            DefaultValueFactory = _ => 1,
        }.InRange(1, 256);
        var seed = new Option<int>("--seed") { Description = "Seed of the random streams.", HelpName = "N", DefaultValueFactory = _ => 1 };
        var nvm = new Option<string>("--nvm")
        {
            Description = "The blade's NVM: file (a mapped file; msync, or libpmem) or simulated (in memory, not durable).",
            HelpName = "file|simulated",
            DefaultValueFactory = _ => "file",
        };
        nvm.OneOf("file", "simulated");
        var path = new Option<string?>("--path")
        {
            Description = "The blade file to create (kept afterwards); default: a temporary file, deleted afterwards.",
            HelpName = "PATH",
        };
        var json = new Option<bool>("--json") { Description = "Print exactly one JSON object (snake_case keys) on stdout." };
        var blades = CliOptions.Blades("A running blade server (rallocator serve), host:port; repeat for several. Without it, ycsb runs one blade in this process.");
        var tokenFile = new Option<string>("--token-file") { Description = "The blade servers' access token file (with --blade).", HelpName = "FILE" };
        var nodeId = new Option<uint>("--node-id") { Description = "The node id to connect as (with --blade; must not be in use). Its root names the store: a store it left is reopened.", HelpName = "N", DefaultValueFactory = _ => 0 };
        var fabric = new Option<string>("--fabric") { Description = "The fabric to the blade servers (with --blade).", HelpName = "shm", DefaultValueFactory = _ => "shm" };
        fabric.OneOf("shm");

        var command = new Command("ycsb", "Run a YCSB workload (A, B, C, D, F) on the persistent key-value store and report throughput and latency percentiles.")
        {
            workload, distribution, records, operations, recordSize, threads, seed, nvm, path, json, blades, tokenFile, nodeId, fabric,
        };
        command.Validators.Add(result =>
        {
            bool remote = result.GetValue(blades) is { Length: > 0 };
            if (remote && result.GetValue(tokenFile) is null)
            {
                result.AddError("--blade needs --token-file: the token the blade servers were started with.");
            }

            if (remote && (result.GetResult(path) is { Implicit: false } || result.GetResult(nvm) is { Implicit: false }))
            {
                result.AddError("--path and --nvm describe the in-process blade; with --blade the blade servers own their images.");
            }

            if (!remote && (result.GetResult(tokenFile) is { Implicit: false } || result.GetResult(nodeId) is { Implicit: false } || result.GetResult(fabric) is { Implicit: false }))
            {
                result.AddError("--token-file, --node-id and --fabric need --blade HOST:PORT.");
            }
        });
        command.SetAction((parseResult, cancellationToken) =>
        {
            string? dist = parseResult.GetValue(distribution);
            var settings = new YcsbSettings
            {
                Workload = YcsbWorkload.Parse(parseResult.GetValue(workload)!),
                Distribution = dist is null ? null : Enum.Parse<KeyDistribution>(dist, ignoreCase: true),
                RecordCount = parseResult.GetValue(records),
                OperationCount = parseResult.GetValue(operations),
                RecordSizeBytes = (int)parseResult.GetValue(recordSize),
                Threads = parseResult.GetValue(threads),
                Seed = parseResult.GetValue(seed),
            };
            var factory = parseResult.GetValue(blades) is { Length: > 0 } endpoints
                ? RemoteYcsbTarget.For([.. endpoints.Select(e => BladeEndpoint.Parse(e))], parseResult.GetValue(tokenFile)!, parseResult.GetValue(nodeId), parseResult.GetValue(fabric)!)
                : heapFactory;
            return RunAsync(cli, factory, settings, parseResult.GetValue(nvm)!, parseResult.GetValue(path), parseResult.GetValue(json), cancellationToken);
        });
        return command;
    }

    internal static async Task<int> RunAsync(CliContext cli, YcsbHeapFactory heapFactory, YcsbSettings settings, string nvm, string? path, bool json, CancellationToken cancellationToken)
    {
        YcsbReport report;
        using (var bar = new ProgressBar(cli.Error, "ycsb", settings.RecordCount, enabled: !json))
        {
            report = await MeasureAsync(heapFactory, settings, nvm, path, new PhaseProgress(bar), cancellationToken).ConfigureAwait(false);
        }

        if (json)
        {
            cli.Out.WriteLine(JsonSerializer.Serialize(report, CliJsonContext.Output.YcsbReport));
        }
        else
        {
            WriteText(cli.Out, report);
        }

        return ExitCodes.Ok;
    }

    internal static async Task<YcsbReport> MeasureAsync(YcsbHeapFactory heapFactory, YcsbSettings settings, string nvm, string? path, IProgress<YcsbProgress>? progress, CancellationToken cancellationToken)
    {
        var request = new YcsbTargetRequest(RegionBytesFor(settings), nvm, path);
        if (nvm == "simulated" && request.RegionBytes > 1UL << 30)
        {
            throw new CliUsageException($"--records {settings.RecordCount} of {settings.RecordSizeBytes} B need a {ByteSize.Format(request.RegionBytes)} blade, more than simulated NVM keeps in memory (1GiB); use --nvm file.");
        }

        await using var target = await heapFactory(request, cancellationToken).ConfigureAwait(false);
        var store = await PersistentKvStore.OpenAsync(target.Heap, new KvStoreOptions
        {
            MaxKeyBytes = 64,
            MaxValueBytes = Math.Max(settings.RecordSizeBytes, 1),
            Seed = settings.Seed,
        }, cancellationToken).ConfigureAwait(false);
        var result = await YcsbRunner.RunAsync(store, settings, progress, cancellationToken).ConfigureAwait(false);
        var stats = target.Heap.GetStatistics();
        return new YcsbReport(
            Impl: "rallocator-kv",
            Workload: result.Workload,
            Distribution: result.Distribution.ToString().ToLowerInvariant(),
            Records: result.RecordCount,
            Operations: result.OperationCount,
            RecordSize: result.RecordSizeBytes,
            Threads: result.Threads,
            LoadSeconds: result.LoadSeconds,
            LoadOpsPerS: result.LoadOpsPerSecond,
            RunSeconds: result.RunSeconds,
            ThroughputOpsPerS: result.ThroughputOpsPerSecond,
            Latency: result.Operations.Select(o => new YcsbOperationReport(
                Operation: o.Operation switch
                {
                    YcsbOperation.Read => "read",
                    YcsbOperation.Update => "update",
                    YcsbOperation.Insert => "insert",
                    _ => "read_modify_write",
                },
                o.Count, o.MeanNs, o.P50Ns, o.P99Ns, o.MaxNs, o.NotFound)).ToArray(),
            Entries: store.Count,
            HeapLiveObjects: stats.LiveObjects,
            SlabsAcquired: stats.SlabsAcquired,
            Target: target.Description,
            Durability: target.Durability);
    }

    /// <summary>A sparse region with room for every record and insert at twice its object footprint, plus metadata.</summary>
    internal static ulong RegionBytesFor(YcsbSettings settings)
    {
        long maxRecords = settings.RecordCount + (settings.Workload.Insert > 0 ? settings.OperationCount : 0);
        long valueObject = SizeClasses.Sizes[SizeClasses.ClassOf(Math.Max(64, settings.RecordSizeBytes + 8))];
        long perRecord = valueObject + 128;
        ulong bytes = (ulong)(maxRecords * perRecord * 2) + (64UL << 20);
        const ulong Mebibyte = 1 << 20;
        return (bytes + Mebibyte - 1) / Mebibyte * Mebibyte;
    }

    /// <summary>Feeds the driver's phases (load, run) to the generic bar, one stage per phase.</summary>
    private sealed class PhaseProgress(ProgressBar bar) : IProgress<YcsbProgress>
    {
        private string? _phase;

        public void Report(YcsbProgress value)
        {
            if (value.Phase != _phase)
            {
                _phase = value.Phase;
                bar.Stage($"ycsb {value.Phase}", value.Total);
            }

            bar.Report(value.Done);
        }
    }

    private static void WriteText(TextWriter o, YcsbReport r)
    {
        string F(double v) => v.ToString("#,0.#", CultureInfo.InvariantCulture);
        o.WriteLine($"ycsb workload {r.Workload} ({r.Distribution}): {r.Records:N0} records of {r.RecordSize} B, {r.Operations:N0} operations, {r.Threads} thread{(r.Threads == 1 ? "" : "s")}");
        ImageReportWriter.Line(o, "  target", r.Target);
        ImageReportWriter.Line(o, "  durability", r.Durability);
        ImageReportWriter.Line(o, "  load", $"{F(r.LoadOpsPerS)} inserts/s ({F(r.LoadSeconds)} s)");
        ImageReportWriter.Line(o, "  run", $"{F(r.ThroughputOpsPerS)} ops/s ({F(r.RunSeconds)} s)");
        foreach (var l in r.Latency)
        {
            ImageReportWriter.Line(o, $"  {l.Operation}", $"{l.Count:N0} ops: p50 {F(l.P50Ns / 1000.0)} µs, p99 {F(l.P99Ns / 1000.0)} µs, mean {F(l.MeanNs / 1000.0)} µs, max {F(l.MaxNs / 1000.0)} µs"
                + (l.NotFound > 0 ? $", {l.NotFound:N0} not found" : ""));
        }

        ImageReportWriter.Line(o, "  store", $"{r.Entries:N0} entries, {r.HeapLiveObjects:N0} live heap objects, {r.SlabsAcquired:N0} slabs acquired");
    }
}

/// <summary>What <c>ycsb</c> measured (the <c>--json</c> object, snake_case keys).</summary>
internal sealed record YcsbReport(
    string Impl,
    string Workload,
    string Distribution,
    long Records,
    long Operations,
    int RecordSize,
    int Threads,
    double LoadSeconds,
    double LoadOpsPerS,
    double RunSeconds,
    double ThroughputOpsPerS,
    IReadOnlyList<YcsbOperationReport> Latency,
    long Entries,
    long HeapLiveObjects,
    long SlabsAcquired,
    string Target,
    string Durability);

/// <summary>Latency of one operation type, in nanoseconds.</summary>
internal sealed record YcsbOperationReport(string Operation, long Count, double MeanNs, long P50Ns, long P99Ns, long MaxNs, long NotFound);
