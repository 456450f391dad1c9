using RAllocator.Fabric;
using RAllocator.Fabric.Handshake;
using RAllocator.Fabric.Ucx;
using RAllocator.Nvm;

namespace RAllocator.Hosting;

/// <summary>
/// UCX, blade side: the image's mapping registered with UCX, one set of remote keys per node (revoked when its
/// session ends), and the progress thread whose CPU time is the blade's honest cost on transports without RMA
/// offload (TCP, shared memory on program-owned memory).
/// </summary>
public sealed class UcxExport : IBladeFabricExport
{
    private readonly MappedFilePin _pin;
    private readonly UcxBladeExporter _exporter;
    private readonly UcxOptions _options;

    private UcxExport(MappedFilePin pin, UcxBladeExporter exporter, UcxOptions options)
    {
        _pin = pin;
        _exporter = exporter;
        _options = options;
    }

    /// <summary>Registers <paramref name="region"/>'s mapping with UCX and starts the progress thread.</summary>
    /// <exception cref="UcxUnavailableException">libucp cannot be loaded; the message says what to install.</exception>
    public static UcxExport Start(MappedFileNvm region, UcxOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(region);
        options ??= new UcxOptions();
        var pin = region.Pin();
        try
        {
            return new UcxExport(pin, UcxBladeExporter.Create(pin, options), options);
        }
        catch
        {
            pin.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public FabricKind Kind => FabricKind.Ucx;

    /// <inheritdoc />
    public string Description => $"UCX {UcxAvailability.Version} (transports: {_options.Transports ?? "UCX default or UCX_TLS"}), progress thread on the blade";

    /// <inheritdoc />
    public TimeSpan CpuTime => _exporter.ProgressThreadCpuTime;

    /// <inheritdoc />
    public FabricGrant Grant(uint nodeId, FabricAccess access, ReadOnlyMemory<byte> nodePayload)
    {
        var registration = _exporter.RegisterNode(access);
        return new FabricGrant(registration.ConnectionInfo.ToBytes(), registration);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _exporter.Dispose();
        _pin.Dispose();
    }
}

/// <summary>UCX, node side: connects to the blade's worker with the keys from the handshake.</summary>
public sealed class UcxConnector(UcxOptions? options = null) : IFabricConnector
{
    /// <inheritdoc />
    public FabricKind Kind => FabricKind.Ucx;

    /// <inheritdoc />
    public ReadOnlyMemory<byte> RequestPayload => ReadOnlyMemory<byte>.Empty;

    /// <inheritdoc />
    public IFabricConnection Connect(int bladeId, HandshakeResponse response, FabricAccess access, string nodeName)
    {
        ArgumentNullException.ThrowIfNull(response);
        return UcxConnection.Connect(bladeId, UcxConnectionInfo.FromBytes(response.FabricPayload.Span), nodeName, options);
    }
}
