using System.Diagnostics;
using RAllocator.Protocol.Tests.Durability;

namespace RAllocator.Protocol.Tests;

/// <summary>
/// The object durability contract of spec/durability.md at every crash point: a scripted two-node workload
/// (Durability/CrashPointWorkload.cs) is run once per persist point k with the blade's power failing there, then
/// the blade and both nodes restart and every promise is checked: exactly the acknowledged, unreturned slabs come
/// back (the in-flight one either way), every value whose WriteAndPersistAsync returned is intact, the root is the
/// last persisted one, the image is consistent, nothing leaks, and new allocations avoid every live object.
/// </summary>
public sealed class DurabilityCrashPointTests(ITestOutputHelper output)
{
    private const string SeedVariable = "RALLOC_CRASH_SEED";

    private static readonly Lazy<int> s_persistPoints = new(CrashPointWorkload.CountPersistPoints);

    [Fact]
    public void EveryCrashPointLosingEveryUnpersistedStoreKeepsTheContract() =>
        SweepShouldPass(LostStores.All, seed: 0);

    [Fact]
    public void EveryCrashPointKeepingEveryUnpersistedStoreKeepsTheContract() =>
        SweepShouldPass(LostStores.None, seed: 0);

    [Fact]
    public void EveryCrashPointLosingARandomSubsetOfUnpersistedStoresKeepsTheContract()
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable(SeedVariable), out int fixedSeed) ? fixedSeed : Random.Shared.Next();
        output.WriteLine($"crash seeds derive from {seed} (replay: {SeedVariable}={seed})");
        SweepShouldPass(LostStores.RandomSubset, seed);
    }

    [Fact]
    public void TheCrashPointsCatchAnAcknowledgementThatIsNeverPersisted()
    {
        var failure = FirstFailure(LostStores.All, new PlantedCrashFaults(Client: new BladeClientFaults { SkipAcknowledgementPersist = true }));

        failure.ShouldNotBeNull("a blade power failure must be able to lose an acknowledgement that was never persisted");
        failure.ShouldContain($"[{Invariants.DurableOwnership}]", customMessage: "the node then recovers fewer slabs than it held");
    }

    [Fact]
    public void TheCrashPointsCatchAMetadataUpdateWithoutItsRedoIntent()
    {
        var failure = FirstFailure(LostStores.All, new PlantedCrashFaults(Image: new BladeMetadataFaults { SkipIntentLog = true }));

        failure.ShouldNotBeNull("a crash between the ownership entry and the bitmap word must be able to tear a metadata update");
        failure.ShouldContain($"[{Invariants.ConsistentImage}]", customMessage: "the bitmap and ownership table then disagree");
    }

    private void SweepShouldPass(LostStores lost, int seed)
    {
        var failures = Sweep(lost, seed, PlantedCrashFaults.None);
        failures.ShouldBeEmpty($"{failures.Count} crash points broke the durability contract; the first:{Environment.NewLine}"
            + string.Join(Environment.NewLine, failures.Take(5)));
    }

    /// <summary>Runs every crash point (and one after the workload), in parallel, and returns the failures in order of k.</summary>
    private List<string> Sweep(LostStores lost, int seed, PlantedCrashFaults faults)
    {
        int points = s_persistPoints.Value;
        var clock = Stopwatch.StartNew();
        var results = new string?[points + 1];
        Parallel.For(0, points + 1, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, k => results[k] = RunPoint(k, lost, seed, faults));
        var failures = results.OfType<string>().ToList();
        output.WriteLine($"{points + 1} crash points, unpersisted stores lost: {lost}, {failures.Count} failures, {clock.Elapsed.TotalSeconds:F1} s");
        foreach (var failure in failures.Take(3))
        {
            output.WriteLine(failure);
        }

        return failures;
    }

    /// <summary>The first crash point, in order of k, that breaks the contract (planted-bug checks stop there).</summary>
    private string? FirstFailure(LostStores lost, PlantedCrashFaults faults)
    {
        int points = s_persistPoints.Value;
        for (int k = 0; k <= points; k++)
        {
            if (RunPoint(k, lost, 0, faults) is { } failure)
            {
                output.WriteLine(failure);
                return failure;
            }
        }

        return null;
    }

    private static string? RunPoint(int k, LostStores lost, int seed, PlantedCrashFaults faults)
    {
        // Deterministic (HashCode.Combine is seeded per process): the same seed replays the same crashes.
        int crashSeed = unchecked((seed * 1_000_003) + k);
        try
        {
            CrashPointWorkload.CrashAndRecover(k, lost, crashSeed, faults);
            return null;
        }
        catch (Exception ex)
        {
            return $"k = {k} ({lost}{(lost == LostStores.RandomSubset ? $", Crash({crashSeed})" : "")}): {ex.GetType().Name}: {ex.Message}";
        }
    }
}
