using System.Text.Json;
using RAllocator.Blade;
using RAllocator.Embedded;
using RAllocator.Node;
using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.Cli.Tests;

public sealed class InspectCommandTests
{
    private static readonly string[] s_topLevelKeys =
    [
        "path", "nvm", "geometry", "superblock", "utilization", "owners", "nodes", "wear", "rings", "sequencer",
        "filled_through_ticket", "ring_ready", "global_epoch", "pending_intent", "consistent", "problems",
    ];

    [Fact]
    public async Task InspectPrintsGeometrySuperblockUtilizationAndConsistency()
    {
        using var dir = new TempDirectory();
        string image = await Images.FormattedAsync(dir);

        var run = await Cli.RunAsync("inspect", image);

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        foreach (string line in new[] { "geometry", "superblock", "copy A", "generation", "incarnation", "clean shutdown", "utilization", "owners", "wear", "sequencer", "global epoch", "pending intent", "consistent" })
        {
            run.Out.ShouldContain(line);
        }
    }

    [Fact]
    public async Task InspectJsonIsOneObjectWithStableSnakeCaseKeys()
    {
        using var dir = new TempDirectory();
        string image = await Images.FormattedAsync(dir);

        var run = await Cli.RunAsync("inspect", image, "--json");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        var json = run.Json();
        json.EnumerateObject().Select(p => p.Name).ShouldBe(s_topLevelKeys, ignoreOrder: true);
        json.GetProperty("geometry").GetProperty("slab_size_bytes").GetUInt64().ShouldBe(1UL << 20);
        json.GetProperty("geometry").GetProperty("region_size_bytes").GetUInt64().ShouldBe(16UL << 20);
        json.GetProperty("geometry").TryGetProperty("metadata_bytes", out _).ShouldBeTrue();
        json.GetProperty("superblock").GetProperty("current_copy").GetString().ShouldBe("A");
        json.GetProperty("superblock").GetProperty("clean_shutdown").GetBoolean().ShouldBeTrue();
        json.GetProperty("utilization").GetProperty("free").GetInt64().ShouldBe(json.GetProperty("utilization").GetProperty("slabs").GetInt64());
        json.GetProperty("consistent").GetBoolean().ShouldBeTrue();
        json.GetProperty("problems").GetArrayLength().ShouldBe(0);
    }

    [Fact]
    public async Task InspectShowsOwnersNodeAreasWearAndEpochsOfAUsedImage()
    {
        using var dir = new TempDirectory();
        string image = await Images.UsedAsync(dir);

        var run = await Cli.RunAsync("inspect", image, "--json");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        var json = run.Json();
        var owners = json.GetProperty("owners").EnumerateArray().ToArray();
        owners.Select(o => o.GetProperty("node").GetUInt32()).ShouldBe([1u, 2u]);
        owners.All(o => o.GetProperty("slabs").GetInt32() > 0).ShouldBeTrue();
        var nodes = json.GetProperty("nodes").EnumerateArray().ToArray();
        nodes.Length.ShouldBe(2);
        nodes[0].GetProperty("incarnation").GetUInt64().ShouldBe(1UL);
        nodes[0].TryGetProperty("published_epoch", out _).ShouldBeTrue();
        nodes[0].GetProperty("pending_acks").GetInt32().ShouldBe(0, "the agent applied every acknowledgement");
        json.GetProperty("wear").GetProperty("max").GetUInt64().ShouldBeGreaterThan(0UL);
        json.GetProperty("utilization").GetProperty("owned").GetInt64().ShouldBe(owners.Sum(o => o.GetProperty("slabs").GetInt32()));
        json.GetProperty("superblock").GetProperty("blade_incarnation").GetUInt64().ShouldBe(1UL);
        json.GetProperty("consistent").GetBoolean().ShouldBeTrue();

        var text = await Cli.RunAsync("inspect", image);
        text.Out.ShouldContain("node 1:");
        text.Out.ShouldContain("published epoch");
    }

