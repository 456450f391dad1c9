using FsCheck;
using FsCheck.Fluent;
using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.Blade.Tests;

/// <summary>A change a blade makes to its superblock (never to the geometry).</summary>
internal abstract record SuperblockChange
{
    public abstract Superblock Apply(Superblock superblock);

    public sealed record BumpIncarnation(uint By) : SuperblockChange
    {
        public override Superblock Apply(Superblock superblock)
        {
            superblock.BladeIncarnation += By;
            return superblock;
        }
    }

    public sealed record ToggleCleanShutdown : SuperblockChange
    {
        public override Superblock Apply(Superblock superblock)
        {
            superblock.Flags ^= (uint)SuperblockFlags.CleanShutdown;
            return superblock;
        }
    }

    public sealed record SetNodeLease(uint Ticks) : SuperblockChange
    {
        public override Superblock Apply(Superblock superblock)
        {
            superblock.NodeLeaseTicks = Ticks;
            return superblock;
        }
    }
}

/// <summary>A random sequence of superblock updates and the seed of the crash that interrupts it.</summary>
internal sealed record SuperblockScenario(SuperblockChange[] Changes, int CrashSeed)
{
    public override string ToString() => $"SuperblockScenario {{ CrashSeed = {CrashSeed}, Changes = [{string.Join(", ", Changes.Select(c => c.ToString()))}] }}";

    public static Arbitrary<SuperblockScenario> Arbitrary(int maxChanges)
    {
        var change = Gen.OneOf(
            Gen.Choose(1, 3).Select(by => (SuperblockChange)new SuperblockChange.BumpIncarnation((uint)by)),
            Gen.Constant((SuperblockChange)new SuperblockChange.ToggleCleanShutdown()),
            Gen.Choose(1, 5000).Select(ticks => (SuperblockChange)new SuperblockChange.SetNodeLease((uint)ticks)));
        var scenario = from length in Gen.Sized(size => Gen.Choose(1, Math.Clamp(size, 1, maxChanges)))
                       from changes in change.ArrayOf(length)
                       from seed in Gen.Choose(int.MinValue, int.MaxValue)
                       select new SuperblockScenario(changes, seed);
        return Arb.From(scenario, Shrink);
    }

    private static IEnumerable<SuperblockScenario> Shrink(SuperblockScenario scenario)
    {
        for (int i = 0; i < scenario.Changes.Length && scenario.Changes.Length > 1; i++)
        {
            yield return scenario with { Changes = [.. scenario.Changes[..i], .. scenario.Changes[(i + 1)..]] };
        }
    }
}

/// <summary>
/// Crash at every persist point of a random sequence of UpdateSuperblock calls, keeping no, all or a random subset of
/// the unpersisted stores: the image always opens, from a superblock never older than the last update that returned.
/// </summary>
public sealed class SuperblockCrashProperties
{
    private const int MaxChanges = 10;
    private const int MaxTest = 60;

    private static readonly Lazy<(byte[] Image, long MetadataBytes)> s_template = new(() =>
    {
        var (nvm, image) = TestImages.FormatSmall();
        return (nvm.DurableImageCopy(), image.Geometry.DataOffset);
    });

    [Fact]
    public void AfterACrashTheSuperblockIsTheLastReturnedUpdateOrTheOneInFlight()
    {
        SeededCheck.Holds(
            nameof(AfterACrashTheSuperblockIsTheLastReturnedUpdateOrTheOneInFlight),
            SuperblockScenario.Arbitrary(MaxChanges),
            scenario => CheckEveryPersistPoint(scenario, BladeMetadataFaults.None),
            MaxTest);
    }

    [Fact]
    public void WithoutTheSuperblockPersistTheCrashPropertyFindsAnOlderSuperblock()
    {
        string failure = SeededCheck.FindsCounterexample(
            nameof(WithoutTheSuperblockPersistTheCrashPropertyFindsAnOlderSuperblock),
            SuperblockScenario.Arbitrary(MaxChanges),
            scenario => CheckEveryPersistPoint(scenario, new BladeMetadataFaults { SkipSuperblockPersist = true }),
            MaxTest);

        failure.ShouldContain($"[{Invariant.SuperblockNeverOlderThanLastReturnedUpdate}]");
    }

