using System.Globalization;
using static RAllocator.Generators.Layout.EmitterCommon;

namespace RAllocator.Generators.Layout;

/// <summary>Emits the explicit layout, offsets, layout table, bulk copies and the typed View of an [NvmStruct].</summary>
internal static class StructEmitter
{
    public static string Emit(StructModel model)
    {
        var type = model.Type;
        string self = type.FullyQualifiedName;
        string size = N(model.SizeBytes);
        var byOffset = model.Fields.OrderBy(f => f.Offset).ThenBy(f => f.Name, StringComparer.Ordinal).ToList();

        var w = EmitterCommon.Begin(type, "NvmStruct");
        w.Line($"[global::System.Runtime.InteropServices.StructLayout(global::System.Runtime.InteropServices.LayoutKind.Explicit, Size = {size})]");
        w.Open($"partial {type.Keyword} {type.Name}");

        w.Summary($"Size of <c>{type.Name}</c> in NVM, in bytes.");
        w.Line($"public const int SizeBytes = {size};");

        // Backing fields and the partial property implementations.
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var field in model.Fields)
        {
            string backing = CamelBacking(field.Name, used);
            w.Line();
            w.Line($"[global::System.Runtime.InteropServices.FieldOffset({N(field.Offset)})]");
            w.Line($"private {field.TypeKeyword} {backing};");
            w.Line();
            w.Line(
                $"{field.Accessibility} partial {field.TypeKeyword} {field.Name} " +
                $"{{ {Prefix(field.GetAccessibility)}get => {backing}; {Prefix(field.SetAccessibility)}set => {backing} = value; }}");
        }

        w.Line();
        w.Summary($"Byte offset of each field of <c>{type.Name}</c> from the start of the struct.");
        w.Open("public static class Offsets");
        for (int i = 0; i < model.Fields.Count; i++)
        {
            var field = model.Fields[i];
            if (i > 0)
            {
                w.Line();
            }

            w.Summary($"Byte offset of <c>{field.Name}</c> ({field.TypeKeyword}, {Bytes(field.SizeBytes)}).");
            w.Line($"public const int {field.Name} = {N(field.Offset)};");
        }

        w.Close();

        w.Line();
        w.Summary($"The layout table of <c>{type.Name}</c>: every field with its offset, size and type, in offset order.");
        w.Line($"public static {KnownNames.NvmStructInfo} Info {{ get; }} = new(");
        w.Line($"    {Literal(type.Name)},");
        w.Line($"    {size},");
        w.Line($"    {KnownNames.Array}.AsReadOnly(new {KnownNames.NvmFieldInfo}[]");
        w.Line("    {");
        foreach (var field in byOffset)
        {
            w.Line($"        new({Literal(field.Name)}, {N(field.Offset)}, {N(field.SizeBytes)}, {Literal(field.TypeKeyword)}, {Bool(field.Atomic)}),");
        }

        w.Line("    }));");

        EmitBulkCopies(w, type, self);
        EmitView(w, model, self);

