using RAllocator.Coyote.Tests.Simulation;

namespace RAllocator.Coyote.Tests;

/// <summary>
/// WorkingNodeHeap.CompactAsync under every schedule Coyote explores: compaction (or evacuation of a blade) runs while a
/// worker allocates and frees objects of its own in the same size classes, a reader holds epoch guards on the objects
/// being moved, and the blade agents drain, reclaim and refill (Simulation/CompactionCluster.cs). The oracle's invariants
/// hold at every step, and every live object stays reachable exactly once with its content, before and after a restart.
/// Iterations are modest (a tenth of the suite default) to keep the suite fast.
/// </summary>
public sealed class CompactionConcurrencyTests(ITestOutputHelper output)
{
    private static readonly CompactionScenario s_compaction = new();
    private static readonly CompactionScenario s_migration = new() { Migrate = true, Objects = 8, FreePercent = 50 };

    private static uint Iterations => Math.Max(1, CoyoteHarness.Iterations / 10);

    [Fact]
    public void CompactionAmidConcurrentAllocationsKeepsEveryObjectReachableOnce()
    {
        var stats = Explore(nameof(CompactionAmidConcurrentAllocationsKeepsEveryObjectReachableOnce), s_compaction);
        stats.ObjectsMoved.ShouldBeGreaterThan(stats.Cluster.Iterations, "the schedules move objects");
        stats.SlabsReturned.ShouldBeGreaterThan(0, "the schedules return emptied slabs");
        stats.WorkerAllocations.ShouldBeGreaterThan(0, "the worker allocates while compaction runs");
    }

    [Fact]
    public void MigrationAmidConcurrentAllocationsKeepsEveryObjectReachableOnce()
    {
        var stats = Explore(nameof(MigrationAmidConcurrentAllocationsKeepsEveryObjectReachableOnce), s_migration);
        stats.ObjectsMoved.ShouldBeGreaterThan(stats.Cluster.Iterations, "the schedules move objects off blade 1");
    }

    [Fact]
    public void ReservingTheDestinationLateBreaksNoDoubleAllocation()
    {
        var stats = new CompactionStats();
        var scenario = s_compaction with { Faults = new CompactionFaults { ReserveDestinationLate = true }, WorkerOperations = 6 };
        var outcome = CoyoteHarness.Hunt(nameof(ReservingTheDestinationLateBreaksNoDoubleAllocation), Invariant.NoDoubleAllocation,
            () => CompactionCluster.RunAsync(scenario, stats), output);
        output.WriteLine(stats.ToString());
        outcome.ShouldHaveFoundViolationOf(Invariant.NoDoubleAllocation);
    }

    [Fact]
    public void ReturningTheSourceBeforeItsLastCommitBreaksReachableOnce()
    {
        var stats = new CompactionStats();
        var scenario = s_compaction with { Faults = new CompactionFaults { FreeSourceBeforeCommit = true } };
        var outcome = CoyoteHarness.Hunt(nameof(ReturningTheSourceBeforeItsLastCommitBreaksReachableOnce), Invariant.ReachableOnce,
            () => CompactionCluster.RunAsync(scenario, stats), output);
        output.WriteLine(stats.ToString());
        outcome.ShouldHaveFoundViolationOf(Invariant.ReachableOnce);
    }

    private CompactionStats Explore(string testName, CompactionScenario scenario)
    {
        var stats = new CompactionStats();
        var outcome = CoyoteHarness.Explore(testName, () => CompactionCluster.RunAsync(scenario, stats), output, Iterations);
        output.WriteLine(stats.ToString());
        outcome.ShouldFindNoBug();
        stats.Cluster.CompletedIterations.ShouldBe(stats.Cluster.Iterations, "every iteration reached its final checks");
        return stats;
    }
}
