using System.Globalization;
using System.Text;

namespace RAllocator.Nvm.Layout;

/// <summary>
/// Renders a generated layout's tables as a markdown document (spec/layout.md, <c>inspect</c>). The output is
/// deterministic: the same tables always give the same bytes, with <c>\n</c> line endings and invariant
/// formatting, so the document can be checked in and compared.
/// </summary>
public static class NvmLayoutDocument
{
    /// <summary>
    /// Renders the regions of <paramref name="layoutName"/> in declaration order, then one table per distinct
    /// struct (in order of first use) listing every field and every unused gap.
    /// </summary>
    /// <param name="layoutName">The layout's name, used as the title.</param>
    /// <param name="regions">The layout's regions, usually the generated <c>Regions</c> table.</param>
    /// <returns>The markdown document.</returns>
    public static string Render(string layoutName, IReadOnlyList<NvmRegionInfo> regions) =>
        Render(layoutName, regions, placements: null);

    /// <summary>
    /// Renders the document of <see cref="Render(string, IReadOnlyList{NvmRegionInfo})"/> plus, when
    /// <paramref name="placements"/> is given, a table of where one layout instance put each region.
    /// </summary>
    /// <param name="layoutName">The layout's name, used as the title.</param>
    /// <param name="regions">The layout's regions, usually the generated <c>Regions</c> table.</param>
    /// <param name="placements">An instance's computed placements (its <c>Placements</c>), or null.</param>
    /// <returns>The markdown document.</returns>
    public static string Render(
        string layoutName,
        IReadOnlyList<NvmRegionInfo> regions,
        IReadOnlyList<NvmRegionPlacement>? placements)
    {
        ArgumentNullException.ThrowIfNull(layoutName);
        ArgumentNullException.ThrowIfNull(regions);

        var text = new StringBuilder();
        Line(text, $"# NVM layout: {layoutName}");
        Line(text);
        Line(text, "Generated from the layout tables by the layout generator; offsets are in bytes, hex (decimal).");
        Line(text);
        Line(text, "## Regions");
        Line(text);
        Line(text, "| # | Region | Kind | Offset | Reservation | Struct |");
        Line(text, "|--:|--------|------|--------|-------------|--------|");
        for (int i = 0; i < regions.Count; i++)
        {
            var region = regions[i];
            bool isFixed = region.Kind == NvmRegionKind.Fixed;
            string offset = isFixed
                ? HexAndDecimal(region.FixedOffset)
                : $"after previous, aligned to {Invariant(region.Align)}";
            string reservation = isFixed
                ? $"{Invariant(region.ReserveBytes)} bytes"
                : $"`{region.CountParameter}` × {Invariant(region.Struct.SizeBytes)} bytes";
            string kind = isFixed ? "fixed" : "array";
            Line(
                text,
                $"| {Invariant(i + 1)} | `{region.Name}` | {kind} | {offset} | {reservation} | `{region.Struct.Name}` ({Invariant(region.Struct.SizeBytes)} bytes) |");
        }

        if (placements is not null)
        {
            Line(text);
            Line(text, "## Placement");
            Line(text);
            Line(text, "| Region | Offset | Length | Count | End |");
            Line(text, "|--------|--------|--------|------:|-----|");
            foreach (var placement in placements)
            {
                Line(
                    text,
                    $"| `{placement.Name}` | {HexAndDecimal(placement.Offset)} | {HexAndDecimal(placement.LengthBytes)} | {Invariant(placement.Count)} | {HexAndDecimal(placement.EndOffset)} |");
            }
        }

        var rendered = new HashSet<string>(StringComparer.Ordinal);
        foreach (var region in regions)
        {
            if (rendered.Add(region.Struct.Name))
            {
                RenderStruct(text, region.Struct);
            }
        }

        return text.ToString();
    }

    private static void RenderStruct(StringBuilder text, NvmStructInfo info)
    {
        Line(text);
        Line(text, $"## `{info.Name}` ({Invariant(info.SizeBytes)} bytes)");
        Line(text);
        Line(text, "| Field | Offset | Size | Type | Atomic |");
        Line(text, "|-------|--------|-----:|------|--------|");

        // Gaps are listed so that the table accounts for every byte of the struct.
        long cursor = 0;
        foreach (var field in info.Fields.OrderBy(f => f.Offset).ThenBy(f => f.Name, StringComparer.Ordinal))
        {
            if (field.Offset > cursor)
            {
                Gap(text, cursor, field.Offset);
            }

            Line(
                text,
                $"| `{field.Name}` | {HexAndDecimal(field.Offset)} | {Invariant(field.SizeBytes)} | `{field.TypeName}` | {(field.Atomic ? "yes" : "no")} |");
            cursor = Math.Max(cursor, (long)field.Offset + field.SizeBytes);
        }

        if (info.SizeBytes > cursor)
        {
            Gap(text, cursor, info.SizeBytes);
        }
    }

    private static void Gap(StringBuilder text, long start, long end) =>
        Line(text, $"| _unused_ | {HexAndDecimal(start)} | {Invariant(end - start)} | | |");

    private static string HexAndDecimal(long value) =>
        value < 0
            ? Invariant(value)
            : string.Create(CultureInfo.InvariantCulture, $"0x{value:X} ({value})");

    private static string Invariant(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static void Line(StringBuilder text, string line = "") => text.Append(line).Append('\n');
}
