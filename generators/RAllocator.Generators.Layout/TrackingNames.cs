namespace RAllocator.Generators.Layout;

/// <summary>Names of the pipeline steps, so that tests can assert each one is cached.</summary>
internal static class TrackingNames
{
    /// <summary>Parse result of each [NvmStruct]: model plus diagnostics (locations change on any edit above).</summary>
    public const string StructResults = nameof(StructResults);

    /// <summary>Emittable struct models only: unchanged by edits that move but do not change a declaration.</summary>
    public const string StructModels = nameof(StructModels);

    /// <summary>Diagnostics of each [NvmStruct].</summary>
    public const string StructDiagnostics = nameof(StructDiagnostics);

    /// <summary>Parse result of each [NvmLayout].</summary>
    public const string LayoutResults = nameof(LayoutResults);

    /// <summary>Emittable layout models only.</summary>
    public const string LayoutModels = nameof(LayoutModels);

    /// <summary>Diagnostics of each [NvmLayout].</summary>
    public const string LayoutDiagnostics = nameof(LayoutDiagnostics);

    public static readonly string[] All =
    [
        StructResults, StructModels, StructDiagnostics, LayoutResults, LayoutModels, LayoutDiagnostics,
    ];
}
