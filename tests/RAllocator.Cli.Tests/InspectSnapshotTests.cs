using System.Text.Json;
using System.Text.Json.Nodes;
using RAllocator.Blade;
using RAllocator.Embedded;
using RAllocator.Node;
using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.Cli.Tests;

/// <summary>
/// The whole of <c>inspect</c>'s text and JSON for images with several slab sizes, against Expected/*.txt and
/// Expected/*.json. The images are made deterministically (fixed blade uid, one thread, agent passes by hand); the
/// path and the NVM backend line, which depend on the machine, are replaced before comparing.
/// RALLOCATOR_UPDATE_EXPECTED=1 rewrites the expected files: review the diff.
/// </summary>
public sealed class InspectSnapshotTests
{
    [Fact]
    public async Task InspectOfAFreshImageWithSpanRingsMatchesTheExpectedText()
    {
        using var dir = new TempDirectory();
        string image = SpanImages.Fresh(dir);

        await MatchAsync(image, "inspect-fresh-spans");
    }

    [Fact]
    public async Task InspectOfAnImageWithOwnedSpansMatchesTheExpectedText()
    {
        using var dir = new TempDirectory();
        string image = await SpanImages.UsedAsync(dir);

        await MatchAsync(image, "inspect-used-spans");
    }

    [Fact]
    public async Task InspectOfABaseSlabImageMatchesTheExpectedText()
    {
        using var dir = new TempDirectory();
        string image = await SpanImages.UsedAsync(dir, maxSpan: 1);

        await MatchAsync(image, "inspect-used-base-slabs");
    }

    private static async Task MatchAsync(string image, string name)
    {
        var text = await Cli.RunAsync("inspect", image);
        var json = await Cli.RunAsync("inspect", image, "--json");

        text.ExitCode.ShouldBe(ExitCodes.Ok, text.ToString());
        json.ExitCode.ShouldBe(ExitCodes.Ok, json.ToString());
        ExpectedFiles.Match(NormalizeText(text.Out, image), $"{name}.txt");
        ExpectedFiles.Match(NormalizeJson(json.Out), $"{name}.json");
    }

    private static string NormalizeText(string output, string image) => string.Join('\n', output.Replace(image, "IMAGE", StringComparison.Ordinal)
        .Split('\n').Select(line => line.StartsWith("nvm ", StringComparison.Ordinal) ? "nvm               (the read-only mapping: machine-dependent)" : line));

    private static string NormalizeJson(string output)
    {
        var node = JsonNode.Parse(output)!.AsObject();
        node["path"] = "IMAGE";
        node["nvm"] = "(the read-only mapping: machine-dependent)";
        return node.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
    }
}

/// <summary>Deterministic blade images with span rings (fixed uid, single-threaded, agent passes by hand).</summary>
internal static class SpanImages
{
    private const ulong BladeUid = 0x5eed_0000_0000_0008;

    private static readonly BladeFormatOptions s_options = new() { MaxNodes = 4, RingCapacity = 8, MaxSlabSpan = 4, SpanRingCapacity = 2 };

    /// <summary>A 32 MiB image of 1 MiB base slabs, spans up to 4, span rings of 2 entries, never served.</summary>
    public static string Fresh(TempDirectory dir)
    {
        string image = dir.File("fresh.img");
        using var region = MappedFileNvm.Create(image, 32L << 20);
        BladeImage.Format(region, 1 << 20, s_options, BladeUid);
        return image;
    }

    /// <summary>
    /// A 32 MiB image served once: node 1 took base slabs, node 2 slabs of 2 base slabs, node 3 slabs of 4 (all
    /// base slabs when <paramref name="maxSpan"/> is 1); node 3 then freed its objects (it keeps its empty slab);
    /// the agent applied every acknowledgement and refilled the rings, as far as free aligned runs allowed.
    /// </summary>
    public static async Task<string> UsedAsync(TempDirectory dir, uint maxSpan = 4)
    {
        string image = dir.File("used.img");
        using (var region = MappedFileNvm.Create(image, 32L << 20))
        {
            BladeImage.Format(region, 1 << 20, maxSpan == 1 ? s_options with { MaxSlabSpan = 1 } : s_options with { MaxSlabSpan = maxSpan }, BladeUid);
            var blade = EmbeddedBlade.Open(0, region);
            blade.Agent.RunOnce();
            var node1 = await EmbeddedNode.OpenHeapAsync([blade], 1);
            var node2 = await EmbeddedNode.OpenHeapAsync([blade], 2, new HeapOptions { SlabSizing = new FixedSlabSizing(1) });
            var node3 = await EmbeddedNode.OpenHeapAsync([blade], 3, new HeapOptions { SlabSizing = new FixedSlabSizing(2) });
            for (int i = 0; i < 100; i++)
            {
                await node1.AllocateAsync(64);
                await node1.AllocateAsync(20_000);
                await node2.AllocateAsync(512);
            }

            var objects = new List<Protocol.RemotePtr>();
            for (int i = 0; i < 10; i++)
            {
                objects.Add(await node3.AllocateAsync(4096));
            }

            blade.Agent.RunOnce();
            foreach (var ptr in objects)
            {
                await node3.FreeAsync(ptr);
            }

            foreach (var node in new[] { node1, node2, node3 })
            {
                await node.PublishEpochsAsync();
            }

            blade.Agent.RunOnce();
            blade.Image.MarkCleanShutdown();
        }

        return image;
    }
}
