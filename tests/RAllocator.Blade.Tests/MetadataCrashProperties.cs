using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.Blade.Tests;

/// <summary>
/// Crash at every persist point of a random sequence of MarkRinged / MarkOwned / MarkFreeing / MarkFree, keeping no,
/// all, or a random subset of the unpersisted stores; then reopen read-write (which replays the intent) and check the
/// slab records against a reference model of the slab lifecycle.
/// </summary>
public sealed class MetadataCrashProperties
{
    private const int MaxSteps = 10;
    private const int MaxTest = 50;

    private static readonly Lazy<(byte[] Image, BladeGeometry Geometry)> s_template = new(() =>
    {
        var (nvm, image) = TestImages.FormatSmall();
        return (nvm.DurableImageCopy(), image.Geometry);
    });

    private static readonly Lazy<(byte[] Image, BladeGeometry Geometry)> s_spanTemplate = new(() =>
    {
        var (nvm, image) = TestImages.FormatSmallWithSpans();
        return (nvm.DurableImageCopy(), image.Geometry);
    });

    [Fact]
    public void EveryReturnedUpdateSurvivesACrashAndTheUpdateInFlightIsAllOrNothing()
    {
        SeededCheck.Holds(
            nameof(EveryReturnedUpdateSurvivesACrashAndTheUpdateInFlightIsAllOrNothing),
            MetadataScenario.Arbitrary(SlabCountInt, MaxSteps),
            scenario => CheckEveryPersistPoint(scenario, BladeMetadataFaults.None),
            MaxTest);
    }

    [Fact]
    public void EverySpanUpdateSurvivesACrashAndTheSpanInFlightIsAllOrNothing()
    {
        SeededCheck.Holds(
            nameof(EverySpanUpdateSurvivesACrashAndTheSpanInFlightIsAllOrNothing),
            MetadataScenario.Arbitrary(SlabCountInt, MaxSteps),
            scenario => CheckEveryPersistPoint(scenario, BladeMetadataFaults.None, s_spanTemplate.Value),
            MaxTest);
    }

    [Fact]
    public void PersistingOnlyASpansHeadTheCrashPropertyFindsItsBaseSlabsDisagreeing()
    {
        string failure = SeededCheck.FindsCounterexample(
            nameof(PersistingOnlyASpansHeadTheCrashPropertyFindsItsBaseSlabsDisagreeing),
            MetadataScenario.Arbitrary(SlabCountInt, MaxSteps),
            scenario => CheckEveryPersistPoint(scenario, new BladeMetadataFaults { PersistOnlySpanHead = true }, s_spanTemplate.Value),
            MaxTest);

        failure.ShouldContain($"[{Invariant.BitmapAgreesWithOwnership}]");
    }

    [Fact]
    public void WithoutTheIntentLogTheCrashPropertyFindsBitmapAndOwnershipDisagreeing()
    {
        string failure = SeededCheck.FindsCounterexample(
            nameof(WithoutTheIntentLogTheCrashPropertyFindsBitmapAndOwnershipDisagreeing),
            MetadataScenario.Arbitrary(SlabCountInt, MaxSteps),
            scenario => CheckEveryPersistPoint(scenario, new BladeMetadataFaults { SkipIntentLog = true }),
            MaxTest);

        failure.ShouldContain($"[{Invariant.BitmapAgreesWithOwnership}]");
    }

    [Fact]
    public void WithoutTheBitmapPersistTheCrashPropertyFindsBitmapAndOwnershipDisagreeing()
    {
        string failure = SeededCheck.FindsCounterexample(
            nameof(WithoutTheBitmapPersistTheCrashPropertyFindsBitmapAndOwnershipDisagreeing),
            MetadataScenario.Arbitrary(SlabCountInt, MaxSteps),
            scenario => CheckEveryPersistPoint(scenario, new BladeMetadataFaults { SkipBitmapPersist = true }),
            MaxTest);

        failure.ShouldContain($"[{Invariant.BitmapAgreesWithOwnership}]");
    }

    [Fact]
    public void AnOwnershipUpdateCostsTheDocumentedNumberOfPersists()
    {
        var (nvm, image) = TestImages.FormatSmall();
        image.MarkRinged(3, ticket: 7);
        long before = nvm.PersistCount;

        image.MarkOwned(3, node: 1, ticket: 7);

        (nvm.PersistCount - before).ShouldBe(BladeImage.PersistsPerMetadataUpdate,
            "intent argument, intent word, ownership, bitmap and clear: one persist each");
    }

    [Fact]
    public void WearCountersOfReturnedRingUpdatesSurviveACrashThatLosesEveryUnpersistedStore()
    {
        var (nvm, image) = TestImages.FormatSmall();
        image.MarkRinged(1, ticket: 1);
        image.MarkFree(1);
        image.MarkRinged(1, ticket: 2);

        nvm.CrashKeepingNone();

        BladeImage.Open(nvm, BladeOpenMode.ReadOnly).Scan().Slabs[1].WearHandOuts.ShouldBe(2UL,
            "the ring refill prefers the least-worn slab; the hand-outs of returned ring updates are durable");
    }

    private static ulong SlabCount => s_template.Value.Geometry.SlabCount is var n && n > 0 ? n : throw new InvalidOperationException();

    private static int SlabCountInt => (int)SlabCount;

