using System.Net;
using System.Net.Sockets;

namespace RAllocator.Hosting.Tests;

public sealed class BladeServerTests
{
    private static readonly RemoteBladeOptions NoRetry = new() { RetryFor = TimeSpan.Zero };

    [Fact]
    public async Task A_node_over_shared_memory_allocates_writes_and_frees_without_the_blade_cpu_on_the_path()
    {
        using var image = new ServedImage();
        await using var server = image.Start();
        var heap = await RemoteNode.OpenHeapAsync([ServedImage.EndpointOf(server)], 1, image.Token, new SharedMemoryConnector());

        var ptrs = new List<RemotePtr>();
        for (var i = 0; i < 2000; i++)
        {
            var ptr = await heap.AllocateAsync(64);
            await heap.WriteAsync(ptr, (long)i);
            ptrs.Add(ptr);
        }

        for (var i = 0; i < ptrs.Count; i++)
        {
            (await heap.ReadAsync<long>(ptrs[i])).ShouldBe(i);
        }

        foreach (var ptr in ptrs)
        {
            await heap.FreeAsync(ptr);
        }

        server.ConnectedNodes.ShouldBe([1u]);
        image.Log.ShouldContain(line => line.Contains("node 1") && line.Contains("connected over SharedMemory"));
        var connection = heap.Blades[0].Connection.ShouldBeOfType<BladeSessionConnection>();
        connection.BladeProcessId.ShouldBe(Environment.ProcessId);
        heap.GetStatistics().SlabsAcquired.ShouldBeGreaterThan(0);
        await connection.DisposeAsync();
    }

    [Fact]
    public async Task A_node_with_a_wrong_token_is_refused_at_the_handshake()
    {
        using var image = new ServedImage();
        await using var server = image.Start();
        var refused = await Should.ThrowAsync<BladeRefusedException>(() =>
            RemoteBlade.ConnectAsync(ServedImage.EndpointOf(server), 0, 1, AccessToken.FromText("guess"), new SharedMemoryConnector(), NoRetry));
        refused.Status.ShouldBe(HandshakeStatus.BadToken);
        refused.Message.ShouldContain("token");
        server.ConnectedNodes.ShouldBeEmpty();
    }

    [Fact]
    public async Task A_node_id_beyond_the_blades_maximum_is_refused()
    {
        using var image = new ServedImage(maxNodes: 4);
        await using var server = image.Start();
        var refused = await Should.ThrowAsync<BladeRefusedException>(() =>
            RemoteBlade.ConnectAsync(ServedImage.EndpointOf(server), 0, 4, image.Token, new SharedMemoryConnector(), NoRetry));
        refused.Status.ShouldBe(HandshakeStatus.NodeIdOutOfRange);
        refused.Message.ShouldContain("0 to 3");
    }

    [Fact]
    public async Task A_second_process_with_a_connected_node_id_is_refused_and_admitted_once_the_first_leaves()
    {
        using var image = new ServedImage();
        await using var server = image.Start();
        var endpoint = ServedImage.EndpointOf(server);
        var first = await RemoteBlade.ConnectAsync(endpoint, 0, 2, image.Token, new SharedMemoryConnector(), NoRetry);
        var refused = await Should.ThrowAsync<BladeRefusedException>(() => RemoteBlade.ConnectAsync(endpoint, 0, 2, image.Token, new SharedMemoryConnector(), NoRetry));
        refused.Status.ShouldBe(HandshakeStatus.NodeAlreadyConnected);

        var second = RemoteBlade.ConnectAsync(endpoint, 0, 2, image.Token, new SharedMemoryConnector(), new RemoteBladeOptions { RetryFor = TimeSpan.FromSeconds(10) });
        await first.DisposeAsync();
        await using var admitted = await second;
        (await admitted.FetchAddAsync(Protocol.Layout.BladeLayout.SequencerOffset + Protocol.Layout.SequencerBlock.Offsets.Sequencer, 0)).ShouldBeGreaterThanOrEqualTo(0UL);
    }

