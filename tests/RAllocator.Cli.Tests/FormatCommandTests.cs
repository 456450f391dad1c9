namespace RAllocator.Cli.Tests;

public sealed class FormatCommandTests
{
    [Fact]
    public async Task FormatCreatesASparseImageAndPrintsGeometryMetadataAndBackend()
    {
        using var dir = new TempDirectory();
        string image = dir.File("blade.img");

        var run = await Cli.RunAsync("format", image, "--size", "64MiB", "--slab-size", "256KiB", "--max-nodes", "8", "--ring", "32");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        new FileInfo(image).Length.ShouldBe(64L << 20);
        run.Out.ShouldContain("x 256 KiB");
        run.Out.ShouldContain("max nodes");
        run.Out.ShouldContain("32 entries");
        run.Out.ShouldContain("metadata");
        run.Out.ShouldContain("data offset");
        run.Out.ShouldContain("nvm backend");
        (await Cli.RunAsync("check", image)).ExitCode.ShouldBe(ExitCodes.Ok, "a freshly formatted image is consistent");
    }

    [Fact]
    public async Task FormatRefusesAnExistingFileWithoutForceAndLeavesItUnchanged()
    {
        using var dir = new TempDirectory();
        string image = dir.File("blade.img");
        (await Cli.RunAsync("format", image, "--size", "8MiB")).ExitCode.ShouldBe(ExitCodes.Ok);
        string before = Cli.Sha256(image);

        var run = await Cli.RunAsync("format", image, "--size", "8MiB");

        run.ExitCode.ShouldBe(ExitCodes.Failed, run.ToString());
        run.Error.ShouldContain(image);
        run.Error.ShouldContain("--force");
        Cli.Sha256(image).ShouldBe(before, "a refused format must not touch the image");
    }

    [Fact]
    public async Task FormatWithForceReformatsAnExistingImageAtTheSameOrANewSize()
    {
        using var dir = new TempDirectory();
        string image = dir.File("blade.img");
        (await Cli.RunAsync("format", image, "--size", "8MiB")).ExitCode.ShouldBe(ExitCodes.Ok);

        var same = await Cli.RunAsync("format", image, "--size", "8MiB", "--force");
        var resized = await Cli.RunAsync("format", image, "--size", "16MiB", "--force");

        same.ExitCode.ShouldBe(ExitCodes.Ok, same.ToString());
        same.Out.ShouldContain("reformatted in place");
        resized.ExitCode.ShouldBe(ExitCodes.Ok, resized.ToString());
        new FileInfo(image).Length.ShouldBe(16L << 20);
        (await Cli.RunAsync("check", image)).ExitCode.ShouldBe(ExitCodes.Ok);
    }

    [Fact]
    public async Task FormatAcceptsDecimalUnits()
    {
        using var dir = new TempDirectory();
        string image = dir.File("blade.img");

        var run = await Cli.RunAsync("format", image, "--size", "10MB");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        new FileInfo(image).Length.ShouldBe(10_000_000L);
    }

    [Fact]
    public async Task FormatWithoutPathIsAUsageErrorNamingPath()
    {
        var run = await Cli.RunAsync("format", "--size", "64MiB");

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("PATH");
    }

    [Fact]
    public async Task FormatWithoutSizeIsAUsageErrorNamingSize()
    {
        using var dir = new TempDirectory();

        var run = await Cli.RunAsync("format", dir.File("blade.img"));

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("--size");
        File.Exists(dir.File("blade.img")).ShouldBeFalse();
    }

    [Theory]
    [InlineData("12XB")]
    [InlineData("-64MiB")]
    [InlineData("1.5GiB")]
    [InlineData("lots")]
    public async Task FormatWithAMalformedSizeIsAUsageErrorNamingSize(string size)
    {
        using var dir = new TempDirectory();

        var run = await Cli.RunAsync("format", dir.File("blade.img"), "--size", size);

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("--size");
        File.Exists(dir.File("blade.img")).ShouldBeFalse();
    }

