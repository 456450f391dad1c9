using System.Collections.Immutable;
using System.Reflection;
using System.Runtime.Loader;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;
using RAllocator.Generators.Verbs;

namespace RAllocator.Fabric.Verbs.Tests.Generator;

/// <summary>Runs the bindings generator over .bindings text with the plain Roslyn driver (offline: framework references
/// come from TRUSTED_PLATFORM_ASSEMBLIES).</summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new CSharpParseOptions(LanguageVersion.Latest)
        .WithDocumentationMode(DocumentationMode.Diagnose);

    private static readonly Lazy<ImmutableArray<MetadataReference>> s_references = new(() =>
    {
        string frameworkDirectory = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        return [.. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(path => string.Equals(Path.GetDirectoryName(path), frameworkDirectory, StringComparison.Ordinal))
            .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))];
    });

    /// <summary>The repository's declaration file, as shipped next to the test binaries.</summary>
    public static string RealBindings => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "ibverbs.bindings"));

    public static CSharpCompilation Compile() =>
        CSharpCompilation.Create(
            "GeneratorInput",
            [CSharpSyntaxTree.ParseText("namespace Input; internal static class Marker { }", ParseOptions, path: "Input.cs")],
            s_references.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true));

    public static GeneratorDriver CreateDriver(params AdditionalText[] files) =>
        CSharpGeneratorDriver.Create(
            [new VerbsBindingsGenerator().AsSourceGenerator()],
            additionalTexts: files,
            parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    public static GeneratorRun Run(string bindings, string path = "/repo/Interop/test.bindings")
    {
        var input = Compile();
        var driver = CreateDriver(new TextFile(path, bindings)).RunGeneratorsAndUpdateCompilation(input, out var output, out var diagnostics);
        return new GeneratorRun(output, diagnostics, driver.GetRunResult());
    }

    /// <summary>The generator's diagnostics for <paramref name="bindings"/>, in file order.</summary>
    public static IReadOnlyList<Diagnostic> Diagnostics(string bindings) =>
        Run(bindings).Diagnostics.OrderBy(d => d.Location.SourceSpan.Start).ToList();

    /// <summary>An additional file held in memory.</summary>
    public sealed class TextFile(string path, string text) : AdditionalText
    {
        public override string Path { get; } = path;

        public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(text);
    }
}

internal sealed record GeneratorRun(Compilation Output, ImmutableArray<Diagnostic> Diagnostics, GeneratorDriverRunResult Result)
{
    public IReadOnlyList<Diagnostic> OutputProblems =>
        Output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();

    public IReadOnlyDictionary<string, string> GeneratedSources =>
        Result.Results.SelectMany(r => r.GeneratedSources).ToDictionary(s => s.HintName, s => s.SourceText.ToString());

    /// <summary>Emits the output compilation and loads it in a collectible context, for running generated code.</summary>
    public Assembly Load()
    {
        using var image = new MemoryStream();
        var emitted = Output.Emit(image);
        if (!emitted.Success)
        {
            throw new InvalidOperationException("generated code does not compile: " + string.Join("\n", emitted.Diagnostics));
        }

        image.Position = 0;
        return new AssemblyLoadContext("generated-bindings", isCollectible: true).LoadFromStream(image);
    }
}
