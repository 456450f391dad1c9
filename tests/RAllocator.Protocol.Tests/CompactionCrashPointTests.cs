using System.Diagnostics;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.FSharp.Core;
using RAllocator.Protocol.Tests.Compaction;
using RAllocator.Protocol.Tests.Durability;

namespace RAllocator.Protocol.Tests;

/// <summary>
/// Compaction and migration (WorkingNodeHeap.CompactAsync) at every crash point: an application keeping a durable
/// table of pointers fragments a heap, compacts it (or evacuates blade 1 of 2), and the node crashes before any one of
/// its fabric operations, or a blade loses power at any one persist, from the start of compaction to the end of the
/// passes that reclaim what it returned. After the restart the application's data must be whole: every referenced
/// object has its exact content, no two references share an object, every referenced object is in a slab the node
/// owns, and no slab is leaked (Compaction/CompactionCrashWorkload.cs). Seeded bugs (CompactionFaults) must each be
/// caught. FsCheck draws the scenarios; every failure prints the replay seed (RALLOC_COMPACTION_SEED);
/// RALLOC_COMPACTION_TESTS sets how many scenarios the random property sweeps (default 5).
/// </summary>
public sealed class CompactionCrashPointTests(ITestOutputHelper output)
{
    private const string SeedVariable = "RALLOC_COMPACTION_SEED";
    private const string TestsVariable = "RALLOC_COMPACTION_TESTS";

    private static readonly CompactionScenario s_compaction = new(Seed: 7, Objects: 100, FreePercent: 70, Migrate: false, EmptySlabThreshold: 1);
    private static readonly CompactionScenario s_migration = new(Seed: 11, Objects: 60, FreePercent: 60, Migrate: true, EmptySlabThreshold: 0);
    private static readonly CompactionScenario s_spans = new(Seed: 5, Objects: 90, FreePercent: 65, Migrate: false, EmptySlabThreshold: 1, Spans: true);

    [Fact]
    public void CompactionKeepsTheApplicationsDataAtEveryNodeCrashPoint() => SweepShouldPass(s_compaction, CrashKind.Node, LostStores.All);

    [Fact]
    public void CompactionKeepsTheApplicationsDataAtEveryPowerFailureLosingEveryUnpersistedStore() => SweepShouldPass(s_compaction, CrashKind.Power, LostStores.All);

    [Fact]
    public void CompactionKeepsTheApplicationsDataAtEveryPowerFailureKeepingARandomSubset() => SweepShouldPass(s_compaction, CrashKind.Power, LostStores.RandomSubset);

    [Fact]
    public void MigrationKeepsTheApplicationsDataAtEveryNodeCrashPoint() => SweepShouldPass(s_migration, CrashKind.Node, LostStores.All);

    [Fact]
    public void MigrationKeepsTheApplicationsDataAtEveryPowerFailure() => SweepShouldPass(s_migration, CrashKind.Power, LostStores.All);

    [Fact]
    public void CompactionOfMultiSlabSpansKeepsTheApplicationsDataAtEveryPowerFailure() => SweepShouldPass(s_spans, CrashKind.Power, LostStores.RandomSubset);

