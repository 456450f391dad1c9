using RAllocator.Blade;
using RAllocator.Nvm;
using RAllocator.Protocol;
using RAllocator.Protocol.Layout;

namespace RAllocator.Cli.Reporting;

// What `inspect` and `check` show, as data: one tree that the text writer prints and System.Text.Json serializes
// (property names in snake_case, fixed by CliJsonContext and pinned by the CLI tests). Built from a read-only
// BladeImage and its Scan, plus both superblock copies read directly so that a reader sees which copy is current
// and why the other one is not.

/// <summary>Everything <c>inspect</c> reports about a blade image.</summary>
internal sealed record ImageReport(
    string Path,
    NvmReport Nvm,
    GeometryReport Geometry,
    SuperblockReport Superblock,
    UtilizationReport Utilization,
    IReadOnlyList<OwnerReport> Owners,
    IReadOnlyList<NodeReport> Nodes,
    WearReport Wear,
    IReadOnlyList<RingReport> Rings,
    ulong Sequencer,
    ulong FilledThroughTicket,
    ulong RingReady,
    ulong GlobalEpoch,
    string? PendingIntent,
    bool Consistent,
    IReadOnlyList<string> Problems)
{
    /// <summary>Builds the report of <paramref name="image"/> from its scanned <paramref name="state"/>.</summary>
    public static ImageReport Build(string path, INvmRegion region, BladeImage image, BladeState state)
    {
        var geometry = state.Geometry;
        var superblock = state.Superblock;
        var copies = new[]
        {
            CopyReport("A", region, BladeLayout.SuperblockAOffset),
            CopyReport("B", region, BladeLayout.SuperblockBOffset),
        };

        long slabs = state.Slabs.Count;
        long free = state.Count(SlabState.Free);
        var wear = state.Slabs.Select(s => s.WearHandOuts).DefaultIfEmpty(0UL).ToArray();
        double wearMean = wear.Average(w => (double)w);
        var ownedHeads = state.Slabs.Where(s => s.State == SlabState.Owned && s.IsHead).ToArray();
        var nodes = state.Nodes.Where(n => n.Registered).Select(n => new NodeReport(
            Node: n.Node,
            Incarnation: n.Header.Incarnation,
            PublishedEpoch: n.Header.PublishedEpoch,
            Heartbeat: n.Header.Heartbeat,
            AcquisitionInFlight: AcquireStateWord.Unpack(n.Header.AcquireState).InFlight,
            AcksApplied: n.Header.AcksApplied,
            PendingAcks: n.PendingAcks.Count,
            FreesApplied: n.Header.FreesApplied,
            PendingFrees: n.PendingFrees.Count,
            DurablyOwnedSlabs: state.DurablyOwnedBy(n.Node).Count,
            Root: RemotePtr.FromPacked(n.Header.RootPointer).ToString())).ToArray();

        return new ImageReport(
            Path: path,
            Nvm: NvmReport.Of(region),
            Geometry: new GeometryReport(
                RegionSizeBytes: geometry.RegionSizeBytes,
                SlabSizeBytes: geometry.SlabSizeBytes,
                SlabCount: geometry.SlabCount,
                MaxNodes: geometry.MaxNodes,
                RingCapacity: geometry.RingCapacity,
                AckSlotsPerNode: geometry.AckSlotsPerNode,
                FreeSlotsPerNode: geometry.FreeSlotsPerNode,
                MaxSlabSpan: geometry.MaxSlabSpan,
                SpanRingCapacity: geometry.SpanRingCapacity,
                NodeLeaseTicks: geometry.NodeLeaseTicks,
                MetadataBytes: geometry.MetadataBytes,
                DataOffset: geometry.DataOffset),
            Superblock: new SuperblockReport(
                CurrentCopy: image.CurrentSuperblockCopy.ToString(),
                FormatVersion: superblock.FormatVersion,
                Generation: superblock.Generation,
                BladeIncarnation: superblock.BladeIncarnation,
                BladeUid: $"0x{superblock.BladeUid:x16}",
                CleanShutdown: (superblock.Flags & (uint)SuperblockFlags.CleanShutdown) != 0,
                Copies: copies),
            Utilization: new UtilizationReport(
                Slabs: slabs,
                Free: free,
                Ringed: state.Count(SlabState.Ringed),
                Owned: state.Count(SlabState.Owned),
                Freeing: state.Count(SlabState.Freeing),
                Percent: Math.Round(state.Utilization * 100, 2),
                InUseBytes: (ulong)(slabs - free) * geometry.SlabSizeBytes,
                FreeBytes: (ulong)free * geometry.SlabSizeBytes,
                OwnedBySpan: geometry.Rings.All.Select(ring => new SpanCountReport(
                    Span: ring.Span,
                    SlabBytes: ring.Span * geometry.SlabSizeBytes,
                    Slabs: ownedHeads.LongCount(s => s.Span == ring.Span))).ToArray()),
            Owners: state.OwnedByNode.OrderBy(kv => kv.Key).Select(kv => new OwnerReport(
                Node: kv.Key,
                Slabs: kv.Value.Count,
                BaseSlabs: kv.Value.Sum(slab => (long)slab.Span),
                SlabIndexes: kv.Value.Select(slab => slab.Index).Order().ToArray(),
                OwnedSlabs: kv.Value.OrderBy(slab => slab.Index).Select(slab => new OwnedSlabReport(slab.Index, slab.Span, slab.Span * geometry.SlabSizeBytes)).ToArray())).ToArray(),
            Nodes: nodes,
            Wear: new WearReport(
                Min: wear.Min(),
                Mean: Math.Round(wearMean, 3),
                Max: wear.Max(),
                MaxOverMean: wearMean == 0 ? null : Math.Round(wear.Max() / wearMean, 3)),
            Rings: state.Rings.Select(ring => RingReport.Of(ring, geometry, state.Slabs)).ToArray(),
            Sequencer: state.Sequencer,
            FilledThroughTicket: state.FilledThroughTicket,
            RingReady: state.Rings[0].Waiting,
            GlobalEpoch: state.GlobalEpoch,
            PendingIntent: state.PendingIntent is { } intent ? $"{intent.Kind} slab {intent.SlabIndex} node {intent.Node}" : null,
            Consistent: state.IsConsistent,
            Problems: state.Problems);
    }

    private static SuperblockCopyReport CopyReport(string name, INvmRegion region, long offset)
    {
        var copy = Protocol.Layout.Superblock.Read(region, offset);
        var problem = SuperblockCodec.Diagnose(copy, region.Length);
        return new SuperblockCopyReport(
            Copy: name,
            Valid: problem is null,
            Generation: copy.Generation,
            Error: problem?.Error.ToString(),
            Problem: problem?.Reason);
    }
}

