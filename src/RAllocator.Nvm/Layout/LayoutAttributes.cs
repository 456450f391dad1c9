namespace RAllocator.Nvm.Layout;

// The declarations the layout generator (generators/RAllocator.Generators.Layout) reads. One annotated
// partial declaration per metadata structure or region set; the generator owns every offset from there.

/// <summary>
/// Marks a <c>partial struct</c> as a fixed-layout NVM structure of exactly <paramref name="sizeBytes"/> bytes.
/// Its fields are <c>partial</c> properties marked with <see cref="NvmFieldAttribute"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Struct, Inherited = false)]
public sealed class NvmStructAttribute(int sizeBytes) : Attribute
{
    /// <summary>Exact size in bytes; fields that do not fit are a compile error.</summary>
    public int SizeBytes { get; } = sizeBytes;
}

/// <summary>A field of an <see cref="NvmStructAttribute"/> struct at a fixed byte offset.</summary>
[AttributeUsage(AttributeTargets.Property, Inherited = false)]
public sealed class NvmFieldAttribute(int offset) : Attribute
{
    /// <summary>Byte offset from the start of the struct.</summary>
    public int Offset { get; } = offset;

    /// <summary>
    /// The field is touched by CPU or RDMA atomics: it must be a 64-bit integer at an 8-byte-aligned offset,
    /// and its accessor gets Load/Store/CompareExchange/FetchAdd.
    /// </summary>
    public bool Atomic { get; set; }
}

/// <summary>
/// Marks a <c>partial class</c> as the layout of a whole NVM image: fixed regions at well-known offsets,
/// then array regions placed one after another with the given alignment, sized by constructor parameters.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class NvmLayoutAttribute : Attribute
{
}

/// <summary>A region at a well-known offset that holds one <paramref name="structType"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class NvmFixedRegionAttribute(string name, Type structType) : Attribute
{
    /// <summary>Region name; becomes the accessor and constant names.</summary>
    public string Name { get; } = name;

    /// <summary>The <see cref="NvmStructAttribute"/> struct stored there.</summary>
    public Type StructType { get; } = structType;

    /// <summary>Well-known byte offset from the start of the image.</summary>
    public long Offset { get; set; }

    /// <summary>Bytes reserved for the region; a struct larger than this is a compile error.</summary>
    public long ReserveBytes { get; set; }
}

/// <summary>
/// A region holding an array of <paramref name="elementType"/> whose length is a constructor parameter of the
/// generated layout (<see cref="CountParameter"/>). Array regions follow the fixed regions in declaration order.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class NvmArrayRegionAttribute(string name, Type elementType) : Attribute
{
    /// <summary>Region name; becomes the accessor and property names.</summary>
    public string Name { get; } = name;

    /// <summary>The <see cref="NvmStructAttribute"/> element struct.</summary>
    public Type ElementType { get; } = elementType;

    /// <summary>Name of the generated constructor parameter that gives the element count.</summary>
    public string CountParameter { get; set; } = "";

    /// <summary>Alignment of the region's start, a power of two (default: one 64-byte cache line).</summary>
    public int Align { get; set; } = 64;
}
