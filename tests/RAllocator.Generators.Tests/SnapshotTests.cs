using Shouldly;

namespace RAllocator.Generators.Tests;

/// <summary>The emitted source of the sample structs and layouts, against Expected/*.txt.</summary>
public sealed class SnapshotTests
{
    public static TheoryData<string> SampleOutputs =>
    [
        "RAllocator.Generators.Tests.Samples.Superblock.g.cs",
        "RAllocator.Generators.Tests.Samples.ControlBlock.g.cs",
        "RAllocator.Generators.Tests.Samples.RingEntry.g.cs",
        "RAllocator.Generators.Tests.Samples.BitmapWord.g.cs",
        "RAllocator.Generators.Tests.Samples.PackedRecord.g.cs",
        "RAllocator.Generators.Tests.Samples.BladeLayout.g.cs",
        "RAllocator.Generators.Tests.Samples.SharedCountLayout.g.cs",
    ];

    [Theory]
    [MemberData(nameof(SampleOutputs))]
    public void GeneratedSourceMatchesTheExpectedFile(string hintName)
    {
        var run = GeneratorHarness.Run(GeneratorHarness.Sample("BladeSample.cs"));

        run.GeneratedSources.ShouldContainKey(hintName);
        ExpectedFiles.Match(run.GeneratedSources[hintName], hintName + ".txt");
    }

    [Fact]
    public void SamplesGenerateOneFilePerDeclarationAndNothingElse()
    {
        var run = GeneratorHarness.Run(GeneratorHarness.Sample("BladeSample.cs"));

        run.GeneratedSources.Keys.Order(StringComparer.Ordinal).ShouldBe(SampleOutputs.Select(row => row.Data).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void GeneratedSourceCompilesWithoutErrorsWarningsOrMissingDocumentation()
    {
        var run = GeneratorHarness.Run(GeneratorHarness.Sample("BladeSample.cs"));

        run.GeneratorDiagnostics.ShouldBeEmpty();
        run.OutputProblems.Select(d => d.ToString()).ShouldBeEmpty("the generated code must build under TreatWarningsAsErrors with documentation on");
    }

    [Fact]
    public void NestedTypesInTheGlobalNamespaceAreReopenedWithTheirContainers()
    {
        const string source = """
            using RAllocator.Nvm.Layout;

            /// <summary>Outer.</summary>
            public static partial class Outer
            {
                /// <summary>Inner.</summary>
                [NvmStruct(8)]
                internal partial struct Inner
                {
                    /// <summary>Word.</summary>
                    [NvmField(0, Atomic = true)] internal partial long Word { get; private set; }
                }
            }
            """;

        var run = GeneratorHarness.Run(source);

        run.GeneratorDiagnostics.ShouldBeEmpty();
        run.OutputProblems.Select(d => d.ToString()).ShouldBeEmpty();
        string generated = run.GeneratedSources["Outer.Inner.g.cs"];
        generated.ShouldContain("partial class Outer");
        generated.ShouldContain("internal partial long Word { get => _word; private set => _word = value; }");
    }
}
