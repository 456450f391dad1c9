namespace RAllocator.Coyote.Tests.Simulation;

/// <summary>
/// The invariants of DESIGN.md, by the names every assertion message starts with. Seeded-bug tests assert on these
/// names, so a report that only counts bugs (for instance "Deadlock detected" from an un-rewritten assembly) never
/// passes for the wrong reason.
/// </summary>
internal static class Invariant
{
    /// <summary>A slab is never held by two live nodes, and an object is never live twice.</summary>
    public const string NoDoubleAllocation = "No double allocation";

    /// <summary>A restarted node gets back exactly the slabs it held; a blade crash loses no acknowledged ownership.</summary>
    public const string DurableOwnership = "Durable ownership";

    /// <summary>A freed slab is not reused while a guard that took a reference into it before its free is open.</summary>
    public const string SafeReuse = "Safe reuse";

    /// <summary>After a quiesce every slab is free, in the ring, or owned by a node that can recover it.</summary>
    public const string NoPermanentLeak = "No permanent leak";

    /// <summary>Compaction: every live object is reachable from the application's data exactly once and holds its content.</summary>
    public const string ReachableOnce = "Reachable exactly once";
}
