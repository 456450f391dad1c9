using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace RAllocator.Fabric.Loopback;

/// <summary>
/// Builds and throws the loopback's own failures (simulated partitions and blade failures) out of line; the
/// failures every fabric shares are <see cref="FabricErrors"/>.
/// </summary>
internal static class ThrowHelper
{
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowUnreachable(string connection, bool bladeReachable) =>
        throw CreateUnreachable(connection, bladeReachable);

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static FabricException CreateUnreachable(string connection, bool bladeReachable) =>
        new(FabricStatus.Unreachable, bladeReachable
            ? $"{connection}: the link from this node to the blade is down (simulated partition)."
            : $"{connection}: the blade is unreachable (simulated blade failure).");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowRangeOutsideRegion(FabricRange range, long regionLength) =>
        throw new ArgumentOutOfRangeException(
            "access", $"Writable range {range} extends past the blade region [0x0, 0x{regionLength:x}); a registration must lie inside the region.");
}
