using System.Globalization;
using static RAllocator.Generators.Layout.EmitterCommon;

namespace RAllocator.Generators.Layout;

/// <summary>Emits the offsets, constructor, placements, accessors and layout table of an [NvmLayout].</summary>
internal static class LayoutEmitter
{
    public static string Emit(LayoutModel model)
    {
        var type = model.Type;
        string region = KnownNames.INvmRegion;
        var w = EmitterCommon.Begin(type, "NvmLayout");
        w.Open($"partial {type.Keyword} {type.Name}");

        foreach (var r in model.FixedRegions)
        {
            w.Summary($"Well-known byte offset of the fixed region <c>{r.Name}</c> (one <see cref=\"{Cref(r.StructFullyQualifiedName)}\"/>).");
            w.Line($"public const long {r.Name}Offset = {N(r.Offset)};");
            w.Line();
            w.Summary($"Bytes reserved for the fixed region <c>{r.Name}</c> (the struct takes {N(r.StructSizeBytes)} bytes).");
            w.Line($"public const long {r.Name}ReserveBytes = {N(r.ReserveBytes)};");
            w.Line();
        }

        w.Summary("End of the fixed reservations: the array regions are placed from here on.");
        w.Line($"public const long FixedRegionsEndOffset = {N(model.FixedRegionsEndOffset)};");

        foreach (var r in model.ArrayRegions)
        {
            w.Line();
            w.Summary($"Size in bytes of one element of the array region <c>{r.Name}</c> (a <see cref=\"{Cref(r.ElementFullyQualifiedName)}\"/>).");
            w.Line($"public const int {r.Name}ElementSizeBytes = {N(r.ElementSizeBytes)};");
        }

        var parameters = model.ArrayRegions.Select(r => r.CountParameter).Distinct(StringComparer.Ordinal).ToList();
        EmitConstructor(w, model, parameters);

        foreach (var r in model.ArrayRegions)
        {
            w.Line();
            w.Summary($"Byte offset of the array region <c>{r.Name}</c> (aligned to {N(r.Align)}).");
            w.Line($"public long {r.Name}Offset {{ get; }}");
            w.Line();
            w.Summary($"Number of elements in the array region <c>{r.Name}</c> (constructor parameter <c>{r.CountParameter}</c>).");
            w.Line($"public long {r.Name}Count {{ get; }}");
            w.Line();
            w.Summary($"Bytes occupied by the array region <c>{r.Name}</c>: count × {N(r.ElementSizeBytes)}.");
            w.Line($"public long {r.Name}LengthBytes {{ get; }}");
            w.Line();
            w.Summary($"Byte offset of element <paramref name=\"index\"/> of the array region <c>{r.Name}</c>.");
            w.Line("/// <param name=\"index\">Element index, in [0, count).</param>");
            w.Line("/// <returns>The element's byte offset in the image.</returns>");
            w.Line($"/// <exception cref=\"{Cref(KnownNames.ArgumentOutOfRangeException)}\">The index is outside the region.</exception>");
            w.Open($"public long {r.Name}ElementOffset(long index)");
            w.Open($"if ((ulong)index >= (ulong)this.{r.Name}Count)");
            w.Line($"throw new {KnownNames.ArgumentOutOfRangeException}(nameof(index), index, $\"The NVM array region {r.Name} has {{this.{r.Name}Count}} elements.\");");
            w.Close();
            w.Line();
            w.Line($"return this.{r.Name}Offset + (index * {N(r.ElementSizeBytes)}L);");
            w.Close();
        }

        w.Line();
        w.Summary("End of the last array region (the fixed regions' end when there is none): the metadata's extent.");
        w.Line("public long EndOffset { get; }");

        foreach (var r in model.FixedRegions)
        {
            w.Line();
            w.Summary($"A typed view of the fixed region <c>{r.Name}</c> in <paramref name=\"region\"/>.");
            w.Line("/// <param name=\"region\">The NVM image.</param>");
            w.Line("/// <returns>The view.</returns>");
            w.Line($"public {r.StructFullyQualifiedName}.View {r.Name}({region} region) => new(region, {r.Name}Offset);");
        }

        foreach (var r in model.ArrayRegions)
        {
            w.Line();
            w.Summary($"A typed view of element <paramref name=\"index\"/> of the array region <c>{r.Name}</c> in <paramref name=\"region\"/>.");
            w.Line("/// <param name=\"region\">The NVM image.</param>");
            w.Line("/// <param name=\"index\">Element index, in [0, count).</param>");
            w.Line("/// <returns>The view.</returns>");
            w.Line($"/// <exception cref=\"{Cref(KnownNames.ArgumentOutOfRangeException)}\">The index is outside the region.</exception>");
            w.Line($"public {r.ElementFullyQualifiedName}.View {r.Name}({region} region, long index) => new(region, this.{r.Name}ElementOffset(index));");
        }

        w.Line();
        w.Summary("The layout table: every region in declaration order, fixed regions first, with its struct's field table.");
        w.Line($"public static {KnownNames.IReadOnlyList}<{KnownNames.NvmRegionInfo}> Regions {{ get; }} = {KnownNames.Array}.AsReadOnly(new {KnownNames.NvmRegionInfo}[]");
        w.Line("{");
        foreach (var r in model.FixedRegions)
        {
            w.Line($"    new({Literal(r.Name)}, {KnownNames.NvmRegionKind}.Fixed, {r.StructFullyQualifiedName}.Info, {N(r.Offset)}, {N(r.ReserveBytes)}, null, 1),");
        }

        foreach (var r in model.ArrayRegions)
        {
            w.Line($"    new({Literal(r.Name)}, {KnownNames.NvmRegionKind}.Array, {r.ElementFullyQualifiedName}.Info, -1, 0, {Literal(r.CountParameter)}, {N(r.Align)}),");
        }

        w.Line("});");
        w.Line();
        w.Summary("Where this instance placed each region, in the order of <see cref=\"Regions\"/>.");
        w.Line($"public {KnownNames.IReadOnlyList}<{KnownNames.NvmRegionPlacement}> Placements {{ get; }}");

        w.Close();
        return EmitterCommon.End(w, type);
    }

