using RAllocator.Nvm.Layout;

namespace RAllocator.Protocol.Layout;

// The fixed-layout structures of a blade image. The layout generator emits their explicit layout, offsets,
// layout tables and typed accessors; spec/layout.md is rendered from those tables. Every word that a remote
// atomic touches is exactly one aligned 8-byte word (RDMA atomics are 8 bytes).

/// <summary>
/// The blade's superblock. Two copies live at well-known offsets; an update writes the older copy with
/// <see cref="Generation"/> + 1 and a fresh <see cref="Checksum"/>, then persists it. A torn copy fails its
/// checksum and the other copy is used, so a crash during an update never loses the last good superblock.
/// </summary>
/// <remarks>
/// <code>
///   0 Magic            8 FormatVersion  12 Flags   16 Generation   24 RegionSizeBytes  32 SlabSizeBytes
///  40 SlabCount       48 MaxNodes      52 RingCapacity  56 AckSlotsPerNode  60 FreeSlotsPerNode
///  64 DataOffset      72 MaxSlabSpan   76 NodeLeaseTicks  80 BladeIncarnation  88 BladeUid
/// 120 Checksum (CRC-64 of bytes 0..119)
/// </code>
/// </remarks>
[NvmStruct(128)]
public partial struct Superblock
{
    /// <summary>"RALLOCv1" in ASCII, little-endian: identifies a blade image.</summary>
    [NvmField(0)] public partial ulong Magic { get; set; }

    /// <summary>Format version of the image; a reader refuses versions it does not know.</summary>
    [NvmField(8)] public partial uint FormatVersion { get; set; }

    /// <summary>Flag bits, see <see cref="SuperblockFlags"/>.</summary>
    [NvmField(12)] public partial uint Flags { get; set; }

    /// <summary>Update generation of this copy: the valid copy with the higher generation is current.</summary>
    [NvmField(16)] public partial ulong Generation { get; set; }

    /// <summary>Size of the whole image in bytes.</summary>
    [NvmField(24)] public partial ulong RegionSizeBytes { get; set; }

    /// <summary>Size of one base slab in bytes (a power of two).</summary>
    [NvmField(32)] public partial ulong SlabSizeBytes { get; set; }

    /// <summary>Number of base slabs in the data area.</summary>
    [NvmField(40)] public partial ulong SlabCount { get; set; }

    /// <summary>Maximum number of working nodes that may register with this blade.</summary>
    [NvmField(48)] public partial uint MaxNodes { get; set; }

    /// <summary>Number of entries in the slab ring.</summary>
    [NvmField(52)] public partial uint RingCapacity { get; set; }

    /// <summary>Acknowledgement slots per working node.</summary>
    [NvmField(56)] public partial uint AckSlotsPerNode { get; set; }

    /// <summary>Free-request slots per working node.</summary>
    [NvmField(60)] public partial uint FreeSlotsPerNode { get; set; }

    /// <summary>Offset of slab 0; slab i starts at DataOffset + i * SlabSizeBytes.</summary>
    [NvmField(64)] public partial ulong DataOffset { get; set; }

    /// <summary>Largest slab as a multiple of the base slab (slab sizes are base × 1 … base × MaxSlabSpan).</summary>
    [NvmField(72)] public partial uint MaxSlabSpan { get; set; }

    /// <summary>Blade-agent ticks without a heartbeat after which a node's lease expires and it is fenced.</summary>
    [NvmField(76)] public partial uint NodeLeaseTicks { get; set; }

    /// <summary>Incremented each time the blade opens the image; working nodes detect blade restarts by it.</summary>
    [NvmField(80)] public partial ulong BladeIncarnation { get; set; }

    /// <summary>A random identity chosen at format time, so images are never mixed up.</summary>
    [NvmField(88)] public partial ulong BladeUid { get; set; }

    /// <summary>
    /// Entries in each span ring (one ring per span class above the base slab); 0 when
    /// <see cref="MaxSlabSpan"/> is 1, so an image without spans has exactly the version-1 layout.
    /// </summary>
    [NvmField(96)] public partial uint SpanRingCapacity { get; set; }

    /// <summary>CRC-64 (ECMA-182) of bytes 0 to 119 of this copy.</summary>
    [NvmField(120)] public partial ulong Checksum { get; set; }
}

