using RAllocator.Blade;
using RAllocator.Node;
using RAllocator.Protocol;
using RAllocator.Protocol.Layout;

namespace RAllocator.Fabric.Ucx.Tests;

/// <summary>The unchanged slab protocol and heap, run over UCX instead of the loopback fabric.</summary>
public sealed class UcxProtocolTests
{
    private const ulong SlabSize = 64 * 1024;
    private const long RegionBytes = 8 << 20;

    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task A_working_node_allocates_writes_and_frees_on_a_blade_over_ucx(string transport)
    {
        await using var blade = new UcxBlade(transport, RegionBytes);
        var image = BladeImage.Format(blade.Region, SlabSize, new BladeFormatOptions { MaxNodes = 4, RingCapacity = 16, NodeLeaseTicks = 1000 });
        var agent = BladeAgent.Start(image);
        using var stop = new CancellationTokenSource();
        var agentLoop = Task.Run(() => agent.RunAsync(stop.Token));
        try
        {
            const uint NodeId = 1;
            var connection = blade.Connect(AccessFor(image, NodeId), $"node {NodeId}");
            var client = await BladeClient.ConnectAsync(connection, NodeId, cancellationToken: TestContext.Current.CancellationToken);
            var heap = await WorkingNodeHeap.OpenAsync([client], cancellationToken: TestContext.Current.CancellationToken);

            var pointers = new List<RemotePtr>();
            for (var i = 0; i < 50; i++)
            {
                var pointer = await heap.AllocateAsync(100 + i * 37, TestContext.Current.CancellationToken);
                await heap.WriteAndPersistAsync(pointer, Bytes.Pattern(100, seed: (byte)i), TestContext.Current.CancellationToken);
                pointers.Add(pointer);
            }

            pointers.Distinct().Count().ShouldBe(pointers.Count);
            for (var i = 0; i < pointers.Count; i++)
            {
                // Straight from the blade's file mapping: the bytes travelled over UCX.
                var stored = new byte[100];
                blade.Region.Read(pointers[i].Offset, stored);
                stored.ShouldBe(Bytes.Pattern(100, seed: (byte)i));
                await heap.FreeAsync(pointers[i], TestContext.Current.CancellationToken);
            }

            var counters = connection.Counters.Snapshot();
            counters.RoundTrips.ShouldBeGreaterThan(0);
            counters.FetchAdds.ShouldBeGreaterThan(0);
        }
        finally
        {
            await stop.CancelAsync();
            await agentLoop.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>The registrations EmbeddedBlade.AccessFor grants node <paramref name="nodeId"/>.</summary>
    private static FabricAccess AccessFor(BladeImage image, uint nodeId)
    {
        var geometry = image.Geometry;
        var layout = image.Layout;
        return new FabricAccess([
            new FabricRange(BladeLayout.SequencerOffset + SequencerBlock.Offsets.Sequencer, 8),
            new FabricRange(layout.NodeHeadersElementOffset(nodeId), NodeHeader.SizeBytes),
            new FabricRange(layout.AckSlotsElementOffset(nodeId * geometry.AckSlotsPerNode), (long)geometry.AckSlotsPerNode * AckRecord.SizeBytes),
            new FabricRange(layout.FreeSlotsElementOffset(nodeId * geometry.FreeSlotsPerNode), (long)geometry.FreeSlotsPerNode * FreeRecord.SizeBytes),
            new FabricRange(geometry.DataOffset, (long)(geometry.SlabCount * geometry.SlabSizeBytes)),
        ]);
    }
}
