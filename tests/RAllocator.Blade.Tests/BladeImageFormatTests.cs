using RAllocator.Nvm;
using RAllocator.Protocol.Layout;
using static RAllocator.Blade.Tests.TestImages;

namespace RAllocator.Blade.Tests;

/// <summary>Format lays out the largest image that fits, and a fresh image opens empty and consistent.</summary>
public sealed class BladeImageFormatTests
{
    public static TheoryData<long, ulong> SimulatedSizes => new()
    {
        { (long)(4 * MiB), 64 * KiB },
        { (long)(4 * MiB), 1 * MiB },
        { (long)(16 * MiB), 256 * KiB },
        { (long)(16 * MiB) + 4096 + 8, 64 * KiB }, // not a multiple of the slab size
    };

    public static TheoryData<long, ulong> MappedFileSizes => new()
    {
        { (long)(64 * MiB), 1 * MiB },
        { (long)GiB, 64 * KiB },
        { (long)GiB, 1 * MiB },
        { (long)GiB, 16 * MiB },
        { (long)GiB + (3 * 4096) + 8, 128 * KiB },
    };

    [Theory]
    [MemberData(nameof(SimulatedSizes))]
    public void FormatOnSimulatedNvmComputesTheLargestGeometryThatFitsAndOpensEmpty(long regionBytes, ulong slabBytes)
    {
        using var nvm = new SimulatedNvm(regionBytes);

        var formatted = BladeImage.Format(nvm, slabBytes, bladeUid: 7);

        CheckGeometryFits(formatted.Geometry, regionBytes, slabBytes);
        nvm.PendingStores.ShouldBeEmpty("everything Format wrote is persisted before it returns");
        CheckOpensEmptyAndConsistent(nvm, formatted);
    }

    [Theory]
    [MemberData(nameof(MappedFileSizes))]
    public void FormatOnASparseFileComputesTheLargestGeometryThatFitsAndOpensEmpty(long regionBytes, ulong slabBytes)
    {
        using var directory = new TempDirectory();
        string path = directory.File("blade.nvm");
        using (var region = MappedFileNvm.Create(path, regionBytes))
        {
            var formatted = BladeImage.Format(region, slabBytes, bladeUid: 7);
            CheckGeometryFits(formatted.Geometry, regionBytes, slabBytes);
        }

        // Reopened from the file: what Format persisted is what the next blade process sees.
        using var reopened = MappedFileNvm.Open(path);
        var image = BladeImage.Open(reopened, BladeOpenMode.ReadOnly);
        CheckGeometryFits(image.Geometry, regionBytes, slabBytes);
        CheckOpensEmptyAndConsistent(reopened, image);
    }

    [Theory]
    [InlineData(8192, 64 * 1024)] // not even the fixed metadata
    [InlineData(64 * 1024, 64 * 1024)] // metadata plus one slab does not fit
    [InlineData(1024 * 1024, 96 * 1024)] // slab size not a power of two
    [InlineData(1024 * 1024, 32 * 1024)] // slab size below the minimum
    public void FormatRefusesParametersThatCannotMakeAnImage(long regionBytes, ulong slabBytes)
    {
        using var nvm = new SimulatedNvm(regionBytes);

        var ex = Should.Throw<BladeGeometryException>(() => BladeImage.Format(nvm, slabBytes));

        ex.Message.ShouldNotBeNullOrWhiteSpace();
        nvm.PersistCount.ShouldBe(0, "a refused format validates before it writes anything");
        nvm.PendingStores.ShouldBeEmpty("a refused format validates before it writes anything");
    }

    [Fact]
    public void FormatLeavesACleanShutdownImageAndTheFirstOpenRecordsIncarnationOne()
    {
        using var nvm = new SimulatedNvm(SmallRegionBytes);

        var formatted = BladeImage.Format(nvm, SmallSlabBytes, SmallOptions, bladeUid: 99);
        var opened = BladeImage.Open(nvm);

        formatted.Superblock.Generation.ShouldBe(1UL);
        formatted.Superblock.BladeIncarnation.ShouldBe(0UL);
        ((SuperblockFlags)formatted.Superblock.Flags).ShouldBe(SuperblockFlags.CleanShutdown);
        formatted.Superblock.BladeUid.ShouldBe(99UL);
        opened.Superblock.Generation.ShouldBe(2UL, "an open is a superblock update");
        opened.Superblock.BladeIncarnation.ShouldBe(1UL, "every read-write open is a new blade incarnation");
        ((SuperblockFlags)opened.Superblock.Flags).ShouldBe(SuperblockFlags.None, "an open image is not cleanly shut down");
        opened.CurrentSuperblockCopy.ShouldBe(SuperblockCopy.B, "the update goes to the copy that is not current");
    }

