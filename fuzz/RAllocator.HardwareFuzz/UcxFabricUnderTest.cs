using RAllocator.Blade;
using RAllocator.Fabric;
using RAllocator.Fabric.Ucx;
using RAllocator.Nvm;
using RAllocator.Protocol;
using RAllocator.Protocol.Layout;

namespace RAllocator.HardwareFuzz;

/// <summary>
/// UCX (libucp) over a real transport (tcp or sm here; rc/ud on RDMA hardware): the blade's image is a mapped file
/// registered with UCX, each node connects with its own remote keys. Fault model: a blade restart is a blade
/// <em>process</em> crash: every connection dies and the node's registrations are revoked, the image keeps what
/// reached the mapping (page cache; on persistent memory, what reached the persistence domain), and the image is
/// recovered by a new agent. A node crash is the driver abandoning the node's state.
/// </summary>
public sealed class UcxFabricUnderTest : IFabricUnderTest
{
    /// <summary>Blade geometry small enough to exhaust: 60-odd 64 KiB slabs, four nodes.</summary>
    public const long RegionBytes = 4 << 20;

    private readonly string _directory;
    private readonly MappedFileNvm _region;
    private readonly UcxOptions _options;
    private readonly List<UcxNodeRegistration> _registrations = [];
    private MappedFilePin _pin;
    private UcxBladeExporter _exporter;
    private BladeImage _image;
    private BladeAgent _agent;

    /// <summary>Formats a fresh blade on a temporary file and exports it over <paramref name="transports"/>.</summary>
    /// <exception cref="UcxUnavailableException">libucp is not installed.</exception>
    public UcxFabricUnderTest(string transports)
    {
        UcxAvailability.EnsureAvailable();
        _options = new UcxOptions { Transports = transports, OperationTimeout = TimeSpan.FromSeconds(2) };
        _directory = Directory.CreateTempSubdirectory("rallocator-hwfuzz-").FullName;
        _region = MappedFileNvm.Create(Path.Combine(_directory, "blade.img"), RegionBytes);
        _image = BladeImage.Format(_region, LoopbackFabricUnderTest.SlabBytes, new BladeFormatOptions { MaxNodes = 4, AckSlotsPerNode = 8, FreeSlotsPerNode = 8, NodeLeaseTicks = 1_000_000_000 });
        _image = BladeImage.Open(_region, BladeOpenMode.ReadWrite);
        _agent = BladeAgent.Start(_image);
        _pin = _region.Pin();
        _exporter = UcxBladeExporter.Create(_pin, _options);
        Name = $"ucx ({transports}, mapped file, blade-process crashes)";
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public Task<IFabricConnection> ConnectAsync(uint nodeId, CancellationToken cancellationToken)
    {
        var registration = _exporter.RegisterNode(NodeRegistrations.For(_image.Geometry, _image.Layout, nodeId));
        _registrations.Add(registration);
        return Task.FromResult<IFabricConnection>(UcxConnection.Connect(0, registration.ConnectionInfo, $"node {nodeId}", _options));
    }

    /// <inheritdoc />
    public Task RestartBladeAsync(int crashSeed, CancellationToken cancellationToken)
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }

        _registrations.Clear();
        _exporter.Dispose();
        _pin.Dispose();
        _image = BladeImage.Open(_region, BladeOpenMode.ReadWrite);
        _agent = BladeAgent.Start(_image);
        _pin = _region.Pin();
        _exporter = UcxBladeExporter.Create(_pin, _options);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public void RunAgentPass() => _agent.RunOnce();

    /// <inheritdoc />
    public BladeState ScanImage() => _image.Scan();

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }

        _exporter.Dispose();
        _pin.Dispose();
        _region.Dispose();
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }
}
