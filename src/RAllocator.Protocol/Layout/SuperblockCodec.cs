using System.Buffers.Binary;
using System.IO.Hashing;

namespace RAllocator.Protocol.Layout;

/// <summary>
/// Builds, checksums and chooses between the two superblock copies. Shared by the blade (local NVM) and by
/// working nodes (which READ both copies one-sided), so both sides agree on what a valid image is.
/// </summary>
public static class SuperblockCodec
{
    /// <summary>"RALLOCv1" as a little-endian 64-bit word.</summary>
    public static readonly ulong Magic = BinaryPrimitives.ReadUInt64LittleEndian("RALLOCv1"u8);

    /// <summary>The format version this code writes and reads.</summary>
    public const uint CurrentFormatVersion = 1;

    /// <summary>Bytes covered by the checksum: everything before the checksum field.</summary>
    public const int ChecksummedBytes = Superblock.Offsets.Checksum;

    /// <summary>A superblock for <paramref name="geometry"/> with its checksum filled in.</summary>
    public static Superblock Create(BladeGeometry geometry, ulong generation, ulong bladeIncarnation, ulong bladeUid, SuperblockFlags flags)
    {
        var superblock = new Superblock
        {
            Magic = Magic,
            FormatVersion = CurrentFormatVersion,
            Flags = (uint)flags,
            Generation = generation,
            RegionSizeBytes = geometry.RegionSizeBytes,
            SlabSizeBytes = geometry.SlabSizeBytes,
            SlabCount = geometry.SlabCount,
            MaxNodes = geometry.MaxNodes,
            RingCapacity = geometry.RingCapacity,
            AckSlotsPerNode = geometry.AckSlotsPerNode,
            FreeSlotsPerNode = geometry.FreeSlotsPerNode,
            DataOffset = (ulong)geometry.DataOffset,
            MaxSlabSpan = geometry.MaxSlabSpan,
            SpanRingCapacity = geometry.SpanRingCapacity,
            NodeLeaseTicks = geometry.NodeLeaseTicks,
            BladeIncarnation = bladeIncarnation,
            BladeUid = bladeUid,
        };
        return WithChecksum(superblock);
    }

    /// <summary>Returns <paramref name="superblock"/> with a freshly computed checksum.</summary>
    public static Superblock WithChecksum(Superblock superblock)
    {
        superblock.Checksum = ComputeChecksum(superblock);
        return superblock;
    }

    /// <summary>CRC-64 of the checksummed bytes of <paramref name="superblock"/>.</summary>
    public static ulong ComputeChecksum(in Superblock superblock)
    {
        Span<byte> bytes = stackalloc byte[Superblock.SizeBytes];
        superblock.CopyTo(bytes);
        return Crc64.HashToUInt64(bytes[..ChecksummedBytes]);
    }

    /// <summary>The geometry a superblock records.</summary>
    public static BladeGeometry GeometryOf(in Superblock superblock) => new()
    {
        RegionSizeBytes = superblock.RegionSizeBytes,
        SlabSizeBytes = superblock.SlabSizeBytes,
        SlabCount = superblock.SlabCount,
        MaxNodes = superblock.MaxNodes,
        RingCapacity = superblock.RingCapacity,
        AckSlotsPerNode = superblock.AckSlotsPerNode,
        FreeSlotsPerNode = superblock.FreeSlotsPerNode,
        MaxSlabSpan = superblock.MaxSlabSpan,
        SpanRingCapacity = superblock.SpanRingCapacity,
        NodeLeaseTicks = superblock.NodeLeaseTicks,
    };

