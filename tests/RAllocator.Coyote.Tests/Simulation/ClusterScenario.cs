namespace RAllocator.Coyote.Tests.Simulation;

/// <summary>
/// What one Coyote iteration runs: the blade's geometry, the working nodes and their tasks, the faults to inject and
/// the seeded bugs to plant. Every bound is here, so every iteration is finite and short.
/// </summary>
internal sealed record ClusterScenario
{
    /// <summary>Working nodes (ids 0..Nodes-1); the blade is formatted for <see cref="MaxNodes"/>.</summary>
    public int Nodes { get; init; } = 2;

    /// <summary>Node slots on the blade.</summary>
    public uint MaxNodes { get; init; } = 3;

    /// <summary>Simulated NVM size: 1 MiB of 64 KiB slabs is 15 slabs, few enough that freed slabs are soon reused.</summary>
    public long RegionBytes { get; init; } = 1 << 20;

    /// <summary>
    /// Ring sizes; each iteration formats its blade with one of them, chosen by Coyote. A ring of 4 is mostly full
    /// ahead of the nodes; a ring of 1 runs empty, so nodes poll for their entry while the agent writes it.
    /// </summary>
    public IReadOnlyList<uint> RingCapacities { get; init; } = [4];

    /// <summary>Largest slab in base slabs (1: no span rings). Above 1, slab tasks acquire every span class, Coyote choosing which.</summary>
    public uint MaxSlabSpan { get; init; } = 1;

    /// <summary>Agent passes without a heartbeat before a node's lease expires and the blade fences it.</summary>
    public uint NodeLeaseTicks { get; init; } = 12;

    /// <summary>
    /// Tasks per node that allocate, write and free objects (1 to 3 objects per slab, so slabs come and go) and
    /// publish epochs (the node's heartbeat).
    /// </summary>
    public int ObjectTasksPerNode { get; init; } = 1;

    /// <summary>Tasks per node that acquire a slab from the blade directly and return it.</summary>
    public int SlabTasksPerNode { get; init; } = 1;

    /// <summary>Operations each worker task performs over all of its node's lives.</summary>
    public int OperationsPerTask { get; init; } = 3;

    /// <summary>Rounds of the reader task each node runs (0: none): publish epochs, then read another node's object under an epoch guard.</summary>
    public int ReaderRounds { get; init; } = 2;

    /// <summary>Agent passes a reader keeps its guard open across (1 to this many), reading the object or publishing epochs after each.</summary>
    public int GuardHoldPasses { get; init; } = 1;

    /// <summary>Node crashes injected per node, each at a Coyote-chosen point.</summary>
    public int NodeCrashesPerNode { get; init; }

    /// <summary>Node verbs (counted over all nodes) within which each injected node crash lands.</summary>
    public int NodeCrashWindow { get; init; } = 160;

    /// <summary>Whether a crashed node may stay down until the final quiesce (its lease then expires).</summary>
    public bool CrashedNodesMayStayDown { get; init; }

    /// <summary>Blade crashes (power failures, losing unpersisted stores) injected, each in a Coyote-chosen agent pass.</summary>
    public int BladeCrashes { get; init; }

    /// <summary>One in this many agent passes is chosen for a pending blade crash.</summary>
    public int BladeCrashOneInPasses { get; init; } = 12;

    /// <summary>Upper bound on the agent's passes in the main phase.</summary>
    public int MaxAgentPasses { get; init; } = 2000;

    /// <summary>Lives per node in the main phase (first open plus reopens).</summary>
    public int MaxLivesPerNode { get; init; } = 5;

    public int RingReadRetryLimit { get; init; } = 40;

    /// <summary>Seeded agent bugs (test hooks); None for the real protocol.</summary>
    public BladeAgentFaults AgentFaults { get; init; } = BladeAgentFaults.None;

    /// <summary>Seeded node-side bugs (test hooks); None for the real protocol.</summary>
    public BladeClientFaults ClientFaults { get; init; } = BladeClientFaults.None;

    /// <summary>Object sizes the workers allocate: 20000, 24000 and 30000 bytes are 3, 2 and 1 objects per 64 KiB slab.</summary>
    public IReadOnlyList<int> ObjectSizes { get; init; } = [20_000, 24_000, 30_000];
}

/// <summary>What the iterations of one test did, summed, to show the schedules reached the interesting states.</summary>
internal sealed class ClusterStats
{
    public long Iterations;
    public long CompletedIterations;
    public long SlabsAcquired;
    public long SlabsReturned;
    public long ObjectsAllocated;
    public long GuardedFrees;
    public long NodeCrashes;
    public long Fences;
    public long BladeCrashes;
    public long Reopens;
    public long OutOfMemory;
    public long Stalls;
    public long AgentPasses;
    public long Publications;
    public long GuardedReads;
    public long Backoffs;
    public long Verbs;
    public long AgentInterleaves;

    public override string ToString() =>
        $"{CompletedIterations}/{Iterations} iterations completed; slabs acquired {SlabsAcquired}, returned {SlabsReturned}; " +
        $"objects {ObjectsAllocated}; frees of a slab under an open guard {GuardedFrees}; node crashes {NodeCrashes}, " +
        $"fences {Fences}, blade crashes {BladeCrashes}, reopens {Reopens}; out of memory {OutOfMemory}, stalls {Stalls}; agent passes {AgentPasses}, epoch publications {Publications}, guarded reads {GuardedReads}, backoffs {Backoffs}; verb calls {Verbs}, agent persist points {AgentInterleaves}";
}