/// <summary>The blade's ticket sequencer, alone in its cache line so that FETCH_AND_ADD traffic shares it with nothing.</summary>
[NvmStruct(64)]
public partial struct SequencerBlock
{
    /// <summary>Next ticket; working nodes FETCH_AND_ADD 1 to take one.</summary>
    [NvmField(0, Atomic = true)] public partial ulong Sequencer { get; set; }
}

/// <summary>
/// Blade-written control words that working nodes and the coordinator read one-sided: the global epoch,
/// how far the ring is filled, and utilization counters.
/// </summary>
[NvmStruct(64)]
public partial struct BladeControlBlock
{
    /// <summary>Global reclamation epoch; advanced by the blade agent when every live node has observed it.</summary>
    [NvmField(0, Atomic = true)] public partial ulong GlobalEpoch { get; set; }

    /// <summary>Ring entries for every ticket below this value have been written and persisted.</summary>
    [NvmField(8, Atomic = true)] public partial ulong FilledThroughTicket { get; set; }

    /// <summary>Incremented by each blade-agent pass; a stuck agent is visible remotely.</summary>
    [NvmField(16, Atomic = true)] public partial ulong AgentHeartbeat { get; set; }

    /// <summary>Slabs owned by working nodes.</summary>
    [NvmField(24, Atomic = true)] public partial ulong OwnedSlabs { get; set; }

    /// <summary>Slabs placed in the ring and not yet acknowledged.</summary>
    [NvmField(32, Atomic = true)] public partial ulong RingedSlabs { get; set; }

    /// <summary>Slabs freed and waiting for their epoch to pass.</summary>
    [NvmField(40, Atomic = true)] public partial ulong FreeingSlabs { get; set; }
}

/// <summary>
/// The blade agent's redo intent for an update that spans the bitmap and the ownership table: written and
/// persisted before the two structures change, cleared after, replayed by recovery.
/// </summary>
[NvmStruct(64)]
public partial struct BladeIntentBlock
{
    /// <summary>Packed intent: kind, slab and node (see <c>BladeIntent</c>); 0 when no update is in flight.</summary>
    [NvmField(0, Atomic = true)] public partial ulong IntentWord { get; set; }

    /// <summary>The generation (ticket) or epoch that goes with the intent.</summary>
    [NvmField(8)] public partial ulong IntentArgument { get; set; }

    /// <summary>Sequence number of the intent, so a replay is idempotent.</summary>
    [NvmField(16)] public partial ulong IntentSequence { get; set; }
}

/// <summary>
/// The sequencer and fill mark of one span ring (span class c hands out slabs of 2^c base slabs). Ring 0, the
/// base-slab ring, keeps its sequencer and fill mark at their well-known fixed offsets; span rings follow the node
/// areas. Each span ring numbers its tickets from c × 2^36, so tickets are unique across rings.
/// </summary>
[NvmStruct(64)]
public partial struct SpanRingControl
{
    /// <summary>Next ticket of this ring; working nodes FETCH_AND_ADD 1 to take one.</summary>
    [NvmField(0, Atomic = true)] public partial ulong Sequencer { get; set; }

    /// <summary>Entries of this ring for every ticket below this value have been written and persisted.</summary>
    [NvmField(8, Atomic = true)] public partial ulong FilledThroughTicket { get; set; }
}

/// <summary>One ring entry: a single 8-byte word the blade fills and a working node reads (see <c>RingEntryWord</c>).</summary>
[NvmStruct(8)]
public partial struct RingEntry
{
    /// <summary>Packed kind, ticket tag and slab index.</summary>
    [NvmField(0, Atomic = true)] public partial ulong Word { get; set; }
}

/// <summary>64 bits of the allocation bitmap: bit i of word w is slab 64 w + i, set when the slab is not free.</summary>
[NvmStruct(8)]
public partial struct BitmapWord
{
    /// <summary>The 64 allocation bits.</summary>
    [NvmField(0, Atomic = true)] public partial ulong Bits { get; set; }
}

/// <summary>Who owns a slab and under which generation; written only by the blade agent.</summary>
[NvmStruct(32)]
public partial struct OwnershipEntry
{
    /// <summary>The slab's state, see <c>SlabState</c>.</summary>
    [NvmField(0)] public partial uint State { get; set; }

    /// <summary>The owning node while the state is Owned (or was, while Freeing).</summary>
    [NvmField(4)] public partial uint Node { get; set; }

    /// <summary>Generation: the ticket under which the slab was last handed out.</summary>
    [NvmField(8)] public partial ulong Generation { get; set; }

