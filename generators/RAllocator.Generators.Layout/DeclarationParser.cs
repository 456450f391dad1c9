using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace RAllocator.Generators.Layout;

/// <summary>Turns an annotated type into a <see cref="TypeDeclaration"/>, checking that it can be reopened.</summary>
internal static class DeclarationParser
{
    /// <param name="kind">"struct" or "layout", for messages.</param>
    public static TypeDeclaration? Parse(
        INamedTypeSymbol symbol,
        TypeDeclarationSyntax syntax,
        string kind,
        List<DiagnosticInfo> diagnostics,
        CancellationToken cancellationToken)
    {
        var location = LocationInfo.From(syntax.Identifier.GetLocation());
        bool ok = true;
        if (!syntax.Modifiers.Any(SyntaxKind.PartialKeyword))
        {
            diagnostics.Add(DiagnosticInfo.Create(
                DiagnosticDescriptors.NotPartial, location, $"NVM {kind}", symbol.Name, "declared 'partial' so that the generator can complete it"));
            ok = false;
        }

        if (IsGeneric(symbol))
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.GenericNotSupported, location, kind, symbol.Name));
            ok = false;
        }

        var containers = new List<ContainingType>();
        for (var outer = symbol.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            cancellationToken.ThrowIfCancellationRequested();
            TypeDeclarationSyntax? outerSyntax = null;
            bool outerPartial = false;
            foreach (var reference in outer.DeclaringSyntaxReferences)
            {
                if (reference.GetSyntax(cancellationToken) is TypeDeclarationSyntax declaration)
                {
                    outerSyntax ??= declaration;
                    outerPartial |= declaration.Modifiers.Any(SyntaxKind.PartialKeyword);
                }
            }

            if (outerSyntax is null || !outerPartial)
            {
                diagnostics.Add(DiagnosticInfo.Create(
                    DiagnosticDescriptors.NotPartial,
                    location,
                    "Type",
                    outer.Name,
                    $"declared 'partial' because it contains NVM {kind} '{symbol.Name}'"));
                ok = false;
                continue;
            }

            containers.Insert(0, new ContainingType(Keyword(outerSyntax), outer.Name));
        }

        if (!ok)
        {
            return null;
        }

        string ns = symbol.ContainingNamespace is { IsGlobalNamespace: false } n ? n.ToDisplayString() : "";
        return new TypeDeclaration(
            ns,
            containers.ToEquatableArray(),
            Keyword(syntax),
            symbol.Name,
            symbol.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat),
            HintName(symbol));
    }

    public static bool IsGeneric(INamedTypeSymbol symbol)
    {
        for (var type = symbol; type is not null; type = type.ContainingType)
        {
            if (type.TypeParameters.Length > 0)
            {
                return true;
            }
        }

        return false;
    }

    public static bool IsAttribute(AttributeData attribute, string metadataName) =>
        attribute.AttributeClass is { } type
        && type.ToDisplayString(SymbolDisplayFormat.CSharpErrorMessageFormat) == metadataName;

    public static bool IsValidIdentifier(string name) =>
        SyntaxFacts.IsValidIdentifier(name) && SyntaxFacts.GetKeywordKind(name) == SyntaxKind.None;

    private static string Keyword(TypeDeclarationSyntax syntax) => syntax.Kind() switch
    {
        SyntaxKind.StructDeclaration => "struct",
        SyntaxKind.RecordStructDeclaration => "record struct",
        SyntaxKind.RecordDeclaration => "record",
        SyntaxKind.InterfaceDeclaration => "interface",
        _ => "class",
    };

    private static string HintName(INamedTypeSymbol symbol)
    {
        var name = new StringBuilder();
        foreach (char c in symbol.ToDisplayString(SymbolDisplayFormat.CSharpErrorMessageFormat))
        {
            name.Append(char.IsLetterOrDigit(c) || c == '.' || c == '_' ? c : '_');
        }

        return name.Append(".g.cs").ToString();
    }
}
