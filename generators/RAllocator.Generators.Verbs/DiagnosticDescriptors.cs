using Microsoft.CodeAnalysis;

namespace RAllocator.Generators.Verbs;

/// <summary>
/// Every diagnostic the bindings generator reports, all pointing into the .bindings file. IDs are stable: once
/// shipped an ID keeps its meaning, and every change is tracked in AnalyzerReleases.*.md.
/// </summary>
internal static class DiagnosticDescriptors
{
    private const string Category = "RAllocator.Verbs";

    public static readonly DiagnosticDescriptor SyntaxError = Error(
        "RVERBS0001", "Malformed bindings line", "Bindings line not understood: {0}");

    public static readonly DiagnosticDescriptor UnknownType = Error(
        "RVERBS0002", "Unknown type in bindings", "Type '{0}' is neither built in nor declared in this file{1}");

    public static readonly DiagnosticDescriptor DuplicateName = Error(
        "RVERBS0003", "Name declared twice", "{0} '{1}' is declared twice");

    public static readonly DiagnosticDescriptor UnbalancedBlock = Error(
        "RVERBS0004", "Unbalanced bindings block", "{0}");

    public static readonly DiagnosticDescriptor MissingDirective = Error(
        "RVERBS0005", "Missing bindings directive", "The bindings file has no '{0}' directive; it needs namespace, class, library and header");

    public static readonly DiagnosticDescriptor InvalidByValue = Error(
        "RVERBS0006", "Type cannot be used by value", "'{0}' {1}");

    public static readonly DiagnosticDescriptor InvalidInline = Error(
        "RVERBS0007", "Inline function does not resolve", "Inline function '{0}': {1}");

    public static readonly DiagnosticDescriptor InvalidNumber = Error(
        "RVERBS0008", "Invalid number in bindings", "{0}");

    public static readonly IReadOnlyDictionary<string, DiagnosticDescriptor> ById = new[]
    {
        SyntaxError, UnknownType, DuplicateName, UnbalancedBlock, MissingDirective, InvalidByValue, InvalidInline, InvalidNumber,
    }.ToDictionary(d => d.Id);

    private static DiagnosticDescriptor Error(string id, string title, string messageFormat) =>
        new(id, title, messageFormat, Category, DiagnosticSeverity.Error, isEnabledByDefault: true);
}
