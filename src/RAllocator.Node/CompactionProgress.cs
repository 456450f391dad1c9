namespace RAllocator.Node;

/// <summary>
/// Where a compaction is: reported once when its sources are chosen and out of allocation (from then on, new objects
/// never land in a source), then after each source slab.
/// </summary>
/// <param name="SizeClass">Size class of the source slab just finished; null in the first report.</param>
/// <param name="SourceSlabsDone">Source slabs finished so far, over every class.</param>
/// <param name="SourceSlabsTotal">Source slabs chosen when the compaction started.</param>
/// <param name="ObjectsMoved">Objects moved so far (committed by the relocation callback).</param>
/// <param name="BytesMoved">Bytes of the objects moved so far (object sizes).</param>
/// <param name="SlabsReturned">Slabs returned to their blades so far.</param>
public readonly record struct CompactionProgress(int? SizeClass, int SourceSlabsDone, int SourceSlabsTotal, long ObjectsMoved, long BytesMoved, int SlabsReturned);
