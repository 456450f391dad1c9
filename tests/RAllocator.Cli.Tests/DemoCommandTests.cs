namespace RAllocator.Cli.Tests;

public sealed class DemoCommandTests
{
    [Fact]
    public async Task DemoRunsToCompletionNarratingTwoRoundTripsPerSlabAndZeroBladeCalls()
    {
        using var dir = new TempDirectory();
        string image = dir.File("demo.img");

        var run = await Cli.RunAsync("demo", "--path", image);

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        run.Out.ShouldContain("round trips = 2 per slab");
        run.Out.ShouldContain("Blade handler calls during all these acquisitions: 0");
        run.Out.ShouldContain("takes a slab of 4 contiguous base slabs");
        run.Out.ShouldContain("1 FETCH_AND_ADD on that span ring's sequencer + 1 READ, 2 round trips");
        run.Out.ShouldContain("reclaimed only after both nodes had published");
        run.Out.ShouldContain("exactly the slabs it owned");
        run.Out.ShouldContain("still holds \"hello from node 2\"");
        run.Out.ShouldContain("consistent");
        run.Error.ShouldBeEmpty();
        File.Exists(image).ShouldBeFalse("the demo deletes its image unless --keep");
    }

    [Fact]
    public async Task DemoWithKeepLeavesAConsistentImageThatInspectShowsWithBothNodes()
    {
        using var dir = new TempDirectory();
        string image = dir.File("demo.img");

        var run = await Cli.RunAsync("demo", "--path", image, "--keep");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        File.Exists(image).ShouldBeTrue();
        (await Cli.RunAsync("check", image)).ExitCode.ShouldBe(ExitCodes.Ok);
        var json = (await Cli.RunAsync("inspect", image, "--json")).Json();
        json.GetProperty("owners").GetArrayLength().ShouldBe(2);
        json.GetProperty("superblock").GetProperty("clean_shutdown").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task DemoRefusesAPathThatExists()
    {
        using var dir = new TempDirectory();
        string image = dir.File("precious.img");
        await File.WriteAllTextAsync(image, "not yours");

        var run = await Cli.RunAsync("demo", "--path", image);

        run.ExitCode.ShouldBe(ExitCodes.Failed, run.ToString());
        run.Error.ShouldContain("--path");
        (await File.ReadAllTextAsync(image)).ShouldBe("not yours");
    }
}
