using System.Text.RegularExpressions;

namespace RAllocator.Protocol.Tests;

/// <summary>The README's usage example compiles (it is the body of the test below) and stays in sync with it.</summary>
public sealed partial class ReadmeExampleTests
{
    [Fact]
    public async Task TheReadmeUsageExampleRuns()
    {
        string path = Path.Combine(Path.GetTempPath(), $"rallocator-readme-{Guid.NewGuid():N}.nvm");
        try
        {
            await Example(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void TheReadmeShowsExactlyTheCodeThisTestRuns()
    {
        string root = RepositoryPaths.Root;
        string readme = File.ReadAllText(Path.Combine(root, "README.md"));
        string source = File.ReadAllText(Path.Combine(root, "tests", "RAllocator.Protocol.Tests", "ReadmeExampleTests.cs"));
        string shown = ExampleBlock().Match(readme).Groups["code"].Value;
        string tested = TestedBlock().Match(source).Groups["code"].Value;
        shown.ShouldNotBeEmpty("README.md must hold the usage example between the readme-example markers");
        Normalize(shown).ShouldBe(Normalize(tested), "the README example must be the code this test compiles and runs");
    }

    private static async Task Example(string path)
    {
        // readme-example:start
        // A blade: a mapped file as NVM (libpmem when installed, else mmap + msync), formatted with slabs of 1, 2 and
        // 4 MiB (the larger ones coalesced from free neighbours), with its agent.
        using var nvm = MappedFileNvm.Create(path, 64L << 20);
        var blade = EmbeddedBlade.Format(bladeId: 0, nvm, slabSizeBytes: 1 << 20, new BladeFormatOptions { MaxSlabSpan = 4 });
        using var stop = new CancellationTokenSource();
        var agent = blade.RunAgentAsync(stop.Token);

        // A working node whose slab size is tuned per size class at run time: allocate an object, write it durably,
        // keep it reachable from the node's root.
        WorkingNodeHeap heap = await EmbeddedNode.OpenHeapAsync([blade], nodeId: 1, new HeapOptions { SlabSizing = new AdaptiveSlabSizing() });
        RemotePtr greeting = await heap.AllocateAsync(64);
        await heap.WriteAndPersistAsync(greeting, "hello, disaggregated NVM"u8.ToArray());
        await heap.SetRootAsync(greeting);

        // Defragment: live objects of sparse slabs move to denser ones; the callback redirects the references to them.
        CompactionReport report = await heap.CompactAsync(async (from, to, ct) =>
        {
            if (from == greeting)
            {
                await heap.SetRootAsync(to, cancellationToken: ct);
                greeting = to;
            }
        });

        // Read it back, then free it: object allocation and free never touch the network.
        var bytes = new byte[24];
        await heap.ReadBytesAsync(greeting, bytes);
        Console.WriteLine($"{greeting}: {System.Text.Encoding.UTF8.GetString(bytes)} ({report.ObjectsMoved} objects moved)");
        await heap.FreeAsync(greeting);

        stop.Cancel();
        await agent;
        // readme-example:end
        System.Text.Encoding.UTF8.GetString(bytes).ShouldBe("hello, disaggregated NVM");
    }

    private static string Normalize(string code) =>
        string.Join("\n", code.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));


    [GeneratedRegex(@"<!-- readme-example:start -->\s*```csharp\n(?<code>.*?)```", RegexOptions.Singleline)]
    private static partial Regex ExampleBlock();

    [GeneratedRegex(@"// readme-example:start\n(?<code>.*?)\s*// readme-example:end", RegexOptions.Singleline)]
    private static partial Regex TestedBlock();
}
