using RAllocator.Fabric.Handshake;
using RAllocator.Hosting;
using RAllocator.Nvm;

namespace RAllocator.Cli.Commands;

/// <summary>Which fabrics this machine can run, and the message that says why not when it cannot.</summary>
internal static class FabricAvailability
{
    /// <summary>The blade-side exports for <paramref name="offered"/> besides shared memory (always offered).</summary>
    public static IEnumerable<IBladeFabricExport> BladeExports(MappedFileNvm region, IReadOnlyCollection<string> offered, Action<string> log)
    {
        if (offered.Contains("ucx"))
        {
            log("fabric Ucx: not offered: this build has no UCX fabric yet");
        }

        return [];
    }

    /// <summary>The node-side connector for a <c>--fabric</c> value.</summary>
    public static IFabricConnector ConnectorFor(string fabric) => fabric switch
    {
        "shm" => new SharedMemoryConnector(),
        _ => throw new CliFailureException($"--fabric {fabric} is not available in this build."),
    };

    /// <summary>Why <c>--fabric verbs</c> cannot run here.</summary>
    public static string VerbsUnavailableMessage() => "--fabric verbs is not available in this build.";

    /// <summary>The handshake fabric kind of a <c>--fabric</c> value.</summary>
    public static FabricKind KindOf(string fabric) => fabric switch
    {
        "shm" => FabricKind.SharedMemory,
        "ucx" => FabricKind.Ucx,
        "verbs" => FabricKind.Verbs,
        _ => throw new CliUsageException($"--fabric '{fabric}' is not one of: shm, ucx, verbs."),
    };
}
