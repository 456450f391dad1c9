using RAllocator.Generators.Tests.Samples;
using RAllocator.Nvm.Layout;
using Shouldly;

namespace RAllocator.Generators.Tests;

/// <summary>NvmLayoutDocument renders the generated tables as deterministic markdown.</summary>
public sealed class LayoutDocumentTests
{
    [Fact]
    public void TheBladeLayoutDocumentMatchesTheExpectedFile()
    {
        ExpectedFiles.Match(NvmLayoutDocument.Render("BladeLayout", BladeLayout.Regions), "BladeLayout.md.txt");
    }

    [Fact]
    public void TheDocumentWithPlacementsMatchesTheExpectedFile()
    {
        var layout = new SharedCountLayout(slots: 5);

        ExpectedFiles.Match(
            NvmLayoutDocument.Render("SharedCountLayout", SharedCountLayout.Regions, layout.Placements),
            "SharedCountLayout.placed.md.txt");
    }

    [Fact]
    public void RenderingIsDeterministicAndUsesOnlyLineFeeds()
    {
        string first = NvmLayoutDocument.Render("BladeLayout", BladeLayout.Regions);
        string second = NvmLayoutDocument.Render("BladeLayout", BladeLayout.Regions);

        second.ShouldBe(first);
        first.ShouldNotContain("\r");
    }

    [Fact]
    public void EachStructIsDescribedOnceEvenWhenSeveralRegionsUseIt()
    {
        var regions = new[]
        {
            new NvmRegionInfo("A", NvmRegionKind.Fixed, Superblock.Info, 0, 4096, null, 1),
            new NvmRegionInfo("B", NvmRegionKind.Fixed, Superblock.Info, 4096, 4096, null, 1),
        };

        string document = NvmLayoutDocument.Render("Twice", regions);

        document.Split('\n').Count(line => line.StartsWith("## `Superblock`", StringComparison.Ordinal)).ShouldBe(1);
        document.ShouldContain("| _unused_ | 0x2E (46) | 18 | | |");
    }
}
