using FsCheck;
using FsCheck.Fluent;
using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.Blade.Tests;

/// <summary>
/// An existing image (with slabs ringed, owned and freed, and its current superblock in copy A or B) that is
/// formatted again with another geometry, and the seed of the power failure that interrupts the format.
/// </summary>
internal sealed record ReformatScenario(MetadataScenario OldImage, int OldSuperblockUpdates, ulong NewSlabBytes, uint NewMaxNodes, uint? NewRingCapacity, int CrashSeed)
{
    public BladeFormatOptions NewOptions => TestImages.SmallOptions with { MaxNodes = NewMaxNodes, RingCapacity = NewRingCapacity };

    public static Arbitrary<ReformatScenario> Arbitrary(int slabs)
    {
        var scenario = from old in MetadataScenario.Arbitrary(slabs, maxSteps: 6).Generator
                       from updates in Gen.Choose(0, 2)
                       from slab in Gen.Elements(64 * TestImages.KiB, 128 * TestImages.KiB)
                       from nodes in Gen.Elements(2u, 4u, 8u)
                       from ring in Gen.Elements<uint?>(null, 3u)
                       from seed in Gen.Choose(int.MinValue, int.MaxValue)
                       select new ReformatScenario(old, updates, slab, nodes, ring, seed);
        return Arb.From(scenario);
    }
}

/// <summary>
/// A Format bug planted by decoration (Format has no fault hook): the NVM acknowledges some of its persists but
/// loses them, which is exactly what Format would do if it forgot those persists.
/// </summary>
internal enum PlantedFormatBug
{
    None,

    /// <summary>The persists of the invalidated superblocks (every persist inside the superblock reservations before
    /// the metadata persist) are lost: the old superblocks may outlive the zeroing of their metadata.</summary>
    SuperblockInvalidationNotPersisted,

    /// <summary>The persist of the zeroed metadata is lost: the new superblock may land over old metadata.</summary>
    MetadataZeroingNotPersisted,
}

internal static class PlantedFormatBugs
{
    private const long MetadataStart = BladeLayout.SuperblockBOffset + BladeLayout.SuperblockBReserveBytes;

    public static INvmRegion Wrap(this PlantedFormatBug bug, SimulatedNvm nvm)
    {
        switch (bug)
        {
            case PlantedFormatBug.SuperblockInvalidationNotPersisted:
                bool metadataPersisted = false;
                return new PersistDroppingNvmRegion(nvm, (offset, length) =>
                {
                    metadataPersisted |= offset + length > MetadataStart;
                    return !metadataPersisted;
                });
            case PlantedFormatBug.MetadataZeroingNotPersisted:
                return new PersistDroppingNvmRegion(nvm, (offset, length) => offset + length > MetadataStart);
            default:
                return nvm;
        }
    }
}

/// <summary>
/// Format over an existing image, with power failing before every persist of the format (and right after it
/// returned), keeping no, all or a random subset of the unpersisted stores. Reopening then finds no image (a typed
/// error: the format never completed), the new empty image, or the old image exactly as it was; never an old
/// superblock over new metadata.
/// </summary>
public sealed class FormatCrashProperties
{
    internal const ulong OldUid = 0x01D0_01D0_01D0_01D0;
    internal const ulong NewUid = 0x0E30_0E30_0E30_0E30;
    private const int MaxTest = 40;

    private static readonly ulong s_oldSlabCount = TestImages.FormatSmall().Image.Geometry.SlabCount;

    [Fact]
    public void AnInterruptedFormatLeavesNoImageTheNewEmptyImageOrTheUntouchedOldOne()
    {
        SeededCheck.Holds(
            nameof(AnInterruptedFormatLeavesNoImageTheNewEmptyImageOrTheUntouchedOldOne),
            ReformatScenario.Arbitrary((int)s_oldSlabCount),
            scenario => CheckEveryPersistPoint(scenario, PlantedFormatBug.None),
            MaxTest);
    }

    [Fact]
    public void IfTheInvalidatedSuperblocksWereNotPersistedFirstTheCrashPropertyFindsAnOldSuperblockOverNewMetadata()
    {
        string failure = SeededCheck.FindsCounterexample(
            nameof(IfTheInvalidatedSuperblocksWereNotPersistedFirstTheCrashPropertyFindsAnOldSuperblockOverNewMetadata),
            ReformatScenario.Arbitrary((int)s_oldSlabCount),
            scenario => CheckEveryPersistPoint(scenario, PlantedFormatBug.SuperblockInvalidationNotPersisted),
            MaxTest);

        failure.ShouldContain($"[{Invariant.OldSuperblockOnlyWithItsOwnMetadata}]");
    }

