namespace RAllocator.Node;

/// <summary>
/// Object size classes from 16 bytes to 4 MiB: multiples of 16 up to 128, then four classes per power of two,
/// so internal fragmentation stays under 25% while the class count stays small (68 classes). Classes whose objects
/// do not fit in a base slab are served from span slabs (several contiguous base slabs, coalesced by the blade).
/// </summary>
public static class SizeClasses
{
    /// <summary>The smallest object size (and the alignment of every object).</summary>
    public const int MinSizeBytes = 16;

    /// <summary>The largest object size served from slabs (it needs slabs of more than 4 MiB).</summary>
    public const int MaxSizeBytes = 4 * 1024 * 1024;

    private static readonly int[] s_sizes = BuildSizes();

    /// <summary>Object size of each class, ascending.</summary>
    public static IReadOnlyList<int> Sizes => s_sizes;

    /// <summary>Number of classes.</summary>
    public static int Count => s_sizes.Length;

    /// <summary>The class serving <paramref name="sizeBytes"/>: the smallest whose objects are at least that big.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The size is not between 1 and <see cref="MaxSizeBytes"/>.</exception>
    public static int ClassOf(int sizeBytes)
    {
        if (sizeBytes is <= 0 or > MaxSizeBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(sizeBytes), sizeBytes,
                $"object size must be between 1 and {MaxSizeBytes} bytes.");
        }

        if (sizeBytes <= 128)
        {
            return (sizeBytes - 1) / 16;
        }

        int index = Array.BinarySearch(s_sizes, sizeBytes);
        return index >= 0 ? index : ~index;
    }

    private static int[] BuildSizes()
    {
        var sizes = new List<int>();
        for (int size = 16; size <= 128; size += 16)
        {
            sizes.Add(size);
        }

        for (int power = 128; power < MaxSizeBytes; power *= 2)
        {
            for (int quarter = 1; quarter <= 4; quarter++)
            {
                sizes.Add(power + (power / 4 * quarter));
            }
        }

        return [.. sizes];
    }
}
