using RAllocator.Coyote.Tests.Simulation;

namespace RAllocator.Coyote.Tests;

/// <summary>
/// Every checker has a planted bug it must find: each test breaks one rule of the protocol through its test hooks
/// and asserts that Coyote reports a violation of the invariant that rule protects (the message, not a bug count).
/// </summary>
public sealed class SeededBugTests(ITestOutputHelper output)
{
    [Fact]
    public void ReusingAFreedSlabBeforeItsEpochBreaksSafeReuse() =>
        Find(nameof(ReusingAFreedSlabBeforeItsEpochBreaksSafeReuse), Invariant.SafeReuse,
            Scenarios.GuardedReuse with { AgentFaults = new BladeAgentFaults { ReuseBeforeEpoch = true } });

    [Fact]
    public void ReleasingATicketWhoseTakerIsInFlightBreaksNoDoubleAllocation() =>
        Find(nameof(ReleasingATicketWhoseTakerIsInFlightBreaksNoDoubleAllocation), Invariant.NoDoubleAllocation,
            Scenarios.FastReuse with { AgentFaults = new BladeAgentFaults { ReleaseIgnoresInFlight = true } });

    [Fact]
    public void RingingASlabLeftInTheFreeSetBreaksNoDoubleAllocation() =>
        Find(nameof(RingingASlabLeftInTheFreeSetBreaksNoDoubleAllocation), Invariant.NoDoubleAllocation,
            Scenarios.Concurrent with { AgentFaults = new BladeAgentFaults { RefillLeavesSlabInFreeSet = true } });

    [Fact]
    public void AnUnpersistedAcknowledgementLostInABladeCrashBreaksDurableOwnership() =>
        Find(nameof(AnUnpersistedAcknowledgementLostInABladeCrashBreaksDurableOwnership), Invariant.DurableOwnership,
            Scenarios.BladeCrash with { ClientFaults = new BladeClientFaults { SkipAcknowledgementPersist = true } });

    [Fact]
    public void ARingEntryPublishedBeforeItsMetadataBreaksDurableOwnershipInABladeCrash() =>
        Find(nameof(ARingEntryPublishedBeforeItsMetadataBreaksDurableOwnershipInABladeCrash), Invariant.DurableOwnership,
            Scenarios.BladeCrash with { AgentFaults = new BladeAgentFaults { RingEntryBeforeMetadata = true } });

    [Fact]
    public void NeverReleasingAnAbandonedTicketBreaksNoPermanentLeak() =>
        Find(nameof(NeverReleasingAnAbandonedTicketBreaksNoPermanentLeak), Invariant.NoPermanentLeak,
            Scenarios.NodeCrashes with { AgentFaults = new BladeAgentFaults { NeverReleaseAbandonedTickets = true } });

    [Fact]
    public void CoalescingARunWithOwnedMembersBreaksNoDoubleAllocation() =>
        Find(nameof(CoalescingARunWithOwnedMembersBreaksNoDoubleAllocation), Invariant.NoDoubleAllocation,
            Scenarios.Spans with { AgentFaults = new BladeAgentFaults { SpanRunTakesOwnedMembers = true } });

    private void Find(string testName, string invariant, ClusterScenario scenario)
    {
        var stats = new ClusterStats();
        var outcome = CoyoteHarness.Hunt(testName, invariant, () => SimulatedCluster.RunAsync(scenario, stats), output);
        output.WriteLine(stats.ToString());
        outcome.ShouldHaveFoundViolationOf(invariant);
    }
}
