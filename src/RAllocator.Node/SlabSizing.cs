using System.Numerics;

namespace RAllocator.Node;

/// <summary>
/// Chooses the size of the next slab a size class acquires, as a span class: slabs of 2^spanClass base slabs.
/// Called on the slow path only (a class out of free objects), never per allocation.
/// </summary>
public interface ISlabSizingPolicy
{
    /// <summary>The span class of the next slab, between <see cref="SlabSizingContext.MinSpanClass"/> and <see cref="SlabSizingContext.MaxSpanClass"/>.</summary>
    int ChooseSpanClass(in SlabSizingContext context);
}

/// <summary>What a size class has done, as the heap saw it when the class needed a new slab.</summary>
/// <param name="SizeClass">The size class.</param>
/// <param name="ObjectSizeBytes">Its object size.</param>
/// <param name="BaseSlabBytes">The base slab size of the blades (the smallest of them).</param>
/// <param name="MinSpanClass">The smallest span class whose slab holds one object after the slab header.</param>
/// <param name="MaxSpanClass">The largest span class every blade serves.</param>
/// <param name="AllocationsSinceLastAcquisition">Objects this class allocated since its previous slab acquisition.</param>
/// <param name="LastSpanClass">The span class of its previous acquisition (-1 before the first).</param>
/// <param name="LastSlabCapacity">Objects that previous slab held (0 before the first).</param>
/// <param name="LiveBytes">Bytes in this class's allocated objects.</param>
/// <param name="HeldBytes">Bytes of the slabs this class holds (live, free and header bytes).</param>
public readonly record struct SlabSizingContext(
    int SizeClass,
    int ObjectSizeBytes,
    ulong BaseSlabBytes,
    int MinSpanClass,
    int MaxSpanClass,
    long AllocationsSinceLastAcquisition,
    int LastSpanClass,
    long LastSlabCapacity,
    long LiveBytes,
    long HeldBytes)
{
    /// <summary>Internal fragmentation of the class's held slabs: the share of their bytes not in live objects.</summary>
    public double Fragmentation => HeldBytes == 0 ? 0 : 1.0 - ((double)LiveBytes / HeldBytes);

    /// <summary>Bytes of a slab of <paramref name="spanClass"/>.</summary>
    public ulong SlabBytes(int spanClass) => BaseSlabBytes << spanClass;
}

/// <summary>Every slab of every class has the same span (the smallest that holds the class's object, if larger).</summary>
/// <param name="SpanClass">The span class to use.</param>
public sealed record FixedSlabSizing(int SpanClass = 0) : ISlabSizingPolicy
{
    /// <inheritdoc />
    public int ChooseSpanClass(in SlabSizingContext context) => Math.Clamp(SpanClass, context.MinSpanClass, context.MaxSpanClass);
}

/// <summary>
/// Tunes each size class's slab size at run time from its allocation rate and its fragmentation (spec/slab-sizing.md):
/// a class that used up its previous slab with fresh allocations doubles its slab, one that needed a new slab after
/// few allocations halves it, and one whose held slabs are mostly holes goes back to the smallest slab. Growth is
/// capped by a fraction of the class's live bytes, so the slab a class is still filling never dwarfs what it holds.
/// </summary>
public sealed record AdaptiveSlabSizing : ISlabSizingPolicy
{
    /// <summary>Above this fragmentation of its held slabs a class takes the smallest slab (default 0.5).</summary>
    public double FragmentationLimit { get; init; } = 0.5;

    /// <summary>A new slab may hold at most this multiple of the class's live bytes, beyond the smallest slab (default 0.5).</summary>
    public double GrowthCap { get; init; } = 0.5;

    /// <summary>Fewer allocations than this share of the previous slab's capacity before the next acquisition halves the slab (default 0.25).</summary>
    public double ShrinkBelow { get; init; } = 0.25;

    /// <inheritdoc />
    public int ChooseSpanClass(in SlabSizingContext context)
    {
        if (context.LastSpanClass < 0 || context.Fragmentation > FragmentationLimit)
        {
            return context.MinSpanClass;
        }

        int spanClass = context.LastSpanClass;
        if (context.AllocationsSinceLastAcquisition >= context.LastSlabCapacity)
        {
            spanClass++;
        }
        else if (context.AllocationsSinceLastAcquisition < ShrinkBelow * context.LastSlabCapacity)
        {
            spanClass--;
        }

        // The cap: the largest span whose slab is within GrowthCap × live bytes (the smallest slab is always allowed).
        double allowed = GrowthCap * context.LiveBytes;
        int capped = context.MinSpanClass;
        while (capped < context.MaxSpanClass && context.SlabBytes(capped + 1) <= allowed)
        {
            capped++;
        }

        return Math.Clamp(Math.Min(spanClass, capped), context.MinSpanClass, context.MaxSpanClass);
    }
}

/// <summary>Span arithmetic shared by the heap and the policies.</summary>
internal static class SpanClasses
{
    /// <summary>The smallest span class whose slab holds one object of <paramref name="objectSizeBytes"/> after the header.</summary>
    public static int Smallest(int objectSizeBytes, ulong baseSlabBytes)
    {
        ulong needed = (ulong)objectSizeBytes + CarvedSlab.HeaderBytes;
        ulong spans = (needed + baseSlabBytes - 1) / baseSlabBytes;
        return BitOperations.Log2(BitOperations.RoundUpToPowerOf2(spans));
    }
}
