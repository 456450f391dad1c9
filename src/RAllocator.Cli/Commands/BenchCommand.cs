using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Text.Json;
using RAllocator.Blade;
using RAllocator.Cli.Reporting;
using RAllocator.Embedded;
using RAllocator.Hosting;
using RAllocator.Node;
using RAllocator.Nvm;
using RAllocator.Protocol;
using RAllocator.Protocol.Layout;

namespace RAllocator.Cli.Commands;

/// <summary>
/// <c>bench</c>: object allocate and free latency on an embedded blade, with the protocol's costs counted.
/// </summary>
/// <remarks>
/// <para><b>Phases.</b> The agent never runs while the timed loops run: before each allocation phase one agent pass
/// (untimed) fills the ring, and the phase allocates at most as many objects as the ready ring entries can serve.
/// So every slab acquisition inside a phase is FETCH_AND_ADD + READ against a pre-filled ring, and the agent's
/// handler calls counted during the phases (<c>blade_calls_on_critical_path</c>) must be 0. Free phases cover the
/// same index ranges as the allocation phases, with an agent pass (untimed) before each to drain free requests,
/// so no node area ever fills while the agent is idle.</para>
/// <para><b>Numbers.</b> <c>alloc_ns</c>/<c>free_ns</c>: total time of the timed loops over all workers divided by
/// the operations. p50/p99: one operation in <see cref="SampleEvery"/> timed on its own. <c>rtt_per_slab</c>:
/// round trips counted by the fabric during allocation phases divided by slabs acquired (2, plus one header READ per
/// <see cref="NodeAreaSlots"/> acquisitions when the acknowledgement area looks full).</para>
/// </remarks>
internal static class BenchCommand
{
    /// <summary>One operation in this many is timed on its own for the percentiles.</summary>
    public const int SampleEvery = 16;

    /// <summary>Acknowledgement and free slots per node on the bench blade: large, so phases are long.</summary>
    private const uint NodeAreaSlots = 4096;

    /// <summary>Bytes a slab keeps before its first object, rounded up: a bound, used only to size phases and the blade.</summary>
    private const ulong SlabHeaderBoundBytes = 4096;

    /// <summary>The simulated NVM holds two in-memory copies of the region; beyond this, use a file.</summary>
    private const ulong MaxSimulatedRegionBytes = 1UL << 30;

    private static readonly string[] s_fabrics = ["loopback", "shm", "ucx", "verbs"];