    private static void EmitConstructor(SourceWriter w, LayoutModel model, List<string> parameters)
    {
        var type = model.Type;
        w.Line();
        w.Summary("Places the array regions after the fixed ones, each aligned up after the previous one's end.");
        foreach (string parameter in parameters)
        {
            var users = model.ArrayRegions.Where(r => r.CountParameter == parameter).Select(r => $"<c>{r.Name}</c>");
            w.Line($"/// <param name=\"{parameter}\">Element count of {string.Join(" and ", users)}.</param>");
        }

        w.Line($"/// <exception cref=\"{Cref(KnownNames.ArgumentOutOfRangeException)}\">A count is negative, or the regions would end past the largest 64-bit offset.</exception>");
        w.Open($"public {type.Name}({string.Join(", ", parameters.Select(p => "long " + p))})");
        foreach (string parameter in parameters)
        {
            w.Open($"if ({parameter} < 0)");
            w.Line($"throw new {KnownNames.ArgumentOutOfRangeException}(nameof({parameter}), {parameter}, \"An NVM array region count cannot be negative.\");");
            w.Close();
            w.Line();
        }

        // Locals carry a prefix no count parameter is expected to use; members are reached through 'this.' so
        // that a count parameter may share a member's name.
        w.Line($"long __nvmEnd = {N(model.FixedRegionsEndOffset)}L;");
        foreach (var r in model.ArrayRegions)
        {
            string p = r.CountParameter;
            w.Line();
            w.Open("try");
            w.Line(r.Align == 1
                ? $"this.{r.Name}Offset = __nvmEnd;"
                : $"this.{r.Name}Offset = checked((__nvmEnd + {N(r.Align - 1)}L) & ~{N(r.Align - 1)}L);");
            w.Line($"this.{r.Name}Count = {p};");
            w.Line($"this.{r.Name}LengthBytes = checked({p} * {N(r.ElementSizeBytes)}L);");
            w.Line($"__nvmEnd = checked(this.{r.Name}Offset + this.{r.Name}LengthBytes);");
            w.Close();
            w.Open($"catch ({KnownNames.OverflowException})");
            w.Line($"throw new {KnownNames.ArgumentOutOfRangeException}(nameof({p}), {p}, \"The NVM array region {r.Name} would end past the largest 64-bit offset.\");");
            w.Close();
        }

        w.Line();
        w.Line("this.EndOffset = __nvmEnd;");
        w.Line($"this.Placements = {KnownNames.Array}.AsReadOnly(new {KnownNames.NvmRegionPlacement}[]");
        w.Line("{");
        foreach (var r in model.FixedRegions)
        {
            w.Line($"    new({Literal(r.Name)}, {N(r.Offset)}, {N(r.ReserveBytes)}, 1),");
        }

        foreach (var r in model.ArrayRegions)
        {
            w.Line($"    new({Literal(r.Name)}, this.{r.Name}Offset, this.{r.Name}LengthBytes, this.{r.Name}Count),");
        }

        w.Line("});");
        w.Close();
    }

    /// <summary>A cref needs no "global::" alias (it is legal, but plain names read better in IntelliSense).</summary>
    private static string Cref(string fullyQualifiedName) =>
        fullyQualifiedName.StartsWith("global::", StringComparison.Ordinal) ? fullyQualifiedName.Substring("global::".Length) : fullyQualifiedName;

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);
}
