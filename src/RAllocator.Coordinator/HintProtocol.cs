using RAllocator.Fabric.Framing;

namespace RAllocator.Coordinator;

/// <summary>How a coordinator's hint service answered a request.</summary>
public enum HintStatus : byte
{
    /// <summary>The response carries the coordinator's current hints.</summary>
    Ok = 0,

    /// <summary>The coordinator has not finished its first refresh yet: ask again later.</summary>
    NoHintsYet = 1,

    /// <summary>The request was not a hint request of a version this coordinator speaks; the connection is closed.</summary>
    Malformed = 2,

    /// <summary>The coordinator serves as many connections as it admits; the connection is closed.</summary>
    Busy = 3,
}

/// <summary>A hint service's answer.</summary>
/// <param name="Status">Ok, or why there are no hints.</param>
/// <param name="Message">A sentence for logs and error messages (empty when Ok).</param>
/// <param name="Incarnation">
/// Names the coordinator process that answered (random at its start). Versions count per incarnation: a restarted
/// coordinator counts from 1 again, so a node that sees a new incarnation replaces its hints whatever their version.
/// </param>
/// <param name="Hints">The hints when <paramref name="Status"/> is <see cref="HintStatus.Ok"/>, else null.</param>
public sealed record HintResponse(HintStatus Status, string Message, ulong Incarnation, PlacementHints? Hints);

/// <summary>A hint request or response that is not well formed; the message says which field and why.</summary>
public sealed class HintFormatException(string message) : Exception(message);

/// <summary>
/// The binary protocol between a coordinator's hint service and working nodes, over TCP: little-endian, each
/// message framed by a 4-byte length, every length bounded so a confused or hostile peer gets a typed
/// <see cref="HintFormatException"/>, never an allocation it chose. A node sends a request (magic, version) and reads
/// one response; it may repeat on the same connection.
/// </summary>
public static class HintCodec
{
    /// <summary>The protocol version this build speaks.</summary>
    public const ushort Version = 2;

    /// <summary>The largest request body a service reads (a request is 6 bytes; the slack is for later versions).</summary>
    public const int MaxRequestBytes = 64;

    /// <summary>The largest response body a node reads.</summary>
    public const int MaxResponseBytes = 64 * 1024;

    /// <summary>The most blades one response may describe.</summary>
    public const int MaxBlades = 1024;

    /// <summary>The longest status message, in UTF-8 bytes.</summary>
    public const int MaxMessageBytes = 1024;

    private const uint RequestMagic = 0x51_48_41_52;  // "RAHQ"
    private const uint ResponseMagic = 0x50_48_41_52; // "RAHP"
    private const byte ReachableFlag = 1;
    private const byte ShedFlag = 2;

    private static readonly Func<string, Exception> s_malformed = static message => new HintFormatException(message);

    /// <summary>A request, framed: the same bytes every time.</summary>
    public static byte[] EncodeRequest()
    {
        var writer = NewWriter();
        writer.UInt32(RequestMagic);
        writer.UInt16(Version);
        return writer.ToFramed(MaxRequestBytes);
    }

    /// <summary>Checks a request body (without its frame length).</summary>
    /// <exception cref="HintFormatException">The bytes are not a request of this version.</exception>
    public static void DecodeRequest(ReadOnlySpan<byte> body)
    {
        var reader = NewReader(body, "hint request");
        reader.Magic(RequestMagic, "is the peer a working node's RemoteHintSource?");
        reader.Version(Version);
        reader.End();
    }

    /// <summary>Encodes a response, framed.</summary>
    /// <exception cref="ArgumentException">The response has hints when it should not (or none when it should), too many blades, or a message that is too long.</exception>
    public static byte[] Encode(HintResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        if ((response.Status == HintStatus.Ok) != (response.Hints is not null))
        {
            throw new ArgumentException("a response carries hints exactly when its status is Ok.", nameof(response));
        }

        var writer = NewWriter();
        writer.UInt32(ResponseMagic);
        writer.UInt16(Version);
        writer.Byte((byte)response.Status);
        writer.Text(response.Message, MaxMessageBytes);
        writer.UInt64(response.Incarnation);
        if (response.Hints is { } hints)
        {
            if (hints.Blades.Count > MaxBlades)
            {
                throw new ArgumentException($"hints for {hints.Blades.Count} blades; at most {MaxBlades} are allowed.", nameof(response));
            }

            writer.UInt64((ulong)hints.Version);
            writer.Double(hints.HighWaterMark);
            writer.UInt32((uint)hints.Blades.Count);
            foreach (var blade in hints.Blades)
            {
                writer.UInt32((uint)blade.BladeId);
                writer.Byte((byte)((blade.Reachable ? ReachableFlag : 0) | (blade.Shed ? ShedFlag : 0)));
                writer.UInt64(blade.Weight);
                writer.Double(blade.Utilization);
                writer.UInt64(blade.FreeBytes);
                writer.UInt64(blade.BladeUid);
            }
        }

        return writer.ToFramed(MaxResponseBytes);
    }

