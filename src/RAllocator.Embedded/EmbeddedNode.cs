using RAllocator.Node;
using RAllocator.Protocol;

namespace RAllocator.Embedded;

/// <summary>Connects working nodes to in-process blades.</summary>
public static class EmbeddedNode
{
    /// <summary>
    /// Connects node <paramref name="nodeId"/> to every blade, registers it (recovering the slabs it owns) and
    /// returns its heap.
    /// </summary>
    public static async Task<WorkingNodeHeap> OpenHeapAsync(IReadOnlyList<EmbeddedBlade> blades, uint nodeId, HeapOptions? heapOptions = null, ProtocolOptions? protocolOptions = null, CancellationToken cancellationToken = default)
    {
        var clients = new List<BladeClient>();
        foreach (var blade in blades.OrderBy(b => b.BladeId))
        {
            clients.Add(await BladeClient.ConnectAsync(blade.Connect(nodeId), nodeId, protocolOptions, cancellationToken).ConfigureAwait(false));
        }

        return await WorkingNodeHeap.OpenAsync(clients, heapOptions, cancellationToken).ConfigureAwait(false);
    }
}
