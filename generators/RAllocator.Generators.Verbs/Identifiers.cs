using Microsoft.CodeAnalysis.CSharp;

namespace RAllocator.Generators.Verbs;

/// <summary>C names kept verbatim in C#, escaped with '@' where they are C# keywords (a struct member named 'lock').</summary>
internal static class Identifiers
{
    public static string Escape(string name) =>
        SyntaxFacts.GetKeywordKind(name) != SyntaxKind.None || SyntaxFacts.GetContextualKeywordKind(name) != SyntaxKind.None
            ? "@" + name
            : name;

    /// <summary>Escapes every segment of a dotted member path.</summary>
    public static string EscapePath(string path) => string.Join(".", path.Split('.').Select(Escape));
}
