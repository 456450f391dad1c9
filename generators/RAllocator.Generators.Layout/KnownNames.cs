namespace RAllocator.Generators.Layout;

/// <summary>Metadata names of the attributes (in RAllocator.Nvm) and of the runtime types the output uses.</summary>
internal static class KnownNames
{
    public const string NvmStructAttribute = "RAllocator.Nvm.Layout.NvmStructAttribute";
    public const string NvmFieldAttribute = "RAllocator.Nvm.Layout.NvmFieldAttribute";
    public const string NvmLayoutAttribute = "RAllocator.Nvm.Layout.NvmLayoutAttribute";
    public const string NvmFixedRegionAttribute = "RAllocator.Nvm.Layout.NvmFixedRegionAttribute";
    public const string NvmArrayRegionAttribute = "RAllocator.Nvm.Layout.NvmArrayRegionAttribute";

    public const string INvmRegion = "global::RAllocator.Nvm.INvmRegion";
    public const string NvmFieldAccess = "global::RAllocator.Nvm.Layout.NvmFieldAccess";
    public const string NvmFieldInfo = "global::RAllocator.Nvm.Layout.NvmFieldInfo";
    public const string NvmStructInfo = "global::RAllocator.Nvm.Layout.NvmStructInfo";
    public const string NvmRegionInfo = "global::RAllocator.Nvm.Layout.NvmRegionInfo";
    public const string NvmRegionKind = "global::RAllocator.Nvm.Layout.NvmRegionKind";
    public const string NvmRegionPlacement = "global::RAllocator.Nvm.Layout.NvmRegionPlacement";
    public const string IReadOnlyList = "global::System.Collections.Generic.IReadOnlyList";
    public const string MemoryMarshal = "global::System.Runtime.InteropServices.MemoryMarshal";
    public const string ArgumentOutOfRangeException = "global::System.ArgumentOutOfRangeException";
    public const string ArgumentException = "global::System.ArgumentException";
    public const string ArgumentNullException = "global::System.ArgumentNullException";
    public const string OverflowException = "global::System.OverflowException";
    public const string Array = "global::System.Array";
}