    [Fact]
    public async Task InspectJsonShowsEveryRingWithItsSpanCapacitySequencerFillMarkAndFreeAlignedRuns()
    {
        using var dir = new TempDirectory();
        string image = SpanImages.Fresh(dir);

        var run = await Cli.RunAsync("inspect", image, "--json");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        var json = run.Json();
        long slabs = json.GetProperty("geometry").GetProperty("slab_count").GetInt64();
        var rings = json.GetProperty("rings").EnumerateArray().ToArray();
        rings.Select(r => r.GetProperty("span").GetUInt32()).ShouldBe([1u, 2u, 4u]);
        rings.Select(r => r.GetProperty("slab_bytes").GetUInt64()).ShouldBe([1UL << 20, 2UL << 20, 4UL << 20]);
        rings.Select(r => r.GetProperty("capacity").GetUInt32()).ShouldBe([8u, 2u, 2u]);
        rings.Select(r => r.GetProperty("first_ticket").GetUInt64()).ShouldBe([0UL, 1UL << 36, 2UL << 36], "ring c counts its tickets from c x 2^36");
        foreach (var ring in rings)
        {
            ring.GetProperty("sequencer").GetUInt64().ShouldBe(ring.GetProperty("first_ticket").GetUInt64());
            ring.GetProperty("fill_mark").GetUInt64().ShouldBe(ring.GetProperty("first_ticket").GetUInt64());
            ring.GetProperty("tickets_taken").GetUInt64().ShouldBe(0UL);
            ring.GetProperty("waiting").GetUInt64().ShouldBe(0UL);
        }

        rings.Select(r => r.GetProperty("free_aligned_runs").GetInt64()).ShouldBe([slabs, slabs / 2, slabs / 4], "every base slab of a fresh image is free");
        json.GetProperty("wear").GetProperty("max_over_mean").ValueKind.ShouldBe(JsonValueKind.Null, "nothing was handed out yet");
        json.GetProperty("geometry").GetProperty("max_slab_span").GetUInt32().ShouldBe(4u);
    }

    [Fact]
    public async Task InspectJsonListsOwnedSlabsWithTheirSpansWaitingEntriesWearAndUtilizationBySize()
    {
        using var dir = new TempDirectory();
        string image = await SpanImages.UsedAsync(dir);

        var run = await Cli.RunAsync("inspect", image, "--json");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        var json = run.Json();
        var owners = json.GetProperty("owners").EnumerateArray().ToDictionary(o => o.GetProperty("node").GetUInt32());
        owners[1].GetProperty("owned_slabs").EnumerateArray().ShouldAllBe(s => s.GetProperty("span").GetUInt32() == 1u);
        owners[2].GetProperty("owned_slabs").EnumerateArray().ShouldAllBe(s => s.GetProperty("span").GetUInt32() == 2u);
        foreach (var owner in owners.Values)
        {
            var owned = owner.GetProperty("owned_slabs").EnumerateArray().ToArray();
            owner.GetProperty("slabs").GetInt32().ShouldBe(owned.Length);
            owner.GetProperty("base_slabs").GetInt64().ShouldBe(owned.Sum(s => (long)s.GetProperty("span").GetUInt32()));
            owned.ShouldAllBe(s => s.GetProperty("index").GetUInt64() % s.GetProperty("span").GetUInt32() == 0, "spans are aligned to their size");
            owned.ShouldAllBe(s => s.GetProperty("bytes").GetUInt64() == s.GetProperty("span").GetUInt32() * (1UL << 20));
        }

        var utilization = json.GetProperty("utilization");
        utilization.GetProperty("owned").GetInt64().ShouldBe(owners.Values.Sum(o => o.GetProperty("base_slabs").GetInt64()), "utilization counts base slabs");
        utilization.GetProperty("owned_by_span").EnumerateArray().Sum(c => c.GetProperty("slabs").GetInt64() * c.GetProperty("span").GetUInt32())
            .ShouldBe(utilization.GetProperty("owned").GetInt64());
        utilization.GetProperty("in_use_bytes").GetUInt64().ShouldBe((ulong)(utilization.GetProperty("slabs").GetInt64() - utilization.GetProperty("free").GetInt64()) << 20);

        var rings = json.GetProperty("rings").EnumerateArray().ToArray();
        rings.ShouldAllBe(r => r.GetProperty("waiting").GetUInt64() == r.GetProperty("capacity").GetUInt32() || r.GetProperty("free_aligned_runs").GetInt64() == 0,
            "the last agent pass refilled every ring as far as free aligned runs allowed");
        rings[2].GetProperty("free_aligned_runs").GetInt64().ShouldBe(0, "this image has no free run of 4 base slabs left");
        rings[2].GetProperty("waiting").GetUInt64().ShouldBeLessThan(2UL);
        rings[1].GetProperty("tickets_taken").GetUInt64().ShouldBeGreaterThan(0UL, "node 2 took slabs of 2 base slabs");
        rings[2].GetProperty("tickets_taken").GetUInt64().ShouldBeGreaterThan(0UL, "node 3 took slabs of 4 base slabs");

        var wear = json.GetProperty("wear");
        wear.GetProperty("max_over_mean").GetDouble().ShouldBe(Math.Round(wear.GetProperty("max").GetUInt64() / wear.GetProperty("mean").GetDouble(), 3), 0.01);
        json.GetProperty("consistent").GetBoolean().ShouldBeTrue();

        var text = await Cli.RunAsync("inspect", image);
        text.Out.ShouldContain("  span 2 ");
        text.Out.ShouldContain("free aligned runs");
        text.Out.ShouldContain("max/mean");
    }

