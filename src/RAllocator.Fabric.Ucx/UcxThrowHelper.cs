using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace RAllocator.Fabric.Ucx;

/// <summary>The UCX connection's own failures; those every fabric shares are <see cref="FabricErrors"/>.</summary>
internal static class UcxThrowHelper
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static FabricException CreateFailed(string connection, FabricVerb? verb, string reason) =>
        new(FabricStatus.Unreachable, verb is { } known
            ? $"{connection}: {known.RdmaName()} failed: {reason}"
            : $"{connection}: {reason}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static FabricException CreateBroken(string connection, FabricException cause) =>
        new(FabricStatus.Unreachable, $"{connection}: the connection failed earlier and cannot be used; connect again. First failure: {cause.Message}");
}
