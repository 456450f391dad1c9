using System.Buffers.Binary;

namespace RAllocator.Fabric.Ucx;

/// <summary>
/// One registered range of a blade's region as a node sees it: where it is in the region, whether the node may
/// modify it, and the remote virtual address and packed UCX remote key that address it.
/// </summary>
/// <param name="Offset">First byte of the range in the region.</param>
/// <param name="Length">Bytes in the range.</param>
/// <param name="Writable">True when WRITE, the atomics and PERSIST may use this range; false for read-only.</param>
/// <param name="RemoteAddress">The blade's virtual address of <paramref name="Offset"/>.</param>
/// <param name="PackedRemoteKey">The ucp_rkey_pack output for the range's registration.</param>
public sealed record UcxRemoteRange(long Offset, long Length, bool Writable, ulong RemoteAddress, byte[] PackedRemoteKey)
{
    /// <summary>The range without its addressing, as <see cref="FabricAccess"/> describes it.</summary>
    public FabricRange Range => new(Offset, Length);
}

/// <summary>
/// Everything a node needs to open a <see cref="UcxConnection"/> to a blade: the blade worker's address, the region
/// length and the node's registered ranges. The blade produces it per node (<see cref="UcxBladeExporter.RegisterNode"/>);
/// <see cref="ToBytes"/> and <see cref="FromBytes"/> carry it across the handshake.
/// </summary>
public sealed class UcxConnectionInfo
{
    // "UCXR" little-endian, then a format version: a node talking to a blade of another build fails loudly here.
    private const uint Magic = 0x52584355;
    private const uint FormatVersion = 1;

    // Bounds what a corrupt or hostile handshake can make the node allocate.
    private const int MaxBlobBytes = 1 << 20;
    private const int MaxRanges = 1 << 16;

    /// <summary>Creates the description of a blade as one node may use it.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The region length is negative or a range lies outside the region.</exception>
    public UcxConnectionInfo(byte[] workerAddress, long regionLength, IReadOnlyList<UcxRemoteRange> ranges)
    {
        ArgumentNullException.ThrowIfNull(workerAddress);
        ArgumentNullException.ThrowIfNull(ranges);
        ArgumentOutOfRangeException.ThrowIfNegative(regionLength);
        foreach (var range in ranges)
        {
            ArgumentNullException.ThrowIfNull(range, nameof(ranges));
            if (range.Offset < 0 || range.Length < 0 || range.Offset > regionLength - range.Length)
            {
                throw new ArgumentOutOfRangeException(nameof(ranges), $"Range {range.Range} lies outside the blade region [0x0, 0x{regionLength:x}).");
            }
        }

        WorkerAddress = workerAddress;
        RegionLength = regionLength;
        Ranges = [.. ranges];
    }

    /// <summary>The blade worker's UCX address (ucp_worker_get_address).</summary>
    public byte[] WorkerAddress { get; }

    /// <summary>Bytes of the blade region.</summary>
    public long RegionLength { get; }

    /// <summary>The node's registrations: one read-only range for the whole region plus its writable ranges.</summary>
    public IReadOnlyList<UcxRemoteRange> Ranges { get; }

    /// <summary>The ranges the node may modify, as a <see cref="FabricAccess"/>.</summary>
    public FabricAccess Access =>
        Ranges.Any(range => range.Writable && range.Offset == 0 && range.Length == RegionLength)
            ? FabricAccess.Unrestricted
            : new FabricAccess([.. Ranges.Where(range => range.Writable).Select(range => range.Range)]);

