using FsCheck;
using FsCheck.Fluent;
using System.Runtime.InteropServices;
using Microsoft.FSharp.Core;
using RAllocator.Nvm;

namespace RAllocator.Blade.Tests;

/// <summary>How a power failure treats the stores that were not yet persisted.</summary>
internal enum LostStores
{
    /// <summary>Every unpersisted store is lost.</summary>
    All,

    /// <summary>Every unpersisted store happens to reach NVM (the cache was evicted just before power failed).</summary>
    None,

    /// <summary>A random subset survives: <see cref="SimulatedNvm.Crash(int)"/> with a seed.</summary>
    RandomSubset,
}

/// <summary>One power failure: where it strikes and which unpersisted stores it keeps.</summary>
/// <param name="PersistPoint">0-based index, counted from the start of the work, of the persist call before which
/// power fails; a point past the work's last persist means "right after the work returned".</param>
/// <param name="Lost">Which unpersisted stores are lost.</param>
/// <param name="Seed">The seed of <see cref="SimulatedNvm.Crash(int)"/> for <see cref="LostStores.RandomSubset"/>.</param>
internal readonly record struct PowerFailure(long PersistPoint, LostStores Lost, int Seed)
{
    /// <summary>
    /// The crashes tried at each persist point: the two extremes, then random subsets. The extremes make the
    /// all-or-nothing cases deterministic; the subsets find torn multi-word updates.
    /// </summary>
    public static IEnumerable<PowerFailure> At(long persistPoint, int seed, int randomSubsets)
    {
        yield return new PowerFailure(persistPoint, LostStores.All, 0);
        yield return new PowerFailure(persistPoint, LostStores.None, 0);
        for (int i = 0; i < randomSubsets; i++)
        {
            yield return new PowerFailure(persistPoint, LostStores.RandomSubset, HashCode.Combine(seed, persistPoint, i));
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> on <paramref name="nvm"/> until power fails before persist
    /// <see cref="PersistPoint"/>, then crashes the region. Returns true when the work was interrupted, false when it
    /// returned first (the crash then happens right after it).
    /// </summary>
    public bool Strike(SimulatedNvm nvm, Action work)
    {
        long first = nvm.PersistCount;
        long point = PersistPoint;
        nvm.BeforePersist = index =>
        {
            if (index - first == point)
            {
                throw new SimulatedPowerFailure(index);
            }
        };

        bool interrupted;
        try
        {
            work();
            interrupted = false;
        }
        catch (SimulatedPowerFailure)
        {
            interrupted = true;
        }
        finally
        {
            nvm.BeforePersist = null;
        }

        switch (Lost)
        {
            case LostStores.All:
                nvm.CrashKeepingNone();
                break;
            case LostStores.None:
                nvm.CrashKeepingAll();
                break;
            default:
                nvm.Crash(Seed);
                break;
        }

        return interrupted;
    }

    public override string ToString() => Lost switch
    {
        LostStores.RandomSubset => $"power fails before persist #{PersistPoint}, unpersisted stores kept by Crash(seed: {Seed})",
        LostStores.All => $"power fails before persist #{PersistPoint}, every unpersisted store lost",
        _ => $"power fails before persist #{PersistPoint}, every unpersisted store kept",
    };
}

/// <summary>Names of the invariants the crash properties check; failure messages start with the name in brackets.</summary>
internal static class Invariant
{
    public const string ImageOpensAfterCrash = "image-opens-after-crash";
    public const string ReadOnlyOpenWritesNothing = "read-only-open-writes-nothing";
    public const string BitmapAgreesWithOwnership = "bitmap-agrees-with-ownership";
    public const string RecoveryClearsIntent = "recovery-clears-intent";
    public const string ReturnedUpdatesSurvive = "returned-updates-survive";
    public const string InFlightUpdateAllOrNothing = "in-flight-update-all-or-nothing";
    public const string ReadOnlyViewMatchesRecovery = "read-only-view-matches-recovery";
    public const string SuperblockNeverOlderThanLastReturnedUpdate = "superblock-never-older-than-last-returned-update";
    public const string RecoveryBumpsIncarnation = "recovery-bumps-incarnation";
    public const string InterruptedFormatLeavesNoImageOrTheNewOne = "interrupted-format-leaves-no-image-or-the-new-one";
    public const string OldSuperblockOnlyWithItsOwnMetadata = "old-superblock-only-with-its-own-metadata";
    public const string ReturnedFormatIsDurable = "returned-format-is-durable";
    public const string NewImageIsEmptyAndConsistent = "new-image-is-empty-and-consistent";
}

/// <summary>A violated invariant: the message starts with <c>[invariant-name]</c> and says what was seen.</summary>
internal sealed class InvariantViolation(string invariant, string detail)
    : Exception($"[{invariant}] {detail}")
{
    public string Invariant { get; } = invariant;

    public static void ThrowUnless(bool holds, string invariant, Func<string> detail)
    {
        if (!holds)
        {
            throw new InvariantViolation(invariant, detail());
        }
    }
}

/// <summary>
/// Runs FsCheck properties from an explicit seed that is always printed (test output, and the failure message), so
/// every run can be replayed: set <c>RALLOCATOR_SEED</c> to the printed value. Without it each run draws a new seed.
/// </summary>
internal static class SeededCheck
{
    public const string SeedVariable = "RALLOCATOR_SEED";

    /// <summary>Checks the property; on failure throws with FsCheck's counterexample and the replay seed.</summary>
    public static void Holds<T>(string name, Arbitrary<T> arbitrary, Action<T> property, int maxTest)
    {
        ulong seed = Seed(name);
        try
        {
            Run(seed, arbitrary, property, maxTest);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new Xunit.Sdk.XunitException($"{name} failed. Replay: {SeedVariable}={seed}\n{ex.Message}");
        }
    }

    /// <summary>
    /// Runs a property that must fail (a planted bug): returns FsCheck's failure message, after checking that the
    /// same seed replays the same counterexample.
    /// </summary>
    public static string FindsCounterexample<T>(string name, Arbitrary<T> arbitrary, Action<T> property, int maxTest)
    {
        ulong seed = Seed(name);
        string? first = TryRun(seed, arbitrary, property, maxTest);
        first.ShouldNotBeNull($"{name}: the property should find the planted bug within {maxTest} tests (replay: {SeedVariable}={seed})");
        TestContext.Current.TestOutputHelper?.WriteLine($"{name}: counterexample found as expected:\n{first}");

        string? replay = TryRun(seed, arbitrary, property, maxTest);
        Counterexample(replay).ShouldBe(Counterexample(first), $"{name}: the same seed must replay the same counterexample");
        return first;
    }

    private static string? TryRun<T>(ulong seed, Arbitrary<T> arbitrary, Action<T> property, int maxTest)
    {
        try
        {
            Run(seed, arbitrary, property, maxTest);
            return null;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return ex.Message;
        }
    }

    private static void Run<T>(ulong seed, Arbitrary<T> arbitrary, Action<T> property, int maxTest)
    {
        var config = Config.QuickThrowOnFailure
            .WithMaxTest(maxTest)
            .WithQuietOnSuccess(true)
            .WithReplay(FSharpOption<Replay>.Some(new Replay(new Rnd(seed), FSharpOption<int>.None)));
        Check.One(config, Prop.ForAll(arbitrary, property));
    }

    // The seed, the original and shrunk inputs and the violation; the stack trace is left out of the comparison.
    private static string? Counterexample(string? message) =>
        message?.Split("\n   at ")[0];

    private static ulong Seed(string name)
    {
        string? fixedSeed = Environment.GetEnvironmentVariable(SeedVariable);
        ulong seed = string.IsNullOrWhiteSpace(fixedSeed) ? (ulong)Random.Shared.NextInt64() : ulong.Parse(fixedSeed.Trim());
        TestContext.Current.TestOutputHelper?.WriteLine($"{name}: FsCheck seed {seed} (replay: {SeedVariable}={seed})");
        return seed;
    }
}

/// <summary>
/// One simulated region brought back to a template image before each run. Cloning a 1 MiB image per run churns the
/// large-object heap (a gen-2 collection every few runs); restoring only the words that differ costs microseconds.
/// </summary>
internal sealed class RestorableNvm
{
    private readonly byte[] _template;
    private readonly byte[] _scratch;

    /// <param name="template">The image every run starts from.</param>
    /// <param name="writtenBytes">How far from offset 0 the runs may write (the metadata; the data area is never
    /// touched by a blade image), so only that prefix is compared and restored.</param>
    public RestorableNvm(byte[] template, long writtenBytes)
    {
        _template = template.AsSpan(0, (int)writtenBytes).ToArray();
        _scratch = new byte[writtenBytes];
        Nvm = SimulatedNvm.FromDurableImage(template);
    }

    public SimulatedNvm Nvm { get; }

    /// <summary>Makes both the visible and the durable image equal to the template again.</summary>
    public SimulatedNvm Restore()
    {
        var nvm = Nvm;
        nvm.CrashKeepingNone(); // drop whatever a completed run left unpersisted
        nvm.Read(0, _scratch);
        bool changed = false;

        // Compare page by page with the vectorized SequenceEqual; only a page that differs is compared word by word.
        const int Page = 4096;
        for (int page = 0; page < _template.Length; page += Page)
        {
            int length = Math.Min(Page, _template.Length - page);
            if (_scratch.AsSpan(page, length).SequenceEqual(_template.AsSpan(page, length)))
            {
                continue;
            }

            var current = MemoryMarshal.Cast<byte, ulong>(_scratch.AsSpan(page, length));
            var wanted = MemoryMarshal.Cast<byte, ulong>(_template.AsSpan(page, length));
            for (int i = 0; i < wanted.Length; i++)
            {
                if (current[i] != wanted[i])
                {
                    nvm.StoreUInt64(page + ((long)i * sizeof(ulong)), wanted[i]);
                    changed = true;
                }
            }
        }

        if (changed)
        {
            nvm.Persist(0, _template.Length);
        }

        return nvm;
    }
}