    /// <summary>Runs the scenario once per persist point (and once past the last) and per kind of power failure.</summary>
    internal static void CheckEveryPersistPoint(MetadataScenario scenario, BladeMetadataFaults faults, (byte[] Image, BladeGeometry Geometry)? template = null)
    {
        var (templateImage, geometry) = template ?? s_template.Value;
        var ops = scenario.Interpret(geometry.SlabCount, geometry.MaxNodes, geometry.SpanClassCount);
        var expected = MetadataScenario.Prefixes(ops, geometry.SlabCount);

        var region = new RestorableNvm(templateImage, geometry.DataOffset);

        // Count the persist points of this scenario once, without a crash: the faults may skip some.
        long persistPoints;
        {
            var (nvm, image) = Restart(region, faults);
            long before = nvm.PersistCount;
            foreach (var op in ops)
            {
                op.ApplyTo(image);
            }

            persistPoints = nvm.PersistCount - before;
        }

        for (long point = 0; point <= persistPoints; point++)
        {
            foreach (var failure in PowerFailure.At(point, scenario.CrashSeed, randomSubsets: 2))
            {
                var (nvm, image) = Restart(region, faults);
                int returned = 0;
                bool interrupted = failure.Strike(nvm, () =>
                {
                    foreach (var op in ops)
                    {
                        op.ApplyTo(image);
                        returned++;
                    }
                });

                CheckRecovery(nvm, ops, expected, returned, interrupted, failure);
            }
        }
    }

    /// <summary>The template image, opened read-write as a restarting blade server would.</summary>
    private static (SimulatedNvm Nvm, BladeImage Image) Restart(RestorableNvm region, BladeMetadataFaults faults)
    {
        var nvm = region.Restore();
        var image = BladeImage.Open(nvm);
        image.Faults = faults;
        return (nvm, image);
    }

    private static void CheckRecovery(
        SimulatedNvm nvm, MetadataOp[] ops, ExpectedSlab[][] expected, int returned, bool interrupted, PowerFailure failure)
    {
        MetadataOp? inFlight = interrupted ? ops[returned] : null;
        string Context() =>
            $"after {failure}; {returned} of {ops.Length} updates had returned"
            + (inFlight is null ? "" : $", {inFlight} was in flight")
            + $"; updates: [{string.Join(", ", ops.Select(o => o.ToString()))}]";

        // Inspection first: a read-only open must see the image as recovery will make it, and write nothing.
        var counting = new CountingNvmRegion(nvm);
        BladeState readOnlyView;
        try
        {
            readOnlyView = BladeImage.Open(counting, BladeOpenMode.ReadOnly).Scan();
        }
        catch (BladeImageException ex)
        {
            throw new InvariantViolation(Invariant.ImageOpensAfterCrash, $"{ex.Error}: {ex.Message} {Context()}");
        }

        InvariantViolation.ThrowUnless(counting.MutatingCalls == 0, Invariant.ReadOnlyOpenWritesNothing,
            () => $"a read-only open and scan made {counting.MutatingCalls} mutating calls; {Context()}");

        var state = BladeImage.Open(nvm).Scan();
        InvariantViolation.ThrowUnless(state.IsConsistent, Invariant.BitmapAgreesWithOwnership,
            () => $"the recovered metadata is inconsistent: {string.Join("; ", state.Problems)}; {Context()}");
        InvariantViolation.ThrowUnless(state.PendingIntent is null, Invariant.RecoveryClearsIntent,
            () => $"intent {state.PendingIntent} is still pending after a read-write open; {Context()}");

        var before = expected[returned];
        for (int i = 0; i < state.Slabs.Count; i++)
        {
            var record = state.Slabs[i];
            if (inFlight is not null && inFlight.Covers((ulong)i))
            {
                var after = inFlight.Next(before[i], (uint)i - (uint)inFlight.Slab);
                InvariantViolation.ThrowUnless(before[i].Matches(record) || after.Matches(record), Invariant.InFlightUpdateAllOrNothing,
                    () => $"slab {i} is {ExpectedSlab.Describe(record)}, neither {before[i]} (not applied) nor {after} (applied); {Context()}");
            }
            else
            {
                InvariantViolation.ThrowUnless(before[i].Matches(record), Invariant.ReturnedUpdatesSurvive,
                    () => $"slab {i} is {ExpectedSlab.Describe(record)}, the returned updates made it {before[i]}; {Context()}");
            }
        }

        // Wear is outside the intent but persisted before a ring update returns: hand-outs that returned are durable.
        for (int i = 0; i < state.Slabs.Count; i++)
        {
            ulong handOuts = (ulong)ops.Take(returned).Count(op => op is MetadataOp.Ring && op.Covers((ulong)i));
            bool ringInFlight = inFlight is MetadataOp.Ring && inFlight.Covers((ulong)i);
            ulong wear = state.Slabs[i].WearHandOuts;
            InvariantViolation.ThrowUnless(wear == handOuts || (ringInFlight && wear == handOuts + 1), Invariant.ReturnedUpdatesSurvive,
                () => $"slab {i} has {wear} hand-outs, the returned ring updates made {handOuts}"
                    + (ringInFlight ? " (one more was in flight)" : "") + $"; {Context()}");
        }

        InvariantViolation.ThrowUnless(readOnlyView.Slabs.SequenceEqual(state.Slabs), Invariant.ReadOnlyViewMatchesRecovery,
            () => $"a read-only open showed [{string.Join(", ", readOnlyView.Slabs.Select(r => ExpectedSlab.Describe(r)))}] but recovery made "
                + $"[{string.Join(", ", state.Slabs.Select(r => ExpectedSlab.Describe(r)))}]; {Context()}");
    }
}
