using System.Text;
using RAllocator.Fabric;
using RAllocator.Hosting;
using RAllocator.Node;
using RAllocator.Protocol;

// Shared by the two worker processes (this one and RAllocator.Integration.KvWorker, which links this file): their
// argument syntax, their journal writes, and how they (re)connect to the blade and tell a lost blade from a bug.
internal static class WorkerProcess
{
    /// <summary><c>--name value</c> pairs from <paramref name="first"/> on (a missing one is a KeyNotFoundException at use).</summary>
    public static Dictionary<string, string> Options(string[] args, int first)
    {
        var values = new Dictionary<string, string>();
        for (var i = first; i + 1 < args.Length; i += 2)
        {
            values[args[i]] = args[i + 1];
        }

        return values;
    }

    /// <summary>Appends a journal line and flushes it, so that what the journal says happened before what follows.</summary>
    public static void Append(FileStream journal, string line)
    {
        journal.Write(Encoding.ASCII.GetBytes(line));
        journal.Flush();
    }

    /// <summary>
    /// Opens the node's heap on the blade, retrying for 30 s (the blade may be restarting); null after printing
    /// <c>UNREACHABLE</c> when it stayed unreachable.
    /// </summary>
    public static async Task<WorkingNodeHeap?> OpenHeapAsync(BladeEndpoint blade, uint nodeId, AccessToken token, IFabricConnector connector, string nodeName)
    {
        try
        {
            return await RemoteNode.OpenHeapAsync([blade], nodeId, token, connector,
                remoteOptions: new RemoteBladeOptions { RetryFor = TimeSpan.FromSeconds(30), NodeName = nodeName }).ConfigureAwait(false);
        }
        catch (FabricException ex)
        {
            Console.WriteLine($"UNREACHABLE {ex.Message}");
            return null;
        }
    }

    /// <summary>Whether <paramref name="error"/> means the blade went away (the worker reconnects), not a bug.</summary>
    public static bool IsBladeLost(Exception error) => error is FabricException or ProtocolStallException or TimeoutException;

    /// <summary>Prints <c>BLADE-LOST</c> and drops the heap's connection before the worker reconnects.</summary>
    public static async Task ReportBladeLostAsync(WorkingNodeHeap heap, Exception error)
    {
        Console.WriteLine($"BLADE-LOST {error.GetType().Name}: {error.Message}");
        await heap.Blades[0].Connection.DisposeAsync().ConfigureAwait(false);
    }
}
