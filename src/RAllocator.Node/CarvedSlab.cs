using System.Numerics;
using RAllocator.Protocol;

namespace RAllocator.Node;

/// <summary>
/// A slab owned by this node and carved into equal objects of one size class. Object state is volatile and
/// local: a free bitmap and a stack of free object indexes, so allocate and free are O(1) and never touch the
/// network. Guarded by the lock of its size class.
/// </summary>
internal sealed class CarvedSlab
{
    /// <summary>Bytes at the start of a slab reserved for its <c>SlabHeader</c>.</summary>
    public const int HeaderBytes = 64;

    private readonly ulong[] _allocatedBits;
    private readonly int[] _freeStack;
    private int _freeCount;

    public CarvedSlab(int bladeId, OwnedSlab slab, ulong slabSizeBytes, int sizeClass)
    {
        BladeId = bladeId;
        Slab = slab;
        SizeClass = sizeClass;
        ObjectSizeBytes = SizeClasses.Sizes[sizeClass];
        SlabBytes = (long)slabSizeBytes;
        Capacity = (int)((slabSizeBytes - HeaderBytes) / (ulong)ObjectSizeBytes);
        _allocatedBits = new ulong[(Capacity + 63) / 64];
        _freeStack = new int[Capacity];
        // Lowest addresses first: fills a slab front to back, which keeps early slabs dense.
        for (int i = 0; i < Capacity; i++)
        {
            _freeStack[i] = Capacity - 1 - i;
        }

        _freeCount = Capacity;
    }

    public int BladeId { get; }

    public OwnedSlab Slab { get; }

    public int SizeClass { get; }

    public int ObjectSizeBytes { get; }

    /// <summary>Bytes of the slab (every base slab of a span).</summary>
    public long SlabBytes { get; }

    public int Capacity { get; }

    public int FreeCount => _freeCount;

    public int LiveCount => Capacity - _freeCount;

    public bool IsEmpty => _freeCount == Capacity;

    public bool IsFull => _freeCount == 0;

    /// <summary>Which of the heap's lists the slab is on.</summary>
    public SlabList List { get; set; }

    public RemotePtr Allocate()
    {
        int index = _freeStack[--_freeCount];
        _allocatedBits[index >> 6] |= 1UL << (index & 63);
        return PointerTo(index);
    }

    /// <summary>Frees the object at <paramref name="ptr"/>.</summary>
    /// <exception cref="InvalidOperationException">It is not the start of an allocated object of this slab.</exception>
    public void Free(RemotePtr ptr)
    {
        int index = IndexOf(ptr);
        ulong bit = 1UL << (index & 63);
        if ((_allocatedBits[index >> 6] & bit) == 0)
        {
            throw new InvalidOperationException($"double free: {ptr} (object {index} of slab {Slab.SlabIndex}) is not allocated.");
        }

        _allocatedBits[index >> 6] &= ~bit;
        _freeStack[_freeCount++] = index;
    }

    /// <summary>Marks a live object found by recovery.</summary>
    public void MarkLive(RemotePtr ptr)
    {
        int index = IndexOf(ptr);
        ulong bit = 1UL << (index & 63);
        if ((_allocatedBits[index >> 6] & bit) != 0)
        {
            return;
        }

        _allocatedBits[index >> 6] |= bit;
        int position = Array.IndexOf(_freeStack, index, 0, _freeCount);
        _freeStack[position] = _freeStack[--_freeCount];
    }

    public bool IsAllocated(RemotePtr ptr)
    {
        int index = IndexOf(ptr);
        return (_allocatedBits[index >> 6] & (1UL << (index & 63))) != 0;
    }

    public IEnumerable<RemotePtr> LiveObjects()
    {
        for (int word = 0; word < _allocatedBits.Length; word++)
        {
            ulong bits = _allocatedBits[word];
            while (bits != 0)
            {
                int bit = BitOperations.TrailingZeroCount(bits);
                bits &= bits - 1;
                yield return PointerTo((word * 64) + bit);
            }
        }
    }

    private RemotePtr PointerTo(int index) => new(BladeId, Slab.Offset + HeaderBytes + ((long)index * ObjectSizeBytes));

    private int IndexOf(RemotePtr ptr)
    {
        long relative = ptr.Offset - Slab.Offset - HeaderBytes;
        if (ptr.BladeId != BladeId || relative < 0 || relative % ObjectSizeBytes != 0 || relative / ObjectSizeBytes >= Capacity)
        {
            throw new InvalidOperationException(
                $"{ptr} is not the start of an object in slab {Slab.SlabIndex} of blade {BladeId} (objects of {ObjectSizeBytes} bytes).");
        }

        return (int)(relative / ObjectSizeBytes);
    }
}

/// <summary>The per-class list a slab is on.</summary>
internal enum SlabList
{
    /// <summary>Some objects free, some allocated.</summary>
    Partial,

    /// <summary>No free object.</summary>
    Full,

    /// <summary>Every object free.</summary>
    Empty,

    /// <summary>Returned to its blade.</summary>
    Returned,

    /// <summary>Taken out of allocation while compaction moves its objects out (SizeClassHeap.Compaction.cs).</summary>
    Withdrawn,
}
