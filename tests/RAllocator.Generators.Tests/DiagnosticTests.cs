using Microsoft.CodeAnalysis;
using Shouldly;

namespace RAllocator.Generators.Tests;

/// <summary>Every generator diagnostic: its stable ID, its exact message, where it points, and that nothing is emitted.</summary>
public sealed class DiagnosticTests
{
    private const string Usings = "using RAllocator.Nvm.Layout;\nnamespace N;\n";

    private const string Plain64 = """
        [NvmStruct(64)]
        public partial struct Block
        {
            [NvmField(0)] public partial ulong Word { get; set; }
        }

        """;

    private const string Atomic64 = """
        [NvmStruct(64)]
        public partial struct Counters
        {
            [NvmField(0, Atomic = true)] public partial ulong Count { get; set; }
        }

        """;

    [Fact]
    public void OverlappingFieldsAreRALLOC0001NamingBothByteRanges()
    {
        Expect("""
            [NvmStruct(16)]
            public partial struct S
            {
                [NvmField(0)] public partial ulong A { get; set; }
                [NvmField(4)] public partial uint B { get; set; }
            }
            """, "RALLOC0001", "NVM struct 'S': field 'B' at bytes [4, 8) overlaps field 'A' at bytes [0, 8)", "B");
    }

    [Fact]
    public void AnAtomicFieldAtAnUnalignedOffsetIsRALLOC0002()
    {
        Expect("""
            [NvmStruct(16)]
            public partial struct S
            {
                [NvmField(4, Atomic = true)] public partial ulong A { get; set; }
            }
            """,
            "RALLOC0002",
            "NVM struct 'S': atomic field 'A' is at offset 4, which is not 8-byte aligned; CPU and RDMA atomics need one aligned 8-byte word",
            "A");
    }

    [Fact]
    public void AFieldPastTheStructSizeIsRALLOC0003()
    {
        Expect("""
            [NvmStruct(16)]
            public partial struct S
            {
                [NvmField(12)] public partial ulong A { get; set; }
            }
            """, "RALLOC0003", "NVM struct 'S': field 'A' occupies bytes [12, 20), outside the struct's 16 bytes", "A");
    }

    [Fact]
    public void AFieldAtANegativeOffsetIsRALLOC0003()
    {
        Expect("""
            [NvmStruct(16)]
            public partial struct S
            {
                [NvmField(-2)] public partial ushort A { get; set; }
            }
            """, "RALLOC0003", "NVM struct 'S': field 'A' occupies bytes [-2, 0), outside the struct's 16 bytes", "A");
    }

    [Fact]
    public void AFixedRegionStructLargerThanItsReservationIsRALLOC0004()
    {
        Expect(Plain64 + """
            [NvmLayout]
            [NvmFixedRegion("Header", typeof(Block), Offset = 0, ReserveBytes = 32)]
            public partial class L { }
            """,
            "RALLOC0004",
            "NVM layout 'L': fixed region 'Header' holds 'Block' of 64 bytes but reserves only 32 bytes",
            "NvmFixedRegion(\"Header\", typeof(Block), Offset = 0, ReserveBytes = 32)");
    }

    [Fact]
    public void OverlappingFixedReservationsAreRALLOC0005()
    {
        Expect(Plain64 + """
            [NvmLayout]
            [NvmFixedRegion("A", typeof(Block), Offset = 0, ReserveBytes = 4096)]
            [NvmFixedRegion("B", typeof(Block), Offset = 64, ReserveBytes = 64)]
            public partial class L { }
            """,
            "RALLOC0005",
            "NVM layout 'L': fixed region 'B' at bytes [64, 128) overlaps fixed region 'A' at bytes [0, 4096)",
            "NvmFixedRegion(\"B\", typeof(Block), Offset = 64, ReserveBytes = 64)");
    }

    [Fact]
    public void AnUnsupportedFieldTypeIsRALLOC0006()
    {
        Expect("""
            [NvmStruct(16)]
            public partial struct S
            {
                [NvmField(0)] public partial double A { get; set; }
            }
            """,
            "RALLOC0006",
            "NVM struct 'S': field 'A' has type 'double', but a field must be byte, sbyte, ushort, short, uint, int, ulong or long",
            "A");
    }

