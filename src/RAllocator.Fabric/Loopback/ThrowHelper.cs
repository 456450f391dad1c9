using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace RAllocator.Fabric.Loopback;

/// <summary>
/// Builds and throws the loopback's failures out of line, so the verb paths stay small enough to inline and the
/// message formatting is paid only when something fails.
/// </summary>
internal static class ThrowHelper
{
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowOutsideRegion(string connection, FabricVerb verb, long offset, long length, long regionLength) =>
        throw new FabricException(
            FabricStatus.RemoteAccessError,
            $"{connection}: {verb.RdmaName()} of {length} bytes at offset 0x{offset:x} is outside the blade region [0x0, 0x{regionLength:x}).");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowNotWritable(string connection, FabricVerb verb, long offset, long length, FabricAccess access) =>
        throw new FabricException(
            FabricStatus.RemoteAccessError,
            $"{connection}: {verb.RdmaName()} of {length} bytes at offset 0x{offset:x} is not inside one of this node's "
            + $"registered ranges ({access}); the blade refuses it as a remote access error.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowMisaligned(string connection, FabricVerb verb, long offset) =>
        throw new FabricException(
            FabricStatus.RemoteAlignmentError,
            $"{connection}: {verb.RdmaName()} at offset 0x{offset:x} is not 8-byte aligned; remote atomics operate on one aligned 8-byte word.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowClosed(string connection) =>
        throw new FabricException(FabricStatus.Unreachable, $"{connection}: the connection was disposed; connect again to reach the blade.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowUnreachable(string connection, bool bladeReachable) =>
        throw CreateUnreachable(connection, bladeReachable);

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static FabricException CreateUnreachable(string connection, bool bladeReachable) =>
        new(FabricStatus.Unreachable, bladeReachable
            ? $"{connection}: the link from this node to the blade is down (simulated partition)."
            : $"{connection}: the blade is unreachable (simulated blade failure).");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static FabricException CreateDeferredFailure(string connection, FabricException original) =>
        new(original.Status, $"{connection}: an earlier unsignaled batch failed, reported on this next operation: {original.Message}");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowUnbatchableVerb(FabricVerb verb) =>
        throw new NotSupportedException($"{verb.RdmaName()} cannot be batched: batches carry only writes and persists.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowRangeOutsideRegion(FabricRange range, long regionLength) =>
        throw new ArgumentOutOfRangeException(
            "access", $"Writable range {range} extends past the blade region [0x0, 0x{regionLength:x}); a registration must lie inside the region.");
}
