using System.Net;
using System.Net.Sockets;

namespace RAllocator.Coordinator.Tests;

public sealed class HintServiceTests
{
    private static PlacementHints Hints(long version, bool shedFirst = false) => new(version, 0.85,
    [
        new BladeHint(0, true, shedFirst, shedFirst ? 0 : 1UL << 30, shedFirst ? 0.9 : 0.1, 1UL << 30),
        new BladeHint(1, true, false, 1UL << 29, 0.5, 1UL << 29),
    ]);

    /// <summary>Sends raw bytes as a peer would, then reads the service's answer (or null if it closed without one).</summary>
    private static async Task<HintResponse?> SendRawAsync(IPEndPoint service, byte[] bytes, bool halfClose = false)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(service);
        var stream = client.GetStream();
        await stream.WriteAsync(bytes);
        if (halfClose)
        {
            client.Client.Shutdown(SocketShutdown.Send);
        }

        try
        {
            return HintCodec.DecodeResponse(await HintCodec.ReadFrameAsync(stream, HintCodec.MaxResponseBytes, CancellationToken.None));
        }
        catch (EndOfStreamException)
        {
            return null;
        }
    }

    [Fact]
    public async Task Before_the_first_refresh_the_service_answers_no_hints_yet_and_the_source_keeps_its_fallback()
    {
        PlacementHints? current = null;
        await using var server = HintServer.Start(() => current, new HintServerOptions());
        var placement = new CoordinatedPlacement();
        await using var source = new RemoteHintSource(server.LocalEndPoint, placement);

        (await source.PollOnceAsync()).ShouldBeFalse();
        placement.Hints.ShouldBeNull();
        source.Statistics.Failures.ShouldBe(0);

        current = Hints(3);
        (await source.PollOnceAsync()).ShouldBeTrue();
        placement.Hints.ShouldMatch(current!);
        source.Statistics.Incarnation.ShouldBe(server.Incarnation);
        source.Statistics.HintsReceived.ShouldBe(1);
        server.RequestsAnswered.ShouldBe(2);
    }

    [Fact]
    public async Task Malformed_requests_get_the_reason_and_the_service_keeps_answering_others()
    {
        var hints = Hints(1);
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var server = HintServer.Start(() => hints, new HintServerOptions { Log = log.Enqueue });

        var http = await SendRawAsync(server.LocalEndPoint, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        http!.Status.ShouldBe(HintStatus.Malformed);
        http.Message.ShouldContain("frames are 1 to");

        var wrongMagic = await SendRawAsync(server.LocalEndPoint, [6, 0, 0, 0, .. "RALH\u0001\u0000"u8]);
        wrongMagic!.Status.ShouldBe(HintStatus.Malformed);
        wrongMagic.Message.ShouldContain("magic");

        var request = HintCodec.EncodeRequest();
        var futureVersion = (byte[])request.Clone();
        futureVersion[8] = 9;
        (await SendRawAsync(server.LocalEndPoint, futureVersion))!.Message.ShouldContain("version 9");

        (await SendRawAsync(server.LocalEndPoint, [0, 0, 0, 0]))!.Status.ShouldBe(HintStatus.Malformed);
        (await SendRawAsync(server.LocalEndPoint, request[..5], halfClose: true)).ShouldBeNull("a truncated request is dropped quietly");

        var random = new Random(99);
        for (var i = 0; i < 50; i++)
        {
            var garbage = new byte[random.Next(1, 200)];
            random.NextBytes(garbage);
            await SendRawAsync(server.LocalEndPoint, garbage, halfClose: true);
        }

        server.MalformedRequests.ShouldBeGreaterThanOrEqualTo(4);
        log.ShouldContain(line => line.Contains("malformed hint request"));

        var placement = new CoordinatedPlacement();
        await using var source = new RemoteHintSource(server.LocalEndPoint, placement);
        (await source.PollOnceAsync()).ShouldBeTrue();
        placement.Hints.ShouldMatch(hints);
    }

    [Fact(Timeout = 120_000)]
    public async Task A_connection_beyond_the_limit_is_answered_busy_and_the_source_counts_it_as_a_failure()
    {
        await using var server = HintServer.Start(() => Hints(1), new HintServerOptions { MaxConnections = 1 });
        var first = new RemoteHintSource(server.LocalEndPoint, new CoordinatedPlacement());
        (await first.PollOnceAsync()).ShouldBeTrue(); // keeps its connection open

        var placement = new CoordinatedPlacement();
        await using var second = new RemoteHintSource(server.LocalEndPoint, placement);
        (await second.PollOnceAsync()).ShouldBeFalse();
        second.Statistics.LastFailure!.ShouldContain("Busy");
        server.RefusedConnections.ShouldBe(1);
        placement.Hints.ShouldBeNull();

        await first.DisposeAsync();
        while (server.OpenConnections > 0)
        {
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        (await second.PollOnceAsync()).ShouldBeTrue();
    }

    [Fact]
    public async Task An_unreachable_coordinator_leaves_the_last_hints_in_force_counts_failures_and_backs_off()
    {
        var options = new RemoteHintSourceOptions { PollInterval = TimeSpan.FromMilliseconds(100), MaxBackoff = TimeSpan.FromSeconds(1) };
        var placement = new CoordinatedPlacement();
        var server = HintServer.Start(() => Hints(5), new HintServerOptions());
        await using var source = new RemoteHintSource(server.LocalEndPoint, placement, options);
        (await source.PollOnceAsync()).ShouldBeTrue();
        await server.StopAsync();

        for (var i = 1; i <= 5; i++)
        {
            (await source.PollOnceAsync()).ShouldBeFalse();
            source.Statistics.ConsecutiveFailures.ShouldBe(i);
        }

        var stats = source.Statistics;
        stats.Failures.ShouldBe(5);
        stats.LastFailure!.ShouldContain("refused");
        stats.NextDelay.ShouldBe(TimeSpan.FromSeconds(1), "100 ms doubled five times, capped at 1 s");
        placement.Hints!.Version.ShouldBe(5);
        placement.Order([null!, null!], 0).ShouldNotBeEmpty();
    }

    [Fact]
    public void The_backoff_doubles_per_failure_from_the_interval_up_to_the_cap()
    {
        var options = new RemoteHintSourceOptions { PollInterval = TimeSpan.FromMilliseconds(250), MaxBackoff = TimeSpan.FromSeconds(10) };
        RemoteHintSource.DelayAfter(0, options).ShouldBe(TimeSpan.FromMilliseconds(250));
        RemoteHintSource.DelayAfter(1, options).ShouldBe(TimeSpan.FromMilliseconds(500));
        RemoteHintSource.DelayAfter(3, options).ShouldBe(TimeSpan.FromSeconds(2));
        RemoteHintSource.DelayAfter(6, options).ShouldBe(TimeSpan.FromSeconds(10));
        RemoteHintSource.DelayAfter(int.MaxValue, options).ShouldBe(TimeSpan.FromSeconds(10));
        Should.Throw<ArgumentOutOfRangeException>(() => new RemoteHintSource(new IPEndPoint(IPAddress.Loopback, 1), new CoordinatedPlacement(), new RemoteHintSourceOptions { PollInterval = TimeSpan.Zero }));
        Should.Throw<ArgumentOutOfRangeException>(() => new RemoteHintSource(new IPEndPoint(IPAddress.Loopback, 1), new CoordinatedPlacement(), new RemoteHintSourceOptions { MaxBackoff = TimeSpan.FromMilliseconds(1) }));
    }

    [Fact]
    public async Task A_restarted_coordinator_counting_versions_from_one_again_replaces_the_hints_of_the_old_one()
    {
        var placement = new CoordinatedPlacement();
        var old = HintServer.Start(() => Hints(1000), new HintServerOptions());
        var endpoint = old.LocalEndPoint;
        await using var source = new RemoteHintSource(endpoint, placement);
        (await source.PollOnceAsync()).ShouldBeTrue();
        await old.StopAsync();

        var fresh = Hints(1, shedFirst: true);
        await using var restarted = HintServer.Start(() => fresh, new HintServerOptions { Listen = endpoint });
        restarted.Incarnation.ShouldNotBe(old.Incarnation);
        (await source.PollOnceAsync()).ShouldBeTrue("the kept connection was closed by the old service; the poll reconnects");
        placement.Hints.ShouldMatch(fresh);
        source.Statistics.Incarnation.ShouldBe(restarted.Incarnation);

        // Within one incarnation, an older version never replaces a newer one.
        placement.Update(Hints(0));
        placement.Hints.ShouldMatch(fresh);
    }

    [Fact]
    public async Task A_port_in_use_is_named()
    {
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var failure = Should.Throw<HintServerException>(() => HintServer.Start(() => null, new HintServerOptions { Listen = (IPEndPoint)occupant.LocalEndpoint }));
        failure.Message.ShouldContain("already in use");
        await Task.CompletedTask;
    }
}
