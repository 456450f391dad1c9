using RAllocator.Protocol.Layout;

namespace RAllocator.Blade;

/// <summary>
/// The in-memory view of a blade image rebuilt from its persistent metadata: every slab's state, the slabs each
/// node owns, the ring, the nodes' areas, and any contradiction found. Built by <see cref="BladeImage.Scan"/>.
/// </summary>
public sealed class BladeState
{
    internal BladeState(
        BladeGeometry geometry,
        Superblock superblock,
        SlabRecord[] slabs,
        RingState[] rings,
        NodeRecord[] nodes,
        BladeControlBlock control,
        (BladeIntent Intent, ulong Argument)? pendingIntent,
        IReadOnlyList<string> problems)
    {
        Geometry = geometry;
        Superblock = superblock;
        Slabs = slabs;
        Rings = rings;
        Ring = rings[0].Slots;
        Nodes = nodes;
        Sequencer = rings[0].Sequencer;
        GlobalEpoch = control.GlobalEpoch;
        FilledThroughTicket = rings[0].FilledThroughTicket;
        PendingIntent = pendingIntent is null ? null : pendingIntent.Value.Intent;
        Problems = problems;
        FreeSlabsLeastWornFirst = slabs.Where(s => s.State == SlabState.Free)
            .OrderBy(s => s.WearHandOuts).ThenBy(s => s.Index).Select(s => s.Index).ToArray();
        OwnedByNode = slabs.Where(s => s.State == SlabState.Owned && s.IsHead)
            .GroupBy(s => s.Node)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<SlabRecord>)g.OrderBy(s => s.Index).ToArray());
    }

    /// <summary>The geometry from the superblock.</summary>
    public BladeGeometry Geometry { get; }

    /// <summary>The current superblock.</summary>
    public Superblock Superblock { get; }

    /// <summary>Every slab, by index.</summary>
    public IReadOnlyList<SlabRecord> Slabs { get; }

    /// <summary>Every entry of the base-slab ring (span class 0), by index.</summary>
    public IReadOnlyList<RingSlot> Ring { get; }

    /// <summary>Every ring, by span class (ring 0 is the base-slab ring).</summary>
    public IReadOnlyList<RingState> Rings { get; }

    /// <summary>Every node slot, by node id.</summary>
    public IReadOnlyList<NodeRecord> Nodes { get; }

    /// <summary>The base ring's sequencer: tickets below it have been taken.</summary>
    public ulong Sequencer { get; }

    /// <summary>The global reclamation epoch.</summary>
    public ulong GlobalEpoch { get; }

    /// <summary>Base ring entries for tickets below this were filled.</summary>
    public ulong FilledThroughTicket { get; }

    /// <summary>An interrupted metadata update (already applied to this view), if any.</summary>
    public BladeIntent? PendingIntent { get; }

    /// <summary>Contradictions between the bitmap, the ownership table, the ring and the node areas; empty when consistent.</summary>
    public IReadOnlyList<string> Problems { get; }

    /// <summary>Whether the metadata is consistent.</summary>
    public bool IsConsistent => Problems.Count == 0;

    /// <summary>Free slabs, least worn first: the order in which the ring refill hands them out.</summary>
    public IReadOnlyList<ulong> FreeSlabsLeastWornFirst { get; }

    /// <summary>Slabs in state Owned (one record per slab: its head), grouped by owning node.</summary>
    public IReadOnlyDictionary<uint, IReadOnlyList<SlabRecord>> OwnedByNode { get; }

    /// <summary>Number of slabs in <paramref name="state"/>.</summary>
    public long Count(SlabState state) => Slabs.LongCount(s => s.State == state);

    /// <summary>Fraction of slabs not free.</summary>
    public double Utilization => Slabs.Count == 0 ? 0 : 1.0 - (double)Count(SlabState.Free) / Slabs.Count;

    /// <summary>
    /// Slabs that <paramref name="node"/> durably owns, by head index: state Owned in the ownership table, plus Ringed
    /// slabs the node has acknowledged in its area (persisted) that the blade agent has not applied yet.
    /// </summary>
    public IReadOnlyList<ulong> DurablyOwnedBy(uint node)
    {
        var owned = OwnedByNode.TryGetValue(node, out var list) ? list.Select(s => s.Index).ToHashSet() : [];
        if (node < Nodes.Count)
        {
            foreach (var ack in Nodes[(int)node].PendingAcks)
            {
                if (ack.SlabIndex < (ulong)Slabs.Count && Slabs[(int)ack.SlabIndex] is { State: SlabState.Ringed, IsHead: true } ringed
                    && ringed.Generation == ack.Ticket)
                {
                    owned.Add(ack.SlabIndex);
                }
            }
        }

        return owned.Order().ToArray();
    }

    /// <summary>Throws when the metadata is inconsistent, listing the first problems.</summary>
    /// <exception cref="BladeImageException">With <see cref="BladeImageError.InconsistentMetadata"/>.</exception>
    public void ThrowIfInconsistent()
    {
        if (Problems.Count > 0)
        {
            string shown = string.Join("; ", Problems.Take(5));
            string more = Problems.Count > 5 ? $" (and {Problems.Count - 5} more)" : "";
            throw new BladeImageException(BladeImageError.InconsistentMetadata,
                $"the blade metadata is inconsistent: {shown}{more}.");
        }
    }
}