    [Fact]
    public async Task A_port_in_use_is_named_and_the_image_is_not_touched()
    {
        using var image = new ServedImage();
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var before = image.Hash();
        var failure = Should.Throw<BladeServerException>(() => image.Start((IPEndPoint)occupant.LocalEndpoint));
        failure.Message.ShouldContain("already in use");
        failure.Message.ShouldContain(((IPEndPoint)occupant.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        image.Hash().ShouldBe(before);
        await Task.CompletedTask;
    }

    [Fact]
    public void A_corrupt_image_is_refused_with_a_typed_error_and_left_unchanged()
    {
        using var image = new ServedImage();
        using (var stream = File.OpenWrite(image.ImagePath))
        {
            stream.Write(new byte[8192]); // both superblock copies
        }

        var before = image.Hash();
        Should.Throw<Protocol.Layout.BladeImageException>(() => image.Start());
        image.Hash().ShouldBe(before);
    }

    [Fact]
    public async Task When_the_blade_stops_nodes_fail_fast_and_after_its_restart_a_node_gets_back_exactly_its_slabs()
    {
        using var image = new ServedImage();
        var server = image.Start();
        var endpoint = ServedImage.EndpointOf(server);
        var heap = await RemoteNode.OpenHeapAsync([endpoint], 3, image.Token, new SharedMemoryConnector());
        var live = new List<RemotePtr>();
        for (var i = 0; i < 3000; i++)
        {
            var ptr = await heap.AllocateAsync(128);
            await heap.WriteAndPersistAsync(ptr, BitConverter.GetBytes((long)i));
            live.Add(ptr);
        }

        var owned = heap.OwnedSlabIndexes(0).Order().ToArray();
        await server.StopAsync();

        var lost = await Should.ThrowAsync<FabricException>(async () =>
        {
            // The session's end reaches the node asynchronously; a few operations may still land before it does.
            for (var i = 0; i < 1_000_000; i++)
            {
                await heap.Blades[0].Connection.ReadAsync(0, new byte[8]);
                await Task.Yield();
            }
        });
        lost.Status.ShouldBe(FabricStatus.Unreachable);
        lost.Message.ShouldContain("Reconnect");

        await using var restarted = image.Start(new IPEndPoint(IPAddress.Loopback, endpoint.Port));
        var recovered = await RemoteNode.OpenHeapAsync([endpoint], 3, image.Token, new SharedMemoryConnector());
        recovered.Recoveries[0].OwnedSlabs.Select(s => s.SlabIndex).Order().ShouldBe(owned);
        await recovered.CompleteRecoveryAsync(live);
        for (var i = 0; i < live.Count; i++)
        {
            var bytes = new byte[8];
            await recovered.ReadBytesAsync(live[i], bytes);
            BitConverter.ToInt64(bytes).ShouldBe(i);
        }

        await recovered.Blades[0].Connection.DisposeAsync();
    }

    [Fact]
    public async Task Fencing_on_lease_expiry_ends_the_session_of_a_node_that_stops_publishing()
    {
        using var image = new ServedImage(leaseTicks: 1000);
        await using var server = image.Start(fence: true);
        var connection = await RemoteBlade.ConnectAsync(ServedImage.EndpointOf(server), 0, 1, image.Token, new SharedMemoryConnector(), NoRetry);
        var client = await BladeClient.ConnectAsync(connection, 1);
        await client.RegisterAsync();

        // The node never publishes its epoch again: after NodeLeaseTicks passes the blade fences it.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (server.ConnectedNodes.Count > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        server.ConnectedNodes.ShouldBeEmpty();
        image.Log.ShouldContain(line => line.Contains("lease expired: fenced"));
        await Should.ThrowAsync<FabricException>(async () =>
        {
            for (var i = 0; i < 1_000_000; i++)
            {
                await connection.ReadAsync(0, new byte[8]);
                await Task.Yield();
            }
        });
        await connection.DisposeAsync();
    }

    [Fact]
    public async Task An_unreachable_blade_is_reported_with_its_address()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var failure = await Should.ThrowAsync<FabricException>(() =>
            RemoteBlade.ConnectAsync(new BladeEndpoint("127.0.0.1", port), 0, 0, AccessToken.FromText("t"), new SharedMemoryConnector(), NoRetry));
        failure.Status.ShouldBe(FabricStatus.Unreachable);
        failure.Message.ShouldContain($"127.0.0.1:{port}");
        failure.Message.ShouldContain("refused");
    }

    [Fact]
    public async Task A_peer_that_is_not_a_node_is_refused_and_logged()
    {
        using var image = new ServedImage();
        await using var server = image.Start();
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, server.LocalEndPoint.Port);
        var stream = client.GetStream();
        await stream.WriteAsync("GET / HTTP/1.1\r\n\r\n"u8.ToArray());
        var response = HandshakeCodec.DecodeResponse(await HandshakeCodec.ReadFrameAsync(stream, CancellationToken.None));
        response.Status.ShouldBe(HandshakeStatus.Malformed);
        image.Log.ShouldContain(line => line.Contains("malformed handshake"));
    }
}
