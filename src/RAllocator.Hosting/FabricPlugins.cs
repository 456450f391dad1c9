using System.Text;
using RAllocator.Fabric;
using RAllocator.Fabric.Handshake;
using RAllocator.Fabric.SharedMemory;

namespace RAllocator.Hosting;

/// <summary>
/// The blade side of one fabric: sets up a node's registrations when its handshake is accepted and tears them
/// down when the node disconnects or its lease expires.
/// </summary>
public interface IBladeFabricExport : IDisposable
{
    /// <summary>The fabric this export serves.</summary>
    FabricKind Kind { get; }

    /// <summary>For logs: what the export is and how it reaches the region.</summary>
    string Description { get; }

    /// <summary>CPU time of threads this export runs on the blade (a UCX progress thread); zero when none.</summary>
    TimeSpan CpuTime { get; }

    /// <summary>Registers <paramref name="access"/> for node <paramref name="nodeId"/> and returns what the node needs to connect.</summary>
    FabricGrant Grant(uint nodeId, FabricAccess access, ReadOnlyMemory<byte> nodePayload);
}

/// <summary>What a blade gives a node at the handshake: fabric set-up bytes, and how to revoke them.</summary>
/// <param name="Payload">Sent to the node in the handshake response.</param>
/// <param name="Revoke">Releases the node's registrations (remote keys); null when the fabric has none to release.</param>
public sealed record FabricGrant(ReadOnlyMemory<byte> Payload, IDisposable? Revoke);

/// <summary>The working-node side of one fabric: builds a connection from an accepted handshake.</summary>
public interface IFabricConnector
{
    /// <summary>The fabric this connector speaks.</summary>
    FabricKind Kind { get; }

    /// <summary>Set-up bytes the node sends in its handshake request (empty when the fabric needs none).</summary>
    ReadOnlyMemory<byte> RequestPayload { get; }

    /// <summary>Connects using the blade's accepted handshake.</summary>
    /// <exception cref="FabricException">The fabric cannot reach the region (status <see cref="FabricStatus.Unreachable"/>).</exception>
    IFabricConnection Connect(int bladeId, HandshakeResponse response, FabricAccess access, string nodeName);
}

/// <summary>Shared memory: the blade tells a same-host node where its image file is.</summary>
public sealed class SharedMemoryExport(string imagePath) : IBladeFabricExport
{
    private readonly byte[] _payload = Encoding.UTF8.GetBytes(Path.GetFullPath(imagePath));

    /// <inheritdoc />
    public FabricKind Kind => FabricKind.SharedMemory;

    /// <inheritdoc />
    public string Description => $"shared memory (same-host nodes map '{Path.GetFullPath(imagePath)}')";

    /// <inheritdoc />
    public TimeSpan CpuTime => TimeSpan.Zero;

    /// <inheritdoc />
    public FabricGrant Grant(uint nodeId, FabricAccess access, ReadOnlyMemory<byte> nodePayload) => new(_payload, null);

    /// <inheritdoc />
    public void Dispose()
    {
    }
}

/// <summary>Shared memory, node side: maps the file the blade names.</summary>
public sealed class SharedMemoryConnector : IFabricConnector
{
    /// <inheritdoc />
    public FabricKind Kind => FabricKind.SharedMemory;

    /// <inheritdoc />
    public ReadOnlyMemory<byte> RequestPayload => ReadOnlyMemory<byte>.Empty;

    /// <inheritdoc />
    public IFabricConnection Connect(int bladeId, HandshakeResponse response, FabricAccess access, string nodeName)
    {
        ArgumentNullException.ThrowIfNull(response);
        string path;
        try
        {
            path = new UTF8Encoding(false, true).GetString(response.FabricPayload.Span);
        }
        catch (DecoderFallbackException)
        {
            throw new FabricException(FabricStatus.Unreachable, "shared-memory fabric: the blade sent an image path that is not UTF-8.");
        }

        // Nothing writable (an observer): map the image PROT_READ, so a bug here cannot reach the blade's metadata.
        return access.IsUnrestricted || access.WritableRanges.Count > 0
            ? SharedMemoryConnection.Open(path, bladeId, access, nodeName, response.RegionLength)
            : SharedMemoryConnection.OpenReadOnly(path, bladeId, nodeName, response.RegionLength);
    }
}
