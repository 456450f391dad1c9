using System.Collections;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using RAllocator.Generators.Verbs;

namespace RAllocator.Fabric.Verbs.Tests.Generator;

/// <summary>The pipeline caches: models are plain equatable data, so edits elsewhere re-emit nothing.</summary>
public sealed class GeneratorIncrementalTests
{
    [Fact]
    public void AnUnrelatedCSharpEditLeavesEveryStepCachedAndReEmitsNothing()
    {
        var file = new GeneratorHarness.TextFile("/repo/ibverbs.bindings", GeneratorHarness.RealBindings);
        var input = GeneratorHarness.Compile();
        var driver = GeneratorHarness.CreateDriver(file).RunGenerators(input, TestContext.Current.CancellationToken);
        var first = driver.GetRunResult().Results.Single();

        var edited = input.AddSyntaxTrees(CSharpSyntaxTree.ParseText("namespace Elsewhere; internal static class Unrelated { }", GeneratorHarness.ParseOptions, cancellationToken: TestContext.Current.CancellationToken));
        var second = driver.RunGenerators(edited, TestContext.Current.CancellationToken).GetRunResult().Results.Single();

        foreach (string name in TrackingNames.All)
        {
            second.TrackedSteps.ShouldContainKey(name);
            second.TrackedSteps[name].SelectMany(s => s.Outputs)
                .ShouldAllBe(o => o.Reason == IncrementalStepRunReason.Cached || o.Reason == IncrementalStepRunReason.Unchanged, $"step {name} must be reused");
        }

        second.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs)
            .ShouldAllBe(o => o.Reason == IncrementalStepRunReason.Cached, "no source is re-emitted after an unrelated edit");
        second.GeneratedSources.Select(s => s.SourceText.ToString()).ShouldBe(first.GeneratedSources.Select(s => s.SourceText.ToString()));
    }

    [Fact]
    public void ACommentOnlyEditReParsesButKeepsTheModelUnchanged()
    {
        var input = GeneratorHarness.Compile();
        var original = new GeneratorHarness.TextFile("/repo/ibverbs.bindings", GeneratorHarness.RealBindings);
        var driver = GeneratorHarness.CreateDriver(original).RunGenerators(input, TestContext.Current.CancellationToken);

        var commented = new GeneratorHarness.TextFile("/repo/ibverbs.bindings", GeneratorHarness.RealBindings + "\n# a trailing comment\n");
        driver = driver.ReplaceAdditionalText(original, commented).RunGenerators(input, TestContext.Current.CancellationToken);
        var second = driver.GetRunResult().Results.Single();

        second.TrackedSteps[TrackingNames.BindingsFiles].SelectMany(s => s.Outputs)
            .ShouldAllBe(o => o.Reason == IncrementalStepRunReason.Modified, "the file's text did change");
        second.TrackedSteps[TrackingNames.ParseResults].SelectMany(s => s.Outputs)
            .ShouldAllBe(o => o.Reason == IncrementalStepRunReason.Unchanged, "the same declarations give an equal model");
        second.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs)
            .ShouldAllBe(o => o.Reason == IncrementalStepRunReason.Cached, "an equal model re-emits nothing");
    }

    [Fact]
    public void NoPipelineStepHoldsASymbolSyntaxOrCompilation()
    {
        var input = GeneratorHarness.Compile();
        var result = GeneratorHarness.CreateDriver(new GeneratorHarness.TextFile("/repo/ibverbs.bindings", GeneratorHarness.RealBindings))
            .RunGenerators(input, TestContext.Current.CancellationToken).GetRunResult().Results.Single();

        foreach (string name in TrackingNames.All)
        {
            foreach (var (value, _) in result.TrackedSteps[name].SelectMany(s => s.Outputs))
            {
                AssertPlainData(value, name, new HashSet<object>(ReferenceEqualityComparer.Instance));
            }
        }
    }

    private static void AssertPlainData(object? value, string path, HashSet<object> visited)
    {
        if (value is null || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum || !visited.Add(value))
        {
            return;
        }

        (value is ISymbol || value is Compilation || value is SemanticModel || value is SyntaxNode || value is SyntaxTree || value is AdditionalText)
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