    [Fact]
    public void AnAtomicFieldThatIsNot64BitsIsRALLOC0006()
    {
        Expect("""
            [NvmStruct(16)]
            public partial struct S
            {
                [NvmField(8, Atomic = true)] public partial uint A { get; set; }
            }
            """,
            "RALLOC0006",
            "NVM struct 'S': field 'A' has type 'uint', but an atomic field must be ulong or long: CPU and RDMA atomics work on one 8-byte word",
            "A");
    }

    [Fact]
    public void AStructThatIsNotPartialIsRALLOC0007()
    {
        Expect("""
            [NvmStruct(16)]
            public struct S
            {
            }
            """, "RALLOC0007", "NVM struct 'S' must be declared 'partial' so that the generator can complete it", "S");
    }

    [Fact]
    public void AFieldPropertyThatIsNotPartialIsRALLOC0007()
    {
        Expect("""
            [NvmStruct(16)]
            public partial struct S
            {
                [NvmField(0)] public ulong A { get; set; }
            }
            """,
            "RALLOC0007",
            "NVM field 'S.A' must be a partial property declaration ('partial', no body) that the generator implements",
            "A");
    }

    [Fact]
    public void AFieldPropertyWithoutASetterIsRALLOC0007()
    {
        Expect("""
            [NvmStruct(16)]
            public partial struct S
            {
                [NvmField(0)] public partial ulong A { get; }
            }
            """, "RALLOC0007", "NVM field 'S.A' must be declared with both 'get' and 'set' accessors", "A");
    }

    [Fact]
    public void ATypeContainingAnNvmStructThatIsNotPartialIsRALLOC0007()
    {
        Expect("""
            public static class Outer
            {
                [NvmStruct(8)]
                public partial struct S
                {
                }
            }
            """, "RALLOC0007", "Type 'Outer' must be declared 'partial' because it contains NVM struct 'S'", "S");
    }

    [Fact]
    public void ALayoutThatIsNotPartialIsRALLOC0007()
    {
        Expect(Plain64 + """
            [NvmLayout]
            [NvmFixedRegion("Header", typeof(Block))]
            public sealed class L { }
            """, "RALLOC0007", "NVM layout 'L' must be declared 'partial' so that the generator can complete it", "L");
    }

    [Fact]
    public void ARegionWhoseTypeIsNotAnNvmStructIsRALLOC0008()
    {
        Expect("""
            public struct Plain { public ulong Word; }

            [NvmLayout]
            [NvmArrayRegion("Items", typeof(Plain), CountParameter = "count")]
            public partial class L { }
            """,
            "RALLOC0008",
            "NVM layout 'L': region 'Items' stores 'N.Plain', which is not an [NvmStruct] struct",
            "NvmArrayRegion(\"Items\", typeof(Plain), CountParameter = \"count\")");
    }

    [Fact]
    public void AnArrayRegionWithoutCountParameterIsRALLOC0009()
    {
        Expect(Plain64 + """
            [NvmLayout]
            [NvmArrayRegion("Items", typeof(Block))]
            public partial class L { }
            """,
            "RALLOC0009",
            "NVM layout 'L': array region 'Items' has no CountParameter: name the layout constructor parameter that gives its element count",
            "NvmArrayRegion(\"Items\", typeof(Block))");
    }

    [Fact]
    public void AnArrayRegionWithANonPowerOfTwoAlignIsRALLOC0009()
    {
        Expect(Plain64 + """
            [NvmLayout]
            [NvmArrayRegion("Items", typeof(Block), CountParameter = "count", Align = 48)]
            public partial class L { }
            """,
            "RALLOC0009",
            "NVM layout 'L': array region 'Items' has Align = 48, which is not a positive power of two",
            "NvmArrayRegion(\"Items\", typeof(Block), CountParameter = \"count\", Align = 48)");
    }

