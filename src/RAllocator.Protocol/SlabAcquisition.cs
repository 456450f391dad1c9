namespace RAllocator.Protocol;

/// <summary>
/// The named steps of acquiring a slab, one-sided. The same names are used by the spin model
/// (<c>spec/model/rallocator.pml</c>), the Coyote tests and <c>spec/protocol.md</c>; a test checks the lists agree.
/// </summary>
/// <remarks>
/// <code>
///  Idle --AnnounceAcquire--> Announced --FetchTicket--> TicketTaken --PostClaim--> Claimed --ReadRingEntry--> EntryRead
///  EntryRead --EntryMatches--> SlabKnown --PostAcknowledgement--> Owned
///  EntryRead --EntryNotFilled--> Claimed (after backoff; bounded)      EntryRead --EntryExhausted--> OutOfMemory
///  Claimed --GiveUp--> Abandoned (retry bound reached: the claim is withdrawn so the blade reclaims the ticket's slab)
/// </code>
/// Only FetchTicket and ReadRingEntry wait for a completion: 2 dependent round trips per slab. AnnounceAcquire,
/// PostClaim, PostAcknowledgement and GiveUp are posted unsignaled; RC ordering places each before the next verb.
/// </remarks>
public enum AcquireState
{
    /// <summary>No acquisition in progress.</summary>
    Idle,

    /// <summary>The node's in-flight bit for this acquisition is posted.</summary>
    Announced,

    /// <summary>FETCH_AND_ADD returned a ticket.</summary>
    TicketTaken,

    /// <summary>The claim (acquisition number and ticket) is posted.</summary>
    Claimed,

    /// <summary>The ring entry for the ticket was read.</summary>
    EntryRead,

    /// <summary>The entry named a slab for this ticket.</summary>
    SlabKnown,

    /// <summary>The acknowledgement is posted (WRITE + PERSIST, unsignaled): the node owns the slab.</summary>
    Owned,

    /// <summary>The blade had no free slab for the ticket.</summary>
    OutOfMemory,

    /// <summary>The retry bound was reached; the claim is withdrawn.</summary>
    Abandoned,
}

/// <summary>The transitions between <see cref="AcquireState"/>s.</summary>
public enum AcquireTransition
{
    /// <summary>Post the in-flight bit with the next acquisition number (unsignaled).</summary>
    AnnounceAcquire,

    /// <summary>RDMA FETCH_AND_ADD on the sequencer (round trip 1).</summary>
    FetchTicket,

    /// <summary>Post the claim word (unsignaled).</summary>
    PostClaim,

    /// <summary>RDMA READ of the ring entry for the ticket (round trip 2).</summary>
    ReadRingEntry,

    /// <summary>The entry is for this ticket and names a slab.</summary>
    EntryMatches,

    /// <summary>The entry is not yet filled for this ticket: back off and read again.</summary>
    EntryNotFilled,

    /// <summary>The entry says the blade is full.</summary>
    EntryExhausted,

    /// <summary>Post the acknowledgement and persist it (unsignaled).</summary>
    PostAcknowledgement,

    /// <summary>Give up after the retry bound (post the in-flight bit cleared, no acknowledgement).</summary>
    GiveUp,
}

/// <summary>The acquisition state machine as a pure transition table.</summary>
public static class SlabAcquisitionMachine
{
    private static readonly Dictionary<(AcquireState, AcquireTransition), AcquireState> s_table = new()
    {
        [(AcquireState.Idle, AcquireTransition.AnnounceAcquire)] = AcquireState.Announced,
        [(AcquireState.Announced, AcquireTransition.FetchTicket)] = AcquireState.TicketTaken,
        [(AcquireState.TicketTaken, AcquireTransition.PostClaim)] = AcquireState.Claimed,
        [(AcquireState.Claimed, AcquireTransition.ReadRingEntry)] = AcquireState.EntryRead,
        [(AcquireState.EntryRead, AcquireTransition.EntryMatches)] = AcquireState.SlabKnown,
        [(AcquireState.EntryRead, AcquireTransition.EntryNotFilled)] = AcquireState.Claimed,
        [(AcquireState.EntryRead, AcquireTransition.EntryExhausted)] = AcquireState.OutOfMemory,
        [(AcquireState.SlabKnown, AcquireTransition.PostAcknowledgement)] = AcquireState.Owned,
        [(AcquireState.Claimed, AcquireTransition.GiveUp)] = AcquireState.Abandoned,
    };

    /// <summary>Every legal transition, for documentation and model cross-checks.</summary>
    public static IReadOnlyDictionary<(AcquireState From, AcquireTransition Via), AcquireState> Transitions => s_table;

    /// <summary>The state after <paramref name="transition"/> from <paramref name="state"/>.</summary>
    /// <exception cref="InvalidOperationException">The transition is not legal from that state.</exception>
    public static AcquireState Next(AcquireState state, AcquireTransition transition) =>
        s_table.TryGetValue((state, transition), out var next)
            ? next
            : throw new InvalidOperationException($"slab acquisition: transition {transition} is not legal from state {state}.");

    /// <summary>Whether <paramref name="state"/> ends an acquisition.</summary>
    public static bool IsTerminal(AcquireState state) => state is AcquireState.Owned or AcquireState.OutOfMemory or AcquireState.Abandoned;
}
