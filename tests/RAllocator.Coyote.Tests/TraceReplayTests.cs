using RAllocator.Coyote.Tests.Simulation;

namespace RAllocator.Coyote.Tests;

/// <summary>A bug Coyote finds is reproducible: replaying its trace (schedule and random choices) finds the same bug.</summary>
public sealed class TraceReplayTests(ITestOutputHelper output)
{
    [Fact]
    public void AFoundBugReplaysFromItsTrace()
    {
        var scenario = Scenarios.Concurrent with { AgentFaults = new BladeAgentFaults { RefillLeavesSlabInFreeSet = true } };
        var found = CoyoteHarness.Explore(nameof(AFoundBugReplaysFromItsTrace), () => SimulatedCluster.RunAsync(scenario, new ClusterStats()), output);
        found.ShouldHaveFoundViolationOf(Invariant.NoDoubleAllocation);
        found.ReproducibleTrace.ShouldNotBeNullOrEmpty();

        var replayed = CoyoteHarness.Replay(nameof(AFoundBugReplaysFromItsTrace), () => SimulatedCluster.RunAsync(scenario, new ClusterStats()), output,
            found.ReproducibleTrace!, found.Seed);

        replayed.BugReports.ShouldBe(found.BugReports, "the replay reaches the same violation, with the same history");
    }
}
