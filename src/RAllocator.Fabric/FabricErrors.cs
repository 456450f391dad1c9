using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace RAllocator.Fabric;

/// <summary>
/// The failures every fabric reports the same way, worded alike so logs read the same whatever the fabric, and
/// thrown out of line so verb paths stay small enough to inline.
/// </summary>
public static class FabricErrors
{
    /// <summary>The RDMA name of a verb (READ, ATOMIC_FETCH_AND_ADD, ...), as an operator would grep completions for it.</summary>
    public static string RdmaName(this FabricVerb verb) => verb switch
    {
        FabricVerb.Read => "READ",
        FabricVerb.Write => "WRITE",
        FabricVerb.FetchAdd => "ATOMIC_FETCH_AND_ADD",
        FabricVerb.CompareSwap => "ATOMIC_CMP_AND_SWP",
        FabricVerb.Persist => "PERSIST",
        _ => verb.ToString(),
    };

    /// <summary>Throws <see cref="FabricStatus.RemoteAccessError"/>: the range is outside the blade region.</summary>
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowOutsideRegion(string connection, FabricVerb verb, long offset, long length, long regionLength) =>
        throw new FabricException(
            FabricStatus.RemoteAccessError,
            $"{connection}: {verb.RdmaName()} of {length} bytes at offset 0x{offset:x} is outside the blade region [0x0, 0x{regionLength:x}).");

    /// <summary>Throws <see cref="FabricStatus.RemoteAccessError"/>: no registration of this node covers the range.</summary>
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowNotWritable(string connection, FabricVerb verb, long offset, long length, FabricAccess access) =>
        throw new FabricException(
            FabricStatus.RemoteAccessError,
            $"{connection}: {verb.RdmaName()} of {length} bytes at offset 0x{offset:x} is not inside one of this node's "
            + $"registered ranges ({access}); the blade refuses it as a remote access error.");

    /// <summary>Throws <see cref="FabricStatus.RemoteAlignmentError"/>: an atomic on a misaligned word.</summary>
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowMisaligned(string connection, FabricVerb verb, long offset) =>
        throw new FabricException(
            FabricStatus.RemoteAlignmentError,
            $"{connection}: {verb.RdmaName()} at offset 0x{offset:x} is not 8-byte aligned; remote atomics operate on one aligned 8-byte word.");

    /// <summary>Throws <see cref="FabricStatus.Unreachable"/>: the connection was disposed.</summary>
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowClosed(string connection) =>
        throw new FabricException(FabricStatus.Unreachable, $"{connection}: the connection was disposed; connect again to reach the blade.");

    /// <summary>The failure of an earlier unsignaled batch, reported by the next operation.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static FabricException CreateDeferredFailure(string connection, FabricException original)
    {
        ArgumentNullException.ThrowIfNull(original);
        return new(original.Status, $"{connection}: an earlier unsignaled batch failed, reported on this next operation: {original.Message}");
    }

    /// <summary>Throws <see cref="NotSupportedException"/>: only writes and persists can be batched.</summary>
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowUnbatchableVerb(FabricVerb verb) =>
        throw new NotSupportedException($"{verb.RdmaName()} cannot be batched: batches carry only writes and persists.");
}