    internal static void CheckEveryPersistPoint(SuperblockScenario scenario, BladeMetadataFaults faults)
    {
        var region = new RestorableNvm(s_template.Value.Image, s_template.Value.MetadataBytes);
        for (long point = 0; point <= scenario.Changes.Length; point++)
        {
            foreach (var failure in PowerFailure.At(point, scenario.CrashSeed, randomSubsets: 2))
            {
                var nvm = region.Restore();
                var image = BladeImage.Open(nvm);
                image.Faults = faults;

                // The model: the superblock each update must produce, computed independently of UpdateSuperblock.
                var lastReturned = image.Superblock;
                Superblock? inFlight = null;
                int returned = 0;
                bool interrupted = failure.Strike(nvm, () =>
                {
                    foreach (var change in scenario.Changes)
                    {
                        var next = change.Apply(lastReturned);
                        next.Generation = lastReturned.Generation + 1;
                        inFlight = SuperblockCodec.WithChecksum(next);
                        image.UpdateSuperblock(change.Apply);
                        TestImages.SameBytes(image.Superblock, inFlight.Value).ShouldBeTrue(
                            $"UpdateSuperblock produced {TestImages.Describe(image.Superblock)}, the model {TestImages.Describe(inFlight.Value)}");
                        lastReturned = inFlight.Value;
                        inFlight = null;
                        returned++;
                    }
                });

                CheckRecovery(nvm, lastReturned, interrupted ? inFlight : null, () =>
                    $"after {failure}; {returned} of {scenario.Changes.Length} updates had returned; last returned "
                    + $"{TestImages.Describe(lastReturned)}" + (interrupted && inFlight is { } f ? $", in flight {TestImages.Describe(f)}" : ""));
            }
        }
    }

    private static void CheckRecovery(SimulatedNvm nvm, Superblock lastReturned, Superblock? inFlight, Func<string> context)
    {
        var counting = new CountingNvmRegion(nvm);
        Superblock found;
        try
        {
            found = BladeImage.Open(counting, BladeOpenMode.ReadOnly).Superblock;
        }
        catch (BladeImageException ex)
        {
            throw new InvariantViolation(Invariant.ImageOpensAfterCrash, $"{ex.Error}: {ex.Message} {context()}");
        }

        InvariantViolation.ThrowUnless(counting.MutatingCalls == 0, Invariant.ReadOnlyOpenWritesNothing,
            () => $"a read-only open made {counting.MutatingCalls} mutating calls; {context()}");
        bool isLastReturned = TestImages.SameBytes(found, lastReturned);
        bool isInFlight = inFlight is { } f && TestImages.SameBytes(found, f);
        InvariantViolation.ThrowUnless(isLastReturned || isInFlight, Invariant.SuperblockNeverOlderThanLastReturnedUpdate,
            () => $"open found {TestImages.Describe(found)}; {context()}");

        // Recovery records a new incarnation on top of what it found, and that update is itself durable.
        var reopened = BladeImage.Open(nvm);
        InvariantViolation.ThrowUnless(
            reopened.Superblock.Generation == found.Generation + 1 && reopened.Superblock.BladeIncarnation == found.BladeIncarnation + 1
                && (reopened.Superblock.Flags & (uint)SuperblockFlags.CleanShutdown) == 0,
            Invariant.RecoveryBumpsIncarnation,
            () => $"a read-write open of {TestImages.Describe(found)} made {TestImages.Describe(reopened.Superblock)}; {context()}");
        nvm.CrashKeepingNone();
        var afterSecondCrash = BladeImage.Open(nvm, BladeOpenMode.ReadOnly).Superblock;
        InvariantViolation.ThrowUnless(TestImages.SameBytes(afterSecondCrash, reopened.Superblock), Invariant.SuperblockNeverOlderThanLastReturnedUpdate,
            () => $"the recovery update {TestImages.Describe(reopened.Superblock)} was lost by a second crash, which left "
                + $"{TestImages.Describe(afterSecondCrash)}; {context()}");
    }
}