/// <summary>The NVM region the image was read through.</summary>
internal sealed record NvmReport(string Backend, string? FallbackReason, string PersistenceDomain, string Description)
{
    public static NvmReport Of(INvmRegion region) => region switch
    {
        MappedFileNvm file => new NvmReport(file.Backend, file.FallbackReason, file.PersistenceDomain.ToString(), file.Description),
        SimulatedNvm => new NvmReport("simulated", null, region.PersistenceDomain.ToString(), region.Description),
        _ => new NvmReport(region.GetType().Name, null, region.PersistenceDomain.ToString(), region.Description),
    };
}

/// <summary>The geometry recorded in the superblock.</summary>
internal sealed record GeometryReport(
    ulong RegionSizeBytes,
    ulong SlabSizeBytes,
    ulong SlabCount,
    uint MaxNodes,
    uint RingCapacity,
    uint AckSlotsPerNode,
    uint FreeSlotsPerNode,
    uint MaxSlabSpan,
    uint SpanRingCapacity,
    uint NodeLeaseTicks,
    long MetadataBytes,
    long DataOffset);

/// <summary>The current superblock and the state of both copies.</summary>
internal sealed record SuperblockReport(
    string CurrentCopy,
    uint FormatVersion,
    ulong Generation,
    ulong BladeIncarnation,
    string BladeUid,
    bool CleanShutdown,
    IReadOnlyList<SuperblockCopyReport> Copies);

