using RAllocator.Coyote.Tests.Simulation;

namespace RAllocator.Coyote.Tests;

/// <summary>
/// The same two nodes, crashed at Coyote-chosen points (some stay down until the quiesce, so their leases expire),
/// with the blade losing power at a Coyote-chosen persist in most schedules. Durable ownership is checked at every
/// restart: a node gets back exactly the slabs it held, whatever was in flight aside, and a blade crash loses no
/// acknowledged ownership. The quiesce then checks that nothing leaked.
/// </summary>
public sealed class CrashRecoveryTests(ITestOutputHelper output)
{
    [Fact]
    public void CrashedNodesAndBladesGetBackExactlyTheirSlabsAndLeakNothing()
    {
        var stats = InvariantExploration.ShouldHoldUnderEverySchedule(nameof(CrashedNodesAndBladesGetBackExactlyTheirSlabsAndLeakNothing), Scenarios.Crashes, output);
        stats.NodeCrashes.ShouldBeGreaterThan(stats.Iterations, "the schedules crash nodes");
        stats.BladeCrashes.ShouldBeGreaterThan(stats.Iterations / 2, "most schedules crash the blade");
        stats.Reopens.ShouldBeGreaterThan(stats.Iterations, "crashed nodes restart and recover");
    }
}
