using System.Buffers.Binary;

namespace RAllocator.Nvm.Layout;

/// <summary>
/// Field reads and writes used by generated NVM struct views. Fields are little-endian in NVM. An 8-byte field
/// at an 8-byte-aligned absolute offset goes through <see cref="INvmRegion.LoadUInt64"/> and
/// <see cref="INvmRegion.StoreUInt64"/>, so it is single-copy atomic (and a concurrent remote atomic never sees
/// it torn); every other field is a plain <see cref="INvmRegion.Read"/> or <see cref="INvmRegion.Write"/> of its
/// size.
/// </summary>
/// <remarks>
/// The 8-byte word operations of <see cref="INvmRegion"/> use the machine's byte order; every platform .NET
/// runs RAllocator on is little-endian, which is what keeps the two paths consistent.
/// </remarks>
public static class NvmFieldAccess
{
    /// <summary>Reads the byte at <paramref name="offset"/>.</summary>
    /// <param name="region">The region to read.</param>
    /// <param name="offset">Absolute byte offset in the region.</param>
    /// <returns>The byte.</returns>
    public static byte ReadByte(INvmRegion region, long offset)
    {
        Span<byte> bytes = stackalloc byte[sizeof(byte)];
        region.Read(offset, bytes);
        return bytes[0];
    }

    /// <summary>Reads the little-endian 16-bit value at <paramref name="offset"/>.</summary>
    /// <param name="region">The region to read.</param>
    /// <param name="offset">Absolute byte offset in the region.</param>
    /// <returns>The value.</returns>
    public static ushort ReadUInt16(INvmRegion region, long offset)
    {
        Span<byte> bytes = stackalloc byte[sizeof(ushort)];
        region.Read(offset, bytes);
        return BinaryPrimitives.ReadUInt16LittleEndian(bytes);
    }

    /// <summary>Reads the little-endian 32-bit value at <paramref name="offset"/>.</summary>
    /// <param name="region">The region to read.</param>
    /// <param name="offset">Absolute byte offset in the region.</param>
    /// <returns>The value.</returns>
    public static uint ReadUInt32(INvmRegion region, long offset)
    {
        Span<byte> bytes = stackalloc byte[sizeof(uint)];
        region.Read(offset, bytes);
        return BinaryPrimitives.ReadUInt32LittleEndian(bytes);
    }

    /// <summary>
    /// Reads the little-endian 64-bit value at <paramref name="offset"/>: one atomic load when the offset is
    /// 8-byte aligned, else a plain read of 8 bytes.
    /// </summary>
    /// <param name="region">The region to read.</param>
    /// <param name="offset">Absolute byte offset in the region.</param>
    /// <returns>The value.</returns>
    public static ulong ReadUInt64(INvmRegion region, long offset)
    {
        if ((offset & (sizeof(ulong) - 1)) == 0)
        {
            return region.LoadUInt64(offset);
        }

        Span<byte> bytes = stackalloc byte[sizeof(ulong)];
        region.Read(offset, bytes);
        return BinaryPrimitives.ReadUInt64LittleEndian(bytes);
    }

    /// <summary>Writes the byte at <paramref name="offset"/> (not yet durable).</summary>
    /// <param name="region">The region to write.</param>
    /// <param name="offset">Absolute byte offset in the region.</param>
    /// <param name="value">The byte.</param>
    public static void WriteByte(INvmRegion region, long offset, byte value)
    {
        ReadOnlySpan<byte> bytes = [value];
        region.Write(offset, bytes);
    }

    /// <summary>Writes a little-endian 16-bit value at <paramref name="offset"/> (not yet durable).</summary>
    /// <param name="region">The region to write.</param>
    /// <param name="offset">Absolute byte offset in the region.</param>
    /// <param name="value">The value.</param>
    public static void WriteUInt16(INvmRegion region, long offset, ushort value)
    {
        Span<byte> bytes = stackalloc byte[sizeof(ushort)];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, value);
        region.Write(offset, bytes);
    }

    /// <summary>Writes a little-endian 32-bit value at <paramref name="offset"/> (not yet durable).</summary>
    /// <param name="region">The region to write.</param>
    /// <param name="offset">Absolute byte offset in the region.</param>
    /// <param name="value">The value.</param>
    public static void WriteUInt32(INvmRegion region, long offset, uint value)
    {
        Span<byte> bytes = stackalloc byte[sizeof(uint)];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        region.Write(offset, bytes);
    }

    /// <summary>
    /// Writes a little-endian 64-bit value at <paramref name="offset"/> (not yet durable): one atomic store when
    /// the offset is 8-byte aligned, else a plain write of 8 bytes.
    /// </summary>
    /// <param name="region">The region to write.</param>
    /// <param name="offset">Absolute byte offset in the region.</param>
    /// <param name="value">The value.</param>
    public static void WriteUInt64(INvmRegion region, long offset, ulong value)
    {
        if ((offset & (sizeof(ulong) - 1)) == 0)
        {
            region.StoreUInt64(offset, value);
            return;
        }

        Span<byte> bytes = stackalloc byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        region.Write(offset, bytes);
    }
}
