using System.Text.Json;

namespace RAllocator.Integration.Tests;

/// <summary>
/// One blade server process and three working-node processes allocating and freeing concurrently; a working node
/// and then the blade are killed with SIGKILL mid-run and restarted. Every acknowledged object survives with its
/// bytes, a restarted node gets back exactly its slabs, no slab is ever owned by two nodes, and the image checks
/// consistent at the end.
/// </summary>
public sealed class ProcessClusterTests
{
    private const int Nodes = 3;

    public static TheoryData<string> Fabrics => new(Built.Fabrics);

    [Theory]
    [MemberData(nameof(Fabrics))]
    public async Task Nodes_and_the_blade_survive_kill_9_with_every_acknowledged_object_and_no_slab_shared(string fabric)
    {
        using var directory = new TempDirectory();
        var image = directory.File("blade.img");
        var tokenFile = directory.File("token");
        File.WriteAllText(tokenFile, "integration-secret\n");
        (await Built.RunCliAsync("format", image, "--size", "96MiB", "--slab-size", "256KiB", "--max-nodes", "8")).ShouldBe(0);

        string[] serveFabric = fabric.StartsWith("ucx:", StringComparison.Ordinal) ? ["--ucx-tls", fabric[4..]] : [];
        using var blade = Built.StartCli("blade", ["serve", image, "--listen", "127.0.0.1:0", "--token-file", tokenFile, "--report-every", "1", .. serveFabric]);
        var port = PortOf(await blade.WaitForLineAsync(l => l.StartsWith("listening ", StringComparison.Ordinal), TimeSpan.FromSeconds(60)));

        var workers = new ChildProcess?[Nodes];
        var journals = Enumerable.Range(0, Nodes).Select(n => directory.File($"node{n}.journal")).ToArray();
        ChildProcess StartWorker(int node, double seconds) => Built.StartWorker(
            $"worker {node}", "--blade", $"127.0.0.1:{port}", "--token-file", tokenFile, "--node-id", node.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--fabric", fabric, "--journal", journals[node], "--seconds", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture), "--seed", (node + 7).ToString(System.Globalization.CultureInfo.InvariantCulture));

        try
        {
            for (var node = 0; node < Nodes; node++)
            {
                workers[node] = StartWorker(node, 14);
            }

            foreach (var worker in workers)
            {
                await worker!.WaitForLineAsync(l => l.StartsWith("RECOVERED", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
            }

            // Let them run, then kill node 1 mid-run: it gets back exactly the slabs the blade holds for it.
            await Task.Delay(TimeSpan.FromSeconds(2));
            workers[1]!.Kill9();
            await WaitForJournalToSettleAsync();
            using (var stopped = workers[1])
            {
                workers[1] = StartWorker(1, 8);
            }

            var restartedRecovery = Parse(await workers[1]!.WaitForLineAsync(l => l.StartsWith("RECOVERED", StringComparison.Ordinal), TimeSpan.FromSeconds(60)));
            restartedRecovery.Verified.ShouldBeGreaterThan(0, "the killed node had acknowledged objects to recover");

            // Kill the blade mid-run and restart it on the same port from the NVM file.
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            blade.Kill9();
            using var restartedBlade = Built.StartCli("blade (restarted)", ["serve", image, "--listen", $"127.0.0.1:{port}", "--token-file", tokenFile, "--report-every", "1", .. serveFabric]);
            await restartedBlade.WaitForLineAsync(l => l.StartsWith("listening ", StringComparison.Ordinal), TimeSpan.FromSeconds(60));

            var finals = new Dictionary<int, Report>();
            for (var node = 0; node < Nodes; node++)
            {
                var worker = workers[node]!;
                var exit = await worker.WaitForExitAsync(TimeSpan.FromSeconds(120));
                exit.ShouldBe(0, worker.Describe());
                worker.Output.ShouldNotContain(l => l.StartsWith("VIOLATION", StringComparison.Ordinal), worker.Describe());
                worker.Output.ShouldContain(l => l.StartsWith("BLADE-LOST", StringComparison.Ordinal), $"node {node} should have seen the blade die\n{worker.Describe()}");
                var recoveries = worker.Output.Where(l => l.StartsWith("RECOVERED", StringComparison.Ordinal)).Select(Parse).ToList();
                recoveries.Count.ShouldBeGreaterThanOrEqualTo(2, $"node {node} recovers at start and after the blade's restart\n{worker.Describe()}");
                finals[node] = Parse(worker.Output.Single(l => l.StartsWith("FINAL", StringComparison.Ordinal)));
            }

            // No slab is ever held by two nodes: not in any recovery, not at the end.
            var everyReport = workers.SelectMany(w => w!.Output.Where(l => l.StartsWith("RECOVERED", StringComparison.Ordinal) || l.StartsWith("FINAL", StringComparison.Ordinal)).Select(Parse)).ToList();
            var finalOwners = finals.SelectMany(f => f.Value.Owned.Select(slab => (slab, f.Key))).ToList();
            finalOwners.GroupBy(o => o.slab).ShouldAllBe(g => g.Count() == 1);

            restartedBlade.Terminate();
            (await restartedBlade.WaitForExitAsync(TimeSpan.FromSeconds(60))).ShouldBe(0, restartedBlade.Describe());
            restartedBlade.Errors.ShouldContain(l => l.Contains("SIGTERM received"));
            restartedBlade.Errors.ShouldContain(l => l.Contains("stopped cleanly"));

            (await Built.RunCliAsync("check", image)).ShouldBe(0);
            var (_, inspectJson) = await Built.RunCliCaptureAsync("inspect", image, "--json");
            using var inspect = JsonDocument.Parse(inspectJson);
            var owners = inspect.RootElement.GetProperty("owners").EnumerateArray()
                .ToDictionary(o => o.GetProperty("node").GetUInt32(), o => o.GetProperty("slab_indexes").EnumerateArray().Select(e => e.GetUInt64()).Order().ToArray());
            for (var node = 0; node < Nodes; node++)
            {
                var onBlade = owners.GetValueOrDefault((uint)node, []);
                onBlade.ShouldBe(finals[node].Owned, $"node {node}: the blade's ownership table and the node's own slabs differ");
            }

            everyReport.Count.ShouldBeGreaterThan(Nodes * 2);
        }
        finally
        {
            foreach (var worker in workers)
            {
                worker?.Dispose();
            }
        }

        static Task WaitForJournalToSettleAsync() => Task.Delay(TimeSpan.FromMilliseconds(300));
    }

    private static int PortOf(string listeningLine) => int.Parse(listeningLine[(listeningLine.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);

    private static Report Parse(string line)
    {
        using var json = JsonDocument.Parse(line[(line.IndexOf(' ') + 1)..]);
        var root = json.RootElement;
        return new Report(
            root.GetProperty("node").GetUInt32(),
            root.GetProperty("owned").EnumerateArray().Select(e => e.GetUInt64()).Order().ToArray(),
            root.TryGetProperty("verified", out var verified) ? verified.GetInt32() : -1);
    }

    private sealed record Report(uint Node, ulong[] Owned, int Verified);
}
