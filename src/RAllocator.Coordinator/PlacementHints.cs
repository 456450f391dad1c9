namespace RAllocator.Coordinator;

/// <summary>
/// The coordinator's advice to working nodes, computed from one round of one-sided reads: for each blade, whether
/// new slab requests should go there and with what weight. Soft state: a node keeps using the last hints it got.
/// </summary>
/// <param name="Version">Increases with every refresh of one coordinator.</param>
/// <param name="HighWaterMark">The mark the hints were computed with.</param>
/// <param name="Blades">One hint per blade, by blade id.</param>
public sealed record PlacementHints(long Version, double HighWaterMark, IReadOnlyList<BladeHint> Blades)
{
    /// <summary>Computes hints from blade loads (one per blade, by blade id).</summary>
    /// <param name="version">The hints' version.</param>
    /// <param name="loads">The loads read, by blade id.</param>
    /// <param name="highWaterMark">Utilization at or above which a blade sheds new slab requests.</param>
    public static PlacementHints Compute(long version, IReadOnlyList<BladeLoad> loads, double highWaterMark) =>
        Compute(version, loads, highWaterMark, CoordinatorFaults.None);

    internal static PlacementHints Compute(long version, IReadOnlyList<BladeLoad> loads, double highWaterMark, CoordinatorFaults faults)
    {
        ArgumentNullException.ThrowIfNull(loads);
        var hints = new BladeHint[loads.Count];
        for (int i = 0; i < loads.Count; i++)
        {
            var load = loads[i];
            bool reachable = load.Reachable || faults.IgnoreUnreachable;
            // Headroom: the slabs that can still be placed before the blade reaches the mark. Weighting by headroom
            // bytes (not raw free bytes) sends the least loaded blades proportionally more and the ones near the mark
            // almost nothing, so utilization converges instead of every blade filling at the same rate.
            ulong markSlabs = (ulong)Math.Floor(highWaterMark * load.SlabCount);
            ulong headroomSlabs = faults.IgnoreHighWaterMark
                ? load.FreeSlabs
                : markSlabs > load.UsedSlabs ? markSlabs - load.UsedSlabs : 0;
            bool shed = reachable && headroomSlabs == 0;
            hints[i] = new BladeHint(
                BladeId: load.BladeId,
                Reachable: reachable,
                Shed: shed,
                Weight: reachable ? headroomSlabs * load.SlabSizeBytes : 0,
                Utilization: load.Utilization,
                FreeBytes: load.FreeBytes,
                BladeUid: load.BladeUid);
        }

        return new PlacementHints(version, highWaterMark, hints);
    }
}

/// <summary>The coordinator's advice about one blade.</summary>
/// <param name="BladeId">The blade's id.</param>
/// <param name="Reachable">Whether the coordinator could read the blade; an unreachable blade is tried last of all.</param>
/// <param name="Shed">At or above the high-water mark: tried only after every blade below it reported no free slab.</param>
/// <param name="Weight">Share of new slab requests among blades that are not shed: bytes of headroom below the mark.</param>
/// <param name="Utilization">Fraction of the blade's slabs used when read.</param>
/// <param name="FreeBytes">Free bytes when read.</param>
/// <param name="BladeUid">The blade's superblock identity (0 when unknown): what a node matches the hint to its own blade by.</param>
public readonly record struct BladeHint(int BladeId, bool Reachable, bool Shed, ulong Weight, double Utilization, ulong FreeBytes, ulong BladeUid = 0);