    [Fact]
    public void AFieldNamedLikeAGeneratedViewMemberIsRALLOC0010()
    {
        Expect("""
            [NvmStruct(16)]
            public partial struct S
            {
                [NvmField(0)] public partial ulong Persist { get; set; }
            }
            """, "RALLOC0010", "NVM struct 'S': field 'Persist' conflicts with the generated member 'S.View.Persist'", "Persist");
    }

    [Fact]
    public void AFieldNamedLikeAnotherFieldsGeneratedMemberIsRALLOC0010()
    {
        Expect("""
            [NvmStruct(16)]
            public partial struct S
            {
                [NvmField(0, Atomic = true)] public partial ulong Epoch { get; set; }
                [NvmField(8)] public partial ulong LoadEpoch { get; set; }
            }
            """,
            "RALLOC0010",
            "NVM struct 'S': field 'LoadEpoch' conflicts with the generated member 'S.View.LoadEpoch' of field 'Epoch'",
            "LoadEpoch");
    }

    [Fact]
    public void RegionsWhoseGeneratedMembersCollideAreRALLOC0010()
    {
        Expect(Plain64 + """
            [NvmLayout]
            [NvmArrayRegion("Ring", typeof(Block), CountParameter = "a")]
            [NvmArrayRegion("RingElement", typeof(Block), CountParameter = "b")]
            public partial class L { }
            """,
            "RALLOC0010",
            "NVM layout 'L': region 'RingElement' generates the member 'RingElementOffset', which region 'Ring' also generates",
            "NvmArrayRegion(\"RingElement\", typeof(Block), CountParameter = \"b\")");
    }

    [Fact]
    public void ARegionDeclaredTwiceIsRALLOC0010()
    {
        Expect(Plain64 + """
            [NvmLayout]
            [NvmFixedRegion("Header", typeof(Block), Offset = 0)]
            [NvmFixedRegion("Header", typeof(Block), Offset = 64)]
            public partial class L { }
            """,
            "RALLOC0010",
            "NVM layout 'L': region 'Header' is declared more than once",
            "NvmFixedRegion(\"Header\", typeof(Block), Offset = 64)");
    }

    [Fact]
    public void ANonPositiveStructSizeIsRALLOC0011()
    {
        Expect("""
            [NvmStruct(0)]
            public partial struct S
            {
            }
            """, "RALLOC0011", "NVM struct 'S': SizeBytes is 0, but it must be positive", "S");
    }

    [Fact]
    public void ANegativeFixedRegionOffsetIsRALLOC0011()
    {
        Expect(Plain64 + """
            [NvmLayout]
            [NvmFixedRegion("Header", typeof(Block), Offset = -64)]
            public partial class L { }
            """,
            "RALLOC0011",
            "NVM layout 'L': fixed region 'Header' has Offset -64, but it must be non-negative",
            "NvmFixedRegion(\"Header\", typeof(Block), Offset = -64)");
    }

    [Fact]
    public void ACountParameterThatIsAKeywordIsRALLOC0012()
    {
        Expect(Plain64 + """
            [NvmLayout]
            [NvmArrayRegion("Items", typeof(Block), CountParameter = "class")]
            public partial class L { }
            """,
            "RALLOC0012",
            "NVM layout 'L': count parameter 'class' is not a valid C# identifier",
            "NvmArrayRegion(\"Items\", typeof(Block), CountParameter = \"class\")");
    }

    [Fact]
    public void ARegionNameThatIsNotAnIdentifierIsRALLOC0012()
    {
        Expect(Plain64 + """
            [NvmLayout]
            [NvmFixedRegion("2nd header", typeof(Block))]
            public partial class L { }
            """,
            "RALLOC0012",
            "NVM layout 'L': region name '2nd header' is not a valid C# identifier",
            "NvmFixedRegion(\"2nd header\", typeof(Block))");
    }

    [Fact]
    public void AGenericStructIsRALLOC0013()
    {
        Expect("""
            [NvmStruct(8)]
            public partial struct S<T>
            {
            }
            """, "RALLOC0013", "NVM struct 'S' cannot be generic or nested in a generic type", "S");
    }

