using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Numerics;
using System.Security.Cryptography;
using RAllocator.Blade;
using RAllocator.Cli.Reporting;
using RAllocator.Fabric;
using RAllocator.Hosting;
using RAllocator.Node;
using RAllocator.Nvm;
using RAllocator.Protocol;
using RAllocator.Protocol.Layout;

namespace RAllocator.Cli.Commands;

/// <summary>What <c>bench --fabric shm|ucx</c> was asked to run.</summary>
internal sealed record RemoteBenchSettings(string Fabric, int SizeBytes, long Ops, int Threads, ulong SlabSizeBytes, IReadOnlyList<BladeEndpoint> Blades, string? TokenFile, uint NodeId, int Acquisitions, string? UcxTransports)
{
    /// <summary>How the node sizes its slabs (<c>--slab-sizing</c>; default: base slabs).</summary>
    public SlabSizingChoice SlabSizing { get; init; } = SlabSizingChoice.Default;

    /// <summary>The in-process blade's maximum span (<c>--max-span</c>); 0 with <c>--blade</c>: the running blades' own.</summary>
    public uint MaxSpan { get; init; } = 1;
}

/// <summary>What <c>bench --fabric shm|ucx</c> measured (the <c>--json</c> object, snake_case keys).</summary>
internal sealed record RemoteBenchReport(
    string Fabric,
    string Blade,
    int Size,
    int ObjectSize,
    string SlabSizing,
    uint MaxSpan,
    long Ops,
    int Threads,
    double AllocThroughputOpsPerS,
    double AllocP50Ns,
    double AllocP99Ns,
    double FreeThroughputOpsPerS,
    double FreeP50Ns,
    double FreeP99Ns,
    long SlabAcquisitionsDuringAllocation,
    double AcquisitionsPerMillionAllocations,
    double Fragmentation,
    long HeldBytes,
    long LiveBytes,
    IReadOnlyList<SpanCountReport> SlabsBySpan,
    double RoundTripsPerAlloc,
    double BytesPerAlloc,
    double RoundTripsPerFree,
    int Acquisitions,
    double AcquireThroughputPerS,
    double AcquireP50Ns,
    double AcquireP99Ns,
    double RoundTripsPerAcquire,
    double BytesPerAcquire,
    double WallSeconds,
    double? BladeCpuMs,
    string BladeCpuSource,
    double? BladeCpuPercentOfOneCore);

/// <summary>
/// <c>bench</c> over a real fabric against a blade server: an in-process server on a temporary image unless
/// <c>--blade</c> names running ones. The blade's agent keeps running (it is a real server), so its CPU time is
/// measured from /proc over the whole run and reported next to the operations it served.
/// </summary>
internal static class RemoteBench
{
    private const uint NodeAreaSlots = 4096;

    public static async Task<RemoteBenchReport> MeasureAsync(RemoteBenchSettings settings, ProgressBar progress, CancellationToken cancellationToken)
    {
        string? directory = null;
        BladeServer? server = null;
        var endpoints = settings.Blades;
        AccessToken token;
        string bladeDescription;
        try
        {
            if (endpoints.Count == 0)
            {
                directory = Directory.CreateTempSubdirectory("rallocator-bench-").FullName;
                var image = Path.Combine(directory, "blade.img");
                FormatFor(image, settings);
                token = AccessToken.FromText(Convert.ToHexString(RandomNumberGenerator.GetBytes(16)));
                server = BladeServer.Start(image, new BladeServerOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0), Token = token, UtilizationReportInterval = TimeSpan.Zero },
                    region => FabricAvailability.BladeExports(region, [settings.Fabric], FabricAvailability.UcxOptionsFor(settings.UcxTransports), _ => { }));
                endpoints = [new BladeEndpoint("127.0.0.1", server.LocalEndPoint.Port)];
                bladeDescription = $"in-process server on a temporary image ({server.Geometry.SlabCount} slabs)";
            }
            else
            {
                token = settings.TokenFile is { } file ? ReadToken(file) : throw new CliUsageException("--blade needs --token-file: the token the blade server was started with.");
                bladeDescription = string.Join(", ", endpoints);
            }

