using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace RAllocator.Generators.Layout;

/// <summary>
/// Generates NVM structs ([NvmStruct]) and image layouts ([NvmLayout]). Each annotated declaration is parsed
/// into an equatable model plus diagnostics; models and diagnostics flow as separate steps so that an edit that
/// only moves a declaration re-reports diagnostics without re-emitting source.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class NvmLayoutGenerator : IIncrementalGenerator
{
    /// <inheritdoc />
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var structResults = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                KnownNames.NvmStructAttribute,
                static (node, _) => node is StructDeclarationSyntax or RecordDeclarationSyntax,
                static (syntaxContext, cancellationToken) => StructParser.Parse(syntaxContext, cancellationToken))
            .WithTrackingName(TrackingNames.StructResults);

        var structModels = structResults
            .Select(static (result, _) => result.Model)
            .Where(static model => model is not null)
            .Select(static (model, _) => model!)
            .WithTrackingName(TrackingNames.StructModels);

        var structDiagnostics = structResults
            .Select(static (result, _) => result.Diagnostics)
            .WithTrackingName(TrackingNames.StructDiagnostics);

        var layoutResults = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                KnownNames.NvmLayoutAttribute,
                static (node, _) => node is ClassDeclarationSyntax or RecordDeclarationSyntax,
                static (syntaxContext, cancellationToken) => LayoutParser.Parse(syntaxContext, cancellationToken))
            .WithTrackingName(TrackingNames.LayoutResults);

        var layoutModels = layoutResults
            .Select(static (result, _) => result.Model)
            .Where(static model => model is not null)
            .Select(static (model, _) => model!)
            .WithTrackingName(TrackingNames.LayoutModels);

        var layoutDiagnostics = layoutResults
            .Select(static (result, _) => result.Diagnostics)
            .WithTrackingName(TrackingNames.LayoutDiagnostics);

        context.RegisterSourceOutput(structModels, static (output, model) =>
            output.AddSource(model.Type.HintName, StructEmitter.Emit(model)));
        context.RegisterSourceOutput(layoutModels, static (output, model) =>
            output.AddSource(model.Type.HintName, LayoutEmitter.Emit(model)));
        context.RegisterSourceOutput(structDiagnostics, static (output, diagnostics) => Report(output, diagnostics));
        context.RegisterSourceOutput(layoutDiagnostics, static (output, diagnostics) => Report(output, diagnostics));
    }

    private static void Report(SourceProductionContext output, EquatableArray<DiagnosticInfo> diagnostics)
    {
        foreach (var diagnostic in diagnostics)
        {
            output.ReportDiagnostic(diagnostic.ToDiagnostic());
        }
    }
}