    [Fact]
    public void RandomScenariosKeepTheApplicationsDataAtEveryCrashPoint()
    {
        ulong seed = SeedFromEnvironmentOrRandom();
        int tests = int.TryParse(Environment.GetEnvironmentVariable(TestsVariable), out int count) && count > 0 ? count : 5;
        var elapsed = CheckProperty(seed, tests, CompactionFaults.None);
        output.WriteLine($"passed in {elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public void TheCrashPointsCatchFreeingTheOldObjectBeforeTheCommit()
    {
        var faults = new CompactionFaults { FreeSourceBeforeCommit = true };

        // The source goes back to the blade while the table still refers into it: the restarted node no longer owns it.
        FirstFailure(s_compaction, CrashKind.Node, faults).ShouldContain($"[{Invariants.DurableOwnership}]");
        FirstFailure(s_migration, CrashKind.Power, faults).ShouldContain($"[{Invariants.DurableOwnership}]");
        PropertyFailure(faults).ShouldContain($"[{Invariants.DurableOwnership}]");
    }

    [Fact]
    public void TheCrashPointsCatchACommitBeforeTheCopyIsPersisted()
    {
        var faults = new CompactionFaults { CommitBeforeCopyPersisted = true };

        // The table refers to the copy before its bytes are durable: a power failure in between loses them.
        FirstFailure(s_compaction, CrashKind.Power, faults).ShouldContain($"[{Invariants.ObjectDurability}]");
        FirstFailure(s_migration, CrashKind.Power, faults).ShouldContain($"[{Invariants.ObjectDurability}]");
        PropertyFailure(faults).ShouldContain($"[{Invariants.ObjectDurability}]");
    }

    [Fact]
    public void TheScenariosReallyCompactAndMigrate()
    {
        var (operations, persists, report) = CompactionCrashWorkload.CountCrashPoints(s_compaction);
        output.WriteLine($"{s_compaction}: {operations} node operations, {persists} persists; {report.ObjectsMoved} objects moved, {report.SlabsReturned} slabs returned, utilization {report.Before.Utilization:P1} -> {report.After.Utilization:P1}");
        foreach (var c in report.Classes)
        {
            output.WriteLine($"  class {c.ObjectSizeBytes} B: {c.SourceSlabs} sources, {c.ObjectsMoved} moved, {c.SlabsReturned} returned, slabs {c.Before.SlabsHeld} -> {c.After.SlabsHeld}, utilization {c.Before.Utilization:P1} -> {c.After.Utilization:P1}");
        }

        report.ObjectsMoved.ShouldBeGreaterThan(5);
        report.SlabsReturned.ShouldBeGreaterThan(1);
        report.After.Utilization.ShouldBeGreaterThan(report.Before.Utilization);

        foreach (var scenario in new[] { s_migration, s_spans })
        {
            (operations, persists, report) = CompactionCrashWorkload.CountCrashPoints(scenario);
            output.WriteLine($"{scenario}: {operations} node operations, {persists} persists; {report.ObjectsMoved} objects moved, {report.SlabsReturned} slabs returned, utilization {report.Before.Utilization:P1} -> {report.After.Utilization:P1}");
            report.ObjectsMoved.ShouldBeGreaterThan(5);
            report.SlabsReturned.ShouldBeGreaterThan(1);
        }

        report.Classes.ShouldContain(c => c.ObjectSizeBytes > (int)CompactionCrashWorkload.SlabSizeBytes && c.Before.SlabsHeld > 1, "the span scenario holds objects larger than a base slab, in several spans");
    }

    private void SweepShouldPass(CompactionScenario scenario, CrashKind kind, LostStores lost)
    {
        var failures = Sweep(scenario, kind, lost, CompactionFaults.None, stopAtFirst: false);
        failures.ShouldBeEmpty($"{failures.Count} crash points broke the application's data; the first:{Environment.NewLine}{string.Join(Environment.NewLine, failures.Take(5))}");
    }

    private string FirstFailure(CompactionScenario scenario, CrashKind kind, CompactionFaults faults)
    {
        var failures = Sweep(scenario, kind, LostStores.All, faults, stopAtFirst: true);
        failures.ShouldNotBeEmpty($"the crash points must catch the planted bug {faults} in {scenario}");
        return failures[0];
    }

    /// <summary>Every crash point of <paramref name="kind"/> in the scenario (and one after it), in parallel unless stopping at the first failure.</summary>
    private List<string> Sweep(CompactionScenario scenario, CrashKind kind, LostStores lost, CompactionFaults faults, bool stopAtFirst)
    {
        var clock = Stopwatch.StartNew();
        var (operations, persists, _) = CompactionCrashWorkload.CountCrashPoints(scenario, faults);
        long points = kind == CrashKind.Node ? operations : persists;
        var results = new string?[points + 1];
        if (stopAtFirst)
        {
            for (long k = 0; k <= points && results.All(r => r is null); k++)
            {
                results[k] = RunPoint(scenario, new CompactionCrash(k == points ? CrashKind.None : kind, k, lost), faults);
            }
        }
        else
        {
            Parallel.For(0, points + 1, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
                k => results[k] = RunPoint(scenario, new CompactionCrash(k == points ? CrashKind.None : kind, k, lost), faults));
        }

        var failures = results.OfType<string>().ToList();
        output.WriteLine($"{scenario}: {points + 1} crash points ({kind}, lost {lost}){(faults == CompactionFaults.None ? "" : $", planted {faults}")}: {failures.Count} failures, {clock.Elapsed.TotalSeconds:F1} s");
        foreach (var failure in failures.Take(3))
        {
            output.WriteLine(failure);
        }

        return failures;
    }

    private static string? RunPoint(CompactionScenario scenario, CompactionCrash crash, CompactionFaults faults)
    {
        try
        {
            CompactionCrashWorkload.CrashAndRecover(scenario, crash, faults);
            return null;
        }
        catch (Exception ex)
        {
            return $"{scenario}, {crash}: {ex.GetType().Name}: {ex.Message}";
        }
    }

    // ------------------------------------------------------------------------------------------ the FsCheck property

    private static Gen<CompactionScenario> Scenarios =>
        from seed in Gen.Choose(1, int.MaxValue - 1)
        from spans in Gen.Elements(false, false, true)
        from objects in Gen.Choose(12, spans ? 80 : PointerTableApp.Slots)
        from freePercent in Gen.Choose(40, 85)
        from migrate in Gen.Elements(false, false, true)
        from threshold in Gen.Choose(0, 1)
        select new CompactionScenario(seed, objects, freePercent, migrate, threshold, spans);

    private static Gen<(CrashKind Kind, LostStores Lost)> CrashKinds =>
        Gen.Elements((CrashKind.Node, LostStores.All), (CrashKind.Power, LostStores.All), (CrashKind.Power, LostStores.None), (CrashKind.Power, LostStores.RandomSubset));

    /// <summary>
    /// For all scenarios and crash kinds: every crash point keeps the application's data whole. Each case sweeps all of
    /// its scenario's crash points, so a planted bug is caught by any scenario that moves an object.
    /// </summary>
    private TimeSpan CheckProperty(ulong seed, int maxTest, CompactionFaults faults)
    {
        output.WriteLine($"compaction property: {maxTest} scenarios from seed {seed} (replay: {SeedVariable}={seed}){(faults == CompactionFaults.None ? "" : $", planted {faults}")}");
        var config = Config.QuickThrowOnFailure
            .WithMaxTest(maxTest)
            .WithQuietOnSuccess(true)
            .WithReplay(FSharpOption<Replay>.Some(new Replay(new Rnd(seed), FSharpOption<int>.None)));
        var property = Prop.ForAll(Arb.From(Scenarios), Arb.From(CrashKinds), (scenario, crash) =>
        {
            var (operations, persists, _) = CompactionCrashWorkload.CountCrashPoints(scenario, faults);
            long points = crash.Kind == CrashKind.Node ? operations : persists;
            var failures = new Exception?[points + 1];
            Parallel.For(0, points + 1, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, k =>
            {
                try
                {
                    CompactionCrashWorkload.CrashAndRecover(scenario, new CompactionCrash(k == points ? CrashKind.None : crash.Kind, k, crash.Lost), faults);
                }
                catch (Exception ex)
                {
                    failures[k] = new InvalidOperationException($"{new CompactionCrash(k == points ? CrashKind.None : crash.Kind, k, crash.Lost)}: {ex.Message}", ex);
                }
            });
            if (failures.FirstOrDefault(f => f is not null) is { } first)
            {
                throw first;
            }
        });
        var clock = Stopwatch.StartNew();
        Check.One(config, property);
        return clock.Elapsed;
    }

    /// <summary>The property must fail with the planted bug; returns FsCheck's failure message.</summary>
    private string PropertyFailure(CompactionFaults faults)
    {
        ulong seed = SeedFromEnvironmentOrRandom();
        var failure = Should.Throw<Exception>(() => CheckProperty(seed, maxTest: 30, faults), $"the property must fail with the planted bug {faults} (seed {seed})");
        output.WriteLine(failure.Message.Length > 3000 ? failure.Message[..3000] : failure.Message);
        return failure.Message;
    }

    private static ulong SeedFromEnvironmentOrRandom() =>
        ulong.TryParse(Environment.GetEnvironmentVariable(SeedVariable), out ulong seed) ? seed : (ulong)Random.Shared.NextInt64(1, long.MaxValue);
}
