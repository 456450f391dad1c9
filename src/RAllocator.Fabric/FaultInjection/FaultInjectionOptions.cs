namespace RAllocator.Fabric.FaultInjection;

/// <summary>Which failures a <see cref="FaultInjectingConnection"/> injects, and the seed that makes them repeatable.</summary>
public sealed record FaultInjectionOptions
{
    /// <summary>Seeds the only source of randomness; the same seed and the same sequence of calls fail the same operations.</summary>
    public int Seed { get; init; }

    /// <summary>
    /// Ordinals (1 for the first call) of operations that fail whatever the probability: a way to fail exactly
    /// the k-th verb or batch of a protocol run.
    /// </summary>
    public IReadOnlySet<long> FailingOperations { get; init; } = new HashSet<long>();

    /// <summary>Chance, in [0, 1], that any operation fails. Zero (the default) injects no random faults.</summary>
    public double FailureProbability { get; init; }

    /// <summary>Whether an injected fault hits before the operation executes, after it, or either (seeded coin).</summary>
    public InjectedFaultTiming Timing { get; init; } = InjectedFaultTiming.BeforeExecution;

    /// <summary>
    /// From this operation ordinal on, unsignaled batches are silently dropped: the node crashed with them still in
    /// its send queue. Null (the default) drops none until <see cref="FaultInjectingConnection.DropUnsignaledFromNow"/>.
    /// </summary>
    public long? DropUnsignaledFromOperation { get; init; }
}

/// <summary>When an injected fault strikes relative to the operation's effect at the blade.</summary>
public enum InjectedFaultTiming
{
    /// <summary>The operation never reaches the blade: nothing changed, and retrying is safe.</summary>
    BeforeExecution,

    /// <summary>
    /// The operation took effect at the blade but its completion was lost: the caller sees a failure although a
    /// write landed or an atomic was applied. This is the case that makes a blind retry of FETCH_AND_ADD unsafe.
    /// </summary>
    AfterExecution,

    /// <summary>Each injected fault picks one of the two timings with the seeded generator.</summary>
    Either,
}
