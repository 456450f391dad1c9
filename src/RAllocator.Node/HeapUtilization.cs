namespace RAllocator.Node;

/// <summary>
/// How well a heap fills the slabs it holds: <b>utilization = live object bytes / bytes of slabs held</b>. Live
/// object bytes count each allocated object at its size class's size (what it occupies, not what was requested);
/// held bytes count whole slabs (a span of base slabs at its full size), header included, whether carved (partial,
/// full, empty, or being compacted), spare (acknowledged, not carved yet) or waiting for recovery. So 1.0 is
/// unreachable (headers, tail slack) and empty slabs kept for reuse lower it.
/// </summary>
/// <param name="LiveObjects">Objects allocated now.</param>
/// <param name="LiveBytes">Bytes of those objects (size-class sizes).</param>
/// <param name="SlabsHeld">Slabs this node holds, every kind.</param>
/// <param name="HeldBytes">Bytes of those slabs.</param>
/// <param name="ByClass">The same per size class, for classes holding at least one carved slab (spare and
/// recovering slabs belong to no class and appear only in the totals).</param>
public sealed record HeapUtilization(long LiveObjects, long LiveBytes, long SlabsHeld, long HeldBytes, IReadOnlyList<SizeClassUtilization> ByClass)
{
    /// <summary>Live bytes over held bytes; 0 when nothing is held.</summary>
    public double Utilization => HeldBytes == 0 ? 0 : (double)LiveBytes / HeldBytes;
}

/// <summary>Utilization of one size class (<see cref="HeapUtilization"/> defines it).</summary>
/// <param name="SizeClass">The class.</param>
/// <param name="ObjectSizeBytes">Its object size.</param>
/// <param name="LiveObjects">Objects allocated in it.</param>
/// <param name="LiveBytes">Their bytes.</param>
/// <param name="SlabsHeld">Carved slabs of the class.</param>
/// <param name="HeldBytes">Bytes of those slabs.</param>
public readonly record struct SizeClassUtilization(int SizeClass, int ObjectSizeBytes, long LiveObjects, long LiveBytes, long SlabsHeld, long HeldBytes)
{
    /// <summary>Live bytes over held bytes; 0 when the class holds no slab.</summary>
    public double Utilization => HeldBytes == 0 ? 0 : (double)LiveBytes / HeldBytes;
}
