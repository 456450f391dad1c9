using RAllocator.Fabric;
using RAllocator.Hosting;
using RAllocator.Node;

namespace RAllocator.Cli.Commands.Ycsb;

/// <summary>
/// <c>ycsb --blade HOST:PORT</c>: the store on running blade servers (<c>rallocator serve</c>), this process being
/// working node <c>--node-id</c> over a real fabric. The node's root names the store: a store this node id left on
/// the blade is recovered and reused (the load phase then overwrites its records).
/// </summary>
internal static class RemoteYcsbTarget
{
    /// <summary>How often the node publishes its epochs and beats its heartbeat while the workload runs.</summary>
    private static readonly TimeSpan s_maintenanceInterval = TimeSpan.FromMilliseconds(10);

    public static YcsbHeapFactory For(IReadOnlyList<BladeEndpoint> blades, string tokenFile, uint nodeId, string fabric) => async (request, cancellationToken) =>
    {
        AccessToken token;
        try
        {
            token = AccessToken.ReadFile(tokenFile);
        }
        catch (AccessTokenException ex)
        {
            throw new CliFailureException(ex.Message, ex);
        }

        WorkingNodeHeap heap;
        try
        {
            heap = await RemoteNode.OpenHeapAsync(blades, nodeId, token, FabricAvailability.ConnectorFor(fabric),
                remoteOptions: new RemoteBladeOptions { NodeName = "rallocator ycsb" }, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (BladeRefusedException ex)
        {
            throw new CliFailureException(ex.Message, ex);
        }
        catch (FabricException ex) when (ex.Status == FabricStatus.Unreachable)
        {
            throw new CliFailureException(ex.Message, ex);
        }

        var maintenance = new CancellationTokenSource();
        var maintain = heap.MaintainAsync(s_maintenanceInterval, maintenance.Token);
        string description = $"blade server{(blades.Count == 1 ? "" : "s")} {string.Join(", ", blades)} over {fabric}, node {nodeId}";
        string durability = fabric == "shm"
            ? "each persist is run by this node on its own mapping of the blade's image (shm fabric: pmem_persist, or msync of the file): durable on the blade's storage"
            : $"each persist is a PERSIST on the blade over {fabric}";
        return new YcsbTarget(heap, description, durability, async () =>
        {
            await maintenance.CancelAsync().ConfigureAwait(false);
            try
            {
                await maintain.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            maintenance.Dispose();
            foreach (var blade in heap.Blades)
            {
                await blade.Connection.DisposeAsync().ConfigureAwait(false);
            }
        });
    };
}
