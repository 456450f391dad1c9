namespace RAllocator.Fabric.Ucx.Tests;

/// <summary>
/// A blade exporting a fresh MappedFileNvm file over one transport, and node connections to it, all in this process.
/// </summary>
internal sealed class UcxBlade : IAsyncDisposable
{
    public const long RegionLength = 64 * 1024;

    // Short enough that the failure tests finish quickly, long enough for a loaded 2-core machine.
    public static readonly TimeSpan OperationTimeout = TimeSpan.FromSeconds(2);

    private readonly TempDirectory _directory = new();
    private readonly List<IAsyncDisposable> _connections = [];
    private readonly List<UcxNodeRegistration> _registrations = [];

    public UcxBlade(string transport, long regionLength = RegionLength, UcxOptions? options = null)
    {
        Transport = transport;
        Options = options ?? OptionsFor(transport);
        Region = MappedFileNvm.Create(_directory.File("blade.nvm"), regionLength);
        Pin = Region.Pin();
        Exporter = UcxBladeExporter.Create(Pin, Options);
    }

    public string Transport { get; }

    public UcxOptions Options { get; }

    public MappedFileNvm Region { get; }

    public MappedFilePin Pin { get; }

    public UcxBladeExporter Exporter { get; private set; }

    public static UcxOptions OptionsFor(string transport) => new()
    {
        Transports = transport,
        OperationTimeout = OperationTimeout,
    };

    public UcxNodeRegistration Register(FabricAccess access)
    {
        var registration = Exporter.RegisterNode(access);
        _registrations.Add(registration);
        return registration;
    }

    /// <summary>Connects a node as a handshake would: the registration crosses as bytes.</summary>
    public UcxConnection Connect(FabricAccess access, string nodeName = "node")
    {
        var handshakeBytes = Register(access).ConnectionInfo.ToBytes();
        var connection = UcxConnection.Connect(0, UcxConnectionInfo.FromBytes(handshakeBytes), nodeName, Options);
        _connections.Add(connection);
        return connection;
    }

    public void DisposeExporter() => Exporter.Dispose();

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }

        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }

        Exporter.Dispose();
        Pin.Dispose();
        Region.Dispose();
        _directory.Dispose();
    }
}

/// <summary>The transports every behaviour is checked on: UCX 1.13's shared-memory alias and TCP.</summary>
public static class Transports
{
    public static TheoryData<string> All => ["sm", "tcp"];
}

internal static class Bytes
{
    public static byte[] Pattern(int length, byte seed = 1)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
        {
            bytes[i] = (byte)(seed + i);
        }

        return bytes;
    }

    public static FabricAccess Writable(params (long Offset, long Length)[] ranges) =>
        new([.. ranges.Select(r => new FabricRange(r.Offset, r.Length))]);
}
