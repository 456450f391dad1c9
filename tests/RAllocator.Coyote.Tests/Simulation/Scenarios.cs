namespace RAllocator.Coyote.Tests.Simulation;

/// <summary>The scenarios the tests explore; seeded-bug tests plant one fault into one of them.</summary>
internal static class Scenarios
{
    /// <summary>Two nodes allocating, freeing, acquiring and returning slabs, reading each other's objects; no crash.</summary>
    public static ClusterScenario Concurrent { get; } = new();

    /// <summary>
    /// Each node crashes once at a Coyote-chosen point and may stay down until the final quiesce; in most schedules
    /// the blade loses power once too (in a pass, between passes, or right after a node's acquisition).
    /// </summary>
    public static ClusterScenario Crashes { get; } = new()
    {
        NodeCrashesPerNode = 1,
        CrashedNodesMayStayDown = true,
        BladeCrashes = 1,
        BladeCrashOneInPasses = 12,
        RingCapacities = [1, 4],
    };

    /// <summary>Each node crashes once at a Coyote-chosen point, and may stay down until the final quiesce.</summary>
    public static ClusterScenario NodeCrashes { get; } = Crashes with { BladeCrashes = 0 };

    /// <summary>The blade loses power once; no node crashes; a ring of one entry, so nodes wait for their entry while the agent writes it.</summary>
    public static ClusterScenario BladeCrash { get; } = Crashes with { NodeCrashesPerNode = 0, BladeCrashOneInPasses = 6, RingCapacities = [1] };

    /// <summary>
    /// Objects of one per slab (freeing one returns its slab) on a blade of 4 slabs with a ring of 2, so a freed slab
    /// is handed out again within a few passes (wear leveling hands out the least worn first), while the other node
    /// reads them under epoch guards held across several agent passes.
    /// </summary>
    public static ClusterScenario GuardedReuse { get; } = new()
    {
        RegionBytes = (24 + (4 * 64)) * 1024,
        RingCapacities = [2],
        ObjectSizes = [30_000],
        SlabTasksPerNode = 0,
        OperationsPerTask = 5,
        ReaderRounds = 3,
        GuardHoldPasses = 4,
    };

    /// <summary>Slabs change hands quickly on a blade of 8 slabs; leases long enough that no node is fenced.</summary>
    public static ClusterScenario FastReuse { get; } = new()
    {
        RegionBytes = SmallBlade,
        OperationsPerTask = 5,
        NodeLeaseTicks = 64,
    };

    /// <summary>
    /// Slabs of 1, 2 and 4 base slabs: slab tasks take every size (Coyote chooses), so spans are coalesced from
    /// base slabs that objects and other spans were just using, and released back into base slabs.
    /// </summary>
    public static ClusterScenario Spans { get; } = new() { MaxSlabSpan = 4, OperationsPerTask = 4 };

    /// <summary><see cref="Crashes"/> with spans: nodes and the blade crash in the middle of span acquisitions and returns.</summary>
    public static ClusterScenario SpanCrashes { get; } = Crashes with { MaxSlabSpan = 4 };

    /// <summary>8 slabs of 64 KiB after the 24 KiB of metadata.</summary>
    private const long SmallBlade = (24 + (8 * 64)) * 1024;
}
