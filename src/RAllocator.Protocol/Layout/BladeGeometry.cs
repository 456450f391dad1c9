using System.Numerics;

namespace RAllocator.Protocol.Layout;

/// <summary>
/// The shape of a blade image: sizes and counts from which <see cref="BladeLayout"/> places every region.
/// Recorded in the superblock at format time; validated on every open.
/// </summary>
public sealed record BladeGeometry
{
    /// <summary>Smallest base slab accepted (a slab must hold at least one 256 KiB object of the largest class).</summary>
    public const ulong MinSlabSizeBytes = 64 * 1024;

    /// <summary>Largest base slab accepted.</summary>
    public const ulong MaxSlabSizeBytes = 1UL << 30;

    /// <summary>Most working nodes a blade can serve (node ids are 16-bit in packed words).</summary>
    public const uint MaxNodesLimit = 4096;

    /// <summary>Most slabs a blade can hold (slab indexes are 32-bit in packed words).</summary>
    public const ulong MaxSlabCount = uint.MaxValue;

    /// <summary>Data area alignment: slabs start on a page boundary.</summary>
    public const long DataAlignment = 4096;

    /// <summary>
    /// Largest span accepted. A span is aligned to its size, so up to 64 base slabs share one bitmap word and a
    /// span's bits change in one 8-byte write.
    /// </summary>
    public const uint MaxSlabSpanLimit = 64;

    /// <summary>Size of the whole image in bytes.</summary>
    public required ulong RegionSizeBytes { get; init; }

    /// <summary>Size of one base slab in bytes.</summary>
    public required ulong SlabSizeBytes { get; init; }

    /// <summary>Number of base slabs.</summary>
    public required ulong SlabCount { get; init; }

    /// <summary>Maximum registered working nodes.</summary>
    public required uint MaxNodes { get; init; }

    /// <summary>Ring entries.</summary>
    public required uint RingCapacity { get; init; }

    /// <summary>Acknowledgement slots per node.</summary>
    public required uint AckSlotsPerNode { get; init; }

    /// <summary>Free-request slots per node.</summary>
    public required uint FreeSlotsPerNode { get; init; }

    /// <summary>Largest slab as a multiple of the base slab (a power of two: slab sizes are base × 1, 2, 4 … MaxSlabSpan).</summary>
    public required uint MaxSlabSpan { get; init; }

    /// <summary>Entries of each span ring (0 when <see cref="MaxSlabSpan"/> is 1: there are no span rings).</summary>
    public uint SpanRingCapacity { get; init; }

    /// <summary>Span classes: class c hands out slabs of 2^c base slabs, each from its own ring (class 0 is the base ring).</summary>
    public int SpanClassCount => BitOperations.Log2(Math.Max(1u, MaxSlabSpan)) + 1;

    /// <summary>The rings, one per span class, with their offsets.</summary>
    public SlabRings Rings => new(this);

    /// <summary>Agent ticks without a heartbeat before a node's lease expires.</summary>
    public required uint NodeLeaseTicks { get; init; }

    /// <summary>The layout these counts produce.</summary>
    public BladeLayout Layout => new(
        ringCapacity: RingCapacity,
        bitmapWords: BitmapWordCount(SlabCount),
        slabCount: (long)SlabCount,
        maxNodes: MaxNodes,
        ackSlotCount: (long)MaxNodes * AckSlotsPerNode,
        freeSlotCount: (long)MaxNodes * FreeSlotsPerNode,
        spanRingCount: SpanClassCount - 1,
        spanRingEntryCount: (long)(SpanClassCount - 1) * SpanRingCapacity);

    /// <summary>Offset of slab 0.</summary>
    public long DataOffset => AlignUp(Layout.EndOffset, DataAlignment);

    /// <summary>Byte offset of base slab <paramref name="slabIndex"/>.</summary>
    public long SlabOffset(ulong slabIndex) => DataOffset + (long)(slabIndex * SlabSizeBytes);

    /// <summary>Bytes of metadata (everything before the data area).</summary>
    public long MetadataBytes => DataOffset;

