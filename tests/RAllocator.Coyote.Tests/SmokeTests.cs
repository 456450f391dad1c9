using RAllocator.Coyote.Tests.Simulation;

namespace RAllocator.Coyote.Tests;

public sealed class SmokeTests(ITestOutputHelper output)
{
    [Fact]
    public void Smoke()
    {
        var stats = new ClusterStats();
        var scenario = new ClusterScenario { NodeCrashesPerNode = 1, CrashedNodesMayStayDown = true, BladeCrashes = 1 };
        var outcome = CoyoteHarness.Explore(nameof(Smoke), () => SimulatedCluster.RunAsync(scenario, stats), output, 50);
        output.WriteLine(stats.ToString());
        outcome.ShouldFindNoBug();
    }
}
