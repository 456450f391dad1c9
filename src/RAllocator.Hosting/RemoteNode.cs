using RAllocator.Fabric;
using RAllocator.Node;
using RAllocator.Protocol;

namespace RAllocator.Hosting;

/// <summary>Opens a working node's heap on blade servers.</summary>
public static class RemoteNode
{
    /// <summary>
    /// Connects node <paramref name="nodeId"/> to every blade in <paramref name="blades"/> (blade id = position in the
    /// list), registers it on each (recovering the slabs it owns there) and returns its heap.
    /// </summary>
    /// <exception cref="BladeRefusedException">A blade refused the node.</exception>
    /// <exception cref="FabricException">A blade is unreachable.</exception>
    public static async Task<WorkingNodeHeap> OpenHeapAsync(IReadOnlyList<BladeEndpoint> blades, uint nodeId, AccessToken token, IFabricConnector connector, HeapOptions? heapOptions = null, ProtocolOptions? protocolOptions = null, RemoteBladeOptions? remoteOptions = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(blades);
        if (blades.Count == 0)
        {
            throw new ArgumentException("name at least one blade (host:port).", nameof(blades));
        }

        var clients = new List<BladeClient>();
        try
        {
            for (var bladeId = 0; bladeId < blades.Count; bladeId++)
            {
                var connection = await RemoteBlade.ConnectAsync(blades[bladeId], bladeId, nodeId, token, connector, remoteOptions, cancellationToken).ConfigureAwait(false);
                try
                {
                    clients.Add(await BladeClient.ConnectAsync(connection, nodeId, protocolOptions, cancellationToken).ConfigureAwait(false));
                }
                catch
                {
                    await connection.DisposeAsync().ConfigureAwait(false);
                    throw;
                }
            }

            return await WorkingNodeHeap.OpenAsync(clients, heapOptions, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            foreach (var client in clients)
            {
                await client.Connection.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
    }
}
