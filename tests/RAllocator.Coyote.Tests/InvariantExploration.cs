using RAllocator.Coyote.Tests.Simulation;

namespace RAllocator.Coyote.Tests;

/// <summary>Explores a scenario of the real protocol and asserts that no schedule broke an invariant.</summary>
internal static class InvariantExploration
{
    /// <summary>
    /// Runs <see cref="CoyoteHarness.Iterations"/> schedules of <paramref name="scenario"/>; fails with the seed, the
    /// bug report and the trace file if any schedule broke an invariant, or if an iteration never reached its checks.
    /// </summary>
    public static ClusterStats ShouldHoldUnderEverySchedule(string testName, ClusterScenario scenario, ITestOutputHelper output, uint? iterations = null)
    {
        var stats = new ClusterStats();
        var outcome = CoyoteHarness.Explore(testName, () => SimulatedCluster.RunAsync(scenario, stats), output, iterations);
        output.WriteLine(stats.ToString());
        outcome.ShouldFindNoBug();
        stats.CompletedIterations.ShouldBe(stats.Iterations, "every iteration reached its final checks");
        return stats;
    }
}
