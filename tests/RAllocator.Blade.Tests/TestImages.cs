using System.Security.Cryptography;
using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.Blade.Tests;

/// <summary>Small blade images and the byte-level tools the tests use to build, corrupt and compare them.</summary>
internal static class TestImages
{
    public const ulong KiB = 1024;
    public const ulong MiB = 1024 * KiB;
    public const ulong GiB = 1024 * MiB;

    /// <summary>A 1 MiB image of 64 KiB slabs (15 of them, one bitmap word): cheap to clone thousands of times.</summary>
    public const long SmallRegionBytes = (long)MiB;

    public const ulong SmallSlabBytes = 64 * KiB;

    /// <summary>Few nodes and slots, so the metadata of a small image is a few pages.</summary>
    public static readonly BladeFormatOptions SmallOptions = new() { MaxNodes = 4, AckSlotsPerNode = 4, FreeSlotsPerNode = 4 };

    public const ulong SmallUid = 0x5EED_0000_0000_0001;

    /// <summary>The small image with slabs of 1, 2 and 4 base slabs (span rings of one entry).</summary>
    public static readonly BladeFormatOptions SmallSpanOptions = SmallOptions with { MaxSlabSpan = 4, SpanRingCapacity = 1 };

    /// <summary>A freshly formatted small image with span rings, opened read-write, all durable.</summary>
    public static (SimulatedNvm Nvm, BladeImage Image) FormatSmallWithSpans()
    {
        var nvm = new SimulatedNvm(SmallRegionBytes);
        BladeImage.Format(nvm, SmallSlabBytes, SmallSpanOptions, SmallUid);
        return (nvm, BladeImage.Open(nvm));
    }

    /// <summary>A freshly formatted small image, opened read-write (as the blade server would), all durable.</summary>
    public static (SimulatedNvm Nvm, BladeImage Image) FormatSmall(ulong uid = SmallUid)
    {
        var nvm = new SimulatedNvm(SmallRegionBytes);
        BladeImage.Format(nvm, SmallSlabBytes, SmallOptions, uid);
        var image = BladeImage.Open(nvm);
        return (nvm, image);
    }

    /// <summary>SHA-256 of every byte the region shows, in hex.</summary>
    public static string Hash(INvmRegion region)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        for (long offset = 0; offset < region.Length; offset += buffer.Length)
        {
            int chunk = (int)Math.Min(buffer.Length, region.Length - offset);
            region.Read(offset, buffer.AsSpan(0, chunk));
            sha.AppendData(buffer, 0, chunk);
        }

        return Convert.ToHexString(sha.GetHashAndReset());
    }

    /// <summary>SHA-256 of a file's bytes, read through the file system (not through a mapping).</summary>
    public static string FileHash(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream));
    }

    public static long CopyOffset(SuperblockCopy copy) =>
        copy == SuperblockCopy.A ? BladeLayout.SuperblockAOffset : BladeLayout.SuperblockBOffset;

    public static Superblock ReadCopy(INvmRegion region, SuperblockCopy copy) => Superblock.Read(region, CopyOffset(copy));

    /// <summary>Overwrites one superblock copy and persists it (a deliberate corruption, not a blade update).</summary>
    public static void WriteCopy(INvmRegion region, SuperblockCopy copy, Superblock value)
    {
        value.Write(region, CopyOffset(copy));
        region.Persist(CopyOffset(copy), Superblock.SizeBytes);
    }

    /// <summary>Flips bits of one byte of a copy, leaving its checksum stale.</summary>
    public static void FlipByte(INvmRegion region, SuperblockCopy copy, int byteOffset, byte mask = 0xFF)
    {
        Span<byte> one = stackalloc byte[1];
        long offset = CopyOffset(copy) + byteOffset;
        region.Read(offset, one);
        one[0] ^= mask;
        region.Write(offset, one);
        region.Persist(offset, 1);
    }

    public static byte[] Bytes(in Superblock superblock)
    {
        var bytes = new byte[Superblock.SizeBytes];
        superblock.CopyTo(bytes);
        return bytes;
    }

    public static bool SameBytes(in Superblock a, in Superblock b) => Bytes(a).AsSpan().SequenceEqual(Bytes(b));

    public static string Describe(in Superblock s) =>
        $"{{gen {s.Generation}, incarnation {s.BladeIncarnation}, flags {s.Flags}, lease {s.NodeLeaseTicks}, uid 0x{s.BladeUid:x}, "
        + $"slab {s.SlabSizeBytes} x {s.SlabCount}, crc 0x{s.Checksum:x16}}}";

    /// <summary>Bytes [offset, offset + length) of a region.</summary>
    public static byte[] ReadBytes(INvmRegion region, long offset, long length)
    {
        var bytes = new byte[length];
        region.Read(offset, bytes);
        return bytes;
    }
}
