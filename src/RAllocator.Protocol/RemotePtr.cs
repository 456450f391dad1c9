namespace RAllocator.Protocol;

/// <summary>
/// A pointer into blade NVM that survives crashes of either side: blade id and byte offset packed in 64 bits,
/// <c>[63..52] blade id | [51..0] offset</c>. <see cref="Null"/> is all zeros (offset 0 is a superblock, never an object).
/// </summary>
public readonly record struct RemotePtr
{
    /// <summary>Bits of the packed offset (4 PiB per blade).</summary>
    public const int OffsetBits = 52;

    /// <summary>Largest blade id that fits (4095).</summary>
    public const int MaxBladeId = (1 << (64 - OffsetBits)) - 1;

    private const ulong OffsetMask = (1UL << OffsetBits) - 1;

    /// <summary>Creates a pointer to <paramref name="offset"/> on blade <paramref name="bladeId"/>.</summary>
    public RemotePtr(int bladeId, long offset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bladeId);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bladeId, MaxBladeId);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfGreaterThan((ulong)offset, OffsetMask, nameof(offset));
        Packed = ((ulong)bladeId << OffsetBits) | (ulong)offset;
    }

    private RemotePtr(ulong packed) => Packed = packed;

    /// <summary>The null pointer.</summary>
    public static RemotePtr Null => default;

    /// <summary>The packed 64-bit form, suitable for storing in NVM.</summary>
    public ulong Packed { get; }

    /// <summary>The blade this pointer points into.</summary>
    public int BladeId => (int)(Packed >> OffsetBits);

    /// <summary>The byte offset within the blade's region.</summary>
    public long Offset => (long)(Packed & OffsetMask);

    /// <summary>Whether this is <see cref="Null"/>.</summary>
    public bool IsNull => Packed == 0;

    /// <summary>Unpacks a 64-bit word written by <see cref="Packed"/>.</summary>
    public static RemotePtr FromPacked(ulong packed) => new(packed);

    /// <summary>This pointer moved by <paramref name="bytes"/>.</summary>
    public RemotePtr Add(long bytes) => new(BladeId, Offset + bytes);

    /// <inheritdoc />
    public override string ToString() => IsNull ? "null" : $"blade{BladeId}+0x{Offset:x}";
}