    /// <summary>While Freeing: the epoch in which the free was drained; reusable once every live node passed it.</summary>
    [NvmField(16)] public partial ulong FreedEpoch { get; set; }

    /// <summary>The span in base slabs of the slab this entry belongs to (1 for a base slab, 0 while Free).</summary>
    [NvmField(24)] public partial uint Span { get; set; }

    /// <summary>Distance in base slabs to the span's first (head) slab: 0 for a head, which names the span in every record.</summary>
    [NvmField(28)] public partial uint SpanHeadDistance { get; set; }
}

/// <summary>Per-slab wear: how many times the slab was handed out (the ring refill prefers the least worn).</summary>
[NvmStruct(8)]
public partial struct WearCounter
{
    /// <summary>Hand-outs of this slab since format.</summary>
    [NvmField(0, Atomic = true)] public partial ulong HandOuts { get; set; }
}

/// <summary>
/// A working node's header on the blade: the node writes its epoch, heartbeat, acquisition state and root;
/// the blade writes how far it has applied the node's acknowledgements and frees, and its lease state.
/// </summary>
[NvmStruct(64)]
public partial struct NodeHeader
{
    /// <summary>The epoch this node has passed (every reference it holds was taken at this epoch or later).</summary>
    [NvmField(0, Atomic = true)] public partial ulong PublishedEpoch { get; set; }

    /// <summary>Incremented by the node while alive; the blade expires the lease when it stops moving.</summary>
    [NvmField(8, Atomic = true)] public partial ulong Heartbeat { get; set; }

    /// <summary>The node's restart count; a change tells the blade the previous incarnation is gone.</summary>
    [NvmField(16, Atomic = true)] public partial ulong Incarnation { get; set; }

    /// <summary>Packed acquisition state: the acquisition number and an in-flight bit (see <c>AcquireStateWord</c>).</summary>
    [NvmField(24, Atomic = true)] public partial ulong AcquireState { get; set; }

    /// <summary>The ticket claimed by the node's current acquisition, posted right after its FETCH_AND_ADD (see <c>ClaimWord</c>).</summary>
    [NvmField(32, Atomic = true)] public partial ulong Claim { get; set; }

    /// <summary>Blade-written: acknowledgement sequence numbers at or below this are applied to the bitmap.</summary>
    [NvmField(40, Atomic = true)] public partial ulong AcksApplied { get; set; }

    /// <summary>Blade-written: free-request sequence numbers at or below this are drained.</summary>
    [NvmField(48, Atomic = true)] public partial ulong FreesApplied { get; set; }

    /// <summary>An application root pointer (a packed RemotePtr), persisted for recovery.</summary>
    [NvmField(56, Atomic = true)] public partial ulong RootPointer { get; set; }
}

/// <summary>A node's durable acknowledgement that it now owns a slab (see <c>AckWord</c>).</summary>
[NvmStruct(16)]
public partial struct AckRecord
{
    /// <summary>Packed acknowledgement sequence number and slab index; 0 = empty.</summary>
    [NvmField(0, Atomic = true)] public partial ulong Word { get; set; }

    /// <summary>The ticket the slab was taken with (its generation).</summary>
    [NvmField(8, Atomic = true)] public partial ulong Ticket { get; set; }
}

/// <summary>A node's request to return a slab to the blade (see <c>FreeWord</c>).</summary>
[NvmStruct(8)]
public partial struct FreeRecord
{
    /// <summary>Packed free sequence number and slab index; 0 = empty.</summary>
    [NvmField(0, Atomic = true)] public partial ulong Word { get; set; }
}

/// <summary>
/// The first 64 bytes of every slab a working node carves into objects: which size class it serves. Written and
/// persisted (posted) right after the slab is acquired, so that it is durable before any object in the slab can be.
/// </summary>
[NvmStruct(64)]
public partial struct SlabHeader
{
    /// <summary>"RSLABv01" as a little-endian word; anything else means the slab was never carved.</summary>
    [NvmField(0)] public partial ulong Magic { get; set; }

    /// <summary>The size-class index.</summary>
    [NvmField(8)] public partial uint SizeClass { get; set; }

    /// <summary>The object size in bytes.</summary>
    [NvmField(12)] public partial uint ObjectSizeBytes { get; set; }

    /// <summary>The node that carved the slab.</summary>
    [NvmField(16)] public partial uint Node { get; set; }

    /// <summary>The ticket (generation) the slab was taken with: a header from an earlier owner never matches.</summary>
    [NvmField(24)] public partial ulong Ticket { get; set; }
}