    [Fact]
    public async Task InspectAndCheckNeverWriteTheImage()
    {
        using var dir = new TempDirectory();
        string image = await Images.UsedAsync(dir);
        string before = Cli.Sha256(image);
        var modified = File.GetLastWriteTimeUtc(image);

        (await Cli.RunAsync("inspect", image)).ExitCode.ShouldBe(ExitCodes.Ok);
        (await Cli.RunAsync("inspect", image, "--json")).ExitCode.ShouldBe(ExitCodes.Ok);
        (await Cli.RunAsync("check", image)).ExitCode.ShouldBe(ExitCodes.Ok);

        Cli.Sha256(image).ShouldBe(before, "inspect and check map the image read-only");
        File.GetLastWriteTimeUtc(image).ShouldBe(modified);
    }

    [Fact]
    public async Task InspectOfACorruptImageFailsNamingTheBladeImageErrorAndLeavesTheFileUnchanged()
    {
        using var dir = new TempDirectory();
        string image = await Images.FormattedAsync(dir);
        Images.CorruptBothSuperblocks(image);
        string before = Cli.Sha256(image);

        var run = await Cli.RunAsync("inspect", image);
        var json = await Cli.RunAsync("inspect", image, "--json");

        run.ExitCode.ShouldBe(ExitCodes.Failed, run.ToString());
        run.Error.ShouldContain(nameof(BladeImageError.ChecksumMismatch));
        run.Error.ShouldContain(image);
        run.Error.ShouldNotContain("   at ");
        json.ExitCode.ShouldBe(ExitCodes.Failed, json.ToString());
        json.Out.ShouldBeEmpty("nothing but a report goes to stdout with --json");
        Cli.Sha256(image).ShouldBe(before);
    }

    [Fact]
    public async Task InspectOfAFileThatIsNotABladeImageNamesWrongMagic()
    {
        using var dir = new TempDirectory();
        string image = dir.File("zeros.img");
        await File.WriteAllBytesAsync(image, new byte[1 << 20]);

        var run = await Cli.RunAsync("inspect", image);

        run.ExitCode.ShouldBe(ExitCodes.Failed, run.ToString());
        run.Error.ShouldContain(nameof(BladeImageError.WrongMagic));
    }

    [Fact]
    public async Task CheckOfAFileTooSmallForABladeNamesRegionTooSmall()
    {
        using var dir = new TempDirectory();
        string image = dir.File("tiny.img");
        await File.WriteAllBytesAsync(image, new byte[100]);

        var run = await Cli.RunAsync("check", image);

        run.ExitCode.ShouldBe(ExitCodes.Failed, run.ToString());
        run.Out.ShouldContain(nameof(BladeImageError.RegionTooSmall));
    }

    [Fact]
    public async Task CheckOfAnEmptyFileFailsNamingTheFile()
    {
        using var dir = new TempDirectory();
        string image = dir.File("empty.img");
        await File.WriteAllBytesAsync(image, []);

        var run = await Cli.RunAsync("check", image);

        run.ExitCode.ShouldBe(ExitCodes.Failed, run.ToString());
        run.Error.ShouldContain(image);
        run.Error.ShouldContain("empty");
        run.Error.ShouldNotContain("   at ");
    }

    [Fact]
    public async Task InspectJsonDoesNotEscapePathsOrBackendNames()
    {
        using var dir = new TempDirectory();
        string image = await Images.FormattedAsync(dir);

        var run = await Cli.RunAsync("inspect", image, "--json");

        run.Out.ShouldContain("\"backend\": \"mmap+msync\"");
        run.Out.ShouldNotContain("\\u002B");
    }

    [Fact]
    public async Task InspectOfAMissingFileFailsNamingTheFile()
    {
        using var dir = new TempDirectory();
        string missing = dir.File("missing.img");

        var run = await Cli.RunAsync("inspect", missing);

        run.ExitCode.ShouldBe(ExitCodes.Failed, run.ToString());
        run.Error.ShouldContain(missing);
        run.Error.ShouldContain("does not exist");
    }

    [Fact]
    public async Task InspectWithoutPathIsAUsageErrorNamingPath()
    {
        var run = await Cli.RunAsync("inspect");

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("PATH");
    }

