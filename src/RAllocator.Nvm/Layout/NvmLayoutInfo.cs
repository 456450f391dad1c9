namespace RAllocator.Nvm.Layout;

// The layout tables the layout generator fills in: every generated NVM struct exposes its NvmStructInfo and
// every generated layout its NvmRegionInfo list, so tools (inspect, spec/layout.md) read the offsets the code
// uses instead of a hand-copied description.

/// <summary>One field of a generated NVM struct.</summary>
/// <param name="Name">Property name.</param>
/// <param name="Offset">Byte offset from the start of the struct.</param>
/// <param name="SizeBytes">Size of the field in bytes (1, 2, 4 or 8).</param>
/// <param name="TypeName">C# keyword of the field type: <c>byte</c>, <c>sbyte</c>, <c>ushort</c>, <c>short</c>,
/// <c>uint</c>, <c>int</c>, <c>ulong</c> or <c>long</c>.</param>
/// <param name="Atomic">The field is one aligned 8-byte word touched by CPU or RDMA atomics.</param>
public sealed record NvmFieldInfo(string Name, int Offset, int SizeBytes, string TypeName, bool Atomic)
{
    /// <summary>First byte past the field: <see cref="Offset"/> + <see cref="SizeBytes"/>.</summary>
    public int EndOffset => Offset + SizeBytes;
}

/// <summary>The layout table of a generated NVM struct.</summary>
/// <param name="Name">Struct name (without namespace).</param>
/// <param name="SizeBytes">Exact size of the struct in NVM, in bytes.</param>
/// <param name="Fields">Every field, in ascending offset order.</param>
public sealed record NvmStructInfo(string Name, int SizeBytes, IReadOnlyList<NvmFieldInfo> Fields);

/// <summary>How a region of a generated layout is placed.</summary>
public enum NvmRegionKind
{
    /// <summary>One struct at a well-known offset inside a fixed reservation.</summary>
    Fixed,

    /// <summary>An array of structs placed after the fixed regions, sized by a constructor parameter.</summary>
    Array,
}

/// <summary>One region of a generated layout, as declared (offsets of array regions depend on the counts).</summary>
/// <param name="Name">Region name.</param>
/// <param name="Kind">Fixed or array region.</param>
/// <param name="Struct">The struct stored in the region (the element struct of an array region).</param>
/// <param name="FixedOffset">Well-known byte offset of a fixed region; -1 for an array region.</param>
/// <param name="ReserveBytes">Bytes reserved for a fixed region; 0 for an array region.</param>
/// <param name="CountParameter">Name of the layout constructor parameter giving an array region's element count;
/// null for a fixed region.</param>
/// <param name="Align">Alignment of an array region's start, a power of two; 1 for a fixed region.</param>
public sealed record NvmRegionInfo(
    string Name,
    NvmRegionKind Kind,
    NvmStructInfo Struct,
    long FixedOffset,
    long ReserveBytes,
    string? CountParameter,
    int Align);

/// <summary>Where a layout instance placed one region.</summary>
/// <param name="Name">Region name.</param>
/// <param name="Offset">Byte offset of the region's start.</param>
/// <param name="LengthBytes">Bytes the region occupies: the reservation of a fixed region, count × element size
/// for an array region.</param>
/// <param name="Count">Number of structs in the region (1 for a fixed region).</param>
public readonly record struct NvmRegionPlacement(string Name, long Offset, long LengthBytes, long Count)
{
    /// <summary>First byte past the region: <see cref="Offset"/> + <see cref="LengthBytes"/>.</summary>
    public long EndOffset => Offset + LengthBytes;
}
