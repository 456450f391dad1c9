using System.Buffers.Binary;
using System.IO.Hashing;

namespace RAllocator.KeyValue;

/// <summary>
/// The persistent formats (all little-endian, every pointer a packed <see cref="Protocol.RemotePtr"/> in an aligned
/// 8-byte word, so a pointer store is atomic):
/// <code>
/// superblock (64 B): 0 magic "RKVSv001" | 8 format u32, max height u32 | 16 max key u32, max value u32
///                    | 24 head node ptr | 32 xxHash32 of bytes 0..31 | 36..63 zero
/// node:              0 header: key length u16, height u8, tag u8 ('N' node, 'H' head), xxHash32(key) u32
///                    | 8 value ptr | 16 next[height] | 16 + 8 * height: key bytes
/// value:             0 length u32, xxHash32(value) u32 | 8 value bytes
/// </code>
/// Nodes and values are allocated with at least <see cref="MinObjectBytes"/> bytes, so a first READ of that many
/// bytes is always inside the object and usually returns all of it.
/// </summary>
internal static class KvLayout
{
    public const int MinObjectBytes = 64;
    public const int SuperblockBytes = 64;
    public const int NodeHeaderBytes = 16;
    public const int ValueHeaderBytes = 8;
    public const int ValuePtrOffset = 8;
    public const uint FormatVersion = 1;
    public const byte NodeTag = (byte)'N';
    public const byte HeadTag = (byte)'H';
    public static readonly ulong SuperblockMagic = BinaryPrimitives.ReadUInt64LittleEndian("RKVSv001"u8);

    public static int NodeBytes(int height, int keyLength) => NodeHeaderBytes + (8 * height) + keyLength;

    public static int NextOffset(int level) => NodeHeaderBytes + (8 * level);

    public static uint KeyHash(ReadOnlySpan<byte> key, int height) => XxHash32.HashToUInt32(key, (key.Length << 8) | height);

    public static uint ValueHash(ReadOnlySpan<byte> value) => XxHash32.HashToUInt32(value, value.Length);

    public static ulong NodeHeader(int keyLength, int height, byte tag, uint keyHash) =>
        (ulong)(uint)keyLength | ((ulong)(uint)height << 16) | ((ulong)tag << 24) | ((ulong)keyHash << 32);

    public static byte[] EncodeNode(byte tag, int height, ReadOnlySpan<byte> key, ulong valuePtr, ReadOnlySpan<ulong> next)
    {
        var bytes = new byte[Math.Max(MinObjectBytes, NodeBytes(height, key.Length))];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, NodeHeader(key.Length, height, tag, KeyHash(key, height)));
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(ValuePtrOffset), valuePtr);
        for (int i = 0; i < height; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(NextOffset(i)), next[i]);
        }

        key.CopyTo(bytes.AsSpan(NodeBytes(height, 0)));
        return bytes;
    }

    public static byte[] EncodeValue(ReadOnlySpan<byte> value)
    {
        var bytes = new byte[Math.Max(MinObjectBytes, ValueHeaderBytes + value.Length)];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)value.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), ValueHash(value));
        value.CopyTo(bytes.AsSpan(ValueHeaderBytes));
        return bytes;
    }

    public static byte[] EncodeSuperblock(int maxHeight, int maxKeyBytes, int maxValueBytes, ulong head)
    {
        var bytes = new byte[SuperblockBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, SuperblockMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), FormatVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(12), (uint)maxHeight);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(16), (uint)maxKeyBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(20), (uint)maxValueBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(24), head);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(32), XxHash32.HashToUInt32(bytes.AsSpan(0, 32)));
        return bytes;
    }

    /// <summary>Compares keys as unsigned byte strings.</summary>
    public static int Compare(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => a.SequenceCompareTo(b);
}

/// <summary>A node as read from NVM: its key and pointers at the time of the read.</summary>
internal sealed class NodeView(ulong ptr, byte tag, int height, byte[] key, ulong valuePtr, ulong[] next)
{
    public ulong Ptr { get; } = ptr;

    public byte Tag { get; } = tag;

    public int Height { get; } = height;

    public byte[] Key { get; } = key;

    public ulong ValuePtr { get; } = valuePtr;

    public ulong[] Next { get; } = next;
}