    [Fact]
    public async Task CheckOfAConsistentImageExitsZero()
    {
        using var dir = new TempDirectory();
        string image = await Images.UsedAsync(dir);

        var run = await Cli.RunAsync("check", image);
        var json = await Cli.RunAsync("check", image, "--json");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        run.Out.ShouldContain("consistent");
        json.ExitCode.ShouldBe(ExitCodes.Ok, json.ToString());
        json.Json().GetProperty("consistent").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task CheckOfACorruptSuperblockExitsOneNamingTheErrorAndLeavesTheFileUnchanged()
    {
        using var dir = new TempDirectory();
        string image = await Images.FormattedAsync(dir);
        Images.CorruptBothSuperblocks(image);
        string before = Cli.Sha256(image);

        var run = await Cli.RunAsync("check", image);
        var json = await Cli.RunAsync("check", image, "--json");

        run.ExitCode.ShouldBe(ExitCodes.Failed, run.ToString());
        run.Out.ShouldContain(nameof(BladeImageError.ChecksumMismatch));
        json.ExitCode.ShouldBe(ExitCodes.Failed, json.ToString());
        var report = json.Json();
        report.GetProperty("consistent").GetBoolean().ShouldBeFalse();
        report.GetProperty("error").GetString().ShouldBe(nameof(BladeImageError.ChecksumMismatch));
        report.GetProperty("message").GetString().ShouldNotBeNull().ShouldContain("copy A");
        Cli.Sha256(image).ShouldBe(before);
    }

    [Fact]
    public async Task CheckOfABitmapThatContradictsTheOwnershipTableListsTheProblem()
    {
        using var dir = new TempDirectory();
        string image = await Images.FormattedAsync(dir);
        Images.SetBitmapBit(image, slab: 5);
        string before = Cli.Sha256(image);

        var run = await Cli.RunAsync("check", image);
        var json = await Cli.RunAsync("check", image, "--json");
        var inspect = await Cli.RunAsync("inspect", image);

        run.ExitCode.ShouldBe(ExitCodes.Failed, run.ToString());
        run.Out.ShouldContain(nameof(BladeImageError.InconsistentMetadata));
        run.Out.ShouldContain("slab 5 is allocated in the bitmap but Free in the ownership table");
        json.Json().GetProperty("problems").GetArrayLength().ShouldBe(1);
        inspect.ExitCode.ShouldBe(ExitCodes.Ok, "inspect reports problems; only check fails on them");
        inspect.Out.ShouldContain("INCONSISTENT");
        Cli.Sha256(image).ShouldBe(before);
    }
}

/// <summary>Blade images for the tests, made with the library the CLI uses.</summary>
internal static class Images
{
    public static async Task<string> FormattedAsync(TempDirectory dir)
    {
        string image = dir.File("blade.img");
        var run = await Cli.RunAsync("format", image, "--size", "16MiB");
        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        return image;
    }

    /// <summary>An image served once: two nodes allocated objects of a few sizes, the agent applied everything.</summary>
    public static async Task<string> UsedAsync(TempDirectory dir)
    {
        string image = dir.File("used.img");
        using (var region = MappedFileNvm.Create(image, 32L << 20))
        {
            var blade = EmbeddedBlade.Format(0, region, 1 << 20, new BladeFormatOptions { MaxNodes = 4, RingCapacity = 8 });
            blade.Agent.RunOnce();
            var node1 = await EmbeddedNode.OpenHeapAsync([blade], 1);
            var node2 = await EmbeddedNode.OpenHeapAsync([blade], 2);
            for (int i = 0; i < 100; i++)
            {
                await node1.AllocateAsync(64);
                await node1.AllocateAsync(20_000);
                await node2.AllocateAsync(512);
            }

            await node1.PublishEpochsAsync();
            await node2.PublishEpochsAsync();
            blade.Agent.RunOnce();
            blade.Image.MarkCleanShutdown();
        }

        return image;
    }

    /// <summary>Flips one generation byte in each superblock copy: both fail their checksums.</summary>
    public static void CorruptBothSuperblocks(string image)
    {
        using var file = new FileStream(image, FileMode.Open, FileAccess.ReadWrite);
        foreach (long offset in new[] { BladeLayout.SuperblockAOffset, BladeLayout.SuperblockBOffset })
        {
            file.Position = offset + Superblock.Offsets.Generation;
            int value = file.ReadByte();
            file.Position = offset + Superblock.Offsets.Generation;
            file.WriteByte((byte)(value ^ 0x5A));
        }
    }

    /// <summary>Sets the allocation-bitmap bit of a slab the ownership table says is free.</summary>
    public static void SetBitmapBit(string image, int slab)
    {
        long offset;
        using (var region = MappedFileNvm.Open(image, NvmAccess.ReadOnly))
        {
            offset = BladeImage.Open(region, BladeOpenMode.ReadOnly).Layout.BitmapElementOffset(slab / 64);
        }

        using var file = new FileStream(image, FileMode.Open, FileAccess.ReadWrite);
        var word = new byte[8];
        file.Position = offset;
        file.ReadExactly(word);
        word[(slab % 64) / 8] |= (byte)(1 << (slab % 8));
        file.Position = offset;
        file.Write(word);
    }
}
