using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace RAllocator.Fabric.Ucx;

/// <summary>The UCX connection's failures, worded as the loopback fabric words them so logs read the same on both.</summary>
internal static class UcxThrowHelper
{
    public static string RdmaName(this FabricVerb verb) => verb switch
    {
        FabricVerb.Read => "READ",
        FabricVerb.Write => "WRITE",
        FabricVerb.FetchAdd => "ATOMIC_FETCH_AND_ADD",
        FabricVerb.CompareSwap => "ATOMIC_CMP_AND_SWP",
        FabricVerb.Persist => "PERSIST",
        _ => verb.ToString(),
    };

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
            + $"registered ranges ({access}); no remote key the blade granted covers it, so it is refused as a remote access error.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowMisaligned(string connection, FabricVerb verb, long offset) =>
        throw new FabricException(
            FabricStatus.RemoteAlignmentError,
            $"{connection}: {verb.RdmaName()} at offset 0x{offset:x} is not 8-byte aligned; remote atomics operate on one aligned 8-byte word.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowClosed(string connection) =>
        throw new FabricException(FabricStatus.Unreachable, $"{connection}: the connection was disposed; connect again to reach the blade.");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static FabricException CreateFailed(string connection, FabricVerb? verb, string reason) =>
        new(FabricStatus.Unreachable, verb is { } known
            ? $"{connection}: {known.RdmaName()} failed: {reason}"
            : $"{connection}: {reason}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static FabricException CreateBroken(string connection, FabricException cause) =>
        new(FabricStatus.Unreachable, $"{connection}: the connection failed earlier and cannot be used; connect again. First failure: {cause.Message}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static FabricException CreateDeferredFailure(string connection, FabricException original) =>
        new(original.Status, $"{connection}: an earlier unsignaled batch failed, reported on this next operation: {original.Message}");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowUnbatchableVerb(FabricVerb verb) =>
        throw new NotSupportedException($"{verb.RdmaName()} cannot be batched: batches carry only writes and persists.");
}
