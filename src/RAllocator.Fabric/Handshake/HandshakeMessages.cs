using RAllocator.Fabric.Framing;

namespace RAllocator.Fabric.Handshake;

/// <summary>The fabrics a working node can ask a blade server for.</summary>
public enum FabricKind : byte
{
    /// <summary>Same host: the node maps the blade's NVM file and runs the verbs with CPU atomics on the mapping.</summary>
    SharedMemory = 1,

    /// <summary>UCX (libucp): shared memory, TCP, InfiniBand or RoCE, with remote atomics where the transport has them.</summary>
    Ucx = 2,

    /// <summary>libibverbs on an RDMA device.</summary>
    Verbs = 3,
}

/// <summary>The blade server's answer to a handshake.</summary>
public enum HandshakeStatus : byte
{
    /// <summary>The node is connected; the response carries its registrations.</summary>
    Accepted = 0,

    /// <summary>The access token does not match the blade's.</summary>
    BadToken = 1,

    /// <summary>The node id is not below the blade's maximum number of nodes.</summary>
    NodeIdOutOfRange = 2,

    /// <summary>Another process is connected as this node id: two would corrupt each other's slabs.</summary>
    NodeAlreadyConnected = 3,

    /// <summary>The blade does not offer the requested fabric (missing library or device, or not enabled).</summary>
    FabricNotOffered = 4,

    /// <summary>The request was not a handshake of a version this server speaks.</summary>
    Malformed = 5,

    /// <summary>The fabric failed to set up the node's registrations on the blade.</summary>
    FabricSetupFailed = 6,

    /// <summary>An observer was refused: the blade already serves as many observers as it admits.</summary>
    TooManyObservers = 7,
}

/// <summary>
/// A working node's handshake: who it is, its token, and which fabric it wants. A request with node id
/// <see cref="HandshakeCodec.ObserverNodeId"/> asks for a read-only observer session instead (<see cref="IsObserver"/>).
/// </summary>
/// <param name="NodeId">The node's id on the blade (stable across restarts: it names the slabs the node owns), or <see cref="HandshakeCodec.ObserverNodeId"/>.</param>
/// <param name="Fabric">The fabric the node will use.</param>
/// <param name="Token">The blade's access token, as the node read it from its token file.</param>
/// <param name="NodeName">A name for logs (host and process).</param>
/// <param name="FabricPayload">Fabric-specific set-up data from the node (e.g. its UCX worker address); may be empty.</param>
public sealed record HandshakeRequest(uint NodeId, FabricKind Fabric, ReadOnlyMemory<byte> Token, string NodeName, ReadOnlyMemory<byte> FabricPayload)
{
    /// <summary>
    /// True for a read-only observer (a placement coordinator, a monitor): it gets no registration, takes no node
    /// slot, may read the whole region and modify nothing, and its session's end revokes nothing but its read key.
    /// </summary>
    public bool IsObserver => NodeId == HandshakeCodec.ObserverNodeId;

    /// <summary>An observer's request: no node id of its own, <see cref="HandshakeCodec.ObserverNodeId"/> instead.</summary>
    public static HandshakeRequest Observer(FabricKind fabric, ReadOnlyMemory<byte> token, string name, ReadOnlyMemory<byte> fabricPayload) =>
        new(HandshakeCodec.ObserverNodeId, fabric, token, name, fabricPayload);
}

/// <summary>The blade server's answer.</summary>
/// <param name="Status">Accepted, or why not.</param>
/// <param name="Message">A sentence for the node's error message or log.</param>
/// <param name="BladeProcessId">The blade server's process id (lets a node on the same host read its CPU time).</param>
/// <param name="RegionLength">Bytes of the blade's region.</param>
/// <param name="WritableRanges">Where the node may write, update atomically and persist.</param>
/// <param name="FabricPayload">Fabric-specific set-up data (a file path, a worker address and remote keys).</param>
public sealed record HandshakeResponse(
    HandshakeStatus Status,
    string Message,
    int BladeProcessId,
    long RegionLength,
    IReadOnlyList<FabricRange> WritableRanges,
    ReadOnlyMemory<byte> FabricPayload);

/// <summary>A handshake message that is not well formed; the message says which field and why.</summary>
public sealed class HandshakeFormatException(string message) : Exception(message);

/// <summary>
/// The binary handshake a working node and a blade server exchange over TCP before any verb: little-endian,
/// each message framed by a 4-byte length, every length bounded so a hostile peer cannot make either side
/// allocate more than <see cref="MaxMessageBytes"/>.
/// </summary>
public static class HandshakeCodec
{
    /// <summary>The largest message either side accepts.</summary>
    public const int MaxMessageBytes = 1 << 20;

    /// <summary>The largest access token.</summary>
    public const int MaxTokenBytes = 1024;

    /// <summary>The longest node name or status message, in UTF-8 bytes.</summary>
    public const int MaxTextBytes = 4096;

    /// <summary>The most writable ranges a response may carry.</summary>
    public const int MaxRanges = 1024;

    /// <summary>The protocol version this build speaks.</summary>
    public const ushort Version = 1;

    /// <summary>
    /// The node id an observer presents. It can never be a real node's id (a blade serves at most a few thousand
    /// nodes), and a blade server that predates observers refuses it as out of range instead of misreading it, so
    /// the role needed no new field and no version change.
    /// </summary>
    public const uint ObserverNodeId = uint.MaxValue;

    private const uint RequestMagic = 0x48_4C_41_52;  // "RALH"
    private const uint ResponseMagic = 0x52_4C_41_52; // "RALR"
    private const string NotAPeer = "the peer is not an RAllocator blade server or node";

