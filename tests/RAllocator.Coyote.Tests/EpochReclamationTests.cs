using RAllocator.Coyote.Tests.Simulation;

namespace RAllocator.Coyote.Tests;

/// <summary>
/// Safe reuse: one node frees objects (one per slab, so each free returns its slab) on a small blade that hands
/// freed slabs out again within a few passes, while the other node holds references into them under epoch guards
/// across several agent passes. No slab may be re-acquired while such a guard is open.
/// </summary>
public sealed class EpochReclamationTests(ITestOutputHelper output)
{
    [Fact]
    public void AFreedSlabIsNotReusedWhileAGuardFromBeforeItsFreeIsOpen()
    {
        var stats = InvariantExploration.ShouldHoldUnderEverySchedule(nameof(AFreedSlabIsNotReusedWhileAGuardFromBeforeItsFreeIsOpen), Scenarios.GuardedReuse, output);
        stats.GuardedFrees.ShouldBeGreaterThan(stats.Iterations / 20, "schedules free slabs while another node's guard holds a reference into them");
    }
}
