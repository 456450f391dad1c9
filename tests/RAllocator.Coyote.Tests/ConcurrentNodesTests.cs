using RAllocator.Coyote.Tests.Simulation;

namespace RAllocator.Coyote.Tests;

/// <summary>
/// Two working nodes, each allocating and freeing objects, acquiring and returning slabs and reading the other's
/// objects under epoch guards, against the running blade agent; no crash. Every invariant is checked at every step
/// (no double allocation, safe reuse) and after the final quiesce (no permanent leak).
/// </summary>
public sealed class ConcurrentNodesTests(ITestOutputHelper output)
{
    [Fact]
    public void ConcurrentNodesNeverHoldTheSameSlabOrObject()
    {
        var stats = InvariantExploration.ShouldHoldUnderEverySchedule(nameof(ConcurrentNodesNeverHoldTheSameSlabOrObject), Scenarios.Concurrent, output);
        stats.SlabsAcquired.ShouldBeGreaterThan(stats.Iterations, "the schedules hand out slabs");
        stats.ObjectsAllocated.ShouldBeGreaterThan(stats.Iterations, "the schedules hand out objects");
        stats.GuardedReads.ShouldBeGreaterThan(0, "the schedules read under epoch guards");
    }
}
