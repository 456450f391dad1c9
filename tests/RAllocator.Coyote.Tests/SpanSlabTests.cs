using RAllocator.Coyote.Tests.Simulation;

namespace RAllocator.Coyote.Tests;

/// <summary>
/// Several slab sizes under the same invariants: slab tasks acquire slabs of 1, 2 and 4 base slabs from their span
/// rings while objects come and go in base slabs, so the agent coalesces free neighbours into spans and releases
/// spans back into base slabs. The oracle holds a span as every base slab it covers, so a span overlapping anything
/// another node holds is a double allocation.
/// </summary>
public sealed class SpanSlabTests(ITestOutputHelper output)
{
    // Half the default budget each: the span paths share every rule with the base ring, which the other tests
    // explore at full budget, and the suite must stay a few minutes on 2 cores.
    private static uint Iterations => Math.Max(1, CoyoteHarness.Iterations / 2);

    [Fact]
    public void SpansAndBaseSlabsNeverOverlap()
    {
        var stats = InvariantExploration.ShouldHoldUnderEverySchedule(nameof(SpansAndBaseSlabsNeverOverlap), Scenarios.Spans, output, Iterations);
        stats.SlabsAcquired.ShouldBeGreaterThan(stats.Iterations, "the schedules hand out slabs");
    }

    [Fact]
    public void CrashesInTheMiddleOfSpanAcquisitionsAndReturnsLoseAndLeakNothing()
    {
        var stats = InvariantExploration.ShouldHoldUnderEverySchedule(nameof(CrashesInTheMiddleOfSpanAcquisitionsAndReturnsLoseAndLeakNothing), Scenarios.SpanCrashes, output, Iterations);
        stats.NodeCrashes.ShouldBeGreaterThan(stats.Iterations, "the schedules crash nodes");
        stats.BladeCrashes.ShouldBeGreaterThan(stats.Iterations / 2, "most schedules crash the blade");
    }
}
