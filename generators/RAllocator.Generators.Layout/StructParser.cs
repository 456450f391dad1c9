using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace RAllocator.Generators.Layout;

/// <summary>Reads an [NvmStruct] declaration into a <see cref="StructModel"/> and its diagnostics.</summary>
internal static class StructParser
{
    /// <summary>Members of the struct itself that the generator emits.</summary>
    public static readonly string[] GeneratedStructMembers = ["SizeBytes", "Offsets", "Info", "Read", "Write", "FromBytes", "CopyTo", "View"];

    /// <summary>Members of the nested View that do not depend on field names.</summary>
    public static readonly string[] GeneratedViewMembers = ["View", "Region", "Offset", "Persist", "Load", "Store"];

    private const string SupportedTypes = "a field must be byte, sbyte, ushort, short, uint, int, ulong or long";

    public static ParseResult<StructModel> Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var symbol = (INamedTypeSymbol)context.TargetSymbol;
        var syntax = (TypeDeclarationSyntax)context.TargetNode;
        var diagnostics = new List<DiagnosticInfo>();
        var declaration = DeclarationParser.Parse(symbol, syntax, "struct", diagnostics, cancellationToken);

        // A malformed attribute (missing argument) is already a compiler error: say nothing more.
        if (context.Attributes.Length == 0
            || context.Attributes[0].ConstructorArguments.Length != 1
            || context.Attributes[0].ConstructorArguments[0].Value is not int sizeBytes)
        {
            return new ParseResult<StructModel>(null, diagnostics.ToEquatableArray());
        }

        string name = symbol.Name;
        if (sizeBytes <= 0)
        {
            diagnostics.Add(DiagnosticInfo.Create(
                DiagnosticDescriptors.InvalidSizeOrOffset,
                LocationInfo.From(syntax.Identifier.GetLocation()),
                "struct",
                name,
                FormattableString.Invariant($"SizeBytes is {sizeBytes}, but it must be positive")));
        }

        var fields = new List<FieldModel>();
        var fieldLocations = new List<LocationInfo?>();
        foreach (var property in symbol.GetMembers().OfType<IPropertySymbol>())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var attribute = property.GetAttributes().FirstOrDefault(a => DeclarationParser.IsAttribute(a, KnownNames.NvmFieldAttribute));
            if (attribute is null || attribute.ConstructorArguments.Length != 1 || attribute.ConstructorArguments[0].Value is not int offset)
            {
                continue;
            }

            bool atomic = attribute.NamedArguments.Any(a => a.Key == "Atomic" && a.Value.Value is true);
            var location = LocationInfo.From(property.Locations.FirstOrDefault());
            var field = ParseField(name, property, offset, atomic, location, diagnostics, cancellationToken);
            if (field is null)
            {
                continue;
            }

            if (sizeBytes > 0 && (offset < 0 || field.End > sizeBytes))
            {
                diagnostics.Add(DiagnosticInfo.Create(
                    DiagnosticDescriptors.FieldOutsideStruct, location, name, field.Name, offset, field.End, sizeBytes));
            }

