using RAllocator.Fabric.Handshake;
using RAllocator.Fabric.Ucx;
using RAllocator.Fabric.Verbs;
using RAllocator.Hosting;
using RAllocator.Nvm;

namespace RAllocator.Cli.Commands;

/// <summary>Which fabrics this machine can run, and the message that says why not when it cannot.</summary>
internal static class FabricAvailability
{
    /// <summary>The blade-side exports for <paramref name="offered"/> besides shared memory (always offered).</summary>
    /// <remarks>UCX is offered when libucp loads; otherwise the blade says why in its log and serves the rest.</remarks>
    public static IEnumerable<IBladeFabricExport> BladeExports(MappedFileNvm region, IReadOnlyCollection<string> offered, UcxOptions ucx, Action<string> log)
    {
        if (!offered.Contains("ucx"))
        {
            return [];
        }

        if (!UcxAvailability.IsAvailable)
        {
            log($"fabric Ucx: not offered: {UcxAvailability.UnavailableReason}");
            return [];
        }

        return [UcxExport.Start(region, ucx)];
    }

    /// <summary>The node-side connector for a <c>--fabric</c> value.</summary>
    /// <exception cref="CliFailureException">The fabric's library is missing here (the message says what to install).</exception>
    public static IFabricConnector ConnectorFor(string fabric, UcxOptions ucx) => fabric switch
    {
        "shm" => new SharedMemoryConnector(),
        "ucx" when UcxAvailability.IsAvailable => new UcxConnector(ucx),
        "ucx" => throw new CliFailureException($"--fabric ucx: {UcxAvailability.UnavailableReason}"),
        _ => throw new CliFailureException(VerbsUnavailableMessage()),
    };

    /// <summary>The node-side connector for a <c>--fabric</c> value, with UCX's default transports.</summary>
    public static IFabricConnector ConnectorFor(string fabric) => ConnectorFor(fabric, new UcxOptions());

    /// <summary>The <c>--ucx-tls</c> option: which UCX transports to use (UCX_TLS syntax).</summary>
    public static System.CommandLine.Option<string?> UcxTransportsOption() => new("--ucx-tls")
    {
        Description = "UCX transports for --fabric ucx, in UCX_TLS syntax (for example tcp, sm, rc,ud). Default: UCX's choice, or the UCX_TLS environment variable.",
        HelpName = "TLS",
    };

    /// <summary>UCX options for a <c>--ucx-tls</c> value (loopback TCP needs the loopback device enabled).</summary>
    public static UcxOptions UcxOptionsFor(string? transports) => new() { Transports = transports };

    /// <summary>Why <c>--fabric verbs</c> cannot run here: no device or no libibverbs (what was checked, what to use instead).</summary>
    public static string VerbsUnavailableMessage()
    {
        var probe = VerbsDevices.Probe();
        return probe.IsAvailable
            ? $"RDMA devices found ({string.Join(", ", probe.DeviceNames)}), but 'serve' and 'bench' do not run the verbs fabric yet: use --fabric ucx, which drives the same devices through UCX (UCX_TLS=rc,ud), or the VerbsBladeExporter and VerbsConnection API (tests/hardware/README.md)."
            : probe.Message;
    }

    /// <summary>The handshake fabric kind of a <c>--fabric</c> value.</summary>
    public static FabricKind KindOf(string fabric) => fabric switch
    {
        "shm" => FabricKind.SharedMemory,
        "ucx" => FabricKind.Ucx,
        "verbs" => FabricKind.Verbs,
        _ => throw new CliUsageException($"--fabric '{fabric}' is not one of: shm, ucx, verbs."),
    };
}
