using System.Collections;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using RAllocator.Generators.Layout;
using Shouldly;

namespace RAllocator.Generators.Tests;

/// <summary>The pipeline caches: models are plain equatable data, so unrelated edits re-emit nothing.</summary>
public sealed class IncrementalTests
{
    private static readonly IncrementalStepRunReason[] s_reused = [IncrementalStepRunReason.Cached, IncrementalStepRunReason.Unchanged];

    [Fact]
    public void AnUnrelatedEditLeavesEveryStepAndOutputCachedOrUnchanged()
    {
        var input = GeneratorHarness.Compile(GeneratorHarness.Sample("BladeSample.cs"));
        var driver = GeneratorHarness.CreateDriver().RunGenerators(input, TestContext.Current.CancellationToken);
        var first = driver.GetRunResult().Results.Single();

        var edited = input.AddSyntaxTrees(CSharpSyntaxTree.ParseText(
            "namespace Elsewhere;\ninternal static class Unrelated { public static int Answer => 42; }", GeneratorHarness.ParseOptions, cancellationToken: TestContext.Current.CancellationToken));
        driver = driver.RunGenerators(edited, TestContext.Current.CancellationToken);
        var second = driver.GetRunResult().Results.Single();

        foreach (string name in TrackingNames.All)
        {
            second.TrackedSteps.ShouldContainKey(name);
            foreach (var step in second.TrackedSteps[name])
            {
                foreach (var (_, reason) in step.Outputs)
                {
                    reason.ShouldBeOneOf(s_reused, $"step {name} must be reused after an unrelated edit");
                }
            }
        }

        second.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs)
            .ShouldAllBe(o => o.Reason == IncrementalStepRunReason.Cached, "no source is re-emitted after an unrelated edit");
        second.GeneratedSources.Select(s => s.SourceText.ToString())
            .ShouldBe(first.GeneratedSources.Select(s => s.SourceText.ToString()));
    }

    [Fact]
    public void MovingADeclarationReReportsDiagnosticsButReusesEveryModel()
    {
        const string source = """
            using RAllocator.Nvm.Layout;
            namespace N;

            [NvmStruct(8)]
            public partial struct Good
            {
                [NvmField(0, Atomic = true)] public partial ulong Word { get; set; }
            }

            [NvmStruct(16)]
            public partial struct Bad
            {
                [NvmField(4, Atomic = true)] public partial ulong Word { get; set; }
            }
            """;
        var input = GeneratorHarness.Compile(source);
        var driver = GeneratorHarness.CreateDriver().RunGenerators(input, TestContext.Current.CancellationToken);
        var firstLine = driver.GetRunResult().Diagnostics.Single().Location.GetLineSpan().StartLinePosition.Line;

        var oldTree = input.SyntaxTrees.Single();
        var movedTree = oldTree.WithChangedText(oldTree.GetText(TestContext.Current.CancellationToken).Replace(0, 0, "// A comment that moves every declaration down.\n\n"));
        driver = driver.RunGenerators(input.ReplaceSyntaxTree(oldTree, movedTree), TestContext.Current.CancellationToken);
        var second = driver.GetRunResult();

        second.Diagnostics.Single().Location.GetLineSpan().StartLinePosition.Line.ShouldBe(firstLine + 2);
        second.Results.Single().TrackedSteps[TrackingNames.StructModels]
            .SelectMany(s => s.Outputs)
            .ShouldAllBe(o => o.Reason == IncrementalStepRunReason.Cached || o.Reason == IncrementalStepRunReason.Unchanged);
    }

    [Fact]
    public void ChangingAStructInAnotherFileUpdatesTheLayoutThatUsesIt()
    {
        const string layout = """
            using RAllocator.Nvm.Layout;
            namespace N;

            [NvmLayout]
            [NvmFixedRegion("Header", typeof(Header), Offset = 0)]
            [NvmArrayRegion("Items", typeof(Header), CountParameter = "count", Align = 8)]
            public partial class L { }
            """;
        const string header = """
            using RAllocator.Nvm.Layout;
            namespace N;

            [NvmStruct(SIZE)]
            public partial struct Header
            {
                [NvmField(0)] public partial ulong Word { get; set; }
            }
            """;
        var input = GeneratorHarness.Compile(layout, header.Replace("SIZE", "16", StringComparison.Ordinal));
        var driver = GeneratorHarness.CreateDriver().RunGenerators(input, TestContext.Current.CancellationToken);
        Generated(driver, "N.L.g.cs").ShouldContain("public const long FixedRegionsEndOffset = 16;");

        var oldTree = input.SyntaxTrees.Last();
        var newTree = CSharpSyntaxTree.ParseText(
            header.Replace("SIZE", "40", StringComparison.Ordinal), GeneratorHarness.ParseOptions, oldTree.FilePath, cancellationToken: TestContext.Current.CancellationToken);
        driver = driver.RunGenerators(input.ReplaceSyntaxTree(oldTree, newTree), TestContext.Current.CancellationToken);

        Generated(driver, "N.L.g.cs").ShouldContain("public const long FixedRegionsEndOffset = 40;", customMessage: "the layout reads the struct's size afresh");
        Generated(driver, "N.L.g.cs").ShouldContain("public const int ItemsElementSizeBytes = 40;");
    }

    [Fact]
    public void NoPipelineStepHoldsASymbolSyntaxOrCompilation()
    {
        var input = GeneratorHarness.Compile(GeneratorHarness.Sample("BladeSample.cs"));
        var result = GeneratorHarness.CreateDriver().RunGenerators(input, TestContext.Current.CancellationToken).GetRunResult().Results.Single();

        foreach (string name in TrackingNames.All)
        {
            foreach (var step in result.TrackedSteps[name])
            {
                foreach (var (value, _) in step.Outputs)
                {
                    AssertPlainData(value, name, new HashSet<object>(ReferenceEqualityComparer.Instance));
                }
            }
        }
    }

    private static string Generated(GeneratorDriver driver, string hintName) =>
        driver.GetRunResult().Results.Single().GeneratedSources.Single(s => s.HintName == hintName).SourceText.ToString();

    private static void AssertPlainData(object? value, string path, HashSet<object> visited)
    {
        if (value is null || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum || !visited.Add(value))
        {
            return;
        }

        (value is ISymbol || value is Compilation || value is SemanticModel || value is SyntaxNode || value is SyntaxTree)
            .ShouldBeFalse($"{path} holds a {value.GetType().Name}: pipeline models must be plain equatable data");

        if (value is IEnumerable items)
        {
            int i = 0;
            foreach (object? item in items)
            {
                AssertPlainData(item, $"{path}[{i++}]", visited);
            }
        }

        for (var type = value.GetType(); type is not null && type != typeof(object); type = type.BaseType)
        {
            foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                AssertPlainData(field.GetValue(value), $"{path}.{field.Name}", visited);
            }
        }
    }
}
