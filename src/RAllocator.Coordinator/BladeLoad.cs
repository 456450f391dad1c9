namespace RAllocator.Coordinator;

/// <summary>
/// One blade's utilization as the coordinator read it, one-sided, from the blade's control block (the counters the
/// blade agent publishes on every pass) and its superblock (the geometry, read once).
/// </summary>
/// <param name="BladeId">The blade's id (its position in every node's blade list).</param>
/// <param name="Reachable">False when the last read failed; the counts are then the last ones read (or zero).</param>
/// <param name="SlabCount">Base slabs on the blade.</param>
/// <param name="SlabSizeBytes">Size of one base slab.</param>
/// <param name="OwnedSlabs">Slabs owned by working nodes.</param>
/// <param name="RingedSlabs">Slabs placed in the ring, ready to be taken (they count as free: any node may take them).</param>
/// <param name="FreeingSlabs">Slabs returned and waiting for their epoch (they count as used until reclaimed).</param>
/// <param name="AgentHeartbeat">The blade agent's pass counter (a value that stops moving means a stuck agent).</param>
/// <param name="BladeUid">The blade's identity from its superblock (0 before it was read): nodes match hints to their
/// blades by it, so a coordinator whose blade list is in another order than a node's still advises the right blade.</param>
public readonly record struct BladeLoad(
    int BladeId,
    bool Reachable,
    ulong SlabCount,
    ulong SlabSizeBytes,
    ulong OwnedSlabs,
    ulong RingedSlabs,
    ulong FreeingSlabs,
    ulong AgentHeartbeat,
    ulong BladeUid = 0)
{
    /// <summary>Slabs not available to a new acquisition: owned or waiting to be reclaimed.</summary>
    public ulong UsedSlabs => Math.Min(SlabCount, OwnedSlabs + FreeingSlabs);

    /// <summary>Slabs a new acquisition may still get (free or ringed).</summary>
    public ulong FreeSlabs => SlabCount - UsedSlabs;

    /// <summary>Free space in bytes.</summary>
    public ulong FreeBytes => FreeSlabs * SlabSizeBytes;

    /// <summary>Fraction of slabs used, 0 to 1 (1 for a blade whose geometry was never read).</summary>
    public double Utilization => SlabCount == 0 ? 1.0 : (double)UsedSlabs / SlabCount;
}
