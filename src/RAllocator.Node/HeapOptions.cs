using RAllocator.Protocol;

namespace RAllocator.Node;

/// <summary>Tuning of a <see cref="WorkingNodeHeap"/>.</summary>
public sealed record HeapOptions
{
    /// <summary>
    /// Empty slabs a size class keeps for reuse before returning further empty slabs to their blade (default 1).
    /// Keeping one avoids acquire/return ping-pong when a class hovers around a slab boundary.
    /// </summary>
    public int EmptySlabThreshold { get; init; } = 1;

    /// <summary>Chooses the blade for each new slab (default: round robin, skipping blades that are full).</summary>
    public IPlacementPolicy Placement { get; init; } = new RoundRobinPlacement();

    /// <summary>
    /// Chooses each new slab's size (default: <see cref="FixedSlabSizing"/> with base slabs, so a blade formatted
    /// without spans behaves as before). <see cref="AdaptiveSlabSizing"/> tunes it per size class at run time.
    /// </summary>
    public ISlabSizingPolicy SlabSizing { get; init; } = new FixedSlabSizing();
}

/// <summary>Chooses which blade a new slab comes from (the coordinator's hints plug in here).</summary>
public interface IPlacementPolicy
{
    /// <summary>Blade ids to try, in order, for a slab of <paramref name="sizeClass"/>.</summary>
    IEnumerable<int> Order(IReadOnlyList<BladeClient> blades, int sizeClass);
}

/// <summary>Round-robin placement: each acquisition starts at the next blade.</summary>
public sealed class RoundRobinPlacement : IPlacementPolicy
{
    private int _next;

    /// <inheritdoc />
    public IEnumerable<int> Order(IReadOnlyList<BladeClient> blades, int sizeClass)
    {
        int start = (int)((uint)Interlocked.Increment(ref _next) % (uint)blades.Count);
        for (int i = 0; i < blades.Count; i++)
        {
            yield return (start + i) % blades.Count;
        }
    }
}

/// <summary>What the heap has done; object operations should vastly outnumber slab operations.</summary>
/// <param name="Allocations">Objects allocated.</param>
/// <param name="Frees">Objects freed.</param>
/// <param name="SlabsAcquired">Slabs acquired from blades.</param>
/// <param name="SlabsReturned">Slabs returned to blades.</param>
/// <param name="SlabsOwned">Slabs owned now.</param>
/// <param name="LiveObjects">Objects allocated now.</param>
/// <param name="LiveBytes">Bytes in allocated objects (object sizes, not requested sizes).</param>
/// <param name="HeldBytes">Bytes of the carved slabs holding them (every span counted whole).</param>
/// <param name="SlabsBySpanClass">Slabs acquired so far per span class (index 0: base slabs).</param>
public readonly record struct HeapStatistics(long Allocations, long Frees, long SlabsAcquired, long SlabsReturned, long SlabsOwned, long LiveObjects, long LiveBytes,
    long HeldBytes = 0, IReadOnlyList<long>? SlabsBySpanClass = null)
{
    /// <summary>Internal fragmentation: the share of carved slab bytes not in live objects (headers, free objects, tails).</summary>
    public double Fragmentation => HeldBytes == 0 ? 0 : 1.0 - ((double)LiveBytes / HeldBytes);
}
