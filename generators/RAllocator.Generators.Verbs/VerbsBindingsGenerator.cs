using Microsoft.CodeAnalysis;

namespace RAllocator.Generators.Verbs;

/// <summary>
/// Generates libibverbs bindings from every additional file ending in <c>.bindings</c>: one C# source with the structs,
/// enums, imports and inline wrappers, and one with the C layout probe and its C# counterpart. Parse results and
/// diagnostics flow as separate steps, so an edit that only moves a line re-reports without re-emitting source.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class VerbsBindingsGenerator : IIncrementalGenerator
{
    /// <summary>The extension of declaration files the generator reads.</summary>
    public const string FileExtension = ".bindings";

    /// <inheritdoc />
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var files = context.AdditionalTextsProvider
            .Where(static file => file.Path.EndsWith(FileExtension, StringComparison.OrdinalIgnoreCase))
            .Select(static (file, cancellationToken) => new BindingsText(file.Path, file.GetText(cancellationToken)?.ToString() ?? ""))
            .WithTrackingName(TrackingNames.BindingsFiles);

        var results = files
            .Select(static (file, cancellationToken) => BindingsParser.Parse(file, cancellationToken))
            .WithTrackingName(TrackingNames.ParseResults);

        var models = results
            .Select(static (result, _) => result.Model)
            .Where(static model => model is not null)
            .Select(static (model, _) => model!)
            .WithTrackingName(TrackingNames.Models);

        var diagnostics = results
            .Select(static (result, _) => result.Diagnostics)
            .WithTrackingName(TrackingNames.Diagnostics);

        context.RegisterSourceOutput(models, static (output, model) =>
        {
            output.AddSource(BindingsEmitter.HintName(model), BindingsEmitter.Emit(model));
            output.AddSource(ProbeEmitter.HintName(model), ProbeEmitter.Emit(model));
        });
        context.RegisterSourceOutput(diagnostics, static (output, found) =>
        {
            foreach (var diagnostic in found)
            {
                output.ReportDiagnostic(diagnostic.ToDiagnostic());
            }
        });
    }
}