    /// <summary>Why one copy is not usable, or null if it is.</summary>
    public static (BladeImageError Error, string Reason)? Diagnose(in Superblock copy, long regionLength)
    {
        if (copy.Magic != Magic)
        {
            return (BladeImageError.WrongMagic, $"magic is 0x{copy.Magic:x16}, expected 0x{Magic:x16} (\"RALLOCv1\")");
        }

        ulong expected = ComputeChecksum(copy);
        if (copy.Checksum != expected)
        {
            return (BladeImageError.ChecksumMismatch, $"checksum is 0x{copy.Checksum:x16}, computed 0x{expected:x16} (torn or corrupt)");
        }

        if (copy.FormatVersion != CurrentFormatVersion)
        {
            return (BladeImageError.UnsupportedVersion, $"format version is {copy.FormatVersion}; this build reads version {CurrentFormatVersion}");
        }

        var geometry = GeometryOf(copy);
        string? geometryProblem = geometry.Validate(regionLength);
        if (geometryProblem is not null)
        {
            return (BladeImageError.GeometryMismatch, geometryProblem);
        }

        if (copy.DataOffset != (ulong)geometry.DataOffset)
        {
            return (BladeImageError.GeometryMismatch, $"data offset is {copy.DataOffset}, the layout puts it at {geometry.DataOffset}");
        }

        return null;
    }

    /// <summary>
    /// Chooses the current superblock: the valid copy with the higher generation. A torn or corrupt copy is
    /// skipped; if neither copy is valid the error names what is wrong with each.
    /// </summary>
    /// <exception cref="BladeImageException">Neither copy is a valid superblock for a region of this length.</exception>
    public static SuperblockChoice Choose(in Superblock copyA, in Superblock copyB, long regionLength)
    {
        var problemA = Diagnose(copyA, regionLength);
        var problemB = Diagnose(copyB, regionLength);
        if (problemA is null && problemB is null)
        {
            return copyB.Generation > copyA.Generation
                ? new SuperblockChoice(copyB, SuperblockCopy.B, true)
                : new SuperblockChoice(copyA, SuperblockCopy.A, true);
        }

        if (problemA is null)
        {
            return new SuperblockChoice(copyA, SuperblockCopy.A, false);
        }

        if (problemB is null)
        {
            return new SuperblockChoice(copyB, SuperblockCopy.B, false);
        }

        // Report the most specific problem: a copy with the right magic tells more than garbage does.
        var (errorA, reasonA) = problemA.Value;
        var (errorB, reasonB) = problemB.Value;
        var error = errorA == BladeImageError.WrongMagic ? errorB : errorA;
        throw new BladeImageException(error, $"no valid superblock: copy A: {reasonA}; copy B: {reasonB}.");
    }
}

/// <summary>Which superblock copy.</summary>
public enum SuperblockCopy
{
    /// <summary>The copy at offset 0.</summary>
    A,

    /// <summary>The copy at offset 4096.</summary>
    B,
}

/// <summary>The chosen superblock, which copy it came from, and whether the other copy was valid too.</summary>
public readonly record struct SuperblockChoice(Superblock Superblock, SuperblockCopy Copy, bool OtherCopyValid)
{
    /// <summary>The copy an update should overwrite: never the current one.</summary>
    public SuperblockCopy NextCopyToWrite => Copy == SuperblockCopy.A ? SuperblockCopy.B : SuperblockCopy.A;
}

/// <summary>What is wrong with a blade image.</summary>
public enum BladeImageError
{
    /// <summary>Not a blade image: the magic number is wrong.</summary>
    WrongMagic,

    /// <summary>The superblock fails its checksum (torn write or corruption).</summary>
    ChecksumMismatch,

    /// <summary>The image was written by a format version this build does not read.</summary>
    UnsupportedVersion,

    /// <summary>The recorded geometry is inconsistent or does not match the region.</summary>
    GeometryMismatch,

    /// <summary>The bitmap, ownership table, ring or node areas contradict each other.</summary>
    InconsistentMetadata,

    /// <summary>The region is too small to hold a blade image.</summary>
    RegionTooSmall,
}

/// <summary>A blade image cannot be used; <see cref="Error"/> names why. The image is left untouched.</summary>
public sealed class BladeImageException(BladeImageError error, string message) : Exception(message)
{
    /// <summary>What is wrong.</summary>
    public BladeImageError Error { get; } = error;
}
