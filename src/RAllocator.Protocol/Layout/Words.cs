namespace RAllocator.Protocol.Layout;

/// <summary>Bits of <see cref="Superblock.Flags"/>.</summary>
[Flags]
public enum SuperblockFlags : uint
{
    /// <summary>No flags.</summary>
    None = 0,

    /// <summary>The blade closed the image cleanly (set at shutdown, cleared at open).</summary>
    CleanShutdown = 1,
}

/// <summary>The persistent state of a slab in the ownership table.</summary>
public enum SlabState : uint
{
    /// <summary>Free: in no ring entry and owned by nobody.</summary>
    Free = 0,

    /// <summary>Placed in a ring entry under a ticket; not yet acknowledged by a node.</summary>
    Ringed = 1,

    /// <summary>Owned by a node, which acknowledged it durably.</summary>
    Owned = 2,

    /// <summary>Returned by its node; reusable once every live node has passed <see cref="OwnershipEntry.FreedEpoch"/>.</summary>
    Freeing = 3,
}

/// <summary>What a ring entry holds.</summary>
public enum RingEntryKind : byte
{
    /// <summary>Not yet filled for the ticket that reads it.</summary>
    Empty = 0,

    /// <summary>A slab for the ticket whose tag it carries.</summary>
    Slab = 1,

    /// <summary>The blade had no free slab for this ticket: the taker gets out-of-memory and nothing leaks.</summary>
    Exhausted = 2,
}

/// <summary>
/// A ring entry word: <c>[63..60] kind | [59..32] ticket tag (low 28 bits of the ticket) | [31..0] slab index</c>.
/// One 8-byte word, so a single RDMA READ sees a whole entry.
/// </summary>
public readonly record struct RingEntryWord(RingEntryKind Kind, uint TicketTag, uint SlabIndex)
{
    /// <summary>Bits of the ticket carried in an entry: tickets that differ by less than 2^28 are told apart.</summary>
    public const int TicketTagBits = 28;

    private const ulong TicketTagMask = (1UL << TicketTagBits) - 1;

    /// <summary>The tag a ticket carries in its ring entry.</summary>
    public static uint TagOf(ulong ticket) => (uint)(ticket & TicketTagMask);

    /// <summary>An entry holding <paramref name="slabIndex"/> for <paramref name="ticket"/>.</summary>
    public static RingEntryWord ForSlab(ulong ticket, uint slabIndex) => new(RingEntryKind.Slab, TagOf(ticket), slabIndex);

    /// <summary>An entry telling the taker of <paramref name="ticket"/> that the blade is full.</summary>
    public static RingEntryWord ForExhausted(ulong ticket) => new(RingEntryKind.Exhausted, TagOf(ticket), 0);

    /// <summary>Packs the entry into its 8-byte word.</summary>
    public ulong Pack() => ((ulong)Kind << 60) | ((ulong)(TicketTag & TicketTagMask) << 32) | SlabIndex;

    /// <summary>Unpacks an 8-byte word.</summary>
    public static RingEntryWord Unpack(ulong word) =>
        new((RingEntryKind)(word >> 60), (uint)((word >> 32) & TicketTagMask), (uint)word);

    /// <summary>Whether this entry was written for <paramref name="ticket"/> (any kind but Empty).</summary>
    public bool IsFor(ulong ticket) => Kind != RingEntryKind.Empty && TicketTag == TagOf(ticket);

    /// <summary>
    /// True when the entry is for a ticket after <paramref name="ticket"/> (same slot, a later ring round): tags are
    /// compared as 28-bit serial numbers, so "after" means within half the tag space ahead.
    /// </summary>
    public bool IsForLaterTicketThan(ulong ticket)
    {
        uint ahead = (TicketTag - TagOf(ticket)) & (uint)TicketTagMask;
        return Kind != RingEntryKind.Empty && ahead != 0 && ahead < (1u << (TicketTagBits - 1));
    }
}