/// <summary>One slab's persistent record.</summary>
/// <param name="Index">The slab index.</param>
/// <param name="State">Its state in the ownership table.</param>
/// <param name="Allocated">Its bit in the allocation bitmap.</param>
/// <param name="Node">Owning node (Owned, Freeing).</param>
/// <param name="Generation">The ticket it was last handed out under.</param>
/// <param name="FreedEpoch">The epoch its free was drained in (Freeing).</param>
/// <param name="WearHandOuts">How many times it was handed out.</param>
/// <param name="Span">Base slabs in the slab it belongs to (1 for a base slab and while Free).</param>
/// <param name="SpanHeadDistance">Distance to that slab's head (0 for the head).</param>
public readonly record struct SlabRecord(ulong Index, SlabState State, bool Allocated, uint Node, ulong Generation, ulong FreedEpoch, ulong WearHandOuts,
    uint Span = 1, uint SpanHeadDistance = 0)
{
    /// <summary>Whether this base slab is the first of its slab (records name slabs by their head).</summary>
    public bool IsHead => SpanHeadDistance == 0;
}

/// <summary>One ring's persistent state.</summary>
/// <param name="Ring">Which ring (span class, capacity, offsets).</param>
/// <param name="Sequencer">Its sequencer: tickets below it were taken.</param>
/// <param name="FilledThroughTicket">Its entries for tickets below this were filled.</param>
/// <param name="Slots">Its entries, by index.</param>
public sealed record RingState(SlabRing Ring, ulong Sequencer, ulong FilledThroughTicket, IReadOnlyList<RingSlot> Slots)
{
    /// <summary>Entries filled for tickets nobody has taken yet: what nodes can acquire with no agent pass.</summary>
    public ulong Waiting => FilledThroughTicket > Sequencer ? FilledThroughTicket - Sequencer : 0;
}

/// <summary>One ring entry.</summary>
/// <param name="Index">Its index in the ring.</param>
/// <param name="Entry">Its decoded word.</param>
public readonly record struct RingSlot(long Index, RingEntryWord Entry);

/// <summary>A node's area on the blade.</summary>
/// <param name="Node">The node id.</param>
/// <param name="Header">Its header words.</param>
/// <param name="PendingAcks">Acknowledgements written after <see cref="NodeHeader.AcksApplied"/>, in sequence order.</param>
/// <param name="PendingFrees">Free requests written after <see cref="NodeHeader.FreesApplied"/>, in sequence order.</param>
public sealed record NodeRecord(uint Node, NodeHeader Header, IReadOnlyList<PendingAck> PendingAcks, IReadOnlyList<SequencedSlabWord> PendingFrees)
{
    /// <summary>Whether the node ever registered (its incarnation moved from 0).</summary>
    public bool Registered => Header.Incarnation != 0;
}

/// <summary>An acknowledgement the blade has not applied yet.</summary>
/// <param name="Sequence">The node's acknowledgement sequence number.</param>
/// <param name="SlabIndex">The acknowledged slab.</param>
/// <param name="Ticket">The ticket the slab was taken with.</param>
public readonly record struct PendingAck(uint Sequence, ulong SlabIndex, ulong Ticket);