            var heap = await RemoteNode.OpenHeapAsync(endpoints, settings.NodeId, token, FabricAvailability.ConnectorFor(settings.Fabric, FabricAvailability.UcxOptionsFor(settings.UcxTransports)),
                heapOptions: new HeapOptions { SlabSizing = settings.SlabSizing.Policy }, protocolOptions: null, remoteOptions: new RemoteBladeOptions { NodeName = "rallocator bench", RetryFor = TimeSpan.Zero }, cancellationToken).ConfigureAwait(false);
            using var maintenance = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            // Publishing epochs keeps the node's lease and lets the blade reclaim the slabs the run returns.
            var maintain = heap.MaintainAsync(TimeSpan.FromMilliseconds(10), maintenance.Token);
            try
            {
                await heap.CompleteRecoveryAsync([], cancellationToken).ConfigureAwait(false);
                return await RunAsync(heap, server, settings, bladeDescription, progress, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                await maintenance.CancelAsync().ConfigureAwait(false);
                await maintain.ConfigureAwait(false);
                foreach (var blade in heap.Blades)
                {
                    await blade.Connection.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
        catch (BladeRefusedException ex)
        {
            throw new CliFailureException(ex.Message, ex);
        }
        catch (FabricException ex) when (ex.Status == FabricStatus.Unreachable)
        {
            throw new CliFailureException(ex.Message, ex);
        }
        finally
        {
            if (server is not null)
            {
                await server.StopAsync().ConfigureAwait(false);
            }

            if (directory is not null)
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    private static AccessToken ReadToken(string file)
    {
        try
        {
            return AccessToken.ReadFile(file);
        }
        catch (AccessTokenException ex)
        {
            throw new CliFailureException(ex.Message, ex);
        }
    }

    private static void FormatFor(string image, RemoteBenchSettings settings)
    {
        int objectBytes = SizeClasses.Sizes[SizeClasses.ClassOf(settings.SizeBytes)];
        ulong objectsPerSlab = Math.Max(1, (settings.SlabSizeBytes - 4096) / (ulong)objectBytes);
        ulong slabs = ((ulong)settings.Ops + objectsPerSlab - 1) / objectsPerSlab * 2 + (ulong)settings.Acquisitions + 64;
        var options = new BladeFormatOptions { MaxNodes = 4, AckSlotsPerNode = NodeAreaSlots, FreeSlotsPerNode = NodeAreaSlots };
        if (settings.MaxSpan > 1)
        {
            // Slabs of any span hold the objects in about as many base slabs; add what the span rings park, the
            // largest span's worth per ring of slack for alignment, and a base ring that leaves them runs.
            options = options with { MaxSlabSpan = settings.MaxSpan, RingCapacity = (uint)Math.Min(slabs, 256) };
            slabs += options.RingCapacity!.Value + (options.SpanRingCapacity * ((2 * (ulong)settings.MaxSpan) - 2)) + (4 * (ulong)settings.MaxSpan);
        }

        ulong regionBytes = BenchCommand.RegionBytesFor(slabs, settings.SlabSizeBytes, options);
        using var region = MappedFileNvm.Create(image, (long)regionBytes);
        BladeImage.Format(region, settings.SlabSizeBytes, options);
    }

    private static async Task<RemoteBenchReport> RunAsync(WorkingNodeHeap heap, BladeServer? server, RemoteBenchSettings settings, string bladeDescription, ProgressBar progress, CancellationToken cancellationToken)
    {
        var session = heap.Blades[0].Connection as BladeSessionConnection;
        uint bladeMaxSpan = heap.Blades.Min(b => b.Geometry.MaxSlabSpan);
        if (settings.SlabSizing.FixedSpan is { } span && span > bladeMaxSpan)
        {
            throw new CliFailureException($"--slab-sizing {settings.SlabSizing.Name}: the blade serves slabs of at most {bladeMaxSpan} base slabs (formatted with --max-span {bladeMaxSpan}).");
        }

        var (cpuSource, readBladeCpu) = BladeCpuClock(server, session, settings.Blades);
        int objectBytes = SizeClasses.Sizes[SizeClasses.ClassOf(settings.SizeBytes)];

        // Warm-up on the measured class, so JIT and the first slab are not in the figures.
        var warm = new List<RemotePtr>();
        for (int i = 0; i < 1000; i++)
        {
            warm.Add(await heap.AllocateAsync(settings.SizeBytes, cancellationToken).ConfigureAwait(false));
        }

        foreach (var ptr in warm)
        {
            await heap.FreeAsync(ptr, cancellationToken).ConfigureAwait(false);
        }

        var wall = Stopwatch.StartNew();
        var cpuBefore = readBladeCpu();
        var ptrs = new RemotePtr[settings.Ops];
        var statsBefore = heap.GetStatistics();
        long acquiredBefore = statsBefore.SlabsAcquired;
        var before = Counters(heap);
        progress.Stage("allocating", settings.Ops);
        var alloc = await TimeAsync(settings.Threads, settings.Ops, progress, async (i, ct) => ptrs[i] = await heap.AllocateAsync(settings.SizeBytes, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        var allocCounters = Counters(heap).Since(before);
        // The warm-up used the measured class and freed everything, so with every object live the heap holds only it.
        var statsAllocated = heap.GetStatistics();
        long slabsDuringAlloc = statsAllocated.SlabsAcquired - acquiredBefore;
        var slabsBySpan = Enumerable.Range(0, BitOperations.Log2(bladeMaxSpan) + 1).Select(c => new SpanCountReport(
            Span: 1u << c,
            SlabBytes: heap.Blades[0].Geometry.SlabSizeBytes << c,
            Slabs: SpanCount(statsAllocated, c) - SpanCount(statsBefore, c))).ToArray();

        before = Counters(heap);
        progress.Stage("freeing", settings.Ops);
        var free = await TimeAsync(settings.Threads, settings.Ops, progress, (i, ct) => heap.FreeAsync(ptrs[i], ct), cancellationToken).ConfigureAwait(false);
        var freeCounters = Counters(heap).Since(before);

        // Slab acquisition on its own: FETCH_AND_ADD + READ (+ the posted acknowledgement), then the slabs go back.
        progress.Stage("acquiring slabs", settings.Acquisitions);
        var client = heap.Blades[0];
        var acquired = new List<OwnedSlab>();
        var acquireSamples = new long[settings.Acquisitions];
        var acquireCounters = default(FabricCounterSnapshot);
        double acquireSeconds = 0;
        for (int i = 0; i < settings.Acquisitions;)
        {
            // Timed only against entries the agent has already filled: the figure is the node's path (FETCH_AND_ADD +
            // READ), not the agent's refill, which the blade-CPU figure covers.
            long ready = await WaitForReadyEntriesAsync(client, settings.Acquisitions - i, cancellationToken).ConfigureAwait(false);
            long batch = Math.Min(ready, settings.Acquisitions - i);
            before = client.Counters.Snapshot();
            var acquireWall = Stopwatch.StartNew();
            for (long j = 0; j < batch; j++, i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                acquired.Add(await client.AcquireSlabAsync(cancellationToken: cancellationToken).ConfigureAwait(false));
                acquireSamples[i] = Stopwatch.GetTimestamp() - t0;
                progress.Report(i + 1);
            }

            acquireSeconds += acquireWall.Elapsed.TotalSeconds;
            acquireCounters = acquireCounters.Plus(client.Counters.Snapshot().Since(before));
        }

        foreach (var slab in acquired)
        {
            await client.ReturnSlabAsync(slab.SlabIndex, cancellationToken).ConfigureAwait(false);
        }

        var bladeCpu = readBladeCpu() - cpuBefore;
        wall.Stop();
        Array.Sort(acquireSamples);
        double? cpuMs = cpuSource == "unavailable" ? null : Math.Round(bladeCpu.TotalMilliseconds, 1);
        return new RemoteBenchReport(
            Fabric: settings.UcxTransports is { } tls ? $"{settings.Fabric} ({tls})" : settings.Fabric,
            Blade: bladeDescription,
            Size: settings.SizeBytes,
            ObjectSize: objectBytes,
            SlabSizing: settings.SlabSizing.Name,
            MaxSpan: bladeMaxSpan,
            Ops: settings.Ops,
            Threads: settings.Threads,
            AllocThroughputOpsPerS: Math.Round(settings.Ops / alloc.WallSeconds),
            AllocP50Ns: alloc.PercentileNs(0.50),
            AllocP99Ns: alloc.PercentileNs(0.99),
            FreeThroughputOpsPerS: Math.Round(settings.Ops / free.WallSeconds),
            FreeP50Ns: free.PercentileNs(0.50),
            FreeP99Ns: free.PercentileNs(0.99),
            SlabAcquisitionsDuringAllocation: slabsDuringAlloc,
            AcquisitionsPerMillionAllocations: Math.Round(slabsDuringAlloc * 1e6 / settings.Ops, 1),
            Fragmentation: Math.Round(statsAllocated.Fragmentation, 4),
            HeldBytes: statsAllocated.HeldBytes,
            LiveBytes: statsAllocated.LiveBytes,
            SlabsBySpan: slabsBySpan,
            RoundTripsPerAlloc: Ratio(allocCounters.RoundTrips, settings.Ops),
            BytesPerAlloc: Ratio(allocCounters.BytesToBlade + allocCounters.BytesFromBlade, settings.Ops),
            RoundTripsPerFree: Ratio(freeCounters.RoundTrips, settings.Ops),
            Acquisitions: settings.Acquisitions,
            AcquireThroughputPerS: Math.Round(settings.Acquisitions / Math.Max(acquireSeconds, 1e-9)),
            AcquireP50Ns: Percentile(acquireSamples, 0.50),
            AcquireP99Ns: Percentile(acquireSamples, 0.99),
            RoundTripsPerAcquire: Ratio(acquireCounters.RoundTrips, settings.Acquisitions),
            BytesPerAcquire: Ratio(acquireCounters.BytesToBlade + acquireCounters.BytesFromBlade, settings.Acquisitions),
            WallSeconds: Math.Round(wall.Elapsed.TotalSeconds, 3),
            BladeCpuMs: cpuMs,
            BladeCpuSource: cpuSource,
            BladeCpuPercentOfOneCore: cpuMs is { } ms ? Math.Round(ms / 10 / wall.Elapsed.TotalSeconds, 1) : null);
    }

    /// <summary>
    /// Waits (untimed) until the ring holds slab entries for the next tickets, and returns how many are in place.
    /// The entries themselves are read, not the fill mark: the agent persists the mark before it writes them.
    /// </summary>
    private static async Task<long> WaitForReadyEntriesAsync(BladeClient client, int wanted, CancellationToken cancellationToken)
    {
        var word = new byte[8];
        var deadline = Stopwatch.GetTimestamp() + 30 * Stopwatch.Frequency;
        while (true)
        {
            var ring = client.Rings[0];
            await client.Connection.ReadAsync(ring.SequencerOffset, word, cancellationToken).ConfigureAwait(false);
            ulong sequencer = BitConverter.ToUInt64(word);
            long ready = 0;
            while (ready < Math.Min(wanted, ring.Capacity))
            {
                ulong ticket = sequencer + (ulong)ready;
                await client.Connection.ReadAsync(ring.EntryOffset(ticket), word, cancellationToken).ConfigureAwait(false);
                var entry = RingEntryWord.Unpack(BitConverter.ToUInt64(word));
                if (!entry.IsFor(ticket) || entry.Kind != RingEntryKind.Slab)
                {
                    break;
                }

                ready++;
            }

            if (ready >= Math.Min(wanted, 16) || (ready > 0 && Stopwatch.GetTimestamp() > deadline - 25 * Stopwatch.Frequency))
            {
                return ready;
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new CliFailureException("the blade filled no ring entry within 30 s: is its agent running, and does it have free slabs ('rallocator inspect')?");
            }

            await Task.Delay(1, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Where the blade's CPU time comes from: the in-process server's own threads, or /proc of a blade process on this host.</summary>
    private static (string Source, Func<TimeSpan> Read) BladeCpuClock(BladeServer? server, BladeSessionConnection? session, IReadOnlyList<BladeEndpoint> blades)
    {
        if (server is not null)
        {
            return ("agent and fabric threads of the in-process server (/proc/self/task/*/schedstat)", () => server.AgentCpuTime + server.FabricCpuTime);
        }

        var local = blades.Count == 1 && blades[0].Host is "127.0.0.1" or "localhost" or "::1";
        if (session is not null && local && Directory.Exists($"/proc/{session.BladeProcessId}"))
        {
            var pid = session.BladeProcessId;
            return ($"blade process {pid} (/proc/{pid}/stat, whole process, 10 ms resolution)", () => CpuClocks.ProcessCpuTime(pid));
        }

        return ("unavailable", () => TimeSpan.Zero);
    }

    private static long SpanCount(HeapStatistics statistics, int spanClass) =>
        statistics.SlabsBySpanClass is { } counts && spanClass < counts.Count ? counts[spanClass] : 0;

    private static FabricCounterSnapshot Counters(WorkingNodeHeap heap) =>
        heap.Blades.Select(b => b.Counters.Snapshot()).Aggregate((a, b) => a.Plus(b));

    private static double Ratio(long count, long ops) => ops == 0 ? 0 : Math.Round(count / (double)ops, 4);

    private static double Percentile(long[] sortedTicks, double quantile) =>
        Math.Round(BenchCommand.PercentileOfSortedTicksNs(sortedTicks, quantile), 1);

    private static async Task<Timings> TimeAsync(int threads, long ops, ProgressBar progress, Func<long, CancellationToken, ValueTask> operation, CancellationToken cancellationToken)
    {
        long done = 0;
        long perThread = (ops + threads - 1) / threads;
        var samples = new long[ops];
        var wall = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, threads).Select(t => Task.Run(async () =>
        {
            long from = Math.Min(ops, t * perThread), to = Math.Min(ops, (t + 1) * perThread);
            for (long i = from; i < to; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                await operation(i, cancellationToken).ConfigureAwait(false);
                samples[i] = Stopwatch.GetTimestamp() - t0;
                if ((i & 1023) == 0)
                {
                    progress.Report(Interlocked.Add(ref done, 1024));
                }
            }
        }, cancellationToken)).ToArray();
        await Task.WhenAll(workers).ConfigureAwait(false);
        wall.Stop();
        Array.Sort(samples);
        return new Timings(samples, Math.Max(wall.Elapsed.TotalSeconds, 1e-9));
    }

    private sealed record Timings(long[] SortedTicks, double WallSeconds)
    {
        public double PercentileNs(double quantile) => Percentile(SortedTicks, quantile);
    }

    public static void WriteText(TextWriter o, RemoteBenchReport r)
    {
        string F(double value) => value.ToString("0.0", CultureInfo.InvariantCulture);
        o.WriteLine($"bench: {r.Ops} allocations then {r.Ops} frees of {r.Size} B (size class {r.ObjectSize} B), {r.Threads} thread{(r.Threads == 1 ? "" : "s")}, {r.Fabric} fabric"
            + (r.MaxSpan == 1 && r.SlabSizing == SlabSizingChoice.Default.Name ? "" : $", slab sizing {r.SlabSizing}, spans up to {r.MaxSpan}"));
        ImageReportWriter.Line(o, "  blade", r.Blade);
        ImageReportWriter.Line(o, "  allocate", string.Create(CultureInfo.InvariantCulture, $"{r.AllocThroughputOpsPerS / 1e6:0.000} M ops/s; p50 {F(r.AllocP50Ns)} ns, p99 {F(r.AllocP99Ns)} ns; {r.RoundTripsPerAlloc:0.####} round trips and {r.BytesPerAlloc:0.##} bytes per allocation"));
        ImageReportWriter.Line(o, "  free", string.Create(CultureInfo.InvariantCulture, $"{r.FreeThroughputOpsPerS / 1e6:0.000} M ops/s; p50 {F(r.FreeP50Ns)} ns, p99 {F(r.FreeP99Ns)} ns; {r.RoundTripsPerFree:0.####} round trips per free"));
        ImageReportWriter.Line(o, "  acquire", string.Create(CultureInfo.InvariantCulture, $"{r.Acquisitions} slabs alone: {r.AcquireThroughputPerS:0} /s; p50 {F(r.AcquireP50Ns / 1000)} us, p99 {F(r.AcquireP99Ns / 1000)} us; {r.RoundTripsPerAcquire:0.###} round trips, {r.BytesPerAcquire:0} bytes each"));
        string bySize = string.Join(", ", r.SlabsBySpan.Select(c => $"{ByteSize.Format(c.SlabBytes)} x {c.Slabs}"));
        ImageReportWriter.Line(o, "  slabs", string.Create(CultureInfo.InvariantCulture,
            $"{r.SlabAcquisitionsDuringAllocation} acquired during the allocations ({r.AcquisitionsPerMillionAllocations:0.#} per million); by size: {bySize}"));
        ImageReportWriter.Line(o, "  fragmentation", string.Create(CultureInfo.InvariantCulture,
            $"{r.Fragmentation * 100:0.##}% of the {ByteSize.Format(r.HeldBytes)} of slabs held with every object live is not objects"));
        ImageReportWriter.Line(o, "  blade cpu", r.BladeCpuMs is { } ms
            ? string.Create(CultureInfo.InvariantCulture, $"{ms:0.0} ms over {r.WallSeconds:0.000} s ({r.BladeCpuPercentOfOneCore:0.0}% of one core): {r.BladeCpuSource}")
            : "unavailable (the blade is on another host; read it there)");
    }
}
