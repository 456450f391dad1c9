using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace RAllocator.Fabric.FaultInjection;

/// <summary>Builds injected failures out of line: formatting their messages is paid only when a fault fires.</summary>
internal static class ThrowHelper
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static FabricException CreateInjectedFault(long ordinal, string operation, bool afterExecution, int seed) =>
        new(FabricStatus.InjectedFault,
            $"Injected fault on operation #{ordinal} ({operation}), "
            + (afterExecution ? "after it took effect at the blade (completion lost)" : "before it reached the blade (no effect)")
            + $"; fault-injection seed {seed} reproduces it.");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static FabricException CreateDeferredFailure(FabricException original) =>
        new(original.Status, $"An earlier unsignaled batch failed, reported on this next operation: {original.Message}");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowUnbatchableVerb(FabricVerb verb) =>
        throw new NotSupportedException($"{verb.RdmaName()} cannot be batched: batches carry only writes and persists.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowProbabilityOutOfRange(double probability) =>
        throw new ArgumentOutOfRangeException(
            "options", probability, "FailureProbability must lie in [0, 1]: it is the chance that one operation fails.");
}