            fields.Add(field);
            fieldLocations.Add(location);
        }

        CheckOverlaps(name, fields, fieldLocations, diagnostics);
        CheckNames(name, fields, fieldLocations, diagnostics);

        var model = declaration is null || diagnostics.Count > 0
            ? null
            : new StructModel(declaration, sizeBytes, fields.ToEquatableArray());
        return new ParseResult<StructModel>(model, diagnostics.ToEquatableArray());
    }

    /// <summary>True when <paramref name="type"/> has an [NvmField(Atomic = true)] property.</summary>
    public static bool HasAtomicFields(INamedTypeSymbol type) =>
        type.GetMembers().OfType<IPropertySymbol>().Any(p => p.GetAttributes().Any(a =>
            DeclarationParser.IsAttribute(a, KnownNames.NvmFieldAttribute)
            && a.NamedArguments.Any(n => n.Key == "Atomic" && n.Value.Value is true)));

    private static FieldModel? ParseField(
        string structName,
        IPropertySymbol property,
        int offset,
        bool atomic,
        LocationInfo? location,
        List<DiagnosticInfo> diagnostics,
        CancellationToken cancellationToken)
    {
        string qualified = $"{structName}.{property.Name}";
        string? shapeProblem =
            property.IsStatic ? "an instance property"
            : property.GetMethod is null || property.SetMethod is null || property.SetMethod.IsInitOnly
                ? "declared with both 'get' and 'set' accessors"
            : property.ReturnsByRef || property.ReturnsByRefReadonly ? "a property that does not return by reference"
            : property.IsIndexer ? "a property, not an indexer"
            : !property.IsPartialDefinition ? "a partial property declaration ('partial', no body) that the generator implements"
            : property.PartialImplementationPart is not null ? "left unimplemented: the generator implements it"
            : null;
        if (shapeProblem is not null)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NotPartial, location, "NVM field", qualified, shapeProblem));
            return null;
        }

        var type = FieldTypes.FromSpecialType(property.Type.SpecialType);
        string typeName = property.Type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat);
        if (type is null)
        {
            diagnostics.Add(DiagnosticInfo.Create(
                DiagnosticDescriptors.UnsupportedFieldType, location, structName, property.Name, typeName, SupportedTypes));
            return null;
        }

        if (atomic && !FieldTypes.Is64Bit(type.Value))
        {
            diagnostics.Add(DiagnosticInfo.Create(
                DiagnosticDescriptors.UnsupportedFieldType, location, structName, property.Name, typeName,
                "an atomic field must be ulong or long: CPU and RDMA atomics work on one 8-byte word"));
        }

        if (atomic && offset % 8 != 0)
        {
            diagnostics.Add(DiagnosticInfo.Create(
                DiagnosticDescriptors.AtomicFieldMisaligned, location, structName, property.Name, offset));
        }

        string accessibility = Accessibility(property.DeclaredAccessibility);
        return new FieldModel(
            property.Name,
            offset,
            type.Value,
            atomic,
            accessibility,
            AccessorModifiers(property.GetMethod!, accessibility, cancellationToken),
            AccessorModifiers(property.SetMethod!, accessibility, cancellationToken));
    }

    private static void CheckOverlaps(string structName, List<FieldModel> fields, List<LocationInfo?> locations, List<DiagnosticInfo> diagnostics)
    {
        for (int later = 1; later < fields.Count; later++)
        {
            for (int earlier = 0; earlier < later; earlier++)
            {
                var a = fields[later];
                var b = fields[earlier];
                if (a.Offset < b.End && b.Offset < a.End)
                {
                    diagnostics.Add(DiagnosticInfo.Create(
                        DiagnosticDescriptors.FieldsOverlap,
                        locations[later],
                        structName, a.Name, a.Offset, a.End, b.Name, b.Offset, b.End));
                }
            }
        }
    }

    private static void CheckNames(string structName, List<FieldModel> fields, List<LocationInfo?> locations, List<DiagnosticInfo> diagnostics)
    {
        // Members of View derived from field names; no derived prefix is a prefix of another, so they cannot collide
        // with each other, only with a field called, say, "PersistMagic".
        var derived = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var field in fields)
        {
            derived["Persist" + field.Name] = field.Name;
            if (field.Atomic)
            {
                foreach (string prefix in new[] { "Load", "Store", "CompareExchange", "FetchAdd" })
                {
                    derived[prefix + field.Name] = field.Name;
                }
            }
        }

        for (int i = 0; i < fields.Count; i++)
        {
            string fieldName = fields[i].Name;
            string? problem =
                GeneratedStructMembers.Contains(fieldName)
                    ? $"field '{fieldName}' conflicts with the generated member '{structName}.{fieldName}'"
                : GeneratedViewMembers.Contains(fieldName)
                    ? $"field '{fieldName}' conflicts with the generated member '{structName}.View.{fieldName}'"
                : derived.TryGetValue(fieldName, out string? owner)
                    ? $"field '{fieldName}' conflicts with the generated member '{structName}.View.{fieldName}' of field '{owner}'"
                : null;
            if (problem is not null)
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NameConflict, locations[i], "struct", structName, problem));
            }
        }
    }

    private static string AccessorModifiers(IMethodSymbol accessor, string propertyAccessibility, CancellationToken cancellationToken)
    {
        string accessibility = Accessibility(accessor.DeclaredAccessibility);
        var modifiers = new List<string>();
        if (accessibility != propertyAccessibility)
        {
            modifiers.Add(accessibility);
        }

        // A 'readonly' accessor on the declaration must be repeated on the implementation.
        foreach (var reference in accessor.DeclaringSyntaxReferences)
        {
            if (reference.GetSyntax(cancellationToken) is AccessorDeclarationSyntax syntax && syntax.Modifiers.Any(SyntaxKind.ReadOnlyKeyword))
            {
                modifiers.Add("readonly");
                break;
            }
        }

        return string.Join(" ", modifiers);
    }

    private static string Accessibility(Accessibility accessibility) => accessibility switch
    {
        Microsoft.CodeAnalysis.Accessibility.Public => "public",
        Microsoft.CodeAnalysis.Accessibility.Internal => "internal",
        Microsoft.CodeAnalysis.Accessibility.Protected => "protected",
        Microsoft.CodeAnalysis.Accessibility.ProtectedOrInternal => "protected internal",
        Microsoft.CodeAnalysis.Accessibility.ProtectedAndInternal => "private protected",
        _ => "private",
    };
}