/// <summary>One superblock copy: valid or why not.</summary>
internal sealed record SuperblockCopyReport(string Copy, bool Valid, ulong Generation, string? Error, string? Problem);

/// <summary>Base slab counts by state, the bytes in use and free, and the owned slabs by span.</summary>
internal sealed record UtilizationReport(
    long Slabs,
    long Free,
    long Ringed,
    long Owned,
    long Freeing,
    double Percent,
    ulong InUseBytes,
    ulong FreeBytes,
    IReadOnlyList<SpanCountReport> OwnedBySpan);

/// <summary>How many slabs (heads) of one span.</summary>
internal sealed record SpanCountReport(uint Span, ulong SlabBytes, long Slabs);

/// <summary>Slabs in state Owned held by one node: by head, with their spans.</summary>
internal sealed record OwnerReport(uint Node, int Slabs, long BaseSlabs, IReadOnlyList<ulong> SlabIndexes, IReadOnlyList<OwnedSlabReport> OwnedSlabs);

/// <summary>One owned slab: its head index and how many base slabs it spans.</summary>
internal sealed record OwnedSlabReport(ulong Index, uint Span, ulong Bytes);

/// <summary>
/// One ring (span class): its slab size, capacity, sequencer and fill mark (raw tickets, which start at
/// <see cref="SlabRing.FirstTicket"/>), tickets taken and filled entries waiting, and how many slabs of its size the
/// agent could coalesce now from free base slabs (aligned runs whose members are all free).
/// </summary>
internal sealed record RingReport(
    int SpanClass,
    uint Span,
    ulong SlabBytes,
    uint Capacity,
    ulong FirstTicket,
    ulong Sequencer,
    ulong FillMark,
    ulong TicketsTaken,
    ulong Waiting,
    long FreeAlignedRuns)
{
    public static RingReport Of(RingState state, BladeGeometry geometry, IReadOnlyList<SlabRecord> slabs)
    {
        var ring = state.Ring;
        return new RingReport(
            SpanClass: ring.SpanClass,
            Span: ring.Span,
            SlabBytes: ring.Span * geometry.SlabSizeBytes,
            Capacity: ring.Capacity,
            FirstTicket: ring.FirstTicket,
            Sequencer: state.Sequencer,
            FillMark: state.FilledThroughTicket,
            TicketsTaken: state.Sequencer > ring.FirstTicket ? state.Sequencer - ring.FirstTicket : 0,
            Waiting: state.Waiting,
            FreeAlignedRuns: CountFreeAlignedRuns(slabs, ring.Span));
    }

    /// <summary>
    /// Aligned runs of <paramref name="span"/> base slabs that are all free: what the agent's refill could coalesce
    /// now (it considers exactly these runs, heads at multiples of the span). For span 1, the free base slabs.
    /// </summary>
    public static long CountFreeAlignedRuns(IReadOnlyList<SlabRecord> slabs, uint span)
    {
        long runs = 0;
        for (long head = 0; head + span <= slabs.Count; head += span)
        {
            bool free = true;
            for (long member = head; member < head + span && free; member++)
            {
                free = slabs[(int)member].State == SlabState.Free;
            }

            runs += free ? 1 : 0;
        }

        return runs;
    }
}

/// <summary>A registered node's area on the blade.</summary>
internal sealed record NodeReport(
    uint Node,
    ulong Incarnation,
    ulong PublishedEpoch,
    ulong Heartbeat,
    bool AcquisitionInFlight,
    ulong AcksApplied,
    int PendingAcks,
    ulong FreesApplied,
    int PendingFrees,
    int DurablyOwnedSlabs,
    string Root);

/// <summary>Hand-outs per base slab (the wear-leveling counters): min, mean, max, and max / mean (null before any hand-out).</summary>
internal sealed record WearReport(ulong Min, double Mean, ulong Max, double? MaxOverMean);

/// <summary>What <c>check</c> reports.</summary>
internal sealed record CheckReport(string Path, bool Consistent, string? Error, string? Message, IReadOnlyList<string> Problems);
