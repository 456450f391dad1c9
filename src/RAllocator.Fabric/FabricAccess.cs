using System.Text;

namespace RAllocator.Fabric;

/// <summary>
/// What one working node may do to a blade's region: the memory registrations (rkeys) the blade granted it.
/// Every byte of the region is readable; only the <see cref="WritableRanges"/> accept WRITE, the atomics and
/// PERSIST, unless the access is <see cref="Unrestricted"/>.
/// </summary>
/// <remarks>
/// A single operation must fall inside one range, as an RDMA work request names one rkey and so one memory
/// region: two adjacent ranges do not admit a write that straddles them. This keeps the check identical to what
/// a NIC does, so a protocol that passes here does not rely on a laxer rule than hardware enforces.
/// </remarks>
public sealed class FabricAccess
{
    // Bounds the error message: a node with many registrations must not turn one failure into a megabyte string.
    private const int RangesShownInDescription = 8;

    private readonly FabricRange[] _writableRanges;

    /// <summary>Creates an access that may write, atomically update and persist only inside <paramref name="writableRanges"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A range has a negative offset or length, or ends past <see cref="long.MaxValue"/>.</exception>
    public FabricAccess(IReadOnlyList<FabricRange> writableRanges)
    {
        ArgumentNullException.ThrowIfNull(writableRanges);

        // A copy, so a caller mutating its list later cannot widen a registration behind the fabric's back.
        _writableRanges = [.. writableRanges];
        foreach (var range in _writableRanges)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(range.Offset, nameof(writableRanges));
            ArgumentOutOfRangeException.ThrowIfNegative(range.Length, nameof(writableRanges));
            ArgumentOutOfRangeException.ThrowIfGreaterThan(range.Length, long.MaxValue - range.Offset, nameof(writableRanges));
        }
    }

    private FabricAccess()
    {
        _writableRanges = [];
        IsUnrestricted = true;
    }

    /// <summary>May read, write, atomically update and persist anywhere in the region (the blade's own view, tests).</summary>
    public static FabricAccess Unrestricted { get; } = new();

    /// <summary>May read anywhere and modify nothing: a node that only inspects a blade.</summary>
    public static FabricAccess ReadOnly { get; } = new([]);

    /// <summary>True when every in-region range is writable, whatever <see cref="WritableRanges"/> holds.</summary>
    public bool IsUnrestricted { get; }

    /// <summary>The ranges that accept modification (empty for <see cref="Unrestricted"/>, which needs none).</summary>
    public IReadOnlyList<FabricRange> WritableRanges => _writableRanges;

    /// <summary>True when [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>) lies inside one writable range.</summary>
    public bool AllowsWrite(long offset, long length)
    {
        if (IsUnrestricted)
        {
            return true;
        }

        foreach (var range in _writableRanges)
        {
            if (range.Contains(offset, length))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Describes the writable ranges for logs and error messages.</summary>
    public override string ToString()
    {
        if (IsUnrestricted)
        {
            return "unrestricted";
        }

        if (_writableRanges.Length == 0)
        {
            return "read-only (no writable ranges)";
        }

        var text = new StringBuilder("writable ");
        var shown = Math.Min(_writableRanges.Length, RangesShownInDescription);
        for (var i = 0; i < shown; i++)
        {
            text.Append(i == 0 ? "" : ", ").Append(_writableRanges[i]);
        }

        if (_writableRanges.Length > shown)
        {
            text.Append($" and {_writableRanges.Length - shown} more");
        }

        return text.ToString();
    }
}

/// <summary>A byte range [<see cref="Offset"/>, <see cref="Offset"/> + <see cref="Length"/>) of a blade's region.</summary>
/// <param name="Offset">First byte of the range.</param>
/// <param name="Length">Bytes in the range.</param>
public readonly record struct FabricRange(long Offset, long Length)
{
    /// <summary>One past the last byte of the range.</summary>
    public long End => Offset + Length;

    /// <summary>True when [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>) lies entirely inside this range.</summary>
    public bool Contains(long offset, long length) =>
        // Written as differences so an offset near long.MaxValue cannot overflow into a false "inside".
        offset >= Offset && length >= 0 && length <= Length && offset - Offset <= Length - length;

    /// <summary>The range in hexadecimal half-open notation, as it appears in error messages.</summary>
    public override string ToString() => $"[0x{Offset:x}, 0x{End:x})";
}