    /// <summary>Decodes a response body (without its frame length).</summary>
    /// <exception cref="HintFormatException">The bytes are not a well-formed response.</exception>
    public static HintResponse DecodeResponse(ReadOnlySpan<byte> body)
    {
        var reader = NewReader(body, "hint response");
        reader.Magic(ResponseMagic, "is the peer an RAllocator coordinator's hint service?");
        reader.Version(Version);
        var status = reader.Byte("status");
        if (!Enum.IsDefined((HintStatus)status))
        {
            throw new HintFormatException($"hint response: unknown status {status}.");
        }

        var message = reader.Text("message", MaxMessageBytes);
        var incarnation = reader.UInt64("incarnation");
        PlacementHints? hints = null;
        if ((HintStatus)status == HintStatus.Ok)
        {
            var version = reader.UInt64("hints version");
            if (version > long.MaxValue)
            {
                throw new HintFormatException($"hint response: hints version {version} is out of range.");
            }

            var mark = reader.Double("high-water mark");
            if (!(mark > 0 && mark <= 1))
            {
                throw new HintFormatException($"hint response: high-water mark {mark} is not above 0 and at most 1.");
            }

            var count = reader.UInt32("blade count");
            if (count > MaxBlades)
            {
                throw new HintFormatException($"hint response: {count} blades; at most {MaxBlades} are allowed.");
            }

            var blades = new BladeHint[count];
            for (var i = 0; i < blades.Length; i++)
            {
                var id = reader.UInt32("blade id");
                if (id != i)
                {
                    // Nodes index hints by blade id: a gap or a shuffle would send slabs to the wrong blade.
                    throw new HintFormatException($"hint response: blade {i} has id {id}; hints list blades by id, 0 to {count - 1}.");
                }

                var flags = reader.Byte("blade flags");
                if ((flags & ~(ReachableFlag | ShedFlag)) != 0)
                {
                    throw new HintFormatException($"hint response: blade {i} has unknown flags 0x{flags:x2}.");
                }

                if ((flags & (ReachableFlag | ShedFlag)) == ShedFlag)
                {
                    throw new HintFormatException($"hint response: blade {i} is marked shed but unreachable; only a blade the coordinator read can be shed.");
                }

                var weight = reader.UInt64("blade weight");
                var utilization = reader.Double("blade utilization");
                if (!(utilization >= 0 && utilization <= 1))
                {
                    throw new HintFormatException($"hint response: blade {i} utilization {utilization} is not between 0 and 1.");
                }

                var freeBytes = reader.UInt64("blade free bytes");
                var uid = reader.UInt64("blade uid");
                blades[i] = new BladeHint(i, (flags & ReachableFlag) != 0, (flags & ShedFlag) != 0, weight, utilization, freeBytes, uid);
            }

            hints = new PlacementHints((long)version, mark, blades);
        }

        reader.End();
        return new HintResponse((HintStatus)status, message, incarnation, hints);
    }

    /// <summary>Reads one framed message body of at most <paramref name="maxBytes"/> bytes.</summary>
    /// <exception cref="HintFormatException">The frame length is out of bounds (checked before anything is allocated).</exception>
    /// <exception cref="EndOfStreamException">The peer closed the connection before a whole frame arrived.</exception>
    public static Task<byte[]> ReadFrameAsync(Stream stream, int maxBytes, CancellationToken cancellationToken) =>
        BoundedFrames.ReadFrameAsync(
            stream,
            maxBytes,
            length => new HintFormatException($"hint frame of {length} bytes: frames are 1 to {maxBytes} bytes (is the peer an RAllocator coordinator or working node?)."),
            cancellationToken);

    private static FrameWriter NewWriter() => new("a hint message", "a message");

    private static FrameReader NewReader(ReadOnlySpan<byte> body, string what) => new(body, what, s_malformed);
}
