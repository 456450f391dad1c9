using RAllocator.Protocol.Tests.HeapModel;

namespace RAllocator.Protocol.Tests;

/// <summary>
/// Model-based tests of working nodes and one blade: random command sequences (allocate, free, write, set root,
/// publish epochs, epoch guards, agent passes, node crashes and restarts, blade power failures) on 2 or 3 nodes,
/// checked after every command against a reference model (HeapModel/HeapModelRun.cs). Counterexamples shrink to
/// minimal command lists; the replay seed is printed first.
/// </summary>
public sealed class WorkingNodeHeapModelTests(ITestOutputHelper output)
{
    private const int Scenarios = 150;

    // Planted-bug runs stop at the first failure; this bounds them if a bug were ever missed.
    private const int PlantedBugScenarios = 300;

    [Fact]
    public void RandomCommandSequencesOnTwoOrThreeNodesKeepEveryInvariant()
    {
        var elapsed = HeapModelCheck.Run(HeapModelCheck.SeedFromEnvironmentOrRandom(), HeapModelCheck.TestCount(Scenarios), PlantedFaults.None, output.WriteLine);
        output.WriteLine($"passed in {elapsed.TotalSeconds:F1} s; so far in this process: {HeapModelRun.Totals}");
    }

    [Fact]
    public void TheModelCatchesAnAcknowledgementThatIsNeverPersisted()
    {
        var failure = FailureOf(new PlantedFaults(Client: new BladeClientFaults { SkipAcknowledgementPersist = true }));

        failure.ShouldContain($"[{Invariants.DurableOwnership}]",
            customMessage: "an acknowledgement lost by a blade power failure loses a slab the node held");
    }

    [Fact]
    public void TheModelCatchesAFreedSlabReusedBeforeItsEpoch()
    {
        var failure = FailureOf(new PlantedFaults(Agent: new BladeAgentFaults { ReuseBeforeEpoch = true }));

        failure.ShouldContain($"[{Invariants.SafeReuse}]",
            customMessage: "a slab handed out again before every node passed its free's epoch");
    }

    [Fact]
    public void TheModelCatchesTheRefillRingingASlabTwice()
    {
        var failure = FailureOf(new PlantedFaults(Agent: new BladeAgentFaults { RefillLeavesSlabInFreeSet = true }));

        // Ringing a slab again overwrites its generation, so the blade rejects the first taker's acknowledgement
        // (its ownership is not durable) before a second node can even be handed the slab.
        failure.ShouldMatch($@"\[({Invariants.NoDoubleAllocation}|{Invariants.DurableOwnership})\]",
            customMessage: "a slab ringed twice is handed to two nodes");
    }

    private string FailureOf(PlantedFaults faults)
    {
        ulong seed = HeapModelCheck.SeedFromEnvironmentOrRandom();
        var failure = Should.Throw<Exception>(
            () => HeapModelCheck.Run(seed, PlantedBugScenarios, faults, output.WriteLine),
            $"the model check must find the planted bug {faults} (seed {seed})");
        output.WriteLine(failure.Message);
        return failure.Message;
    }
}
