using RAllocator.Protocol;

namespace RAllocator.Node;

/// <summary>
/// One size class: its full, partial and empty slab lists and the slab it is carving now. Every method ending in
/// Unsynchronized expects <see cref="Gate"/> held.
/// </summary>
internal sealed partial class SizeClassHeap(int sizeClass)
{
    private readonly HashSet<CarvedSlab> _partial = [];
    private readonly HashSet<CarvedSlab> _full = [];
    private readonly HashSet<CarvedSlab> _empty = [];
    private CarvedSlab? _current;

    public int SizeClass { get; } = sizeClass;

    /// <summary>Held for the O(1) object operations; a plain monitor, which Coyote's scheduler understands.</summary>
    public object Gate { get; } = new();

    /// <summary>One slab refill at a time per class, so concurrent misses do not each acquire a slab.</summary>
    public SemaphoreSlim RefillGate { get; } = new(1, 1);

    public IReadOnlyCollection<CarvedSlab> Partial => _partial;

    public IReadOnlyCollection<CarvedSlab> Full => _full;

    public IReadOnlyCollection<CarvedSlab> Empty => _empty;

    /// <summary>Objects allocated in this class since the heap opened (under <see cref="Gate"/>).</summary>
    public long Allocations { get; private set; }

    /// <summary>What the slab sizing policy needs about the previous acquisition (under <see cref="RefillGate"/>).</summary>
    public (long AllocationsThen, int SpanClass, long Capacity) LastAcquisition { get; set; } = (0, -1, 0);

    public bool TryAllocateUnsynchronized(out RemotePtr ptr)
    {
        var slab = _current is { IsFull: false } ? _current : PickSlabUnsynchronized();
        if (slab is null)
        {
            ptr = RemotePtr.Null;
            return false;
        }

        _current = slab;
        ptr = slab.Allocate();
        Allocations++;
        MoveUnsynchronized(slab, slab.IsFull ? SlabList.Full : SlabList.Partial);
        return true;
    }

    /// <summary>Frees an object; returns true when its slab must go back to the blade (empty beyond the threshold).</summary>
    public bool FreeUnsynchronized(CarvedSlab slab, RemotePtr ptr, int emptySlabThreshold)
    {
        slab.Free(ptr);
        if (slab.List == SlabList.Withdrawn)
        {
            // Compaction is emptying this slab and decides where it goes (SizeClassHeap.Compaction.cs).
            return false;
        }

        if (!slab.IsEmpty)
        {
            MoveUnsynchronized(slab, SlabList.Partial);
            return false;
        }

        MoveUnsynchronized(slab, SlabList.Empty);
        return TrimUnsynchronized(slab, emptySlabThreshold);
    }

    /// <summary>Adds a slab (new or recovered); returns true when it must go back to the blade right away.</summary>
    public bool AddUnsynchronized(CarvedSlab slab, int emptySlabThreshold)
    {
        slab.List = SlabList.Returned;
        var list = slab.IsEmpty ? SlabList.Empty : slab.IsFull ? SlabList.Full : SlabList.Partial;
        MoveUnsynchronized(slab, list);
        return list == SlabList.Empty && TrimUnsynchronized(slab, emptySlabThreshold);
    }

    public IEnumerable<CarvedSlab> AllSlabsUnsynchronized() => _partial.Concat(_full).Concat(_empty).Concat(_withdrawn);

    /// <summary>What the class holds: its slabs, their live objects, and their bytes (every span counted whole).</summary>
    public SizeClassTotals TotalsUnsynchronized()
    {
        long slabs = 0, live = 0, held = 0;
        foreach (var slab in AllSlabsUnsynchronized())
        {
            slabs++;
            live += slab.LiveCount;
            held += slab.SlabBytes;
        }

        return new SizeClassTotals(slabs, live, live * SizeClasses.Sizes[SizeClass], held);
    }

    private bool TrimUnsynchronized(CarvedSlab slab, int emptySlabThreshold)
    {
        if (_empty.Count <= emptySlabThreshold)
        {
            return false;
        }

        _empty.Remove(slab);
        slab.List = SlabList.Returned;
        if (_current == slab)
        {
            _current = null;
        }

        return true;
    }

    private CarvedSlab? PickSlabUnsynchronized()
    {
        // Prefer partial slabs so empty ones stay empty and can be returned.
        foreach (var slab in _partial)
        {
            return slab;
        }

        foreach (var slab in _empty)
        {
            return slab;
        }

        return null;
    }

    private void MoveUnsynchronized(CarvedSlab slab, SlabList list)
    {
        if (slab.List == list && list != SlabList.Returned)
        {
            return;
        }

        switch (slab.List)
        {
            case SlabList.Partial: _partial.Remove(slab); break;
            case SlabList.Full: _full.Remove(slab); break;
            case SlabList.Empty: _empty.Remove(slab); break;
        }

        slab.List = list;
        switch (list)
        {
            case SlabList.Partial: _partial.Add(slab); break;
            case SlabList.Full: _full.Add(slab); break;
            case SlabList.Empty: _empty.Add(slab); break;
        }
    }
}

/// <summary>A size class's holdings at one moment (see <see cref="SizeClassHeap.TotalsUnsynchronized"/>).</summary>
internal readonly record struct SizeClassTotals(long Slabs, long LiveObjects, long LiveBytes, long HeldBytes);
