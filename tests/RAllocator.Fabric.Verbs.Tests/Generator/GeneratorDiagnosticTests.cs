using Microsoft.CodeAnalysis;

namespace RAllocator.Fabric.Verbs.Tests.Generator;

/// <summary>Every generator diagnostic: its stable ID, its exact message, the line it points at, and that nothing is emitted.</summary>
public sealed class GeneratorDiagnosticTests
{
    private const string Header = "namespace N\nclass Lib\nlibrary libx.so.1\nheader x.h\n";

    [Fact]
    public void AnUnknownLineIsRVERBS0001()
    {
        Expect(Header + "strukt s\n", "RVERBS0001", 4,
            "Bindings line not understood: 'strukt s' is not one of: library, header, namespace, class, enum, struct, union, opaque, incomplete, function, inline, end");
    }

    [Fact]
    public void AMalformedTypeIsRVERBS0001()
    {
        Expect(Header + "struct s\n  ptr<u32 a\nend\n", "RVERBS0001", 5,
            "Bindings line not understood: 'ptr<u32' is not a type (u8..u64, i8..i64, be16..be64, char, size_t, void, ptr, ptr<T>, fn, fn<R(A, B)>, or a declared name)");
    }

    [Fact]
    public void AnUndeclaredTypeIsRVERBS0002()
    {
        Expect(Header + "struct s\n  ibv_nothing field\nend\n", "RVERBS0002", 5,
            "Type 'ibv_nothing' is neither built in nor declared in this file; declare it (struct, union, enum, opaque or incomplete) or use a built-in type");
    }

    [Fact]
    public void ATypeDeclaredTwiceIsRVERBS0003()
    {
        Expect(Header + "struct s\n  u32 a\nend\nunion s\n  u32 b\nend\n", "RVERBS0003", 7, "Type 's' is declared twice");
    }

    [Fact]
    public void AFieldDeclaredTwiceIsRVERBS0003()
    {
        Expect(Header + "struct s\n  u32 a\n  u64 a\nend\n", "RVERBS0003", 6, "Field of s 'a' is declared twice");
    }

    [Fact]
    public void AnUnclosedStructIsRVERBS0004()
    {
        Expect(Header + "struct s\n  u32 a\n", "RVERBS0004", 4, "struct 's' is not closed with 'end'");
    }

    [Fact]
    public void AStrayEndIsRVERBS0004()
    {
        Expect(Header + "end\n", "RVERBS0004", 4, "'end' closes no enum, struct or union");
    }

    [Fact]
    public void AMissingLibraryDirectiveIsRVERBS0005()
    {
        Expect("namespace N\nclass Lib\nheader x.h\n", "RVERBS0005", 0,
            "The bindings file has no 'library' directive; it needs namespace, class, library and header");
    }

    [Fact]
    public void AnIncompleteTypeByValueIsRVERBS0006()
    {
        Expect(Header + "incomplete hidden\nstruct s\n  hidden h\nend\n", "RVERBS0006", 6,
            "'s.h' holds incomplete type 'hidden' by value; declare it 'opaque hidden size N align A' or use ptr<hidden>");
    }

    [Fact]
    public void AStructContainingItselfIsRVERBS0006()
    {
        Expect(Header + "struct s\n  s inner\nend\n", "RVERBS0006", 5, "'s' contains itself by value; use ptr<s>");
    }

    [Fact]
    public void AnInlineThroughAMissingFieldIsRVERBS0007()
    {
        Expect(Header + "struct ops\n  fn<i32(ptr<t>)> call\nend\nstruct t\n  ptr<ops> table\nend\ninline t_call(ptr<t> self) -> i32 = self->table->cal\n",
            "RVERBS0007", 10, "Inline function 't_call': 'ops' has no field 'cal'");
    }

    [Fact]
    public void AnInlineWhoseSignatureDiffersFromTheSlotIsRVERBS0007()
    {
        Expect(Header + "struct ops\n  fn<i32(ptr<t>)> call\nend\nstruct t\n  ptr<ops> table\nend\ninline t_call(ptr<t> self, i32 extra) -> i32 = self->table->call\n",
            "RVERBS0007", 10,
            "Inline function 't_call': 'self->table->call' is 'delegate* unmanaged<t*, int>', but the inline's signature needs 'delegate* unmanaged<t*, int, int>'");
    }

    [Fact]
    public void AnInlineThroughAValueWithArrowIsRVERBS0007()
    {
        Expect(Header + "struct ops\n  fn<i32(ptr<t>)> call\nend\nstruct t\n  ops table\nend\ninline t_call(ptr<t> self) -> i32 = self->table->call\n",
            "RVERBS0007", 10, "Inline function 't_call': '->call' needs a pointer to a struct on its left, not 'ops'");
    }

    [Fact]
    public void AnEnumValueThatDoesNotFitIsRVERBS0008()
    {
        Expect(Header + "enum e : u32\n  A = -1\nend\n", "RVERBS0008", 5, "enum member 'A' = -1 does not fit 'u32'");
    }

    [Fact]
    public void ANonNumericEnumValueIsRVERBS0008()
    {
        Expect(Header + "enum e\n  A = SOMETHING\nend\n", "RVERBS0008", 5, "enum member 'A' = 'SOMETHING' is not an integer, hex integer or 'a << b'");
    }

    [Fact]
    public void EveryReportedIdIsTrackedInTheAnalyzerReleaseNotes()
    {
        string releases = File.ReadAllText(Path.Combine(ExpectedFiles.ProjectDirectory(), "..", "..", "generators", "RAllocator.Generators.Verbs", "AnalyzerReleases.Unshipped.md"));
        foreach (string id in RAllocator.Generators.Verbs.DiagnosticDescriptors.ById.Keys)
        {
            releases.ShouldContain(id + " |");
        }
    }

    private static void Expect(string bindings, string id, int line, string message)
    {
        var run = GeneratorHarness.Run(bindings);
        var diagnostic = run.Diagnostics.ShouldHaveSingleItem();

        diagnostic.Id.ShouldBe(id);
        diagnostic.Severity.ShouldBe(DiagnosticSeverity.Error);
        diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture).ShouldBe(message);
        diagnostic.Location.GetLineSpan().StartLinePosition.Line.ShouldBe(line);
        diagnostic.Location.GetLineSpan().Path.ShouldBe("/repo/Interop/test.bindings");
        run.GeneratedSources.ShouldBeEmpty("a file with errors emits nothing");
    }
}
