using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace RAllocator.Generators.Layout;

/// <summary>Reads an [NvmLayout] class and its region attributes into a <see cref="LayoutModel"/>.</summary>
internal static class LayoutParser
{
    /// <summary>Members of the layout that do not depend on region names.</summary>
    public static readonly string[] GeneratedLayoutMembers = ["FixedRegionsEndOffset", "EndOffset", "Regions", "Placements"];

    public static ParseResult<LayoutModel> Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var symbol = (INamedTypeSymbol)context.TargetSymbol;
        var syntax = (TypeDeclarationSyntax)context.TargetNode;
        var diagnostics = new List<DiagnosticInfo>();
        var declaration = DeclarationParser.Parse(symbol, syntax, "layout", diagnostics, cancellationToken);
        string layout = symbol.Name;
        if (symbol.IsStatic)
        {
            diagnostics.Add(DiagnosticInfo.Create(
                DiagnosticDescriptors.NotPartial,
                LocationInfo.From(syntax.Identifier.GetLocation()),
                "NVM layout",
                layout,
                "a non-static class, because its constructor places the array regions"));
        }

        var fixedRegions = new List<FixedRegionModel>();
        var arrayRegions = new List<ArrayRegionModel>();
        var memberOwners = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string member in GeneratedLayoutMembers)
        {
            memberOwners[member] = "a member every layout gets";
        }

        memberOwners[layout] = "the layout type's own name";
        var regionNames = new HashSet<string>(StringComparer.Ordinal);

        foreach (var attribute in symbol.GetAttributes())
        {
            cancellationToken.ThrowIfCancellationRequested();
            bool isFixed = DeclarationParser.IsAttribute(attribute, KnownNames.NvmFixedRegionAttribute);
            if (!isFixed && !DeclarationParser.IsAttribute(attribute, KnownNames.NvmArrayRegionAttribute))
            {
                continue;
            }

            // A malformed attribute is already a compiler error: say nothing more about it.
            if (attribute.ConstructorArguments.Length != 2
                || attribute.ConstructorArguments[0].Value is not string name
                || attribute.ConstructorArguments[1].Value is not INamedTypeSymbol structType
                || structType.TypeKind == TypeKind.Error)
            {
                continue;
            }

            var location = LocationInfo.From(attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken));
            int errorsBefore = diagnostics.Count;
            if (!DeclarationParser.IsValidIdentifier(name))
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidIdentifier, location, layout, "region name", name));
            }
            else if (!regionNames.Add(name))
            {
                diagnostics.Add(DiagnosticInfo.Create(
                    DiagnosticDescriptors.NameConflict, location, "layout", layout, $"region '{name}' is declared more than once"));
            }
            else
            {
                string[] members = isFixed
                    ? [name + "Offset", name + "ReserveBytes", name]
                    : [name + "Offset", name + "Count", name + "LengthBytes", name + "ElementSizeBytes", name + "ElementOffset", name];
                foreach (string member in members)
                {
                    if (memberOwners.TryGetValue(member, out string? owner))
                    {
                        string ownerText = owner.StartsWith("region ", StringComparison.Ordinal) ? $"which {owner} also generates" : $"which is {owner}";
                        diagnostics.Add(DiagnosticInfo.Create(
                            DiagnosticDescriptors.NameConflict, location, "layout", layout,
                            $"region '{name}' generates the member '{member}', {ownerText}"));
                    }
                    else
                    {
                        memberOwners[member] = $"region '{name}'";
                    }
                }
            }

            var structAttribute = structType.GetAttributes().FirstOrDefault(a => DeclarationParser.IsAttribute(a, KnownNames.NvmStructAttribute));
            if (structAttribute is null
                || structAttribute.ConstructorArguments.Length != 1
                || structAttribute.ConstructorArguments[0].Value is not int structSizeBytes)
            {
                diagnostics.Add(DiagnosticInfo.Create(
                    DiagnosticDescriptors.RegionTypeNotNvmStruct, location, layout, name,
                    structType.ToDisplayString(SymbolDisplayFormat.CSharpErrorMessageFormat)));
                continue;
            }

            bool hasAtomicFields = StructParser.HasAtomicFields(structType);
            string structName = structType.Name;
            string structFullName = structType.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat);
            if (isFixed)
            {
                long offset = NamedLong(attribute, "Offset", 0);
                long reserveBytes = NamedLong(attribute, "ReserveBytes", 0);
                if (offset < 0)
                {
                    diagnostics.Add(DiagnosticInfo.Create(
                        DiagnosticDescriptors.InvalidSizeOrOffset, location, "layout", layout,
                        FormattableString.Invariant($"fixed region '{name}' has Offset {offset}, but it must be non-negative")));
                }

                if (reserveBytes < 0)
                {
                    diagnostics.Add(DiagnosticInfo.Create(
                        DiagnosticDescriptors.InvalidSizeOrOffset, location, "layout", layout,
                        FormattableString.Invariant($"fixed region '{name}' has ReserveBytes {reserveBytes}, but it must be non-negative")));
                }

                // No ReserveBytes: the reservation is exactly the struct.
                long effectiveReserve = reserveBytes == 0 ? structSizeBytes : reserveBytes;
                if (offset >= 0 && effectiveReserve > long.MaxValue - offset)
                {
                    diagnostics.Add(DiagnosticInfo.Create(
                        DiagnosticDescriptors.InvalidSizeOrOffset, location, "layout", layout,
                        FormattableString.Invariant($"fixed region '{name}' at offset {offset} with {effectiveReserve} reserved bytes ends past the largest 64-bit offset")));
                }

                if (reserveBytes > 0 && structSizeBytes > reserveBytes)
                {
                    diagnostics.Add(DiagnosticInfo.Create(
                        DiagnosticDescriptors.FixedRegionOverflowsReservation, location, layout, name, structName, structSizeBytes, reserveBytes));
                }

                if (hasAtomicFields && offset % 8 != 0)
                {
                    diagnostics.Add(DiagnosticInfo.Create(
                        DiagnosticDescriptors.AtomicFieldsMisplaced, location, layout, name, FormattableString.Invariant($"starts at offset {offset}"), structName));
                }

                if (diagnostics.Count == errorsBefore)
                {
                    var region = new FixedRegionModel(name, structFullName, structName, structSizeBytes, offset, effectiveReserve);
                    for (int i = 0; i < fixedRegions.Count; i++)
                    {
                        var other = fixedRegions[i];
                        if (region.Offset < other.Offset + other.ReserveBytes && other.Offset < region.Offset + region.ReserveBytes)
                        {
                            diagnostics.Add(DiagnosticInfo.Create(
                                DiagnosticDescriptors.FixedRegionsOverlap, location, layout,
                                region.Name, region.Offset, region.Offset + region.ReserveBytes,
                                other.Name, other.Offset, other.Offset + other.ReserveBytes));
                        }
                    }

                    fixedRegions.Add(region);
                }
            }
            else
            {
                string countParameter = attribute.NamedArguments.FirstOrDefault(a => a.Key == "CountParameter").Value.Value as string ?? "";
                int align = attribute.NamedArguments.FirstOrDefault(a => a.Key == "Align").Value.Value is int a ? a : 64;
                if (countParameter.Length == 0)
                {
                    diagnostics.Add(DiagnosticInfo.Create(
                        DiagnosticDescriptors.InvalidArrayRegion, location, layout, name,
                        "has no CountParameter: name the layout constructor parameter that gives its element count"));
                }
                else if (!DeclarationParser.IsValidIdentifier(countParameter))
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidIdentifier, location, layout, "count parameter", countParameter));
                }

                if (align <= 0 || (align & (align - 1)) != 0)
                {
                    diagnostics.Add(DiagnosticInfo.Create(
                        DiagnosticDescriptors.InvalidArrayRegion, location, layout, name, FormattableString.Invariant($"has Align = {align}, which is not a positive power of two")));
                }
                else if (hasAtomicFields && align < 8)
                {
                    diagnostics.Add(DiagnosticInfo.Create(
                        DiagnosticDescriptors.AtomicFieldsMisplaced, location, layout, name, FormattableString.Invariant($"has Align = {align}"), structName));
                }

                if (hasAtomicFields && structSizeBytes % 8 != 0)
                {
                    diagnostics.Add(DiagnosticInfo.Create(
                        DiagnosticDescriptors.AtomicFieldsMisplaced, location, layout, name, FormattableString.Invariant($"has elements of {structSizeBytes} bytes"), structName));
                }

                arrayRegions.Add(new ArrayRegionModel(name, structFullName, structName, structSizeBytes, countParameter, align));
            }
        }

        var model = declaration is null || diagnostics.Count > 0
            ? null
            : new LayoutModel(declaration, fixedRegions.ToEquatableArray(), arrayRegions.ToEquatableArray());
        return new ParseResult<LayoutModel>(model, diagnostics.ToEquatableArray());
    }

    private static long NamedLong(AttributeData attribute, string name, long defaultValue)
    {
        foreach (var argument in attribute.NamedArguments)
        {
            if (argument.Key == name && argument.Value.Value is { } value)
            {
                return Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return defaultValue;
    }
}
