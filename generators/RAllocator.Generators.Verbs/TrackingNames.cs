namespace RAllocator.Generators.Verbs;

/// <summary>Names of the pipeline steps, so that tests can assert each one is cached.</summary>
internal static class TrackingNames
{
    /// <summary>The .bindings files among the additional files, as (path, text) data.</summary>
    public const string BindingsFiles = nameof(BindingsFiles);

    /// <summary>Parse result of each file: model plus diagnostics.</summary>
    public const string ParseResults = nameof(ParseResults);

    /// <summary>Emittable models only (files without errors).</summary>
    public const string Models = nameof(Models);

    /// <summary>Diagnostics of each file.</summary>
    public const string Diagnostics = nameof(Diagnostics);

    public static readonly string[] All = [BindingsFiles, ParseResults, Models, Diagnostics];
}
