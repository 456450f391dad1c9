namespace RAllocator.Protocol.Layout;

/// <summary>
/// Where each span class's ring lives. Ring 0 (base slabs) keeps the version-1 places: the sequencer and control
/// block at their well-known offsets and the <c>Ring</c> array. Span ring c (slabs of 2^c base slabs) has a
/// <see cref="SpanRingControl"/> and a stretch of the <c>SpanRingEntries</c> array. Tickets of ring c start at
/// c × 2^<see cref="TicketSpaceBits"/>, so a ticket names its ring and no two rings ever share a ticket: the claim,
/// acknowledgement and generation words need no ring field.
/// </summary>
public sealed class SlabRings
{
    /// <summary>Bits of a ticket counted within its ring; the bits above name the ring (span class).</summary>
    public const int TicketSpaceBits = 36;

    private readonly SlabRing[] _rings;

    /// <summary>The rings of <paramref name="geometry"/>.</summary>
    public SlabRings(BladeGeometry geometry)
    {
        ArgumentNullException.ThrowIfNull(geometry);
        var layout = geometry.Layout;
        _rings = new SlabRing[geometry.SpanClassCount];
        _rings[0] = new SlabRing(0, geometry.RingCapacity,
            BladeLayout.SequencerOffset + SequencerBlock.Offsets.Sequencer,
            BladeLayout.ControlOffset + BladeControlBlock.Offsets.FilledThroughTicket,
            layout.RingOffset);
        for (int spanClass = 1; spanClass < _rings.Length; spanClass++)
        {
            long control = layout.SpanRingControlsElementOffset(spanClass - 1);
            _rings[spanClass] = new SlabRing(spanClass, geometry.SpanRingCapacity,
                control + SpanRingControl.Offsets.Sequencer,
                control + SpanRingControl.Offsets.FilledThroughTicket,
                layout.SpanRingEntriesElementOffset((long)(spanClass - 1) * geometry.SpanRingCapacity));
        }
    }

    /// <summary>Number of rings (span classes).</summary>
    public int Count => _rings.Length;

    /// <summary>The ring of <paramref name="spanClass"/>.</summary>
    public SlabRing this[int spanClass] => _rings[spanClass];

    /// <summary>Every ring, by span class.</summary>
    public IReadOnlyList<SlabRing> All => _rings;

    /// <summary>The first ticket of <paramref name="spanClass"/>'s ring.</summary>
    public static ulong FirstTicketOf(int spanClass) => (ulong)spanClass << TicketSpaceBits;

    /// <summary>The span class whose ring handed out <paramref name="ticket"/>.</summary>
    public static int SpanClassOf(ulong ticket) => (int)(ticket >> TicketSpaceBits);
}

/// <summary>One span class's ring.</summary>
/// <param name="SpanClass">The class: slabs of 2^SpanClass base slabs.</param>
/// <param name="Capacity">Entries in the ring.</param>
/// <param name="SequencerOffset">Offset of its sequencer word (FETCH_AND_ADD target).</param>
/// <param name="FillMarkOffset">Offset of its fill mark (entries below it are written).</param>
/// <param name="EntriesOffset">Offset of its first entry.</param>
public sealed record SlabRing(int SpanClass, uint Capacity, long SequencerOffset, long FillMarkOffset, long EntriesOffset)
{
    /// <summary>Base slabs per slab of this ring.</summary>
    public uint Span => 1u << SpanClass;

    /// <summary>The first ticket of this ring.</summary>
    public ulong FirstTicket => SlabRings.FirstTicketOf(SpanClass);

    /// <summary>Index of <paramref name="ticket"/>'s entry within this ring.</summary>
    public long SlotOf(ulong ticket) => (long)(ticket % Capacity);

    /// <summary>Offset of <paramref name="ticket"/>'s entry.</summary>
    public long EntryOffset(ulong ticket) => EntriesOffset + (SlotOf(ticket) * RingEntry.SizeBytes);
}
