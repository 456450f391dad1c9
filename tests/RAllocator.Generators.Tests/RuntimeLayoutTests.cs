using System.Reflection;
using RAllocator.Generators.Tests.Samples;
using RAllocator.Nvm.Layout;
using Shouldly;

namespace RAllocator.Generators.Tests;

/// <summary>The generated layouts at run time: constants, placement arithmetic, bounds and typed region views.</summary>
public sealed class RuntimeLayoutTests
{
    [Fact]
    public void FixedRegionsSitAtTheirDeclaredOffsetsAndArraysFollowAlignedUp()
    {
        BladeLayout.SuperblockAOffset.ShouldBe(0);
        BladeLayout.SuperblockAReserveBytes.ShouldBe(4096);
        BladeLayout.ControlOffset.ShouldBe(8192);
        BladeLayout.FixedRegionsEndOffset.ShouldBe(8256);
        BladeLayout.RingElementSizeBytes.ShouldBe(8);

        var layout = new BladeLayout(ringCapacity: 10, bitmapWords: 3);

        layout.RingOffset.ShouldBe(8256, "8256 is already 64-byte aligned");
        layout.RingCount.ShouldBe(10);
        layout.RingLengthBytes.ShouldBe(80);
        layout.BitmapOffset.ShouldBe(8384, "the ring ends at 8336, aligned up to 64");
        layout.BitmapLengthBytes.ShouldBe(24);
        layout.EndOffset.ShouldBe(8408);
        layout.Placements.ShouldBe(
        [
            new NvmRegionPlacement("SuperblockA", 0, 4096, 1),
            new NvmRegionPlacement("Control", 8192, 64, 1),
            new NvmRegionPlacement("Ring", 8256, 80, 10),
            new NvmRegionPlacement("Bitmap", 8384, 24, 3),
        ]);
    }

    [Fact]
    public void ASharedCountParameterAppearsOnceAndAlignmentsApply()
    {
        var constructor = typeof(SharedCountLayout).GetConstructors(BindingFlags.Public | BindingFlags.Instance).Single();
        constructor.GetParameters().Select(p => (p.Name, p.ParameterType)).ShouldBe([("slots", typeof(long))]);
        SharedCountLayout.HeaderReserveBytes.ShouldBe(12, "no ReserveBytes reserves exactly the struct");
        SharedCountLayout.FixedRegionsEndOffset.ShouldBe(16);

        var layout = new SharedCountLayout(slots: 5);

        layout.RecordsOffset.ShouldBe(16, "Align = 1 places the region right after the fixed ones");
        layout.RecordsLengthBytes.ShouldBe(60);
        layout.WordsOffset.ShouldBe(4096);
        layout.WordsCount.ShouldBe(5);
        layout.EndOffset.ShouldBe(4096 + 40);
    }

    [Fact]
    public void ConstructorParametersFollowArrayRegionDeclarationOrder()
    {
        typeof(BladeLayout).GetConstructors().Single().GetParameters().Select(p => p.Name).ShouldBe(["ringCapacity", "bitmapWords"]);
    }

    [Fact]
    public void ANegativeCountThrowsNamingItsParameter()
    {
        Should.Throw<ArgumentOutOfRangeException>(() => new BladeLayout(ringCapacity: 1, bitmapWords: -1)).ParamName.ShouldBe("bitmapWords");
        Should.Throw<ArgumentOutOfRangeException>(() => new BladeLayout(ringCapacity: -1, bitmapWords: 1)).ParamName.ShouldBe("ringCapacity");
    }

    [Fact]
    public void ACountThatOverflowsAnOffsetThrowsArgumentOutOfRangeNamingItsParameter()
    {
        Should.Throw<ArgumentOutOfRangeException>(() => new BladeLayout(ringCapacity: (long.MaxValue / 8) + 1, bitmapWords: 0))
            .ParamName.ShouldBe("ringCapacity");
        Should.Throw<ArgumentOutOfRangeException>(() => new BladeLayout(ringCapacity: (long.MaxValue - 8256) / 8, bitmapWords: 1))
            .ParamName.ShouldBe("bitmapWords");
    }

    [Fact]
    public void ElementOffsetsAreBoundsChecked()
    {
        var layout = new BladeLayout(ringCapacity: 4, bitmapWords: 1);

        layout.RingElementOffset(0).ShouldBe(layout.RingOffset);
        layout.RingElementOffset(3).ShouldBe(layout.RingOffset + 24);
        Should.Throw<ArgumentOutOfRangeException>(() => layout.RingElementOffset(4)).ParamName.ShouldBe("index");
        Should.Throw<ArgumentOutOfRangeException>(() => layout.RingElementOffset(-1)).ParamName.ShouldBe("index");
        Should.Throw<ArgumentOutOfRangeException>(() => new BladeLayout(0, 0).Ring(new ByteArrayNvmRegion(64), 0));
    }

    [Fact]
    public void RegionAccessorsReturnViewsAtThePlacedOffsets()
    {
        var layout = new BladeLayout(ringCapacity: 4, bitmapWords: 2);
        using var region = new ByteArrayNvmRegion((int)layout.EndOffset);

        layout.SuperblockA(region).Offset.ShouldBe(BladeLayout.SuperblockAOffset);
        layout.Control(region).Offset.ShouldBe(BladeLayout.ControlOffset);
        layout.Ring(region, 3).Word = 0xFEED;
        layout.Bitmap(region, 1).FetchAddBits(6);
        layout.Control(region).Heartbeat = 77;

        BitConverter.ToUInt64(region.Bytes, (int)(layout.RingOffset + 24)).ShouldBe(0xFEEDUL);
        BitConverter.ToUInt64(region.Bytes, (int)(layout.BitmapOffset + 8)).ShouldBe(6UL);
        BitConverter.ToUInt64(region.Bytes, (int)(BladeLayout.ControlOffset + ControlBlock.Offsets.Heartbeat)).ShouldBe(77UL);
        region.Operations.ShouldContain($"FetchAdd@{layout.BitmapOffset + 8}");
    }

    [Fact]
    public void TheStaticRegionTableDescribesEveryRegionInDeclarationOrder()
    {
        BladeLayout.Regions.Select(r => (r.Name, r.Kind, r.Struct.Name, r.FixedOffset, r.ReserveBytes, r.CountParameter, r.Align)).ShouldBe(
        [
            ("SuperblockA", NvmRegionKind.Fixed, "Superblock", 0L, 4096L, (string?)null, 1),
            ("Control", NvmRegionKind.Fixed, "ControlBlock", 8192L, 64L, null, 1),
            ("Ring", NvmRegionKind.Array, "RingEntry", -1L, 0L, "ringCapacity", 64),
            ("Bitmap", NvmRegionKind.Array, "BitmapWord", -1L, 0L, "bitmapWords", 64),
        ]);
        BladeLayout.Regions[0].Struct.ShouldBeSameAs(Superblock.Info);
    }
}
