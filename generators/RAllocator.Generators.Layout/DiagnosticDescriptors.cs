using Microsoft.CodeAnalysis;

namespace RAllocator.Generators.Layout;

/// <summary>
/// Every diagnostic the layout generator reports. IDs are stable: once shipped an ID keeps its meaning, and
/// every change is tracked in AnalyzerReleases.Shipped.md / AnalyzerReleases.Unshipped.md.
/// </summary>
internal static class DiagnosticDescriptors
{
    private const string Category = "RAllocator.Layout";

    public static readonly DiagnosticDescriptor FieldsOverlap = Error(
        "RALLOC0001",
        "NVM struct fields overlap",
        "NVM struct '{0}': field '{1}' at bytes [{2}, {3}) overlaps field '{4}' at bytes [{5}, {6})");

    public static readonly DiagnosticDescriptor AtomicFieldMisaligned = Error(
        "RALLOC0002",
        "Atomic NVM field is not 8-byte aligned",
        "NVM struct '{0}': atomic field '{1}' is at offset {2}, which is not 8-byte aligned; CPU and RDMA atomics need one aligned 8-byte word");

    public static readonly DiagnosticDescriptor FieldOutsideStruct = Error(
        "RALLOC0003",
        "NVM field lies outside its struct",
        "NVM struct '{0}': field '{1}' occupies bytes [{2}, {3}), outside the struct's {4} bytes");

    public static readonly DiagnosticDescriptor FixedRegionOverflowsReservation = Error(
        "RALLOC0004",
        "NVM fixed region overflows its reservation",
        "NVM layout '{0}': fixed region '{1}' holds '{2}' of {3} bytes but reserves only {4} bytes");

    public static readonly DiagnosticDescriptor FixedRegionsOverlap = Error(
        "RALLOC0005",
        "NVM fixed regions overlap",
        "NVM layout '{0}': fixed region '{1}' at bytes [{2}, {3}) overlaps fixed region '{4}' at bytes [{5}, {6})");

    public static readonly DiagnosticDescriptor UnsupportedFieldType = Error(
        "RALLOC0006",
        "Unsupported NVM field type",
        "NVM struct '{0}': field '{1}' has type '{2}', but {3}");

    public static readonly DiagnosticDescriptor NotPartial = Error(
        "RALLOC0007",
        "NVM declaration is not a partial declaration the generator can complete",
        "{0} '{1}' must be {2}");

    public static readonly DiagnosticDescriptor RegionTypeNotNvmStruct = Error(
        "RALLOC0008",
        "NVM region type is not an [NvmStruct]",
        "NVM layout '{0}': region '{1}' stores '{2}', which is not an [NvmStruct] struct");

    public static readonly DiagnosticDescriptor InvalidArrayRegion = Error(
        "RALLOC0009",
        "Invalid NVM array region",
        "NVM layout '{0}': array region '{1}' {2}");

    public static readonly DiagnosticDescriptor NameConflict = Error(
        "RALLOC0010",
        "NVM name conflicts with a generated member",
        "NVM {0} '{1}': {2}");

    public static readonly DiagnosticDescriptor InvalidSizeOrOffset = Error(
        "RALLOC0011",
        "Invalid NVM size or offset",
        "NVM {0} '{1}': {2}");

    public static readonly DiagnosticDescriptor InvalidIdentifier = Error(
        "RALLOC0012",
        "NVM name is not a valid identifier",
        "NVM layout '{0}': {1} '{2}' is not a valid C# identifier");

    public static readonly DiagnosticDescriptor GenericNotSupported = Error(
        "RALLOC0013",
        "Generic NVM declarations are not supported",
        "NVM {0} '{1}' cannot be generic or nested in a generic type");

    public static readonly DiagnosticDescriptor AtomicFieldsMisplaced = Error(
        "RALLOC0014",
        "NVM region misaligns atomic fields",
        "NVM layout '{0}': region '{1}' {2}, so the atomic fields of '{3}' would not be 8-byte aligned");

    public static readonly IReadOnlyDictionary<string, DiagnosticDescriptor> ById = new[]
    {
        FieldsOverlap, AtomicFieldMisaligned, FieldOutsideStruct, FixedRegionOverflowsReservation,
        FixedRegionsOverlap, UnsupportedFieldType, NotPartial, RegionTypeNotNvmStruct, InvalidArrayRegion,
        NameConflict, InvalidSizeOrOffset, InvalidIdentifier, GenericNotSupported, AtomicFieldsMisplaced,
    }.ToDictionary(d => d.Id);

    private static DiagnosticDescriptor Error(string id, string title, string messageFormat) =>
        new(id, title, messageFormat, Category, DiagnosticSeverity.Error, isEnabledByDefault: true);
}