    /// <summary>Number of 64-bit bitmap words for <paramref name="slabCount"/> slabs.</summary>
    public static long BitmapWordCount(ulong slabCount) => (long)((slabCount + 63) / 64);

    /// <summary>
    /// The geometry with the most slabs of <paramref name="slabSizeBytes"/> that fit in
    /// <paramref name="regionSizeBytes"/> together with their metadata.
    /// </summary>
    /// <exception cref="BladeGeometryException">The parameters are invalid or leave no room for a slab.</exception>
    public static BladeGeometry ForRegion(ulong regionSizeBytes, ulong slabSizeBytes, BladeFormatOptions? options = null)
    {
        options ??= new BladeFormatOptions();
        if (!BitOperations.IsPow2(slabSizeBytes) || slabSizeBytes < MinSlabSizeBytes || slabSizeBytes > MaxSlabSizeBytes)
        {
            throw new BladeGeometryException(
                $"slab size {slabSizeBytes} bytes is invalid: it must be a power of two between {MinSlabSizeBytes} and {MaxSlabSizeBytes} bytes.");
        }

        if (options.MaxNodes is 0 or > MaxNodesLimit)
        {
            throw new BladeGeometryException($"maximum nodes {options.MaxNodes} is invalid: it must be between 1 and {MaxNodesLimit}.");
        }

        if (options.AckSlotsPerNode == 0 || options.FreeSlotsPerNode == 0 || options.MaxSlabSpan == 0 || options.NodeLeaseTicks == 0)
        {
            throw new BladeGeometryException("acknowledgement slots, free slots, maximum slab span and node lease must all be at least 1.");
        }

        if (!BitOperations.IsPow2(options.MaxSlabSpan) || options.MaxSlabSpan > MaxSlabSpanLimit)
        {
            throw new BladeGeometryException($"maximum slab span {options.MaxSlabSpan} is invalid: it must be a power of two between 1 and {MaxSlabSpanLimit}.");
        }

        if (options.MaxSlabSpan > 1 && options.SpanRingCapacity == 0)
        {
            throw new BladeGeometryException("span ring capacity must be at least 1 when the maximum slab span is above 1.");
        }

        ulong slabCount = Math.Min(regionSizeBytes / slabSizeBytes, MaxSlabCount);
        // Metadata is a few bytes per slab, so a handful of steps down always finds the largest count that fits.
        while (slabCount > 0)
        {
            var candidate = Build(regionSizeBytes, slabSizeBytes, slabCount, options);
            if ((ulong)candidate.DataOffset + slabCount * slabSizeBytes <= regionSizeBytes)
            {
                return candidate;
            }

            ulong overflow = (ulong)candidate.DataOffset + slabCount * slabSizeBytes - regionSizeBytes;
            slabCount -= Math.Max(1, (overflow + slabSizeBytes - 1) / slabSizeBytes);
        }

        throw new BladeGeometryException(
            $"a region of {regionSizeBytes} bytes cannot hold the metadata and even one slab of {slabSizeBytes} bytes.");
    }

    private static BladeGeometry Build(ulong regionSizeBytes, ulong slabSizeBytes, ulong slabCount, BladeFormatOptions options) => new()
    {
        RegionSizeBytes = regionSizeBytes,
        SlabSizeBytes = slabSizeBytes,
        SlabCount = slabCount,
        MaxNodes = options.MaxNodes,
        // With span rings, a base ring as long as the blade would park every free slab in it and leave no run to coalesce.
        RingCapacity = options.RingCapacity ?? (uint)Math.Clamp(options.MaxSlabSpan > 1 ? slabCount / 4 : slabCount, 1, 1024),
        AckSlotsPerNode = options.AckSlotsPerNode,
        FreeSlotsPerNode = options.FreeSlotsPerNode,
        MaxSlabSpan = options.MaxSlabSpan,
        SpanRingCapacity = options.MaxSlabSpan > 1 ? options.SpanRingCapacity : 0,
        NodeLeaseTicks = options.NodeLeaseTicks,
    };

