using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace RAllocator.Nvm;

/// <summary>
/// The bounds and alignment checks of <see cref="INvmRegion"/>, written once for every implementation.
/// The checks are inlined on the hot path; the throws live in non-inlined methods so that the callers stay
/// small (dotnet/runtime ThrowHelper pattern).
/// </summary>
internal static class NvmRangeChecks
{
    /// <summary>Size of an atomic word in bytes.</summary>
    internal const int WordBytes = sizeof(ulong);

    /// <summary>
    /// Checks that [offset, offset + length) lies inside a region of <paramref name="regionLength"/> bytes.
    /// Written so that no addition can overflow: offset + length is never computed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void CheckRange(long offset, long length, long regionLength)
    {
        if (offset < 0 || length < 0 || offset > regionLength || length > regionLength - offset)
        {
            ThrowRangeOutside(offset, length, regionLength);
        }
    }

    /// <summary>Checks an 8-byte atomic access: inside the region, then 8-byte aligned.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void CheckWord(long offset, long regionLength)
    {
        CheckRange(offset, WordBytes, regionLength);
        if ((offset & (WordBytes - 1)) != 0)
        {
            ThrowMisaligned(offset);
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowRangeOutside(long offset, long length, long regionLength)
    {
        if (offset < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"NVM offset {offset} is negative.");
        }

        if (length < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, $"NVM access length {length} is negative.");
        }

        throw new ArgumentOutOfRangeException(
            nameof(offset),
            offset,
            $"NVM range [{offset}, {offset}+{length}) (0x{offset:x}, {length} bytes) lies outside the region of {regionLength} bytes.");
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowMisaligned(long offset) => throw new NvmAlignmentException(offset);
}
