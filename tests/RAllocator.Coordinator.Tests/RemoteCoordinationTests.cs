namespace RAllocator.Coordinator.Tests;

/// <summary>
/// The cross-process path, in one process: blade servers, a coordinator reading them through read-only observer
/// sessions and serving hints over TCP, and a working node that polls the hints and allocates by them.
/// </summary>
public sealed class RemoteCoordinationTests
{
    [Fact(Timeout = 120_000)]
    public async Task A_node_on_remote_hints_allocates_on_the_less_loaded_blade_and_keeps_its_last_hints_when_the_coordinator_stops()
    {
        await using var blades = new ServedBlades(2);
        int fill = (int)(blades.SlabCount(1) * 6 / 10);
        await blades.FillAsync(blade: 1, slabs: fill, nodeId: 1);

        var coordinator = new PlacementCoordinator(await blades.ObserveAsync(), new CoordinatorOptions { HighWaterMark = 0.5 });
        var hints = await ServedBlades.RefreshUntilAsync(coordinator, loads => loads[1].OwnedSlabs == (ulong)fill);
        hints.Blades[1].Shed.ShouldBeTrue();
        hints.Blades[0].Shed.ShouldBeFalse();
        var service = HintServer.Start(coordinator, new HintServerOptions());

        var placement = new CoordinatedPlacement();
        await using var source = new RemoteHintSource(service.LocalEndPoint, placement,
            new RemoteHintSourceOptions { PollInterval = TimeSpan.FromMilliseconds(20), MaxBackoff = TimeSpan.FromMilliseconds(200) });
        (await source.PollOnceAsync()).ShouldBeTrue();
        placement.Hints.ShouldMatch(hints);

        var heap = await blades.OpenHeapAsync(nodeId: 2, placement);
        var perBlade = new int[2];
        for (int i = 0; i < 8; i++)
        {
            perBlade[(await heap.AllocateAsync(Cluster.SlabObject)).BladeId]++;
        }

        perBlade.ShouldBe([8, 0], "blade 1 is above the high-water mark: every new slab goes to blade 0");

        // The coordinator goes away for good: no refresh, no service.
        await service.StopAsync();
        (await source.PollOnceAsync()).ShouldBeFalse();
        source.Statistics.Failures.ShouldBe(1);
        source.Statistics.NextDelay.ShouldBeGreaterThan(TimeSpan.FromMilliseconds(20));

        // The node polls in the background, failing and backing off, and never waits for it.
        using var stop = new CancellationTokenSource();
        var polling = source.RunAsync(stop.Token);
        for (int i = 0; i < 8; i++)
        {
            perBlade[(await heap.AllocateAsync(Cluster.SlabObject)).BladeId]++;
        }

        while (source.Statistics.Failures < 3)
        {
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        await stop.CancelAsync();
        await polling;
        perBlade.ShouldBe([16, 0], "the last hints stay in force while the coordinator is down");
        placement.Hints!.Version.ShouldBe(hints.Version);
        source.Statistics.HintsReceived.ShouldBe(1);
    }

    [Fact]
    public async Task The_coordinators_reads_are_one_sided_the_blade_servers_answer_nothing_after_the_handshake()
    {
        await using var blades = new ServedBlades(2);
        var observers = await blades.ObserveAsync();
        long[] handshakes = blades.Servers.Select(s => s.HandshakesAnswered).ToArray();
        handshakes.ShouldBe([1L, 1L]);
        var coordinator = new PlacementCoordinator(observers);

        const int Refreshes = 20;
        for (int i = 0; i < Refreshes; i++)
        {
            await coordinator.RefreshAsync();
        }

        var cost = coordinator.Counters();
        // Two superblock READs per blade once, then one control-block READ per blade per refresh; nothing else.
        cost.Reads.ShouldBe(2 * 2 + Refreshes * 2);
        cost.RoundTrips.ShouldBe(cost.Reads);
        cost.BytesFromBlade.ShouldBe(2 * 2 * Superblock.SizeBytes + Refreshes * 2 * BladeControlBlock.SizeBytes);
        (cost.Writes + cost.FetchAdds + cost.CompareSwaps + cost.Persists + cost.BytesToBlade).ShouldBe(0);

        blades.Servers.Select(s => s.HandshakesAnswered).ShouldBe(handshakes, "no request reached a blade server after the handshake");
        blades.Servers.ShouldAllBe(s => s.ConnectedNodes.Count == 0 && s.ConnectedObservers == 1);
        for (int b = 0; b < 2; b++)
        {
            coordinator.Loads[b].Reachable.ShouldBeTrue();
            coordinator.Loads[b].SlabCount.ShouldBe(blades.SlabCount(b));
        }
    }
}
