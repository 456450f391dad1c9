using RAllocator.Fabric;

namespace RAllocator.Node;

/// <summary>What one <see cref="WorkingNodeHeap.CompactAsync"/> did and what it cost.</summary>
public sealed record CompactionReport
{
    /// <summary>The blade evacuated (migration), or null for a compaction.</summary>
    public int? EvacuatedBlade { get; init; }

    /// <summary>Source slabs chosen (sparse ones, or every slab of the evacuated blade).</summary>
    public int SourceSlabs { get; init; }

    /// <summary>Objects moved: copied, committed by the relocation callback, and freed at their old address.</summary>
    public long ObjectsMoved { get; init; }

    /// <summary>Bytes of the objects moved (object sizes).</summary>
    public long BytesMoved { get; init; }

    /// <summary>Slabs returned to their blades (emptied sources, and spare slabs of an evacuated blade).</summary>
    public int SlabsReturned { get; init; }

    /// <summary>Slabs compaction had to carve for destinations because the denser slabs had no room left (rare: sources
    /// are chosen to fit; concurrent allocations or an evacuation can use up the room).</summary>
    public int SlabsAdded { get; init; }

    /// <summary>
    /// Fabric cost over this node's connections to every blade while compaction ran: reads of the old objects, the
    /// persisted copies, slab returns and acquisitions, and whatever the relocation callback and other threads did on
    /// the same connections meanwhile.
    /// </summary>
    public FabricCounterSnapshot Fabric { get; init; }

    /// <summary>Utilization when compaction started.</summary>
    public HeapUtilization Before { get; init; } = new(0, 0, 0, 0, []);

    /// <summary>Utilization when it ended.</summary>
    public HeapUtilization After { get; init; } = new(0, 0, 0, 0, []);

    /// <summary>Per size class: sources, moves, returns, utilization before and after (classes with a slab before or after).</summary>
    public IReadOnlyList<SizeClassCompaction> Classes { get; init; } = [];

    /// <summary>Wall-clock time.</summary>
    public TimeSpan Elapsed { get; init; }
}

/// <summary>One size class's part of a <see cref="CompactionReport"/>.</summary>
/// <param name="SizeClass">The class.</param>
/// <param name="ObjectSizeBytes">Its object size.</param>
/// <param name="SourceSlabs">Its source slabs.</param>
/// <param name="ObjectsMoved">Its objects moved.</param>
/// <param name="BytesMoved">Their bytes.</param>
/// <param name="SlabsReturned">Its emptied sources returned to their blades.</param>
/// <param name="Before">Its utilization before.</param>
/// <param name="After">Its utilization after.</param>
public readonly record struct SizeClassCompaction(int SizeClass, int ObjectSizeBytes, int SourceSlabs, long ObjectsMoved, long BytesMoved, int SlabsReturned,
    SizeClassUtilization Before, SizeClassUtilization After);
