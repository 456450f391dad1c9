using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace RAllocator.Generators.Layout;

// The data that flows through the pipeline: records of strings and numbers only, never a symbol, syntax node
// or compilation, so that equal declarations give equal models and the driver can cache the emitted source.

/// <summary>A type enclosing the annotated one (for nested declarations): "partial class Outer".</summary>
internal sealed record ContainingType(string Keyword, string Name);

/// <summary>Where the annotated type lives and how to reopen it.</summary>
/// <param name="Namespace">Namespace, or "" for the global namespace.</param>
/// <param name="Containers">Enclosing types, outermost first.</param>
/// <param name="Keyword">"struct", "record struct", "class" or "record".</param>
/// <param name="Name">Simple name.</param>
/// <param name="FullyQualifiedName">"global::Ns.Outer.Name".</param>
/// <param name="HintName">File name for the generated source.</param>
internal sealed record TypeDeclaration(
    string Namespace,
    EquatableArray<ContainingType> Containers,
    string Keyword,
    string Name,
    string FullyQualifiedName,
    string HintName);

/// <summary>The integer kinds an NVM field may have.</summary>
internal enum FieldType
{
    Byte,
    SByte,
    UInt16,
    Int16,
    UInt32,
    Int32,
    UInt64,
    Int64,
}

/// <summary>One [NvmField] partial property.</summary>
/// <param name="Accessibility">Declared accessibility of the property ("public").</param>
/// <param name="GetAccessibility">Accessor modifier when it differs from the property's, else "".</param>
/// <param name="SetAccessibility">Accessor modifier when it differs from the property's, else "".</param>
internal sealed record FieldModel(
    string Name,
    int Offset,
    FieldType Type,
    bool Atomic,
    string Accessibility,
    string GetAccessibility,
    string SetAccessibility)
{
    public int SizeBytes => FieldTypes.SizeBytes(Type);

    public string TypeKeyword => FieldTypes.Keyword(Type);

    public long End => (long)Offset + SizeBytes;
}

/// <summary>An [NvmStruct] ready to emit.</summary>
internal sealed record StructModel(TypeDeclaration Type, int SizeBytes, EquatableArray<FieldModel> Fields);

/// <summary>An [NvmFixedRegion] of a layout.</summary>
/// <param name="ReserveBytes">Effective reservation: the declared one, or the struct size when none is given.</param>
internal sealed record FixedRegionModel(
    string Name,
    string StructFullyQualifiedName,
    string StructName,
    int StructSizeBytes,
    long Offset,
    long ReserveBytes);

/// <summary>An [NvmArrayRegion] of a layout.</summary>
internal sealed record ArrayRegionModel(
    string Name,
    string ElementFullyQualifiedName,
    string ElementName,
    int ElementSizeBytes,
    string CountParameter,
    int Align);

/// <summary>An [NvmLayout] ready to emit.</summary>
internal sealed record LayoutModel(
    TypeDeclaration Type,
    EquatableArray<FixedRegionModel> FixedRegions,
    EquatableArray<ArrayRegionModel> ArrayRegions)
{
    /// <summary>Max end of the fixed reservations: where the array regions may start.</summary>
    public long FixedRegionsEndOffset => FixedRegions.Count == 0 ? 0 : FixedRegions.Max(r => r.Offset + r.ReserveBytes);
}

/// <summary>A source location as plain data.</summary>
internal sealed record LocationInfo(string FilePath, TextSpan TextSpan, LinePositionSpan LineSpan)
{
    public Location ToLocation() => Location.Create(FilePath, TextSpan, LineSpan);

    public static LocationInfo? From(Location? location)
    {
        if (location is null || location.SourceTree is null)
        {
            return null;
        }

        return new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);
    }

    public static LocationInfo? From(SyntaxNode? node) => From(node?.GetLocation());
}

/// <summary>A diagnostic as plain data: its stable ID, where, and the message arguments.</summary>
internal sealed record DiagnosticInfo(string Id, LocationInfo? Location, EquatableArray<string> MessageArgs)
{
    public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, LocationInfo? location, params object[] messageArgs) =>
        new(
            descriptor.Id,
            location,
            messageArgs.Select(a => Convert.ToString(a, System.Globalization.CultureInfo.InvariantCulture) ?? "").ToEquatableArray());

    public Diagnostic ToDiagnostic() =>
        Diagnostic.Create(
            DiagnosticDescriptors.ById[Id],
            Location?.ToLocation(),
            MessageArgs.Select(a => (object)a).ToArray());
}

/// <summary>What parsing one annotated type gave: the model (null when it cannot be emitted) and diagnostics.</summary>
internal sealed record ParseResult<TModel>(TModel? Model, EquatableArray<DiagnosticInfo> Diagnostics)
    where TModel : class;

/// <summary>Sizes and C# keywords of the field types.</summary>
internal static class FieldTypes
{
    public static int SizeBytes(FieldType type) => type switch
    {
        FieldType.Byte or FieldType.SByte => 1,
        FieldType.UInt16 or FieldType.Int16 => 2,
        FieldType.UInt32 or FieldType.Int32 => 4,
        _ => 8,
    };

    public static string Keyword(FieldType type) => type switch
    {
        FieldType.Byte => "byte",
        FieldType.SByte => "sbyte",
        FieldType.UInt16 => "ushort",
        FieldType.Int16 => "short",
        FieldType.UInt32 => "uint",
        FieldType.Int32 => "int",
        FieldType.UInt64 => "ulong",
        _ => "long",
    };

    /// <summary>The unsigned type of the same size: what <c>NvmFieldAccess</c> reads and writes.</summary>
    public static string UnsignedAccessSuffix(FieldType type) => type switch
    {
        FieldType.Byte or FieldType.SByte => "Byte",
        FieldType.UInt16 or FieldType.Int16 => "UInt16",
        FieldType.UInt32 or FieldType.Int32 => "UInt32",
        _ => "UInt64",
    };

    public static bool IsSigned(FieldType type) =>
        type is FieldType.SByte or FieldType.Int16 or FieldType.Int32 or FieldType.Int64;

    public static bool Is64Bit(FieldType type) => type is FieldType.UInt64 or FieldType.Int64;

    public static FieldType? FromSpecialType(SpecialType specialType) => specialType switch
    {
        SpecialType.System_Byte => FieldType.Byte,
        SpecialType.System_SByte => FieldType.SByte,
        SpecialType.System_UInt16 => FieldType.UInt16,
        SpecialType.System_Int16 => FieldType.Int16,
        SpecialType.System_UInt32 => FieldType.UInt32,
        SpecialType.System_Int32 => FieldType.Int32,
        SpecialType.System_UInt64 => FieldType.UInt64,
        SpecialType.System_Int64 => FieldType.Int64,
        _ => null,
    };
}