    [Fact]
    public void AFixedRegionAtAnUnalignedOffsetHoldingAtomicFieldsIsRALLOC0014()
    {
        Expect(Atomic64 + """
            [NvmLayout]
            [NvmFixedRegion("Counters", typeof(Counters), Offset = 12)]
            public partial class L { }
            """,
            "RALLOC0014",
            "NVM layout 'L': region 'Counters' starts at offset 12, so the atomic fields of 'Counters' would not be 8-byte aligned",
            "NvmFixedRegion(\"Counters\", typeof(Counters), Offset = 12)");
    }

    [Fact]
    public void AnArrayOfAtomicStructsWhoseElementSizeIsNotAMultipleOfEightIsRALLOC0014()
    {
        Expect("""
            [NvmStruct(12)]
            public partial struct Odd
            {
                [NvmField(0, Atomic = true)] public partial ulong Word { get; set; }
            }

            [NvmLayout]
            [NvmArrayRegion("Odds", typeof(Odd), CountParameter = "count")]
            public partial class L { }
            """,
            "RALLOC0014",
            "NVM layout 'L': region 'Odds' has elements of 12 bytes, so the atomic fields of 'Odd' would not be 8-byte aligned",
            "NvmArrayRegion(\"Odds\", typeof(Odd), CountParameter = \"count\")");
    }

    [Fact]
    public void EveryDiagnosticIsAnErrorInTheLayoutCategoryAndListedInTheReleaseTracking()
    {
        string unshipped = File.ReadAllText(Path.Combine(
            ExpectedFiles.ProjectDirectory(), "..", "..", "generators", "RAllocator.Generators.Layout", "AnalyzerReleases.Unshipped.md"));

        foreach (var descriptor in Layout.DiagnosticDescriptors.ById.Values)
        {
            descriptor.DefaultSeverity.ShouldBe(DiagnosticSeverity.Error, descriptor.Id);
            descriptor.Category.ShouldBe("RAllocator.Layout", descriptor.Id);
            unshipped.ShouldContain($"{descriptor.Id} | RAllocator.Layout | Error |", customMessage: $"{descriptor.Id} must be tracked");
        }

        Layout.DiagnosticDescriptors.ById.Keys.Order(StringComparer.Ordinal)
            .ShouldBe(Enumerable.Range(1, 14).Select(i => $"RALLOC{i:0000}"));
    }

    /// <summary>
    /// Runs the generator and expects exactly one diagnostic with this ID, severity, message and location text (the
    /// source it points at), and no source for the erroneous type (other, valid declarations still get theirs).
    /// Generator diagnostics carry their location as data (path, span, lines), so the span is resolved against the
    /// input text.
    /// </summary>
    private static void Expect(string body, string id, string message, string locationText)
    {
        var run = GeneratorHarness.Run(Usings + body);
        run.GeneratorDiagnostics.Length.ShouldBe(
            1, $"exactly one generator diagnostic expected, got: {string.Join("; ", run.GeneratorDiagnostics)}");
        string[] erroneous = ["N.S.g.cs", "N.L.g.cs", "N.Outer.S.g.cs", "N.S_T_.g.cs"];
        run.GeneratedSources.Keys.ShouldNotContain(key => erroneous.Contains(key), "a declaration with an error emits nothing");
        var diagnostic = run.GeneratorDiagnostics[0];
        diagnostic.Id.ShouldBe(id);
        diagnostic.Severity.ShouldBe(DiagnosticSeverity.Error);
        diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture).ShouldBe(message);
        var lineSpan = diagnostic.Location.GetLineSpan();
        lineSpan.Path.ShouldBe("Input0.cs");
        var text = Microsoft.CodeAnalysis.Text.SourceText.From(Usings + body);
        text.ToString(diagnostic.Location.SourceSpan).ShouldBe(locationText);
        text.Lines.GetLinePositionSpan(diagnostic.Location.SourceSpan).ShouldBe(lineSpan.Span);
    }
}