/// <summary>
/// An acknowledgement or free-request word: <c>[63..32] sequence number (from 1) | [31..0] slab index</c>;
/// 0 means an empty slot. The sequence number tells the blade which slots are new.
/// </summary>
public readonly record struct SequencedSlabWord(uint Sequence, uint SlabIndex)
{
    /// <summary>Packs into the 8-byte word.</summary>
    public ulong Pack() => ((ulong)Sequence << 32) | SlabIndex;

    /// <summary>Unpacks an 8-byte word.</summary>
    public static SequencedSlabWord Unpack(ulong word) => new((uint)(word >> 32), (uint)word);

    /// <summary>Whether the slot holds a record (sequence numbers start at 1).</summary>
    public bool IsPresent => Sequence != 0;
}

/// <summary>
/// A node's acquisition state: <c>[63..1] acquisition number | [0] in flight</c>. The node posts it in flight
/// before its FETCH_AND_ADD (RC ordering puts it before the ticket), so a blade that sees a consumed ticket
/// nobody claimed can tell whether some live node may still claim it.
/// </summary>
public readonly record struct AcquireStateWord(ulong Acquisition, bool InFlight)
{
    /// <summary>Packs into the 8-byte word.</summary>
    public ulong Pack() => (Acquisition << 1) | (InFlight ? 1UL : 0UL);

    /// <summary>Unpacks an 8-byte word.</summary>
    public static AcquireStateWord Unpack(ulong word) => new(word >> 1, (word & 1) != 0);
}

/// <summary>What the blade agent is about to change in the bitmap and ownership table.</summary>
public enum BladeIntentKind : byte
{
    /// <summary>Nothing in flight.</summary>
    None = 0,

    /// <summary>Place a free slab in the ring (state Ringed, bitmap set).</summary>
    Ring = 1,

    /// <summary>Record a node's acknowledged ownership (state Owned).</summary>
    Own = 2,

    /// <summary>Record a node's free (state Freeing with the drain epoch).</summary>
    BeginFree = 3,

    /// <summary>Make a slab free again (state Free, bitmap clear).</summary>
    Release = 4,
}

/// <summary>
/// A packed blade intent: <c>[63..56] kind | [55..40] node | [39..32] span class | [31..0] first slab index</c>.
/// The update covers the 2^SpanClass base slabs from <see cref="SlabIndex"/> (one slab for span class 0, which
/// packs exactly as version 1 did).
/// </summary>
public readonly record struct BladeIntent(BladeIntentKind Kind, uint Node, ulong SlabIndex, int SpanClass = 0)
{
    /// <summary>Base slabs the intent covers.</summary>
    public uint Span => 1u << SpanClass;

    /// <summary>Packs into the 8-byte word.</summary>
    public ulong Pack() => ((ulong)Kind << 56) | ((ulong)(Node & 0xFFFF) << 40) | ((ulong)(SpanClass & 0xFF) << 32) | (SlabIndex & 0xFFFF_FFFF);

    /// <summary>Unpacks an 8-byte word.</summary>
    public static BladeIntent Unpack(ulong word) =>
        new((BladeIntentKind)(word >> 56), (uint)((word >> 40) & 0xFFFF), word & 0xFFFF_FFFF, (int)((word >> 32) & 0xFF));
}

/// <summary>
/// A node's claim on a ticket: <c>[63..40] acquisition number (low 24 bits) | [39..0] ticket (low 40 bits)</c>.
/// Tying the ticket to the acquisition lets the blade tell a claim of the current acquisition from a stale one
/// in a single 8-byte read.
/// </summary>
public readonly record struct ClaimWord(ulong Acquisition, ulong Ticket)
{
    private const int TicketBits = 40;
    private const ulong TicketMask = (1UL << TicketBits) - 1;
    private const ulong AcquisitionMask = (1UL << (64 - TicketBits)) - 1;

    /// <summary>Packs into the 8-byte word.</summary>
    public ulong Pack() => ((Acquisition & AcquisitionMask) << TicketBits) | (Ticket & TicketMask);

    /// <summary>Unpacks an 8-byte word.</summary>
    public static ClaimWord Unpack(ulong word) => new(word >> TicketBits, word & TicketMask);

    /// <summary>Whether this claim belongs to acquisition <paramref name="acquisition"/>.</summary>
    public bool IsFor(ulong acquisition) => Acquisition == (acquisition & AcquisitionMask);

    /// <summary>Whether this claim names <paramref name="ticket"/> (compared on the low 40 bits).</summary>
    public bool Names(ulong ticket) => Ticket == (ticket & TicketMask);
}
