using System.Buffers.Binary;

namespace RAllocator.Fabric.Verbs;

/// <summary>A queue pair's address: what the other side needs to move its own queue pair to RTR.</summary>
/// <param name="QpNumber">ibv_qp.qp_num (24 bits).</param>
/// <param name="Psn">The first packet sequence number this side sends (24 bits).</param>
/// <param name="Lid">The port's LID (InfiniBand); 0 on RoCE.</param>
/// <param name="Gid">The GID at the chosen index (RoCE needs it; InfiniBand may leave it zero).</param>
internal readonly record struct VerbsQpAddress(uint QpNumber, uint Psn, ushort Lid, VerbsGid Gid);

/// <summary>A 16-byte GID, kept as the two big-endian halves the wire and <c>union ibv_gid</c> hold.</summary>
internal readonly record struct VerbsGid(ulong SubnetPrefix, ulong InterfaceId)
{
    public bool IsZero => SubnetPrefix == 0 && InterfaceId == 0;

    public static VerbsGid FromBytes(ReadOnlySpan<byte> raw) =>
        new(BinaryPrimitives.ReadUInt64BigEndian(raw), BinaryPrimitives.ReadUInt64BigEndian(raw[8..]));

    public void WriteTo(Span<byte> raw)
    {
        BinaryPrimitives.WriteUInt64BigEndian(raw, SubnetPrefix);
        BinaryPrimitives.WriteUInt64BigEndian(raw[8..], InterfaceId);
    }

    public override string ToString() => $"{SubnetPrefix:x16}:{InterfaceId:x16}";
}

/// <summary>One memory registration the blade grants a node: the range it covers and its rkey.</summary>
internal readonly record struct VerbsRangeKey(long Offset, long Length, uint Rkey);

/// <summary>Node to blade: who connects, and its queue pair's address.</summary>
internal sealed record VerbsHello(uint NodeId, VerbsQpAddress Node);

/// <summary>
/// Blade to node: the blade's queue pair, the region's remote address (of byte 0, what work requests name), the
/// read-only registration of the whole region, and one registration per writable range (remote write, atomics, read).
/// </summary>
internal sealed record VerbsWelcome(VerbsQpAddress Blade, ulong RegionAddress, long RegionLength, uint ReadRkey, IReadOnlyList<VerbsRangeKey> WritableRanges)
{
    public bool Equals(VerbsWelcome? other) =>
        other is not null && Blade == other.Blade && RegionAddress == other.RegionAddress && RegionLength == other.RegionLength
        && ReadRkey == other.ReadRkey && WritableRanges.SequenceEqual(other.WritableRanges);

    public override int GetHashCode() => HashCode.Combine(Blade, RegionAddress, RegionLength, ReadRkey, WritableRanges.Count);
}

/// <summary>
/// The TCP handshake that sets up one RC queue pair between a working node and a blade. Little-endian except the GID,
/// every message framed by its own fixed header:
/// <code>
/// Hello (node -> blade), 40 bytes
///   0  u32 magic 0x31425652 ("RVB1")   4 u16 version = 1   6 u16 kind = 1
///   8  u32 node id                    12 u32 qp_num       16 u32 psn
///  20  u16 lid                        22 u16 zero         24 gid[16] (network order)
/// Welcome (blade -> node), 64 + 24 * n bytes
///   0  u32 magic   4 u16 version   6 u16 kind = 2
///   8  u32 zero   12 u32 qp_num   16 u32 psn   20 u16 lid   22 u16 n (writable ranges, at most 4096)
///  24  gid[16]    40 u64 region address        48 u64 region length
///  56  u32 read rkey                           60 u32 zero
///  64  n x { u64 offset, u64 length, u32 rkey, u32 zero }   (each inside the region)
/// Refusal (blade -> node), 12 + m bytes
///   0  u32 magic   4 u16 version   6 u16 kind = 3   8 u32 m   12 UTF-8 reason[m] (m at most 4096)
/// </code>
/// A decoder rejects anything else with <see cref="InvalidDataException"/>: a stray client on the port, or a peer of
/// another version, must fail the handshake, never set up a queue pair with garbage.
/// </summary>
internal static class VerbsHandshake
{
    public const uint Magic = 0x31425652;
    public const ushort Version = 1;
    public const int HelloBytes = 40;
    public const int WelcomeHeaderBytes = 64;
    public const int RangeBytes = 24;
    public const int MaxRanges = 4096;
    public const int MaxReasonBytes = 4096;

    private const ushort KindHello = 1;
    private const ushort KindWelcome = 2;
    private const ushort KindRefusal = 3;
    private const int CommonHeaderBytes = 8;

