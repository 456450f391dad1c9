namespace RAllocator.Blade;

// Seeded protocol bugs, one per invariant, so the Coyote tests and crash properties can show they catch them.
public sealed partial class BladeAgent
{
    internal BladeAgentFaults Faults { get; set; } = BladeAgentFaults.None;

    // With RefillFirstInFirstOut the free set is keyed by release order instead of wear.
    private ulong _releaseSequence;
}

/// <summary>A deliberately broken agent rule (test hooks only).</summary>
internal sealed record BladeAgentFaults
{
    public static readonly BladeAgentFaults None = new();

    /// <summary>Safe reuse: reclaim freed slabs without waiting for their epoch.</summary>
    public bool ReuseBeforeEpoch { get; init; }

    /// <summary>No double allocation: release an unacknowledged ticket's slab even while its taker is in flight.</summary>
    public bool ReleaseIgnoresInFlight { get; init; }

    /// <summary>No double allocation: the refill forgets to take every other slab out of the free set, so it is ringed twice.</summary>
    public bool RefillLeavesSlabInFreeSet { get; init; }

    /// <summary>No permanent leak: never release the slab of a taken ticket nobody acknowledged.</summary>
    public bool NeverReleaseAbandonedTickets { get; init; }

    /// <summary>Durable ownership: publish a ring entry before the slab is durably Ringed.</summary>
    public bool RingEntryBeforeMetadata { get; init; }

    /// <summary>No double allocation after a blade crash: keep the old ring and sequencer at restart.</summary>
    public bool SkipRestartRecovery { get; init; }

    /// <summary>No double allocation with spans: coalescing only skips runs with a member in flight (Ringed or
    /// Freeing), so a span can be ringed over base slabs that a node owns.</summary>
    public bool SpanRunTakesOwnedMembers { get; init; }

    /// <summary>Not a protocol bug: a first-in-first-out reuse baseline for the wear benchmark (the refill takes the
    /// slab freed longest ago instead of the least worn).</summary>
    public bool RefillFirstInFirstOut { get; init; }
}
