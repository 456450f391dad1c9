using RAllocator.Fabric.SharedMemory;
using RAllocator.Protocol.Layout;

namespace RAllocator.Hosting.Tests;

public sealed class ObserverTests
{
    private static readonly RemoteBladeOptions NoRetry = new() { RetryFor = TimeSpan.Zero, NodeName = "test observer" };

    [Fact]
    public async Task An_observer_takes_no_node_slot_and_is_admitted_while_every_node_id_is_in_use()
    {
        using var image = new ServedImage(maxNodes: 2);
        await using var server = image.Start();
        var endpoint = ServedImage.EndpointOf(server);
        await using var node0 = await RemoteBlade.ConnectAsync(endpoint, 0, 0, image.Token, new SharedMemoryConnector(), NoRetry);
        await using var node1 = await RemoteBlade.ConnectAsync(endpoint, 0, 1, image.Token, new SharedMemoryConnector(), NoRetry);

        await using var observer = await RemoteBlade.ConnectObserverAsync(endpoint, 0, image.Token, new SharedMemoryConnector(), NoRetry);

        server.ConnectedNodes.Order().ShouldBe([0u, 1u]);
        server.ConnectedObservers.ShouldBe(1);
        image.Log.ShouldContain(line => line.Contains("observer ('test observer'") && line.Contains("read-only"));
    }

    [Fact]
    public async Task An_observer_reads_the_whole_region_and_every_modifying_verb_is_refused_on_a_read_only_mapping()
    {
        using var image = new ServedImage();
        await using var server = image.Start();
        await using var observer = await RemoteBlade.ConnectObserverAsync(ServedImage.EndpointOf(server), 0, image.Token, new SharedMemoryConnector(), NoRetry);

        var superblock = new byte[Superblock.SizeBytes];
        await observer.ReadAsync(BladeLayout.SuperblockAOffset, superblock);
        var onDisk = new byte[Superblock.SizeBytes];
        using (var file = File.OpenRead(image.ImagePath))
        {
            file.Position = BladeLayout.SuperblockAOffset;
            file.ReadExactly(onDisk);
        }

        superblock.ShouldBe(onDisk);
        var last = new byte[8];
        await observer.ReadAsync(observer.RegionLength - 8, last);

        var sequencer = BladeLayout.SequencerOffset + SequencerBlock.Offsets.Sequencer;
        (await Should.ThrowAsync<FabricException>(async () => await observer.WriteAsync(sequencer, new byte[8]))).Status.ShouldBe(FabricStatus.RemoteAccessError);
        (await Should.ThrowAsync<FabricException>(async () => await observer.FetchAddAsync(sequencer, 1))).Status.ShouldBe(FabricStatus.RemoteAccessError);
        (await Should.ThrowAsync<FabricException>(async () => await observer.CompareSwapAsync(sequencer, 0, 1))).Status.ShouldBe(FabricStatus.RemoteAccessError);
        (await Should.ThrowAsync<FabricException>(async () => await observer.PersistAsync(sequencer, 8))).Status.ShouldBe(FabricStatus.RemoteAccessError);

        // Below the access checks, the process cannot store into the image at all.
        var shared = observer.ShouldBeOfType<BladeSessionConnection>().Inner.ShouldBeOfType<SharedMemoryConnection>();
        shared.MappingDescription.ShouldContain("read-only");
    }

    [Fact(Timeout = 120_000)]
    public async Task An_observer_with_a_wrong_token_is_refused_and_observers_beyond_the_limit_are_refused_until_one_leaves()
    {
        using var image = new ServedImage();
        await using var server = image.Start(maxObservers: 1);
        var endpoint = ServedImage.EndpointOf(server);
        var badToken = await Should.ThrowAsync<BladeRefusedException>(() =>
            RemoteBlade.ConnectObserverAsync(endpoint, 0, AccessToken.FromText("guess"), new SharedMemoryConnector(), NoRetry));
        badToken.Status.ShouldBe(HandshakeStatus.BadToken);
        badToken.Message.ShouldContain("refused observer");

        var first = await RemoteBlade.ConnectObserverAsync(endpoint, 0, image.Token, new SharedMemoryConnector(), NoRetry);
        var full = await Should.ThrowAsync<BladeRefusedException>(() =>
            RemoteBlade.ConnectObserverAsync(endpoint, 0, image.Token, new SharedMemoryConnector(), NoRetry));
        full.Status.ShouldBe(HandshakeStatus.TooManyObservers);
        full.Message.ShouldContain("limit");

        await first.DisposeAsync();
        while (server.ConnectedObservers > 0)
        {
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        await using var second = await RemoteBlade.ConnectObserverAsync(endpoint, 0, image.Token, new SharedMemoryConnector(), NoRetry);
        server.ConnectedObservers.ShouldBe(1);
    }

    [Fact(Timeout = 120_000)]
    public async Task An_observer_leaving_revokes_nothing_a_node_holds_and_costs_the_server_one_handshake()
    {
        using var image = new ServedImage();
        await using var server = image.Start();
        var endpoint = ServedImage.EndpointOf(server);
        var heap = await RemoteNode.OpenHeapAsync([endpoint], 1, image.Token, new SharedMemoryConnector());
        var before = await heap.AllocateAsync(64);
        long handshakes = server.HandshakesAnswered;

        var observer = await RemoteBlade.ConnectObserverAsync(endpoint, 0, image.Token, new SharedMemoryConnector(), NoRetry);
        var control = new byte[BladeControlBlock.SizeBytes];
        for (var i = 0; i < 100; i++)
        {
            await observer.ReadAsync(BladeLayout.ControlOffset, control);
        }

        server.HandshakesAnswered.ShouldBe(handshakes + 1, "the reads after the handshake never reach the server");
        observer.Counters.Snapshot().Reads.ShouldBe(100);
        await observer.DisposeAsync();
        while (server.ConnectedObservers > 0)
        {
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        server.ConnectedNodes.ShouldBe([1u]);
        var after = await heap.AllocateAsync(64);
        await heap.WriteAsync(after, 42L);
        (await heap.ReadAsync<long>(after)).ShouldBe(42L);
        await heap.FreeAsync(before);
        await heap.Blades[0].Connection.DisposeAsync();
    }

    [Fact(Timeout = 120_000)]
    public async Task When_the_blade_stops_an_observer_fails_fast_as_unreachable()
    {
        using var image = new ServedImage();
        var server = image.Start();
        var observer = await RemoteBlade.ConnectObserverAsync(ServedImage.EndpointOf(server), 0, image.Token, new SharedMemoryConnector(), NoRetry);
        await server.StopAsync();
        var session = observer.ShouldBeOfType<BladeSessionConnection>();
        while (session.LostReason is null)
        {
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        (await Should.ThrowAsync<FabricException>(async () => await observer.ReadAsync(BladeLayout.ControlOffset, new byte[8]))).Status.ShouldBe(FabricStatus.Unreachable);
        await observer.DisposeAsync();
    }
}
