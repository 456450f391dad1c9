using RAllocator.Protocol;

namespace RAllocator.Node;

// Compaction's part of a size class. A source slab is withdrawn: off the partial, full and empty lists and never the
// current slab, so no allocation lands in it while its objects move out; frees of its objects still work. Every
// method expects Gate held.
internal sealed partial class SizeClassHeap
{
    private readonly HashSet<CarvedSlab> _withdrawn = [];

    public IReadOnlyCollection<CarvedSlab> Withdrawn => _withdrawn;

    /// <summary>
    /// Withdraws the sparsest partial slabs whose occupancy is below <paramref name="occupancyThreshold"/>, as many as
    /// the free objects of the remaining partial slabs can absorb: compaction then needs no new slab, and every slab
    /// it starts emptying it can finish.
    /// </summary>
    public List<CarvedSlab> WithdrawSparseUnsynchronized(double occupancyThreshold)
    {
        var candidates = _partial.Where(s => s.LiveCount < occupancyThreshold * s.Capacity)
            .OrderBy(s => s.LiveCount).ThenBy(s => s.BladeId).ThenBy(s => s.Slab.SlabIndex).ToList();
        long roomLeft = _partial.Sum(s => (long)s.FreeCount);
        long moving = 0;
        var sources = new List<CarvedSlab>();
        foreach (var slab in candidates)
        {
            // A source's own free objects are no destination.
            if (moving + slab.LiveCount > roomLeft - slab.FreeCount)
            {
                break;
            }

            moving += slab.LiveCount;
            roomLeft -= slab.FreeCount;
            sources.Add(slab);
        }

        foreach (var slab in sources)
        {
            WithdrawUnsynchronized(slab);
        }

        return sources;
    }

    /// <summary>Withdraws every slab of the class on <paramref name="bladeId"/> (an evacuation), emptiest first.</summary>
    public List<CarvedSlab> WithdrawBladeUnsynchronized(int bladeId)
    {
        var sources = _partial.Concat(_full).Concat(_empty).Where(s => s.BladeId == bladeId)
            .OrderBy(s => s.LiveCount).ThenBy(s => s.Slab.SlabIndex).ToList();
        foreach (var slab in sources)
        {
            WithdrawUnsynchronized(slab);
        }

        return sources;
    }

    /// <summary>
    /// Allocates a destination object in the densest partial slab not on <paramref name="avoidBladeId"/> (filling
    /// dense slabs keeps sparse ones sparse), else in an empty slab; false when there is neither.
    /// </summary>
    public bool TryReserveDestinationUnsynchronized(int avoidBladeId, out RemotePtr ptr, out CarvedSlab? slab)
    {
        CarvedSlab? best = null;
        foreach (var candidate in _partial)
        {
            if (candidate.BladeId != avoidBladeId && (best is null || candidate.LiveCount > best.LiveCount))
            {
                best = candidate;
            }
        }

        best ??= _empty.FirstOrDefault(s => s.BladeId != avoidBladeId);
        slab = best;
        if (best is null)
        {
            ptr = RemotePtr.Null;
            return false;
        }

        ptr = ReserveInUnsynchronized(best);
        return true;
    }

    /// <summary>
    /// Allocates an object in <paramref name="slab"/> (listed, not withdrawn, not full). Not counted in
    /// <see cref="Allocations"/>: a move is no new demand for the slab sizing policy.
    /// </summary>
    public RemotePtr ReserveInUnsynchronized(CarvedSlab slab)
    {
        var ptr = slab.Allocate();
        MoveUnsynchronized(slab, slab.IsFull ? SlabList.Full : SlabList.Partial);
        return ptr;
    }

    /// <summary>Puts a listed slab on the list its fill calls for (after its objects changed behind the lists' back).</summary>
    public void RelistUnsynchronized(CarvedSlab slab) =>
        MoveUnsynchronized(slab, slab.IsEmpty ? SlabList.Empty : slab.IsFull ? SlabList.Full : SlabList.Partial);

    /// <summary>Takes a slab out of allocation.</summary>
    public void WithdrawUnsynchronized(CarvedSlab slab)
    {
        switch (slab.List)
        {
            case SlabList.Partial: _partial.Remove(slab); break;
            case SlabList.Full: _full.Remove(slab); break;
            case SlabList.Empty: _empty.Remove(slab); break;
        }

        slab.List = SlabList.Withdrawn;
        _withdrawn.Add(slab);
        if (_current == slab)
        {
            _current = null;
        }
    }

    /// <summary>Puts a withdrawn slab back into allocation; true when it is empty beyond the threshold and must go back to its blade.</summary>
    public bool RestoreUnsynchronized(CarvedSlab slab, int emptySlabThreshold)
    {
        _withdrawn.Remove(slab);
        return AddUnsynchronized(slab, emptySlabThreshold);
    }

    /// <summary>Drops an emptied withdrawn slab from the class: it is going back to its blade.</summary>
    public void RetireUnsynchronized(CarvedSlab slab)
    {
        _withdrawn.Remove(slab);
        slab.List = SlabList.Returned;
    }
}
