using System.Diagnostics;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.FSharp.Core;

namespace RAllocator.Protocol.Tests.HeapModel;

/// <summary>
/// Runs the model property with FsCheck from an explicit seed, so that every run can be replayed: the seed is
/// printed before the run and FsCheck repeats it (with the shrunk counterexample) in any failure.
/// Set <c>RALLOC_MODEL_SEED</c> to a seed to replay it, and <c>RALLOC_MODEL_TESTS</c> to run more cases.
/// </summary>
internal static class HeapModelCheck
{
    public const string SeedVariable = "RALLOC_MODEL_SEED";
    public const string TestsVariable = "RALLOC_MODEL_TESTS";

    /// <summary>The seed from <see cref="SeedVariable"/>, else a fresh one.</summary>
    public static ulong SeedFromEnvironmentOrRandom() =>
        ulong.TryParse(Environment.GetEnvironmentVariable(SeedVariable), out ulong seed) ? seed : (ulong)Random.Shared.NextInt64(1, long.MaxValue);

    /// <summary>The case count from <see cref="TestsVariable"/>, else <paramref name="defaultCount"/>.</summary>
    public static int TestCount(int defaultCount) =>
        int.TryParse(Environment.GetEnvironmentVariable(TestsVariable), out int count) && count > 0 ? count : defaultCount;

    /// <summary>
    /// Checks the model property on <paramref name="maxTest"/> random scenarios (of up to 100 commands) from
    /// <paramref name="seed"/>; throws FsCheck's failure (replay seed, original and shrunk scenario, and the
    /// <see cref="InvariantViolation"/>) when a scenario breaks an invariant.
    /// </summary>
    public static TimeSpan Run(ulong seed, int maxTest, PlantedFaults faults, Action<string> log)
    {
        log($"model check: {maxTest} scenarios from seed {seed} (replay: {SeedVariable}={seed}){(faults == PlantedFaults.None ? "" : $", planted {faults}")}");
        var config = Config.QuickThrowOnFailure
            .WithMaxTest(maxTest)
            .WithQuietOnSuccess(true)
            .WithReplay(FSharpOption<Replay>.Some(new Replay(new Rnd(seed), FSharpOption<int>.None)));
        var property = Prop.ForAll(HeapScenarios.Arbitrary, scenario => HeapModelRun.Execute(scenario, faults));
        var clock = Stopwatch.StartNew();
        Check.One(config, property);
        return clock.Elapsed;
    }
}