    internal static void CheckGeometryFits(BladeGeometry geometry, long regionBytes, ulong slabBytes)
    {
        var layout = geometry.Layout;
        geometry.RegionSizeBytes.ShouldBe((ulong)regionBytes);
        geometry.SlabSizeBytes.ShouldBe(slabBytes);
        geometry.SlabCount.ShouldBeGreaterThan(0UL);
        geometry.Validate(regionBytes).ShouldBeNull("the geometry Format records must pass the check every open makes");
        (geometry.DataOffset % BladeGeometry.DataAlignment).ShouldBe(0L, "slabs start on a page boundary");
        geometry.DataOffset.ShouldBeGreaterThanOrEqualTo(layout.EndOffset, "the data area starts after the last metadata region");
        ((ulong)geometry.DataOffset + (geometry.SlabCount * slabBytes)).ShouldBeLessThanOrEqualTo((ulong)regionBytes, "every slab lies inside the region");

        var oneMore = geometry with { SlabCount = geometry.SlabCount + 1 };
        oneMore.Validate(regionBytes).ShouldNotBeNull($"Format takes the most slabs that fit: {oneMore.SlabCount} slabs must not fit");

        // Every region is placed after the previous one, aligned as declared, and ends before the data area.
        long end = 0;
        var declared = BladeLayout.Regions.ToDictionary(r => r.Name);
        foreach (var placement in layout.Placements)
        {
            placement.Offset.ShouldBeGreaterThanOrEqualTo(end, $"region {placement.Name} overlaps the region before it");
            (placement.Offset % declared[placement.Name].Align).ShouldBe(0L, $"region {placement.Name} is aligned as declared");
            end = placement.EndOffset;
        }

        end.ShouldBeLessThanOrEqualTo(geometry.DataOffset);
        layout.OwnershipCount.ShouldBe((long)geometry.SlabCount);
        layout.WearCount.ShouldBe((long)geometry.SlabCount);
        (layout.BitmapCount * 64).ShouldBeGreaterThanOrEqualTo((long)geometry.SlabCount, "one bitmap bit per slab");
        layout.AckSlotsCount.ShouldBe((long)geometry.MaxNodes * geometry.AckSlotsPerNode);
        layout.FreeSlotsCount.ShouldBe((long)geometry.MaxNodes * geometry.FreeSlotsPerNode);
    }

    internal static void CheckOpensEmptyAndConsistent(INvmRegion region, BladeImage formatted)
    {
        var image = BladeImage.Open(region, BladeOpenMode.ReadOnly);
        image.Geometry.ShouldBe(formatted.Geometry);
        image.Superblock.BladeUid.ShouldBe(formatted.Superblock.BladeUid);

        var state = image.Scan();

        state.IsConsistent.ShouldBeTrue($"a fresh image is consistent: {string.Join("; ", state.Problems)}");
        state.PendingIntent.ShouldBeNull();
        state.Slabs.Count.ShouldBe((int)formatted.Geometry.SlabCount);
        state.Slabs.ShouldAllBe(s => s.State == SlabState.Free && !s.Allocated && s.Generation == 0 && s.WearHandOuts == 0);
        state.FreeSlabsLeastWornFirst.ShouldBe(Enumerable.Range(0, state.Slabs.Count).Select(i => (ulong)i));
        state.Ring.Count.ShouldBe((int)formatted.Geometry.RingCapacity);
        state.Ring.ShouldAllBe(slot => slot.Entry.Kind == RingEntryKind.Empty, "the ring of a fresh image is empty");
        state.OwnedByNode.ShouldBeEmpty();
        state.Nodes.ShouldAllBe(n => !n.Registered && n.PendingAcks.Count == 0 && n.PendingFrees.Count == 0);
        state.Sequencer.ShouldBe(0UL);
        state.FilledThroughTicket.ShouldBe(0UL);
        state.GlobalEpoch.ShouldBe(1UL, "epochs start at 1, so epoch 0 can mean never");
        state.Utilization.ShouldBe(0.0);
    }
}