        w.Close();
        return EmitterCommon.End(w, type);
    }

    private static void EmitBulkCopies(SourceWriter w, TypeDeclaration type, string self)
    {
        // Bulk copies go through MemoryMarshal: the explicit layout makes the struct's memory image exactly its NVM
        // image (little-endian, as every supported platform is). Slicing to SizeBytes keeps the copy exact even if
        // the runtime pads the struct, and unused gaps round-trip unchanged.
        string bytesOfValue = $"{KnownNames.MemoryMarshal}.AsBytes({KnownNames.MemoryMarshal}.CreateSpan(ref value, 1)).Slice(0, SizeBytes)";
        string bytesOfThis = $"{KnownNames.MemoryMarshal}.AsBytes({KnownNames.MemoryMarshal}.CreateReadOnlySpan(in this, 1)).Slice(0, SizeBytes)";

        w.Line();
        w.Line($"/// <summary>Reads a <c>{type.Name}</c> from <paramref name=\"region\"/> at <paramref name=\"offset\"/> with one bulk read of <see cref=\"SizeBytes\"/> bytes.</summary>");
        w.Line("/// <param name=\"region\">The region to read.</param>");
        w.Line("/// <param name=\"offset\">Byte offset of the struct in the region.</param>");
        w.Line("/// <returns>The value read.</returns>");
        w.Open($"public static {self} Read({KnownNames.INvmRegion} region, long offset)");
        w.Line($"{KnownNames.ArgumentNullException}.ThrowIfNull(region);");
        w.Line($"{self} value = default;");
        w.Line($"region.Read(offset, {bytesOfValue});");
        w.Line("return value;");
        w.Close();

        w.Line();
        w.Line($"/// <summary>Writes this value to <paramref name=\"region\"/> at <paramref name=\"offset\"/> with one bulk write of <see cref=\"SizeBytes\"/> bytes (not persisted).</summary>");
        w.Line("/// <param name=\"region\">The region to write.</param>");
        w.Line("/// <param name=\"offset\">Byte offset of the struct in the region.</param>");
        w.Open($"public readonly void Write({KnownNames.INvmRegion} region, long offset)");
        w.Line($"{KnownNames.ArgumentNullException}.ThrowIfNull(region);");
        w.Line($"region.Write(offset, {bytesOfThis});");
        w.Close();

        w.Line();
        w.Line($"/// <summary>Decodes a <c>{type.Name}</c> from the first <see cref=\"SizeBytes\"/> bytes of <paramref name=\"bytes\"/>.</summary>");
        w.Line("/// <param name=\"bytes\">At least <see cref=\"SizeBytes\"/> bytes in NVM format.</param>");
        w.Line("/// <returns>The decoded value.</returns>");
        w.Open($"public static {self} FromBytes(global::System.ReadOnlySpan<byte> bytes)");
        w.Open("if (bytes.Length < SizeBytes)");
        w.Line($"throw new {KnownNames.ArgumentException}($\"{type.Name} needs {{SizeBytes}} bytes, got {{bytes.Length}}.\", nameof(bytes));");
        w.Close();
        w.Line();
        w.Line($"{self} value = default;");
        w.Line($"bytes.Slice(0, SizeBytes).CopyTo({bytesOfValue});");
        w.Line("return value;");
        w.Close();

        w.Line();
        w.Line($"/// <summary>Encodes this value into the first <see cref=\"SizeBytes\"/> bytes of <paramref name=\"destination\"/>.</summary>");
        w.Line("/// <param name=\"destination\">At least <see cref=\"SizeBytes\"/> bytes.</param>");
        w.Open("public readonly void CopyTo(global::System.Span<byte> destination)");
        w.Open("if (destination.Length < SizeBytes)");
        w.Line($"throw new {KnownNames.ArgumentException}($\"{type.Name} needs {{SizeBytes}} bytes, got {{destination.Length}}.\", nameof(destination));");
        w.Close();
        w.Line();
        w.Line($"{bytesOfThis}.CopyTo(destination);");
        w.Close();
    }

    private static void EmitView(SourceWriter w, StructModel model, string self)
    {
        var type = model.Type;
        string region = KnownNames.INvmRegion;
        string access = KnownNames.NvmFieldAccess;

        w.Line();
        w.Line("/// <summary>");
        w.Line($"/// Typed access to a <c>{type.Name}</c> stored in an NVM region at <see cref=\"Offset\"/>: each property reads or");
        w.Line("/// writes its field in place. 8-byte fields at 8-byte-aligned absolute offsets are single-copy atomic");
        w.Line("/// (LoadUInt64/StoreUInt64); other fields are little-endian reads and writes of their size. Nothing is durable");
        w.Line("/// until persisted.");
        w.Line("/// </summary>");
        w.Open("public readonly struct View");
        w.Line($"/// <summary>A view of the <c>{type.Name}</c> at <paramref name=\"offset\"/> in <paramref name=\"region\"/>.</summary>");
        w.Line("/// <param name=\"region\">The region holding the struct.</param>");
        w.Line("/// <param name=\"offset\">Byte offset of the struct in the region.</param>");
        w.Open($"public View({region} region, long offset)");
        w.Line($"{KnownNames.ArgumentNullException}.ThrowIfNull(region);");
        w.Line("Region = region;");
        w.Line("Offset = offset;");
        w.Close();
        w.Line();
        w.Summary("The region holding the struct.");
        w.Line($"public {region} Region {{ get; }}");
        w.Line();
        w.Summary("Byte offset of the struct in the region.");
        w.Line("public long Offset { get; }");

        foreach (var field in model.Fields)
        {
            string at = Plus("Offset", field.Offset);
            string t = field.TypeKeyword;
            string describe = $"<c>{field.Name}</c> ({t} at offset {N(field.Offset)})";
            w.Line();
            string getter;
            string setter;
            if (field.Atomic)
            {
                getter = FromUInt64(field.Type, $"Region.LoadUInt64({at})");
                setter = $"Region.StoreUInt64({at}, {ToUnsigned(field.Type, "value")})";
                w.Summary($"The atomic field {describe}: one aligned 8-byte load or store.");
            }
            else
            {
                string suffix = FieldTypes.UnsignedAccessSuffix(field.Type);
                getter = FromUnsigned(field.Type, $"{access}.Read{suffix}(Region, {at})");
                setter = $"{access}.Write{suffix}(Region, {at}, {ToUnsigned(field.Type, "value")})";
                w.Summary($"The field {describe}, read and written in place.");
            }

            w.Open($"{field.Accessibility} {t} {field.Name}");
            w.Line($"get => {getter};");
            w.Line($"set => {setter};");
            w.Close();

            if (field.Atomic)
            {
                w.Line();
                w.Summary($"Atomically loads {describe}.");
                w.Line("/// <returns>The value.</returns>");
                w.Line($"{field.Accessibility} {t} Load{field.Name}() => {getter};");
                w.Line();
                w.Summary($"Atomically stores {describe}; not yet durable.");
                w.Line("/// <param name=\"value\">The value to store.</param>");
                w.Line($"{field.Accessibility} void Store{field.Name}({t} value) => {setter};");
                w.Line();
                w.Summary($"Atomic compare-and-swap of {describe}.");
                w.Line("/// <param name=\"expected\">The value the field must hold for the swap to happen.</param>");
                w.Line("/// <param name=\"desired\">The value to store if it does.</param>");
                w.Line("/// <returns>The value found before the operation: <paramref name=\"expected\"/> when the swap happened.</returns>");
                w.Line($"{field.Accessibility} {t} CompareExchange{field.Name}({t} expected, {t} desired) =>");
                w.Line($"    {FromUInt64(field.Type, $"Region.CompareExchangeUInt64({at}, {ToUnsigned(field.Type, "expected")}, {ToUnsigned(field.Type, "desired")})")};");
                w.Line();
                w.Summary($"Atomic fetch-and-add of {describe}.");
                w.Line("/// <param name=\"delta\">The amount to add (wrapping).</param>");
                w.Line("/// <returns>The value found before the addition.</returns>");
                w.Line($"{field.Accessibility} {t} FetchAdd{field.Name}({t} delta) =>");
                w.Line($"    {FromUInt64(field.Type, $"Region.FetchAddUInt64({at}, {ToUnsigned(field.Type, "delta")})")};");
            }

            w.Line();
            w.Summary($"Makes the stores to {describe} durable.");
            w.Line($"{field.Accessibility} void Persist{field.Name}() => Region.Persist({at}, {N(field.SizeBytes)});");
        }

        w.Line();
        w.Summary($"Makes the stores to the whole <c>{type.Name}</c> durable ({N(model.SizeBytes)} bytes).");
        w.Line($"public void Persist() => Region.Persist(Offset, {N(model.SizeBytes)});");
        w.Line();
        w.Summary($"Reads the whole <c>{type.Name}</c> with one bulk read.");
        w.Line("/// <returns>The value read.</returns>");
        w.Line($"public {self} Load() => {self}.Read(Region, Offset);");
        w.Line();
        w.Summary($"Writes the whole <c>{type.Name}</c> with one bulk write (not persisted).");
        w.Line("/// <param name=\"value\">The value to write.</param>");
        w.Line($"public void Store(in {self} value) => value.Write(Region, Offset);");
        w.Close();
    }

    private static string Prefix(string modifiers) => modifiers.Length == 0 ? "" : modifiers + " ";

    private static string ToUnsigned(FieldType type, string expression) => type switch
    {
        FieldType.SByte => $"unchecked((byte){expression})",
        FieldType.Int16 => $"unchecked((ushort){expression})",
        FieldType.Int32 => $"unchecked((uint){expression})",
        FieldType.Int64 => $"unchecked((ulong){expression})",
        _ => expression,
    };

    private static string FromUnsigned(FieldType type, string expression) =>
        FieldTypes.IsSigned(type) ? $"unchecked(({FieldTypes.Keyword(type)}){expression})" : expression;

    private static string FromUInt64(FieldType type, string expression) =>
        type == FieldType.Int64 ? $"unchecked((long){expression})" : expression;

    private static string Bytes(long count) => count == 1 ? "1 byte" : $"{N(count)} bytes";

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);
}