    [Fact]
    public void IfTheZeroedMetadataWereNotPersistedBeforeTheSuperblockTheCrashPropertyFindsOldMetadataUnderTheNewSuperblock()
    {
        string failure = SeededCheck.FindsCounterexample(
            nameof(IfTheZeroedMetadataWereNotPersistedBeforeTheSuperblockTheCrashPropertyFindsOldMetadataUnderTheNewSuperblock),
            ReformatScenario.Arbitrary((int)s_oldSlabCount),
            scenario => CheckEveryPersistPoint(scenario, PlantedFormatBug.MetadataZeroingNotPersisted),
            MaxTest);

        failure.ShouldContain($"[{Invariant.NewImageIsEmptyAndConsistent}]");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void AnInterruptedFormatNeverRollsTheOldImageBackToItsOlderSuperblockCopy(int oldSuperblockUpdates)
    {
        // The adversarial lost-store subsets a random seed rarely draws (2^-13 per copy): exactly the stores that zero
        // one copy reach NVM, every other unpersisted store is lost.
        var (oldNvm, oldImage) = TestImages.FormatSmall(OldUid);
        for (int i = 0; i < oldSuperblockUpdates; i++)
        {
            oldImage.UpdateSuperblock(sb => sb);
        }

        var template = oldNvm.DurableImageCopy();
        var current = oldImage.Superblock;
        for (long point = 0; ; point++)
        {
            foreach (var keptCopy in new[] { SuperblockCopy.A, SuperblockCopy.B })
            {
                var nvm = SimulatedNvm.FromDurableImage(template);
                long first = nvm.PersistCount;
                long at = point;
                nvm.BeforePersist = index =>
                {
                    if (index - first == at)
                    {
                        throw new SimulatedPowerFailure(index);
                    }
                };
                bool interrupted;
                try
                {
                    BladeImage.Format(nvm, TestImages.SmallSlabBytes, TestImages.SmallOptions, NewUid);
                    interrupted = false;
                }
                catch (SimulatedPowerFailure)
                {
                    interrupted = true;
                }

                nvm.BeforePersist = null;
                long copyStart = TestImages.CopyOffset(keptCopy);
                nvm.Crash(nvm.PendingStores.Where(s => s.Offset >= copyStart && s.Offset < copyStart + Superblock.SizeBytes).Select(s => s.Index));

                BladeImage reopened;
                try
                {
                    reopened = BladeImage.Open(nvm, BladeOpenMode.ReadOnly);
                }
                catch (BladeImageException)
                {
                    continue; // no image: the format had begun
                }

                if (reopened.Superblock.BladeUid == OldUid)
                {
                    TestImages.SameBytes(reopened.Superblock, current).ShouldBeTrue(
                        $"[{Invariant.SuperblockNeverOlderThanLastReturnedUpdate}] power failed before persist #{point} of Format, keeping only "
                        + $"the stores to copy {keptCopy}: the old image reopened from {TestImages.Describe(reopened.Superblock)}, "
                        + $"older than its current superblock {TestImages.Describe(current)}");
                }

                if (!interrupted)
                {
                    return;
                }
            }
        }
    }

    internal static void CheckEveryPersistPoint(ReformatScenario scenario, PlantedFormatBug bug)
    {
        var oldTemplate = BuildOldImage(scenario);
        var newGeometry = BladeGeometry.ForRegion((ulong)TestImages.SmallRegionBytes, scenario.NewSlabBytes, scenario.NewOptions);
        var region = new RestorableNvm(oldTemplate.Image, Math.Max(oldTemplate.Geometry.DataOffset, newGeometry.DataOffset));

        void Format(SimulatedNvm nvm) => BladeImage.Format(bug.Wrap(nvm), scenario.NewSlabBytes, scenario.NewOptions, NewUid);

        long persistPoints;
        {
            var nvm = region.Restore();
            long before = nvm.PersistCount;
            Format(nvm);
            persistPoints = nvm.PersistCount - before;
        }

        for (long point = 0; point <= persistPoints; point++)
        {
            foreach (var failure in PowerFailure.At(point, scenario.CrashSeed, randomSubsets: 4))
            {
                var nvm = region.Restore();
                bool interrupted = failure.Strike(nvm, () => Format(nvm));
                CheckReopen(nvm, oldTemplate, newGeometry, interrupted, () => $"after {failure} of Format ({persistPoints} persists) over {scenario}");
            }
        }
    }

    private static (byte[] Image, BladeGeometry Geometry, Superblock[] Copies) BuildOldImage(ReformatScenario scenario)
    {
        var (nvm, image) = TestImages.FormatSmall(OldUid);
        foreach (var op in scenario.OldImage.Interpret(image.Geometry.SlabCount, image.Geometry.MaxNodes))
        {
            op.ApplyTo(image);
        }

        for (int i = 0; i < scenario.OldSuperblockUpdates; i++)
        {
            image.UpdateSuperblock(sb =>
            {
                sb.BladeIncarnation++;
                return sb;
            });
        }

        nvm.PersistAll();
        return (nvm.DurableImageCopy(), image.Geometry, [TestImages.ReadCopy(nvm, SuperblockCopy.A), TestImages.ReadCopy(nvm, SuperblockCopy.B)]);
    }

    private static void CheckReopen(
        SimulatedNvm nvm, (byte[] Image, BladeGeometry Geometry, Superblock[] Copies) old, BladeGeometry newGeometry, bool interrupted, Func<string> context)
    {
        var counting = new CountingNvmRegion(nvm);
        BladeImage reopened;
        try
        {
            reopened = BladeImage.Open(counting, BladeOpenMode.ReadOnly);
        }
        catch (BladeImageException ex)
        {
            InvariantViolation.ThrowUnless(interrupted, Invariant.ReturnedFormatIsDurable,
                () => $"Format returned, yet the image does not open: {ex.Error}: {ex.Message}; {context()}");
            InvariantViolation.ThrowUnless(ex.Error is BladeImageError.WrongMagic or BladeImageError.ChecksumMismatch,
                Invariant.InterruptedFormatLeavesNoImageOrTheNewOne,
                () => $"an interrupted format left an image that fails with {ex.Error} rather than no image: {ex.Message}; {context()}");
            var error = Should.Throw<BladeImageException>(() => BladeImage.Open(counting)).Error;
            InvariantViolation.ThrowUnless(error == ex.Error && counting.MutatingCalls == 0, Invariant.ReadOnlyOpenWritesNothing,
                () => $"a failed read-write open ({error}) made {counting.MutatingCalls} mutating calls; {context()}");
            return;
        }

        InvariantViolation.ThrowUnless(counting.MutatingCalls == 0, Invariant.ReadOnlyOpenWritesNothing,
            () => $"a read-only open made {counting.MutatingCalls} mutating calls; {context()}");
        var found = reopened.Superblock;
        if (found.BladeUid == OldUid)
        {
            InvariantViolation.ThrowUnless(interrupted, Invariant.ReturnedFormatIsDurable,
                () => $"Format returned, yet the old superblock {TestImages.Describe(found)} is current; {context()}");
            long start = BladeLayout.SuperblockBOffset + BladeLayout.SuperblockBReserveBytes;
            long length = old.Geometry.DataOffset - start;
            var metadata = TestImages.ReadBytes(nvm, start, length);
            int firstDifference = metadata.AsSpan().CommonPrefixLength(old.Image.AsSpan((int)start, (int)length));
            InvariantViolation.ThrowUnless(firstDifference == length, Invariant.OldSuperblockOnlyWithItsOwnMetadata,
                () => $"the old superblock {TestImages.Describe(found)} opens, but the metadata it describes changed "
                    + $"(first difference at byte {start + firstDifference}); {context()}");
            InvariantViolation.ThrowUnless(old.Copies.Any(copy => TestImages.SameBytes(copy, found)), Invariant.OldSuperblockOnlyWithItsOwnMetadata,
                () => $"the old image opens from {TestImages.Describe(found)}, which is neither of its copies; {context()}");

            // The old image's last superblock update had returned: an interrupted format must not roll it back (a
            // blade incarnation that goes back would be reused by the next open, hiding a restart from working nodes).
            var current = old.Copies.MaxBy(copy => copy.Generation);
            InvariantViolation.ThrowUnless(TestImages.SameBytes(current, found), Invariant.SuperblockNeverOlderThanLastReturnedUpdate,
                () => $"the old image opens from its older copy {TestImages.Describe(found)}, not its current {TestImages.Describe(current)}; {context()}");
            return;
        }

        InvariantViolation.ThrowUnless(found.BladeUid == NewUid, Invariant.InterruptedFormatLeavesNoImageOrTheNewOne,
            () => $"the image opens with an unknown blade uid: {TestImages.Describe(found)}; {context()}");
        InvariantViolation.ThrowUnless(reopened.Geometry == newGeometry && found.Generation == 1 && found.BladeIncarnation == 0,
            Invariant.NewImageIsEmptyAndConsistent,
            () => $"the new superblock {TestImages.Describe(found)} does not record the new geometry {newGeometry}; {context()}");

        // Byte for byte: every metadata byte of the new image is zero except the global epoch, which starts at 1.
        long metadataStart = BladeLayout.SuperblockBOffset + BladeLayout.SuperblockBReserveBytes;
        var bytes = TestImages.ReadBytes(nvm, metadataStart, newGeometry.DataOffset - metadataStart);
        var expected = new byte[bytes.Length];
        BitConverter.TryWriteBytes(expected.AsSpan((int)(BladeLayout.ControlOffset + BladeControlBlock.Offsets.GlobalEpoch - metadataStart)), 1UL);
        int same = bytes.AsSpan().CommonPrefixLength(expected);
        InvariantViolation.ThrowUnless(same == bytes.Length, Invariant.NewImageIsEmptyAndConsistent,
            () => $"the new image's metadata is not fresh: byte {metadataStart + same} is 0x{bytes[same]:x2}, expected 0x{expected[same]:x2}; {context()}");

        var state = BladeImage.Open(nvm).Scan();
        InvariantViolation.ThrowUnless(
            state.IsConsistent && state.PendingIntent is null && state.Count(SlabState.Free) == state.Slabs.Count
                && state.Ring.All(slot => slot.Entry.Kind == RingEntryKind.Empty),
            Invariant.NewImageIsEmptyAndConsistent,
            () => $"the new image is not empty and consistent: {string.Join("; ", state.Problems)}; {context()}");
    }
}