    public static byte[] EncodeHello(VerbsHello hello)
    {
        var bytes = new byte[HelloBytes];
        WriteHeader(bytes, KindHello);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), hello.NodeId);
        WriteAddress(bytes, hello.Node);
        return bytes;
    }

    public static VerbsHello DecodeHello(ReadOnlySpan<byte> bytes)
    {
        ExpectLength(bytes, HelloBytes, "hello");
        ReadHeader(bytes, KindHello, "hello");
        ExpectZero(BinaryPrimitives.ReadUInt16LittleEndian(bytes[22..]), "hello reserved field");
        return new VerbsHello(BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]), ReadAddress(bytes));
    }

    public static byte[] EncodeWelcome(VerbsWelcome welcome)
    {
        if (welcome.WritableRanges.Count > MaxRanges)
        {
            throw new ArgumentOutOfRangeException(nameof(welcome), $"{welcome.WritableRanges.Count} writable ranges exceed the handshake's {MaxRanges}");
        }

        var bytes = new byte[WelcomeHeaderBytes + (RangeBytes * welcome.WritableRanges.Count)];
        WriteHeader(bytes, KindWelcome);
        WriteAddress(bytes, welcome.Blade);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(22), (ushort)welcome.WritableRanges.Count);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(40), welcome.RegionAddress);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(48), welcome.RegionLength);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(56), welcome.ReadRkey);
        for (int i = 0; i < welcome.WritableRanges.Count; i++)
        {
            var range = welcome.WritableRanges[i];
            var at = bytes.AsSpan(WelcomeHeaderBytes + (RangeBytes * i));
            BinaryPrimitives.WriteInt64LittleEndian(at, range.Offset);
            BinaryPrimitives.WriteInt64LittleEndian(at[8..], range.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(at[16..], range.Rkey);
        }

        return bytes;
    }

    /// <summary>The number of range bytes that follow a welcome's fixed header (read it first, then these).</summary>
    public static int WelcomeRangeBytes(ReadOnlySpan<byte> header)
    {
        ExpectLength(header, WelcomeHeaderBytes, "welcome header");
        ReadHeader(header, KindWelcome, "welcome");
        int count = BinaryPrimitives.ReadUInt16LittleEndian(header[22..]);
        if (count > MaxRanges)
        {
            throw new InvalidDataException($"welcome lists {count} writable ranges; at most {MaxRanges} are allowed");
        }

        return count * RangeBytes;
    }

    public static VerbsWelcome DecodeWelcome(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < WelcomeHeaderBytes)
        {
            throw new InvalidDataException($"welcome is {bytes.Length} bytes, shorter than its {WelcomeHeaderBytes}-byte header");
        }

        int rangeBytes = WelcomeRangeBytes(bytes[..WelcomeHeaderBytes]);
        ExpectLength(bytes, WelcomeHeaderBytes + rangeBytes, "welcome");
        ExpectZero(BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]), "welcome reserved field at 8");
        ExpectZero(BinaryPrimitives.ReadUInt32LittleEndian(bytes[60..]), "welcome reserved field at 60");
        long regionLength = BinaryPrimitives.ReadInt64LittleEndian(bytes[48..]);
        if (regionLength <= 0)
        {
            throw new InvalidDataException($"welcome announces a region of {regionLength} bytes");
        }

        var ranges = new VerbsRangeKey[rangeBytes / RangeBytes];
        for (int i = 0; i < ranges.Length; i++)
        {
            var at = bytes[(WelcomeHeaderBytes + (RangeBytes * i))..];
            var range = new VerbsRangeKey(BinaryPrimitives.ReadInt64LittleEndian(at), BinaryPrimitives.ReadInt64LittleEndian(at[8..]), BinaryPrimitives.ReadUInt32LittleEndian(at[16..]));
            ExpectZero(BinaryPrimitives.ReadUInt32LittleEndian(at[20..]), $"welcome range {i} reserved field");
            if (range.Offset < 0 || range.Length <= 0 || range.Offset > regionLength - range.Length)
            {
                throw new InvalidDataException($"welcome range {i} [0x{range.Offset:x}, +0x{range.Length:x}) is not inside the region of 0x{regionLength:x} bytes");
            }

            ranges[i] = range;
        }

        return new VerbsWelcome(ReadAddress(bytes), BinaryPrimitives.ReadUInt64LittleEndian(bytes[40..]), regionLength, BinaryPrimitives.ReadUInt32LittleEndian(bytes[56..]), ranges);
    }

    public static byte[] EncodeRefusal(string reason)
    {
        byte[] text = System.Text.Encoding.UTF8.GetBytes(reason);
        if (text.Length > MaxReasonBytes)
        {
            text = text[..MaxReasonBytes];
        }

        var bytes = new byte[12 + text.Length];
        WriteHeader(bytes, KindRefusal);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), (uint)text.Length);
        text.CopyTo(bytes, 12);
        return bytes;
    }

    /// <summary>True when the first 8 bytes of a blade's answer are a refusal rather than a welcome.</summary>
    public static bool IsRefusal(ReadOnlySpan<byte> header) =>
        header.Length >= CommonHeaderBytes && BinaryPrimitives.ReadUInt16LittleEndian(header[6..]) == KindRefusal;

    /// <summary>The reason length that follows a refusal's 12-byte header.</summary>
    public static int RefusalReasonBytes(ReadOnlySpan<byte> header)
    {
        ReadHeader(header, KindRefusal, "refusal");
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        if (length > MaxReasonBytes)
        {
            throw new InvalidDataException($"refusal reason of {length} bytes exceeds {MaxReasonBytes}");
        }

        return (int)length;
    }

    // ---------------------------------------------------------------- stream framing

    public static async ValueTask WriteAsync(Stream stream, byte[] message, CancellationToken cancellationToken)
    {
        await stream.WriteAsync(message, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public static async ValueTask<VerbsHello> ReadHelloAsync(Stream stream, CancellationToken cancellationToken)
    {
        var bytes = new byte[HelloBytes];
        await ReadExactlyAsync(stream, bytes, "hello", cancellationToken).ConfigureAwait(false);
        return DecodeHello(bytes);
    }

    /// <summary>Reads the blade's answer: a welcome, or a refusal thrown as <see cref="FabricException"/>.</summary>
    public static async ValueTask<VerbsWelcome> ReadWelcomeAsync(Stream stream, CancellationToken cancellationToken)
    {
        var header = new byte[WelcomeHeaderBytes];
        await ReadExactlyAsync(stream, header.AsMemory(0, 12), "blade answer", cancellationToken).ConfigureAwait(false);
        if (IsRefusal(header))
        {
            var reason = new byte[RefusalReasonBytes(header.AsSpan(0, 12))];
            await ReadExactlyAsync(stream, reason, "refusal reason", cancellationToken).ConfigureAwait(false);
            throw new FabricException(FabricStatus.RemoteAccessError, "the blade refused the connection: " + System.Text.Encoding.UTF8.GetString(reason));
        }

        await ReadExactlyAsync(stream, header.AsMemory(12), "welcome header", cancellationToken).ConfigureAwait(false);
        var whole = new byte[WelcomeHeaderBytes + WelcomeRangeBytes(header)];
        header.CopyTo(whole, 0);
        await ReadExactlyAsync(stream, whole.AsMemory(WelcomeHeaderBytes), "welcome ranges", cancellationToken).ConfigureAwait(false);
        return DecodeWelcome(whole);
    }

    private static async ValueTask ReadExactlyAsync(Stream stream, Memory<byte> buffer, string what, CancellationToken cancellationToken)
    {
        try
        {
            await stream.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException closed)
        {
            throw new InvalidDataException($"the peer closed the handshake connection before sending its {what}", closed);
        }
    }

    // ---------------------------------------------------------------- fields

    private static void WriteHeader(Span<byte> bytes, ushort kind)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes[4..], Version);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes[6..], kind);
    }

    private static void ReadHeader(ReadOnlySpan<byte> bytes, ushort kind, string what)
    {
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(bytes);
        if (magic != Magic)
        {
            throw new InvalidDataException($"{what}: magic 0x{magic:x8} is not the verbs handshake's 0x{Magic:x8}; is something else listening on this port?");
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(bytes[4..]);
        if (version != Version)
        {
            throw new InvalidDataException($"{what}: handshake version {version}, this build speaks {Version}");
        }

        ushort found = BinaryPrimitives.ReadUInt16LittleEndian(bytes[6..]);
        if (found != kind)
        {
            throw new InvalidDataException($"{what}: message kind {found}, expected {kind}");
        }
    }

    private static void WriteAddress(Span<byte> bytes, VerbsQpAddress address)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(bytes[12..], address.QpNumber);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes[16..], address.Psn);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes[20..], address.Lid);
        address.Gid.WriteTo(bytes.Slice(24, 16));
    }

    private static VerbsQpAddress ReadAddress(ReadOnlySpan<byte> bytes)
    {
        uint qpNumber = BinaryPrimitives.ReadUInt32LittleEndian(bytes[12..]);
        uint psn = BinaryPrimitives.ReadUInt32LittleEndian(bytes[16..]);
        if (qpNumber > 0xFFFFFF || psn > 0xFFFFFF)
        {
            throw new InvalidDataException($"queue pair number 0x{qpNumber:x} or PSN 0x{psn:x} does not fit 24 bits");
        }

        return new VerbsQpAddress(qpNumber, psn, BinaryPrimitives.ReadUInt16LittleEndian(bytes[20..]), VerbsGid.FromBytes(bytes.Slice(24, 16)));
    }

    private static void ExpectLength(ReadOnlySpan<byte> bytes, int length, string what)
    {
        if (bytes.Length != length)
        {
            throw new InvalidDataException($"{what} is {bytes.Length} bytes, expected {length}");
        }
    }

    private static void ExpectZero(ulong value, string what)
    {
        if (value != 0)
        {
            throw new InvalidDataException($"{what} is 0x{value:x}, must be zero");
        }
    }
}
