namespace RAllocator.Node;

/// <summary>What <see cref="WorkingNodeHeap.CompactAsync"/> compacts.</summary>
public sealed record CompactionOptions
{
    /// <summary>
    /// A partial slab whose live objects fill less than this fraction of it is a candidate source (default 0.5). Of
    /// the candidates, the sparsest go first, and only as many as the denser slabs of their class can absorb, so
    /// compaction does not need new slabs. Between 0 (exclusive) and 1 (inclusive). Ignored when
    /// <see cref="EvacuateBlade"/> is set.
    /// </summary>
    public double OccupancyThreshold { get; init; } = 0.5;

    /// <summary>
    /// Migration instead of compaction: every slab this node holds on that blade is a source, whatever its
    /// occupancy; its objects move to slabs on other blades (denser ones first, then new slabs from the placement
    /// policy, which is made to skip this blade while compaction runs), and all its slabs are returned. Null (the
    /// default): compact sparse slabs on every blade.
    /// </summary>
    public int? EvacuateBlade { get; init; }
}