    private static readonly Func<string, Exception> s_malformed = static message => new HandshakeFormatException(message);

    private static readonly Func<uint, Exception> s_frameOutOfBounds = static length =>
        new HandshakeFormatException($"handshake frame of {length} bytes: frames are 1 to {MaxMessageBytes} bytes (is the peer an RAllocator blade server or node?).");

    /// <summary>Encodes a request, framed.</summary>
    public static byte[] Encode(HandshakeRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Token.Length > MaxTokenBytes)
        {
            throw new ArgumentException($"the access token is {request.Token.Length} bytes; at most {MaxTokenBytes} are allowed.", nameof(request));
        }

        var writer = NewWriter();
        writer.UInt32(RequestMagic);
        writer.UInt16(Version);
        writer.Byte((byte)request.Fabric);
        writer.UInt32(request.NodeId);
        writer.Bytes(request.Token.Span);
        writer.Text(request.NodeName, MaxTextBytes);
        writer.Bytes(request.FabricPayload.Span);
        return writer.ToFramed(MaxMessageBytes);
    }

    /// <summary>Encodes a response, framed.</summary>
    public static byte[] Encode(HandshakeResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        if (response.WritableRanges.Count > MaxRanges)
        {
            throw new ArgumentException($"{response.WritableRanges.Count} writable ranges; at most {MaxRanges} are allowed.", nameof(response));
        }

        var writer = NewWriter();
        writer.UInt32(ResponseMagic);
        writer.UInt16(Version);
        writer.Byte((byte)response.Status);
        writer.Text(response.Message, MaxTextBytes);
        writer.UInt32((uint)response.BladeProcessId);
        writer.UInt64((ulong)response.RegionLength);
        writer.UInt32((uint)response.WritableRanges.Count);
        foreach (var range in response.WritableRanges)
        {
            writer.UInt64((ulong)range.Offset);
            writer.UInt64((ulong)range.Length);
        }

        writer.Bytes(response.FabricPayload.Span);
        return writer.ToFramed(MaxMessageBytes);
    }

    /// <summary>Decodes a request body (without its frame length).</summary>
    /// <exception cref="HandshakeFormatException">The bytes are not a well-formed request.</exception>
    public static HandshakeRequest DecodeRequest(ReadOnlySpan<byte> body)
    {
        var reader = NewReader(body, "handshake request");
        reader.Magic(RequestMagic, NotAPeer);
        reader.Version(Version);
        var fabric = reader.Byte("fabric");
        if (!Enum.IsDefined((FabricKind)fabric))
        {
            throw new HandshakeFormatException($"handshake request: unknown fabric {fabric}.");
        }

        var nodeId = reader.UInt32("node id");
        var token = reader.Bytes("token", MaxTokenBytes);
        var name = reader.Text("node name", MaxTextBytes);
        var payload = reader.Bytes("fabric payload", MaxMessageBytes);
        reader.End();
        return new HandshakeRequest(nodeId, (FabricKind)fabric, token, name, payload);
    }

    /// <summary>Decodes a response body (without its frame length).</summary>
    /// <exception cref="HandshakeFormatException">The bytes are not a well-formed response.</exception>
    public static HandshakeResponse DecodeResponse(ReadOnlySpan<byte> body)
    {
        var reader = NewReader(body, "handshake response");
        reader.Magic(ResponseMagic, NotAPeer);
        reader.Version(Version);
        var status = reader.Byte("status");
        if (!Enum.IsDefined((HandshakeStatus)status))
        {
            throw new HandshakeFormatException($"handshake response: unknown status {status}.");
        }

        var message = reader.Text("message", MaxTextBytes);
        var pid = (int)reader.UInt32("blade process id");
        var regionLength = (long)reader.UInt64("region length");
        if (regionLength < 0)
        {
            throw new HandshakeFormatException($"handshake response: region length {regionLength} is negative.");
        }

        var rangeCount = reader.UInt32("range count");
        if (rangeCount > MaxRanges)
        {
            throw new HandshakeFormatException($"handshake response: {rangeCount} writable ranges; at most {MaxRanges} are allowed.");
        }

        var ranges = new FabricRange[rangeCount];
        for (var i = 0; i < ranges.Length; i++)
        {
            var offset = (long)reader.UInt64("range offset");
            var length = (long)reader.UInt64("range length");
            if (offset < 0 || length < 0 || length > regionLength || offset > regionLength - length)
            {
                throw new HandshakeFormatException($"handshake response: writable range {i} [0x{offset:x}, +0x{length:x}) is outside the {regionLength}-byte region.");
            }

            ranges[i] = new FabricRange(offset, length);
        }

        var payload = reader.Bytes("fabric payload", MaxMessageBytes);
        reader.End();
        return new HandshakeResponse((HandshakeStatus)status, message, pid, regionLength, ranges, payload);
    }

    /// <summary>Writes one framed message.</summary>
    public static async Task WriteFrameAsync(Stream stream, byte[] framed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        await stream.WriteAsync(framed, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads one framed message body.</summary>
    /// <exception cref="HandshakeFormatException">The frame length is out of bounds.</exception>
    /// <exception cref="EndOfStreamException">The peer closed the connection before a whole frame arrived.</exception>
    public static Task<byte[]> ReadFrameAsync(Stream stream, CancellationToken cancellationToken) =>
        BoundedFrames.ReadFrameAsync(stream, MaxMessageBytes, s_frameOutOfBounds, cancellationToken);

    private static FrameWriter NewWriter() => new("handshake message", "text");

    private static FrameReader NewReader(ReadOnlySpan<byte> body, string what) => new(body, what, s_malformed);
}