    [Theory]
    [InlineData("3000")]
    [InlineData("96KiB")]
    [InlineData("32KiB")]
    [InlineData("2GiB")]
    public async Task FormatWithASlabSizeThatIsNotAPowerOfTwoInRangeIsAUsageError(string slabSize)
    {
        using var dir = new TempDirectory();

        var run = await Cli.RunAsync("format", dir.File("blade.img"), "--size", "64MiB", "--slab-size", slabSize);

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("--slab-size");
        run.Error.ShouldContain("power of two");
    }

    [Fact]
    public async Task FormatOfARegionTooSmallForOneSlabIsAUsageErrorAndCreatesNoFile()
    {
        using var dir = new TempDirectory();

        var run = await Cli.RunAsync("format", dir.File("blade.img"), "--size", "100KiB");

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("--size");
        File.Exists(dir.File("blade.img")).ShouldBeFalse("the parameters are checked before the file is created");
    }

    [Fact]
    public async Task FormatWithMaxSpanAndSpanRingMakesOneRingPerSlabSize()
    {
        using var dir = new TempDirectory();
        string image = dir.File("blade.img");

        var run = await Cli.RunAsync("format", image, "--size", "64MiB", "--max-span", "8", "--span-ring", "3");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        run.Out.ShouldContain("1 to 8 base slabs (1 MiB to 8 MiB), 3 span rings of 3 entries");
        var inspect = (await Cli.RunAsync("inspect", image, "--json")).Json();
        inspect.GetProperty("geometry").GetProperty("max_slab_span").GetUInt32().ShouldBe(8u);
        inspect.GetProperty("rings").EnumerateArray().Select(r => r.GetProperty("capacity").GetUInt32()).Skip(1).ShouldBe([3u, 3u, 3u]);
        (await Cli.RunAsync("check", image)).ExitCode.ShouldBe(ExitCodes.Ok);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("3")]
    [InlineData("12")]
    [InlineData("128")]
    [InlineData("-2")]
    [InlineData("many")]
    public async Task FormatWithAMaxSpanThatIsNotAPowerOfTwoUpTo64IsAUsageErrorNamingIt(string maxSpan)
    {
        using var dir = new TempDirectory();

        var run = await Cli.RunAsync("format", dir.File("blade.img"), "--size", "64MiB", "--max-span", maxSpan);

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("--max-span");
        File.Exists(dir.File("blade.img")).ShouldBeFalse();
    }

    [Fact]
    public async Task FormatWithAMaxSpanOfThreeSaysPowerOfTwo()
    {
        using var dir = new TempDirectory();

        var run = await Cli.RunAsync("format", dir.File("blade.img"), "--size", "64MiB", "--max-span", "3");

        run.Error.ShouldContain("--max-span 3 is invalid: it must be a power of two from 1 to 64");
    }

    [Theory]
    [InlineData("--span-ring", "0", "--max-span", "4")]
    [InlineData("--span-ring", "5000", "--max-span", "4")]
    [InlineData("--span-ring", "8", "--max-span", "1")]
    [InlineData("--span-ring", "8", "--max-nodes", "4")]
    public async Task FormatWithASpanRingOutOfRangeOrWithoutSpansIsAUsageErrorNamingIt(string option, string value, string other, string otherValue)
    {
        using var dir = new TempDirectory();

        var run = await Cli.RunAsync("format", dir.File("blade.img"), "--size", "64MiB", option, value, other, otherValue);

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("--span-ring");
        File.Exists(dir.File("blade.img")).ShouldBeFalse();
    }

    [Theory]
    [InlineData("--max-nodes", "0")]
    [InlineData("--max-nodes", "5000")]
    [InlineData("--ring", "0")]
    public async Task FormatWithNodeOrRingCountsOutOfRangeIsAUsageErrorNamingTheOption(string option, string value)
    {
        using var dir = new TempDirectory();

        var run = await Cli.RunAsync("format", dir.File("blade.img"), "--size", "64MiB", option, value);

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain(option);
    }
}
