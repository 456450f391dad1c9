using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using RAllocator.Generators.Layout;
using RAllocator.Nvm;

namespace RAllocator.Generators.Tests;

/// <summary>Runs the layout generator over source text with the plain Roslyn driver (offline: framework references
/// come from TRUSTED_PLATFORM_ASSEMBLIES).</summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new CSharpParseOptions(LanguageVersion.Latest)
        .WithDocumentationMode(DocumentationMode.Diagnose);

    // Only the shared framework and RAllocator.Nvm: the test assembly itself holds the compiled samples, whose types
    // would clash with the same samples compiled from text.
    private static readonly Lazy<ImmutableArray<MetadataReference>> s_references = new(() =>
    {
        string frameworkDirectory = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(path => string.Equals(Path.GetDirectoryName(path), frameworkDirectory, StringComparison.Ordinal))
            .Append(typeof(INvmRegion).Assembly.Location)
            .Distinct(StringComparer.Ordinal)
            .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path));
        return [.. references];
    });

    public static CSharpCompilation Compile(params string[] sources) =>
        CSharpCompilation.Create(
            "GeneratorInput",
            sources.Select((source, i) => CSharpSyntaxTree.ParseText(source, ParseOptions, path: $"Input{i}.cs")),
            s_references.Value,
            new CSharpCompilationOptions(
                OutputKind.DynamicallyLinkedLibrary,
                nullableContextOptions: NullableContextOptions.Enable,
                allowUnsafe: false));

    public static GeneratorDriver CreateDriver(bool trackSteps = true) =>
        CSharpGeneratorDriver.Create(
            [new NvmLayoutGenerator().AsSourceGenerator()],
            parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: trackSteps));

    /// <summary>Runs the generator once and returns its result plus the compilation with the output added.</summary>
    public static GeneratorRun Run(params string[] sources)
    {
        var input = Compile(sources);
        var driver = CreateDriver().RunGeneratorsAndUpdateCompilation(input, out var output, out var generatorDiagnostics);
        return new GeneratorRun(input, output, generatorDiagnostics, driver.GetRunResult());
    }

    /// <summary>The generator's own diagnostics for <paramref name="source"/>, sorted by position.</summary>
    public static IReadOnlyList<Diagnostic> GeneratorDiagnostics(params string[] sources) =>
        Run(sources).GeneratorDiagnostics.OrderBy(d => d.Location.SourceSpan.Start).ToList();

    public static string Sample(string fileName)
    {
        using var stream = typeof(GeneratorHarness).Assembly.GetManifestResourceStream($"Samples/{fileName}")
            ?? throw new InvalidOperationException($"embedded sample {fileName} is missing");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}

internal sealed record GeneratorRun(
    CSharpCompilation Input,
    Compilation Output,
    ImmutableArray<Diagnostic> GeneratorDiagnostics,
    GeneratorDriverRunResult Result)
{
    /// <summary>Errors and warnings of the compilation including the generated source (documentation checked).</summary>
    public IReadOnlyList<Diagnostic> OutputProblems =>
        Output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();

    public IReadOnlyDictionary<string, string> GeneratedSources =>
        Result.Results.SelectMany(r => r.GeneratedSources).ToDictionary(s => s.HintName, s => s.SourceText.ToString());
}