    /// <summary>Checks that the geometry is self-consistent and fits a region of <paramref name="actualRegionBytes"/>.</summary>
    /// <returns>null when valid, else what is wrong.</returns>
    public string? Validate(long actualRegionBytes)
    {
        if ((long)RegionSizeBytes != actualRegionBytes)
        {
            return $"the superblock says the region is {RegionSizeBytes} bytes but it is {actualRegionBytes} bytes";
        }

        if (!BitOperations.IsPow2(SlabSizeBytes) || SlabSizeBytes < MinSlabSizeBytes || SlabSizeBytes > MaxSlabSizeBytes)
        {
            return $"slab size {SlabSizeBytes} is not a power of two between {MinSlabSizeBytes} and {MaxSlabSizeBytes}";
        }

        if (SlabCount == 0 || SlabCount > MaxSlabCount)
        {
            return $"slab count {SlabCount} is out of range";
        }

        if (MaxNodes is 0 or > MaxNodesLimit || RingCapacity == 0 || AckSlotsPerNode == 0 || FreeSlotsPerNode == 0
            || MaxSlabSpan == 0 || NodeLeaseTicks == 0)
        {
            return "a node, ring, slot, span or lease count is zero or too large";
        }

        if (!BitOperations.IsPow2(MaxSlabSpan) || MaxSlabSpan > MaxSlabSpanLimit || (MaxSlabSpan > 1) != (SpanRingCapacity > 0))
        {
            return $"maximum slab span {MaxSlabSpan} with span ring capacity {SpanRingCapacity} is invalid (a power of two up to {MaxSlabSpanLimit}, with span rings exactly when above 1)";
        }

        try
        {
            if ((ulong)DataOffset + SlabCount * SlabSizeBytes > RegionSizeBytes)
            {
                return $"{SlabCount} slabs of {SlabSizeBytes} bytes after {DataOffset} bytes of metadata do not fit in {RegionSizeBytes} bytes";
            }
        }
        catch (Exception ex) when (ex is ArgumentOutOfRangeException or OverflowException)
        {
            return $"the geometry overflows: {ex.Message}";
        }

        return null;
    }

    private static long AlignUp(long value, long alignment) => (value + alignment - 1) & ~(alignment - 1);
}

/// <summary>Choices made at format time besides region and slab size; the defaults suit a small cluster.</summary>
public sealed record BladeFormatOptions
{
    /// <summary>Maximum working nodes (default 16).</summary>
    public uint MaxNodes { get; init; } = 16;

    /// <summary>Base ring entries (default: slab count, at most 1024; a quarter of that when <see cref="MaxSlabSpan"/> is above 1).</summary>
    public uint? RingCapacity { get; init; }

    /// <summary>Acknowledgement slots per node (default 64).</summary>
    public uint AckSlotsPerNode { get; init; } = 64;

    /// <summary>Free-request slots per node (default 64).</summary>
    public uint FreeSlotsPerNode { get; init; } = 64;

    /// <summary>Largest slab as a multiple of the base slab, a power of two up to 64 (default 1: base slabs only).</summary>
    public uint MaxSlabSpan { get; init; } = 1;

    /// <summary>
    /// Entries of each span ring when <see cref="MaxSlabSpan"/> is above 1 (default 4). Every filled entry holds a
    /// whole span out of use until a node takes it, so span rings are short: they trade a little acquisition latency
    /// under bursts for not parking large runs of memory.
    /// </summary>
    public uint SpanRingCapacity { get; init; } = 4;

    /// <summary>
    /// Agent passes without a heartbeat before a node's lease expires (default 50,000: about 10 s at the agent's
    /// default 200 µs pacing). An expired node's in-flight ticket is released, so the lease must be long against
    /// the node's epoch-publishing interval and network delays, and expiry must be paired with fencing
    /// (spec/processes.md); the first default, 1000 passes (0.2 s), expired busy nodes over UCX/TCP and lost
    /// their acknowledged slabs (found by the multi-process SIGKILL test).
    /// </summary>
    public uint NodeLeaseTicks { get; init; } = 50_000;
}

/// <summary>Format parameters that cannot make a valid image.</summary>
public sealed class BladeGeometryException(string message) : Exception(message);