    public static Command Create(CliContext cli)
    {
        var fabric = new Option<string>("--fabric")
        {
            Description = "Fabric to measure: loopback (in-process, agent paused in timed phases), shm (blade server, nodes map its image), ucx (blade server over UCX: UCX_TLS picks shared memory, TCP or RDMA), verbs (libibverbs).",
            HelpName = "loopback|shm|ucx|verbs",
            DefaultValueFactory = _ => "loopback",
        };
        fabric.OneOf(s_fabrics);
        var blades = CliOptions.Blades("A running blade server, host:port (repeat for several). Without it, shm and ucx start a blade server in this process on a temporary image.");
        var tokenFile = new Option<string>("--token-file") { Description = "The blade servers' access token file (with --blade).", HelpName = "FILE" };
        var nodeId = new Option<uint>("--node-id") { Description = "The node id to connect as (with --blade; must not be in use).", HelpName = "N", DefaultValueFactory = _ => 0 };
        var ucxTls = FabricAvailability.UcxTransportsOption();
        var acquisitions = new Option<int>("--acquisitions")
        {
            Description = "Slab acquisitions timed on their own (shm, ucx).",
            HelpName = "N",
            DefaultValueFactory = _ => 256,
        }.InRange(1, 100_000);
        var size = CliOptions.Size("--size", $"Object size to allocate, 1 byte to {SizeClasses.MaxSizeBytes / 1024}KiB.", 64)
            .CheckSize((value, text) => value is >= 1 and <= SizeClasses.MaxSizeBytes
                ? null
                : $"--size {text} is out of range: objects are 1 byte to {SizeClasses.MaxSizeBytes / 1024}KiB.");
        var ops = new Option<long>("--ops")
        {
            Description = "Objects to allocate, then free.",
            HelpName = "N",
            DefaultValueFactory = _ => 1_000_000,
        }.InRange(1L, 100_000_000L);
        var threads = new Option<int>("--threads")
        {
            Description = "Threads allocating and freeing concurrently on one working-node heap.",
            HelpName = "T",
            DefaultValueFactory = _ => 1,
        }.InRange(1, 256);
        var slabSize = CliOptions.Size("--slab-size", "Base slab size of the bench blade (default 1MiB).", FormatCommand.DefaultSlabSizeBytes)
            .CheckSize(FormatCommand.CheckSlabSize);
        var nvm = new Option<string>("--nvm")
        {
            Description = "The blade's NVM: simulated (in memory) or file (a sparse temporary file, mapped and deleted afterwards).",
            HelpName = "simulated|file",
            DefaultValueFactory = _ => "simulated",
        };
        nvm.OneOf("simulated", "file");
        var slabSizing = SlabSizingChoice.CreateOption();
        var maxSpan = FormatCommand.MaxSpanOption(
            "Largest slab of the bench blade, in base slabs: a power of two from 1 to 64. Default: what --slab-sizing needs "
            + $"(fixed: 1, fixed:N: N, adaptive: {SlabSizingChoice.AdaptiveDefaultMaxSpan}).");
        var compact = new Option<int>("--compact")
        {
            Description = "After the timed run, also measure defragmentation: allocate the objects again, free this percentage of them at "
                + "random, compact the heap and report utilization before and after (0: off).",
            HelpName = "PERCENT",
            DefaultValueFactory = _ => 0,
        }.InRange(0, 99);
        var json = new Option<bool>("--json") { Description = "Print exactly one JSON object (snake_case keys) on stdout." };

        var command = new Command("bench", "Measure object allocate/free latency, slab acquisitions, round trips per slab and blade calls on the critical path.")
        {
            fabric, size, ops, threads, slabSize, nvm, slabSizing, maxSpan, compact, json, blades, tokenFile, nodeId, acquisitions, ucxTls,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(fabric) == "loopback" && result.GetValue(blades) is { Length: > 0 })
            {
                result.AddError("--blade needs --fabric shm or --fabric ucx: the loopback fabric runs its blade in this process.");
            }

            if (result.GetValue(fabric) is { } chosen && chosen != "loopback" && result.GetValue(compact) > 0)
            {
                result.AddError("--compact runs on the bench's own blade: use it with --fabric loopback (the default).");
            }
        });
        command.SetAction((parseResult, cancellationToken) => parseResult.GetValue(fabric) is "loopback" ? RunAsync(
            cli,
            new BenchSettings(
                parseResult.GetValue(fabric)!,
                (int)parseResult.GetValue(size),
                parseResult.GetValue(ops),
                parseResult.GetValue(threads),
                parseResult.GetValue(slabSize),
                parseResult.GetValue(nvm)!)
            {
                SlabSizing = ResolveSlabSizing(parseResult, slabSizing, maxSpan, out uint spanLimit),
                MaxSpan = spanLimit,
                CompactPercent = parseResult.GetValue(compact),
            },
            parseResult.GetValue(json),
            cancellationToken) : RunRemoteAsync(
            cli,
            new RemoteBenchSettings(
                parseResult.GetValue(fabric)!,
                (int)parseResult.GetValue(size),
                parseResult.GetValue(ops),
                parseResult.GetValue(threads),
                parseResult.GetValue(slabSize),
                [.. (parseResult.GetValue(blades) ?? []).Select(b => BladeEndpoint.Parse(b))],
                parseResult.GetValue(tokenFile),
                parseResult.GetValue(nodeId),
                parseResult.GetValue(acquisitions),
                parseResult.GetValue(ucxTls))
            {
                SlabSizing = ResolveRemoteSlabSizing(parseResult, slabSizing, maxSpan, blades, out uint remoteSpanLimit),
                MaxSpan = remoteSpanLimit,
            },
            parseResult.GetValue(json),
            cancellationToken));
        return command;
    }

    /// <summary>
    /// The <c>--slab-sizing</c> choice and the maximum span of the blade bench formats: <c>--max-span</c> when given,
    /// else what the choice needs; a fixed span above the maximum is a usage error naming both options.
    /// </summary>
    private static SlabSizingChoice ResolveSlabSizing(ParseResult parseResult, Option<string> slabSizing, Option<uint> maxSpan, out uint spanLimit)
    {
        SlabSizingChoice.TryParse(parseResult.GetValue(slabSizing) ?? "fixed", out var choice, out _);
        bool explicitMaxSpan = parseResult.GetResult(maxSpan) is { Tokens.Count: > 0 };
        spanLimit = explicitMaxSpan ? parseResult.GetValue(maxSpan) : choice.DefaultMaxSpan;
        if (choice.FixedSpan is { } span && span > spanLimit)
        {
            throw new CliUsageException($"--slab-sizing {choice.Name} needs --max-span {span} or more: the blade must serve slabs of {span} base slabs (--max-span is {spanLimit}).");
        }

        return choice;
    }

    /// <summary>
    /// As <see cref="ResolveSlabSizing"/> for shm and ucx. With <c>--blade</c> the running blades were formatted
    /// already: <c>--max-span</c> is refused and <paramref name="spanLimit"/> is 0 (the blades' own maximum applies).
    /// </summary>
    private static SlabSizingChoice ResolveRemoteSlabSizing(ParseResult parseResult, Option<string> slabSizing, Option<uint> maxSpan, Option<string[]> blades, out uint spanLimit)
    {
        if (parseResult.GetValue(blades) is not { Length: > 0 })
        {
            return ResolveSlabSizing(parseResult, slabSizing, maxSpan, out spanLimit);
        }

        if (parseResult.GetResult(maxSpan) is { Tokens.Count: > 0 })
        {
            throw new CliUsageException("--max-span sets the span of the blade bench formats in this process; with --blade the running blades were formatted with theirs ('rallocator format --max-span').");
        }

        SlabSizingChoice.TryParse(parseResult.GetValue(slabSizing) ?? "fixed", out var choice, out _);
        spanLimit = 0;
        return choice;
    }

    private static async Task<int> RunRemoteAsync(CliContext cli, RemoteBenchSettings settings, bool json, CancellationToken cancellationToken)
    {
        if (settings.Fabric == "verbs")
        {
            throw new CliFailureException(FabricAvailability.VerbsUnavailableMessage());
        }

        using var progress = new ProgressBar(cli.Error, "bench", settings.Ops, enabled: !json);
        var report = await RemoteBench.MeasureAsync(settings, progress, cancellationToken).ConfigureAwait(false);
        progress.Dispose();
        if (json)
        {
            cli.Out.WriteLine(JsonSerializer.Serialize(report, CliJsonContext.Output.RemoteBenchReport));
        }
        else
        {
            RemoteBench.WriteText(cli.Out, report);
        }

        return ExitCodes.Ok;
    }

    private static async Task<int> RunAsync(CliContext cli, BenchSettings settings, bool json, CancellationToken cancellationToken)
    {
        var progress = new ProgressBar(cli.Error, "bench allocate+free", 2 * settings.Ops, enabled: !json);
        BenchReport report;
        using (progress)
        {
            report = await MeasureAsync(settings, cancellationToken, progress).ConfigureAwait(false);
        }

        if (json)
        {
            cli.Out.WriteLine(JsonSerializer.Serialize(report, CliJsonContext.Output.BenchReport));
        }
        else
        {
            WriteText(cli.Out, report);
        }

        return report.BladeCallsOnCriticalPath == 0 ? ExitCodes.Ok : ExitCodes.Failed;
    }

    internal static async Task<BenchReport> MeasureAsync(BenchSettings settings, CancellationToken cancellationToken, ProgressBar? progress = null)
    {
        int sizeClass = SizeClasses.ClassOf(settings.SizeBytes);
        int objectBytes = SizeClasses.Sizes[sizeClass];
        var plan = SpanPlan.For(settings, objectBytes);
        long objectsPerSlab = plan.ObjectsPerSlab(plan.SmallestClass);
        var formatOptions = new BladeFormatOptions { MaxNodes = 2, AckSlotsPerNode = NodeAreaSlots, FreeSlotsPerNode = NodeAreaSlots };
        ulong slabsNeeded;
        if (settings.MaxSpan == 1)
        {
            // Slabs for the measured objects, one for the warm-up class, and slack for the slabs partly filled at phase ends.
            slabsNeeded = (ulong)((settings.Ops + objectsPerSlab - 1) / objectsPerSlab) + 4;
        }
        else
        {
            // Base slabs for the measured objects at the worst span the policy may take, the warm-up slab, what the
            // rings park (a short base ring and every span ring full), and slack for alignment and partly filled slabs.
            formatOptions = formatOptions with { MaxSlabSpan = settings.MaxSpan, RingCapacity = SpanBenchBaseRing, SpanRingCapacity = SpanBenchSpanRing };
            ulong objects = plan.Classes.Max(c => (ulong)((settings.Ops + plan.ObjectsPerSlab(c) - 1) / plan.ObjectsPerSlab(c)) << c);
            slabsNeeded = objects + SpanBenchBaseRing + (SpanBenchSpanRing * ((2 * settings.MaxSpan) - 2)) + (4 * settings.MaxSpan) + 4;
        }

        ulong regionBytes = RegionBytesFor(slabsNeeded, settings.SlabSizeBytes, formatOptions);
        if (settings.Nvm == "simulated" && regionBytes > MaxSimulatedRegionBytes)
        {
            throw new CliUsageException(
                $"--ops {settings.Ops} x --size {settings.SizeBytes} needs a {ByteSize.Format(regionBytes)} blade, more than the simulated NVM keeps in memory "
                + $"({ByteSize.Format(MaxSimulatedRegionBytes)}); use --nvm file, or fewer --ops.");
        }

        string? file = null;
        INvmRegion region;
        if (settings.Nvm == "file")
        {
            file = Path.Combine(Path.GetTempPath(), $"rallocator-bench-{Environment.ProcessId}-{Guid.NewGuid():N}.img");
            region = MappedFileNvm.Create(file, (long)regionBytes);
        }
        else
        {
            region = new SimulatedNvm((long)regionBytes);
        }

        try
        {
            var blade = EmbeddedBlade.Format(0, region, settings.SlabSizeBytes, formatOptions);
            var agent = blade.Agent;
            blade.Agent.RunOnce();
            var heap = await EmbeddedNode.OpenHeapAsync([blade], 0, new HeapOptions { SlabSizing = settings.SlabSizing.Policy }, cancellationToken: cancellationToken).ConfigureAwait(false);
            await WarmUpAsync(heap, settings.SizeBytes, cancellationToken).ConfigureAwait(false);

            var ptrs = new RemotePtr[settings.Ops];
            var phases = new List<(long Start, long Count)>();
            var counters = heap.Blades[0].Counters;
            var statsBefore = heap.GetStatistics();
            long acquiredBefore = statsBefore.SlabsAcquired;
            long returnedBefore = statsBefore.SlabsReturned;
            long agentPassesBetweenPhases = 0, criticalPathCalls = 0, acquisitionRoundTrips = 0;
            var alloc = new PhaseTimings();
            long allocated = 0;
            while (allocated < settings.Ops)
            {
                agent.RunOnce();
                agentPassesBetweenPhases++;
                var state = blade.Image.Scan();
                // The phase may take no more tickets from any ring the policy may use than that ring has filled entries.
                ulong ready = plan.Classes.Min(c => state.Rings[c].Waiting);
                if (ready == 0)
                {
                    throw new CliFailureException($"the bench blade has no free slab left after {allocated} objects (this is a bug in bench's sizing).");
                }

                long slabBudget = (long)Math.Min(ready, NodeAreaSlots - 4);
                long count = Math.Min(settings.Ops - allocated, slabBudget * objectsPerSlab);
                long callsBefore = agent.HandlerCalls;
                var rttBefore = counters.Snapshot();
                long start = allocated;
                await RunPhaseAsync(settings.Threads, start, count, alloc, async (i, ct) => ptrs[i] = await heap.AllocateAsync(settings.SizeBytes, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                acquisitionRoundTrips += counters.Snapshot().Since(rttBefore).RoundTrips;
                criticalPathCalls += agent.HandlerCalls - callsBefore;
                phases.Add((start, count));
                allocated += count;
                progress?.Report(allocated);
            }

            // What the measured class holds with every object live: the warm-up class's slabs are in both snapshots, unchanged.
            var statsAllocated = heap.GetStatistics();
            long slabsAcquired = statsAllocated.SlabsAcquired - acquiredBefore;
            long heldBytes = statsAllocated.HeldBytes - statsBefore.HeldBytes;
            long liveBytes = statsAllocated.LiveBytes - statsBefore.LiveBytes;
            var slabsBySpan = Enumerable.Range(0, BitOperations.Log2(settings.MaxSpan) + 1).Select(c => new SpanCountReport(
                Span: 1u << c,
                SlabBytes: settings.SlabSizeBytes << c,
                Slabs: SpanCount(statsAllocated, c) - SpanCount(statsBefore, c))).ToArray();
            var free = new PhaseTimings();
            foreach (var (start, count) in phases)
            {
                agent.RunOnce();
                agentPassesBetweenPhases++;
                await RunPhaseAsync(settings.Threads, start, count, free, (i, ct) => heap.FreeAsync(ptrs[i], ct), cancellationToken).ConfigureAwait(false);
                progress?.Report(settings.Ops + start + count);
            }

            long slabsReturned = heap.GetStatistics().SlabsReturned - returnedBefore;
            agent.RunOnce();
            agentPassesBetweenPhases++;
            var compaction = settings.CompactPercent > 0
                ? await MeasureCompactionAsync(blade, heap, settings, cancellationToken).ConfigureAwait(false)
                : null;
            var finalState = blade.Image.Scan();
            if (!finalState.IsConsistent)
            {
                throw new CliFailureException($"the bench blade is inconsistent after the run: {string.Join("; ", finalState.Problems.Take(3))}");
            }

            double wallSeconds = (alloc.WallTicks + free.WallTicks) / (double)Stopwatch.Frequency;
            return new BenchReport(
                Fabric: settings.Fabric,
                Nvm: settings.Nvm == "file" ? "mapped-file" : "simulated",
                NvmDescription: region.Description,
                Size: settings.SizeBytes,
                ObjectSize: objectBytes,
                SlabSize: settings.SlabSizeBytes,
                SlabSizing: settings.SlabSizing.Name,
                MaxSpan: settings.MaxSpan,
                Ops: settings.Ops,
                Threads: settings.Threads,
                AllocNs: Round(alloc.MeanNs(settings.Ops)),
                AllocP50Ns: Round(alloc.PercentileNs(0.50)),
                AllocP99Ns: Round(alloc.PercentileNs(0.99)),
                AllocP999Ns: Round(alloc.PercentileNs(0.999)),
                AllocMaxNs: Round(alloc.PercentileNs(1.0)),
                AllocSampledMeanNs: Round(alloc.SampledMeanNs()),
                FreeNs: Round(free.MeanNs(settings.Ops)),
                FreeP50Ns: Round(free.PercentileNs(0.50)),
                FreeP99Ns: Round(free.PercentileNs(0.99)),
                FreeP999Ns: Round(free.PercentileNs(0.999)),
                FreeMaxNs: Round(free.PercentileNs(1.0)),
                FreeSampledMeanNs: Round(free.SampledMeanNs()),
                ThroughputOpsPerS: Math.Round(2.0 * settings.Ops / Math.Max(wallSeconds, 1e-9)),
                SlabAcquires: slabsAcquired,
                SlabsReturned: slabsReturned,
                AcquisitionRoundTrips: acquisitionRoundTrips,
                RttPerSlab: slabsAcquired == 0 ? 0 : Math.Round(acquisitionRoundTrips / (double)slabsAcquired, 4),
                AcquisitionsPerMillionAllocations: Math.Round(slabsAcquired * 1e6 / settings.Ops, 1),
                Fragmentation: heldBytes <= 0 ? 0 : Math.Round(1.0 - ((double)liveBytes / heldBytes), 4),
                HeldBytes: heldBytes,
                LiveBytes: liveBytes,
                SlabsBySpan: slabsBySpan,
                BladeCallsOnCriticalPath: criticalPathCalls,
                AgentPassesBetweenPhases: agentPassesBetweenPhases,
                Phases: phases.Count,
                SampleEvery: SampleEvery,
                Compaction: compaction);
        }
        finally
        {
            region.Dispose();
            if (file is not null)
            {
                File.Delete(file);
            }
        }
    }

    /// <summary>
    /// Defragmentation, measured apart from the timed run so it cannot disturb its latencies: the objects are allocated
    /// again, a random <see cref="BenchSettings.CompactPercent"/> of them freed, and the heap compacted with the agent
    /// running (emptied slabs go back to the blade); the relocation callback only updates the bench's pointer table.
    /// </summary>
    private static async Task<BenchCompactionReport> MeasureCompactionAsync(EmbeddedBlade blade, WorkingNodeHeap heap, BenchSettings settings, CancellationToken cancellationToken)
    {
        // The timed run's slabs are Freeing until the node publishes past their epoch: reclaim them first.
        for (int round = 0; round < 100 && blade.Image.Scan().Count(SlabState.Freeing) > 0; round++)
        {
            await heap.PublishEpochsAsync(cancellationToken).ConfigureAwait(false);
            blade.Agent.RunOnce();
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var agent = blade.RunAgentAsync(stop.Token);
        var epochs = heap.MaintainAsync(TimeSpan.FromMilliseconds(1), stop.Token);
        try
        {
            long objects = Math.Min(settings.Ops, MaxCompactionObjects);
            var slotOf = new Dictionary<RemotePtr, long>();
            var ptrs = new RemotePtr[objects];
            for (long i = 0; i < objects; i++)
            {
                ptrs[i] = await heap.AllocateAsync(settings.SizeBytes, cancellationToken).ConfigureAwait(false);
            }

            var random = new Random(1);
            for (long i = 0; i < objects; i++)
            {
                if (random.Next(100) < settings.CompactPercent)
                {
                    await heap.FreeAsync(ptrs[i], cancellationToken).ConfigureAwait(false);
                    ptrs[i] = RemotePtr.Null;
                }
                else
                {
                    slotOf[ptrs[i]] = i;
                }
            }

            var report = await heap.CompactAsync((from, to, _) =>
            {
                long slot = slotOf[from];
                slotOf.Remove(from);
                slotOf[to] = slot;
                ptrs[slot] = to;
                return ValueTask.CompletedTask;
            }, cancellationToken: cancellationToken).ConfigureAwait(false);

            foreach (var ptr in ptrs.Where(p => !p.IsNull))
            {
                await heap.FreeAsync(ptr, cancellationToken).ConfigureAwait(false);
            }

            return new BenchCompactionReport(
                FreedPercent: settings.CompactPercent,
                Objects: objects,
                LiveObjects: report.Before.LiveObjects,
                UtilizationBefore: Math.Round(report.Before.Utilization, 4),
                UtilizationAfter: Math.Round(report.After.Utilization, 4),
                SlabsHeldBefore: report.Before.SlabsHeld,
                SlabsHeldAfter: report.After.SlabsHeld,
                ObjectsMoved: report.ObjectsMoved,
                BytesMoved: report.BytesMoved,
                SlabsReturned: report.SlabsReturned,
                RoundTripsPerMovedObject: report.ObjectsMoved == 0 ? 0 : Math.Round(report.Fabric.RoundTrips / (double)report.ObjectsMoved, 3),
                ElapsedMs: Math.Round(report.Elapsed.TotalMilliseconds, 1));
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await agent.ConfigureAwait(false);
            await epochs.ConfigureAwait(false);
        }
    }

    /// <summary>Objects the compaction measurement allocates at most (it is a side measurement; keep it short).</summary>
    private const long MaxCompactionObjects = 200_000;

    private static long SpanCount(HeapStatistics statistics, int spanClass) =>
        statistics.SlabsBySpanClass is { } counts && spanClass < counts.Count ? counts[spanClass] : 0;

    /// <summary>Base ring entries of a bench blade with spans: short, so the base ring does not take the runs the span rings need.</summary>
    private const uint SpanBenchBaseRing = 64;

    /// <summary>Entries of each span ring on a bench blade with spans (the format default).</summary>
    private const uint SpanBenchSpanRing = 4;

    /// <summary>
    /// The span classes the policy may take for the measured object on the bench blade, and how many objects a slab
    /// of each holds at least. A fixed policy takes one class (the paused agent never answers Exhausted, so the heap
    /// never falls back); adaptive any class from the smallest that holds the object to the largest.
    /// </summary>
    internal sealed record SpanPlan(IReadOnlyList<int> Classes, ulong BaseSlabBytes, int ObjectBytes)
    {
        public int SmallestClass => Classes.Min();

        /// <summary>Objects a slab of <paramref name="spanClass"/> holds, counting a header bound of 4 KiB (at least 1: the heap takes it only when one fits).</summary>
        public long ObjectsPerSlab(int spanClass) =>
            Math.Max(1, (long)(((BaseSlabBytes << spanClass) - SlabHeaderBoundBytes) / (ulong)ObjectBytes));

        public static SpanPlan For(BenchSettings settings, int objectBytes)
        {
            int maxClass = BitOperations.Log2(settings.MaxSpan);
            // As the heap: the smallest class whose slab holds one object after its 64-byte header.
            int smallest = 0;
            while (smallest <= maxClass && (settings.SlabSizeBytes << smallest) < (ulong)objectBytes + 64)
            {
                smallest++;
            }

            if (smallest > maxClass)
            {
                throw new CliUsageException(settings.MaxSpan == 1
                    ? $"--size {settings.SizeBytes} (class {objectBytes} bytes) does not fit in a --slab-size {ByteSize.Format(settings.SlabSizeBytes)} slab; use a larger slab."
                    : $"--size {settings.SizeBytes} (class {objectBytes} bytes) does not fit in a slab of --max-span {settings.MaxSpan} x --slab-size {ByteSize.Format(settings.SlabSizeBytes)}; use a larger slab or span.");
            }

            int[] classes = settings.SlabSizing.FixedSpan is { } span
                ? [Math.Clamp(BitOperations.Log2(span), smallest, maxClass)]
                : [.. Enumerable.Range(smallest, maxClass - smallest + 1)];
            return new SpanPlan(classes, settings.SlabSizeBytes, objectBytes);
        }
    }

    /// <summary>Runs <paramref name="count"/> operations from <paramref name="start"/> split over threads, timing them.</summary>
    private static async Task RunPhaseAsync(int threads, long start, long count, PhaseTimings timings, Func<long, CancellationToken, ValueTask> operation, CancellationToken cancellationToken)
    {
        long perThread = (count + threads - 1) / threads;
        var workers = new Task<(long Ticks, List<long> Samples)>[threads];
        long wallStart = Stopwatch.GetTimestamp();
        for (int t = 0; t < threads; t++)
        {
            long from = start + Math.Min(count, t * perThread);
            long to = start + Math.Min(count, (t + 1) * perThread);
            workers[t] = Task.Run(() => WorkerAsync(from, to, operation, cancellationToken), cancellationToken);
        }

        var results = await Task.WhenAll(workers).ConfigureAwait(false);
        timings.WallTicks += Stopwatch.GetTimestamp() - wallStart;
        foreach (var (ticks, samples) in results)
        {
            timings.BusyTicks += ticks;
            timings.Samples.AddRange(samples);
        }
    }

    private static async Task<(long Ticks, List<long> Samples)> WorkerAsync(long from, long to, Func<long, CancellationToken, ValueTask> operation, CancellationToken cancellationToken)
    {
        var samples = new List<long>((int)((to - from) / SampleEvery) + 1);
        long begin = Stopwatch.GetTimestamp();
        for (long i = from; i < to; i++)
        {
            if (i % SampleEvery == 0)
            {
                long t0 = Stopwatch.GetTimestamp();
                await operation(i, cancellationToken).ConfigureAwait(false);
                samples.Add(Stopwatch.GetTimestamp() - t0);
            }
            else
            {
                var pending = operation(i, cancellationToken);
                if (!pending.IsCompletedSuccessfully)
                {
                    await pending.ConfigureAwait(false);
                }
            }
        }

        return (Stopwatch.GetTimestamp() - begin, samples);
    }

    /// <summary>JIT and caches warm on another size class, so the measured class starts with no slab of its own.</summary>
    private static async Task WarmUpAsync(WorkingNodeHeap heap, int measuredSize, CancellationToken cancellationToken)
    {
        int warmSize = SizeClasses.ClassOf(measuredSize) == 0 ? 32 : 16;
        var warm = new RemotePtr[2_000];
        for (int round = 0; round < 3; round++)
        {
            for (int i = 0; i < warm.Length; i++)
            {
                warm[i] = await heap.AllocateAsync(warmSize, cancellationToken).ConfigureAwait(false);
            }

            for (int i = 0; i < warm.Length; i++)
            {
                await heap.FreeAsync(warm[i], cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The smallest region (rounded up to 1 MiB) whose geometry holds <paramref name="slabs"/> slabs.</summary>
    internal static ulong RegionBytesFor(ulong slabs, ulong slabSizeBytes, BladeFormatOptions options)
    {
        const ulong Mebibyte = 1 << 20;
        ulong region = slabs * slabSizeBytes + Mebibyte;
        for (int attempt = 0; attempt < 16; attempt++)
        {
            var geometry = BladeGeometry.ForRegion(region, slabSizeBytes, options);
            if (geometry.SlabCount >= slabs)
            {
                return region;
            }

            region += (slabs - geometry.SlabCount) * slabSizeBytes + Mebibyte;
        }

        return region;
    }

    private static double Round(double value) => Math.Round(value, 1);

    private static void WriteText(TextWriter o, BenchReport r)
    {
        string F(double value) => value.ToString("0.0", CultureInfo.InvariantCulture);
        o.WriteLine($"bench: {r.Ops} allocations then {r.Ops} frees of {r.Size} B (size class {r.ObjectSize} B), {r.Threads} thread{(r.Threads == 1 ? "" : "s")}, "
            + $"{r.Fabric} fabric, {ByteSize.Format(r.SlabSize)} slabs"
            + (r.MaxSpan == 1 && r.SlabSizing == SlabSizingChoice.Default.Name ? "" : $", slab sizing {r.SlabSizing}, spans up to {r.MaxSpan} ({ByteSize.Format(r.SlabSize * r.MaxSpan)})"));
        ImageReportWriter.Line(o, "  blade nvm", r.NvmDescription);
        ImageReportWriter.Line(o, "  allocate", $"mean {F(r.AllocNs)} ns/op; sampled: p50 {F(r.AllocP50Ns)}, p99 {F(r.AllocP99Ns)}, p99.9 {F(r.AllocP999Ns)}, max {F(r.AllocMaxNs)} ns");
        ImageReportWriter.Line(o, "  free", $"mean {F(r.FreeNs)} ns/op; sampled: p50 {F(r.FreeP50Ns)}, p99 {F(r.FreeP99Ns)}, p99.9 {F(r.FreeP999Ns)}, max {F(r.FreeMaxNs)} ns");
        ImageReportWriter.Line(o, "  throughput", string.Create(CultureInfo.InvariantCulture, $"{r.ThroughputOpsPerS / 1e6:0.00} M ops/s (allocations + frees over wall time)"));
        ImageReportWriter.Line(o, "  slabs", string.Create(CultureInfo.InvariantCulture,
            $"{r.SlabAcquires} acquired ({r.AcquisitionsPerMillionAllocations:0.#} per million allocations), {r.SlabsReturned} returned"));
        ImageReportWriter.Line(o, "  by size", string.Join(", ", r.SlabsBySpan.Select(c => $"{ByteSize.Format(c.SlabBytes)} x {c.Slabs}")));
        ImageReportWriter.Line(o, "  fragmentation", string.Create(CultureInfo.InvariantCulture,
            $"{r.Fragmentation * 100:0.##}% of the {ByteSize.Format((ulong)Math.Max(0, r.HeldBytes))} the measured class holds with every object live is not objects (headers, unused tail)"));
        ImageReportWriter.Line(o, "  round trips", string.Create(CultureInfo.InvariantCulture,
            $"{r.AcquisitionRoundTrips} during allocation phases = {r.RttPerSlab:0.###} per slab (FETCH_AND_ADD + READ)"));
        ImageReportWriter.Line(o, "  blade calls", $"{r.BladeCallsOnCriticalPath} on the critical path (agent paused during {r.Phases} timed phase{(r.Phases == 1 ? "" : "s")}; "
            + $"{r.AgentPassesBetweenPhases} passes between them)");
        ImageReportWriter.Line(o, "  sampling", $"percentiles from 1 op in {r.SampleEvery} timed alone; means from the whole timed loops");
        if (r.Compaction is { } c)
        {
            ImageReportWriter.Line(o, "  compaction", string.Create(CultureInfo.InvariantCulture,
                $"{c.Objects} objects allocated again, {c.FreedPercent}% freed at random: utilization {c.UtilizationBefore * 100:0.#}% in {c.SlabsHeldBefore} slabs "
                + $"-> {c.UtilizationAfter * 100:0.#}% in {c.SlabsHeldAfter} slabs; {c.ObjectsMoved} objects moved, {c.SlabsReturned} slabs returned, "
                + $"{c.RoundTripsPerMovedObject:0.###} round trips per moved object, {c.ElapsedMs:0.#} ms"));
        }
    }

    /// <summary>The nearest-rank quantile of sorted Stopwatch tick samples, in nanoseconds (0 for no samples).</summary>
    internal static double PercentileOfSortedTicksNs(IReadOnlyList<long> sortedTicks, double quantile)
    {
        if (sortedTicks.Count == 0)
        {
            return 0;
        }

        int index = (int)Math.Clamp(Math.Ceiling(quantile * sortedTicks.Count) - 1, 0, sortedTicks.Count - 1);
        return sortedTicks[index] * (1e9 / Stopwatch.Frequency);
    }

    private sealed class PhaseTimings
    {
        public long WallTicks { get; set; }

        public long BusyTicks { get; set; }

        public List<long> Samples { get; } = [];

        public double MeanNs(long ops) => ops == 0 ? 0 : BusyTicks * (1e9 / Stopwatch.Frequency) / ops;

        public double SampledMeanNs() => Samples.Count == 0 ? 0 : Samples.Average() * (1e9 / Stopwatch.Frequency);

        public double PercentileNs(double quantile)
        {
            Samples.Sort();
            return PercentileOfSortedTicksNs(Samples, quantile);
        }
    }
}

/// <summary>What <c>bench</c> was asked to run.</summary>
internal sealed record BenchSettings(string Fabric, int SizeBytes, long Ops, int Threads, ulong SlabSizeBytes, string Nvm)
{
    /// <summary>How the node sizes its slabs (<c>--slab-sizing</c>; default: base slabs).</summary>
    public SlabSizingChoice SlabSizing { get; init; } = SlabSizingChoice.Default;

    /// <summary>The bench blade's maximum span in base slabs (<c>--max-span</c>; default 1).</summary>
    public uint MaxSpan { get; init; } = 1;

    /// <summary>Percentage of objects freed before the compaction measurement (<c>--compact</c>; 0: no such measurement).</summary>
    public int CompactPercent { get; init; }
}

/// <summary>The defragmentation measurement of <c>bench --compact</c> (utilization = live object bytes / bytes of slabs held).</summary>
internal sealed record BenchCompactionReport(
    int FreedPercent,
    long Objects,
    long LiveObjects,
    double UtilizationBefore,
    double UtilizationAfter,
    long SlabsHeldBefore,
    long SlabsHeldAfter,
    long ObjectsMoved,
    long BytesMoved,
    int SlabsReturned,
    double RoundTripsPerMovedObject,
    double ElapsedMs);

/// <summary>What <c>bench</c> measured (the <c>--json</c> object, snake_case keys).</summary>
internal sealed record BenchReport(
    string Fabric,
    string Nvm,
    string NvmDescription,
    int Size,
    int ObjectSize,
    ulong SlabSize,
    string SlabSizing,
    uint MaxSpan,
    long Ops,
    int Threads,
    double AllocNs,
    double AllocP50Ns,
    double AllocP99Ns,
    double AllocP999Ns,
    double AllocMaxNs,
    double AllocSampledMeanNs,
    double FreeNs,
    double FreeP50Ns,
    double FreeP99Ns,
    double FreeP999Ns,
    double FreeMaxNs,
    double FreeSampledMeanNs,
    double ThroughputOpsPerS,
    long SlabAcquires,
    long SlabsReturned,
    long AcquisitionRoundTrips,
    double RttPerSlab,
    double AcquisitionsPerMillionAllocations,
    double Fragmentation,
    long HeldBytes,
    long LiveBytes,
    IReadOnlyList<SpanCountReport> SlabsBySpan,
    long BladeCallsOnCriticalPath,
    long AgentPassesBetweenPhases,
    int Phases,
    int SampleEvery,
    BenchCompactionReport? Compaction = null);