    /// <summary>Encodes this description for the handshake (little-endian, versioned).</summary>
    public byte[] ToBytes()
    {
        var size = 4 + 4 + 8 + 4 + WorkerAddress.Length + 4;
        foreach (var range in Ranges)
        {
            size += 8 + 8 + 1 + 8 + 4 + range.PackedRemoteKey.Length;
        }

        var bytes = new byte[size];
        var writer = new SpanWriter(bytes);
        writer.UInt32(Magic);
        writer.UInt32(FormatVersion);
        writer.Int64(RegionLength);
        writer.Blob(WorkerAddress);
        writer.Int32(Ranges.Count);
        foreach (var range in Ranges)
        {
            writer.Int64(range.Offset);
            writer.Int64(range.Length);
            writer.Byte(range.Writable ? (byte)1 : (byte)0);
            writer.UInt64(range.RemoteAddress);
            writer.Blob(range.PackedRemoteKey);
        }

        return bytes;
    }

    /// <summary>Decodes what <see cref="ToBytes"/> produced.</summary>
    /// <exception cref="FormatException">The bytes are not a description of this format version, or are truncated.</exception>
    public static UcxConnectionInfo FromBytes(ReadOnlySpan<byte> bytes)
    {
        var reader = new SpanReader(bytes);
        if (reader.UInt32() != Magic)
        {
            throw new FormatException("Not a UCX blade description: the magic number does not match.");
        }

        var version = reader.UInt32();
        if (version != FormatVersion)
        {
            throw new FormatException($"UCX blade description format {version} is not supported (expected {FormatVersion}).");
        }

        var regionLength = reader.Int64();
        var workerAddress = reader.Blob();
        var count = reader.Int32();
        if (count is < 0 or > MaxRanges)
        {
            throw new FormatException($"UCX blade description claims {count} ranges.");
        }

        var ranges = new UcxRemoteRange[count];
        for (var i = 0; i < count; i++)
        {
            ranges[i] = new UcxRemoteRange(reader.Int64(), reader.Int64(), reader.Byte() != 0, reader.UInt64(), reader.Blob());
        }

        if (!reader.AtEnd)
        {
            throw new FormatException("UCX blade description has trailing bytes.");
        }

        try
        {
            return new UcxConnectionInfo(workerAddress, regionLength, ranges);
        }
        catch (ArgumentOutOfRangeException invalid)
        {
            throw new FormatException($"UCX blade description is inconsistent: {invalid.Message}", invalid);
        }
    }

    private ref struct SpanWriter(Span<byte> buffer)
    {
        private readonly Span<byte> _buffer = buffer;
        private int _position;

        public void Byte(byte value) => _buffer[_position++] = value;

        public void UInt32(uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Advance(4), value);

        public void Int32(int value) => BinaryPrimitives.WriteInt32LittleEndian(Advance(4), value);

        public void Int64(long value) => BinaryPrimitives.WriteInt64LittleEndian(Advance(8), value);

        public void UInt64(ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Advance(8), value);

        public void Blob(byte[] value)
        {
            Int32(value.Length);
            value.CopyTo(Advance(value.Length));
        }

        private Span<byte> Advance(int count)
        {
            var span = _buffer.Slice(_position, count);
            _position += count;
            return span;
        }
    }

    private ref struct SpanReader(ReadOnlySpan<byte> buffer)
    {
        private readonly ReadOnlySpan<byte> _buffer = buffer;
        private int _position;

        public readonly bool AtEnd => _position == _buffer.Length;

        public byte Byte() => Advance(1)[0];

        public uint UInt32() => BinaryPrimitives.ReadUInt32LittleEndian(Advance(4));

        public int Int32() => BinaryPrimitives.ReadInt32LittleEndian(Advance(4));

        public long Int64() => BinaryPrimitives.ReadInt64LittleEndian(Advance(8));

        public ulong UInt64() => BinaryPrimitives.ReadUInt64LittleEndian(Advance(8));

        public byte[] Blob()
        {
            var length = Int32();
            if (length is < 0 or > MaxBlobBytes)
            {
                throw new FormatException($"UCX blade description claims a {length}-byte field.");
            }

            return Advance(length).ToArray();
        }

        private ReadOnlySpan<byte> Advance(int count)
        {
            if (count > _buffer.Length - _position)
            {
                throw new FormatException("UCX blade description is truncated.");
            }

            var span = _buffer.Slice(_position, count);
            _position += count;
            return span;
        }
    }
}
