using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using RAllocator.Generators.Tests.Samples;
using RAllocator.Nvm;
using Shouldly;

namespace RAllocator.Generators.Tests;

/// <summary>
/// The generated structs and views at run time: Samples/BladeSample.cs is compiled in this project with the
/// generator as an analyzer, exactly as a consumer uses it, and exercised against a byte[]-backed region.
/// </summary>
public sealed class RuntimeViewTests
{
    private const long Base = 128;

    [Fact]
    public void TheExplicitLayoutPutsEveryFieldAtItsDeclaredOffset()
    {
        Unsafe.SizeOf<Superblock>().ShouldBe(Superblock.SizeBytes);
        Unsafe.SizeOf<RingEntry>().ShouldBe(8);
        var value = new Superblock { Magic = 0x1122334455667788, Generation = 7, Temperature = -3, Bias = -1 };
        byte[] bytes = new byte[Superblock.SizeBytes];

        value.CopyTo(bytes);

        BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(Superblock.Offsets.Magic)).ShouldBe(0x1122334455667788UL);
        BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(Superblock.Offsets.Generation)).ShouldBe(7UL);
        BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(Superblock.Offsets.Temperature)).ShouldBe(-3);
        bytes[Superblock.Offsets.Bias].ShouldBe((byte)0xFF);
    }

    [Fact]
    public void ViewPropertiesWriteLittleEndianFieldsInPlaceAndReadThemBack()
    {
        using var region = new ByteArrayNvmRegion(4096);
        var view = new Superblock.View(region, Base);

        view.Magic = 0x5241_4C4C_4F43_7631;
        view.FormatVersion = 0xDEADBEEF;
        view.Flags = 0xBEEF;
        view.Kind = 0xAB;
        view.Bias = -100;
        view.Generation = ulong.MaxValue - 1;
        view.CreatedTicks = long.MinValue + 5;
        view.Balance = -42;
        view.Temperature = int.MinValue;
        view.Delta = -2;

        var bytes = region.Bytes.AsSpan((int)Base);
        BinaryPrimitives.ReadUInt64LittleEndian(bytes[0..]).ShouldBe(0x5241_4C4C_4F43_7631UL);
        BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]).ShouldBe(0xDEADBEEF);
        BinaryPrimitives.ReadUInt16LittleEndian(bytes[12..]).ShouldBe((ushort)0xBEEF);
        bytes[14].ShouldBe((byte)0xAB);
        ((sbyte)bytes[15]).ShouldBe((sbyte)-100);
        BinaryPrimitives.ReadUInt64LittleEndian(bytes[16..]).ShouldBe(ulong.MaxValue - 1);
        BinaryPrimitives.ReadInt64LittleEndian(bytes[24..]).ShouldBe(long.MinValue + 5);
        BinaryPrimitives.ReadInt64LittleEndian(bytes[32..]).ShouldBe(-42L);
        BinaryPrimitives.ReadInt32LittleEndian(bytes[40..]).ShouldBe(int.MinValue);
        BinaryPrimitives.ReadInt16LittleEndian(bytes[44..]).ShouldBe((short)-2);

        (view.Magic, view.FormatVersion, view.Flags, view.Kind, view.Bias).ShouldBe((0x5241_4C4C_4F43_7631UL, 0xDEADBEEF, (ushort)0xBEEF, (byte)0xAB, (sbyte)-100));
        (view.Generation, view.CreatedTicks, view.Balance, view.Temperature, view.Delta).ShouldBe((ulong.MaxValue - 1, long.MinValue + 5, -42L, int.MinValue, (short)-2));
        region.Bytes.AsSpan(0, (int)Base).ToArray().ShouldAllBe(b => b == 0, "nothing is written before the view's offset");
        region.Bytes.AsSpan((int)Base + 46).ToArray().ShouldAllBe(b => b == 0, "nothing is written in the unused tail or after the struct");
    }

    [Fact]
    public void BulkLoadAndViewAgreeAndABulkStorePreservesUnusedBytes()
    {
        using var region = new ByteArrayNvmRegion(4096);
        region.Bytes.AsSpan().Fill(0xAA);
        var view = new Superblock.View(region, Base);
        view.Generation = 9;
        view.Temperature = 21;

        var value = view.Load();
        value.Generation.ShouldBe(9UL);
        value.Temperature.ShouldBe(21);
        value.FormatVersion.ShouldBe(0xAAAAAAAA);

        value.FormatVersion = 3;
        region.Operations.Clear();
        view.Store(value);

        region.Operations.ShouldBe(["Write@128+64"], "a struct store is one bulk write of SizeBytes");
        view.FormatVersion.ShouldBe(3U);
        region.Bytes.AsSpan((int)Base + 46, 18).ToArray().ShouldAllBe(b => b == 0xAA, "unused bytes round-trip unchanged");
        Superblock.Read(region, Base).ShouldBe(value);
        Superblock.FromBytes(region.Bytes.AsSpan((int)Base)).ShouldBe(value);
    }

    [Fact]
    public void FromBytesAndCopyToRejectShortBuffers()
    {
        Should.Throw<ArgumentException>(() => Superblock.FromBytes(new byte[63])).ParamName.ShouldBe("bytes");
        Should.Throw<ArgumentException>(() => new Superblock().CopyTo(new byte[63])).ParamName.ShouldBe("destination");
    }

    [Fact]
    public void AlignedEightByteFieldsUseWordOperationsAndOthersUseByteCopies()
    {
        using var region = new ByteArrayNvmRegion(64);

        _ = new PackedRecord.View(region, 0).Payload;
        _ = new PackedRecord.View(region, 4).Payload;
        new PackedRecord.View(region, 0).Payload = 1;
        new PackedRecord.View(region, 4).Payload = 2;
        _ = new Superblock.View(region, 0).Magic;
        _ = new Superblock.View(region, 0).FormatVersion;

        region.Operations.ShouldBe(["Read@4+8", "Load@8", "Write@4+8", "Store@8", "Load@0", "Read@8+4"]);
    }

    [Fact]
    public void AStructWhoseSizeIsNotAMultipleOfItsWidestFieldStillCopiesExactlySizeBytes()
    {
        using var region = new ByteArrayNvmRegion(64);
        region.Bytes.AsSpan().Fill(0xCC);
        var value = new PackedRecord { Tag = 1, Payload = 0x0102030405060708 };

        value.Write(region, 20);

        region.Operations.ShouldBe(["Write@20+12"]);
        region.Bytes[19].ShouldBe((byte)0xCC);
        region.Bytes[32].ShouldBe((byte)0xCC, "nothing past SizeBytes is written");
        PackedRecord.Read(region, 20).ShouldBe(value);
        new PackedRecord.View(region, 20).Payload.ShouldBe(0x0102030405060708UL);
    }

    [Fact]
    public void AtomicFieldsCompareExchangeAndFetchAddOnTheirWord()
    {
        using var region = new ByteArrayNvmRegion(4096);
        var view = new Superblock.View(region, Base);

        view.StoreGeneration(5);
        view.CompareExchangeGeneration(4, 100).ShouldBe(5UL, "a failed CAS returns the current value");
        view.LoadGeneration().ShouldBe(5UL);
        view.CompareExchangeGeneration(5, 100).ShouldBe(5UL);
        view.Generation.ShouldBe(100UL);
        view.FetchAddGeneration(3).ShouldBe(100UL);
        view.Generation.ShouldBe(103UL);

        view.StoreBalance(3);
        view.FetchAddBalance(-5).ShouldBe(3L);
        view.LoadBalance().ShouldBe(-2L);
        view.CompareExchangeBalance(-2, long.MinValue).ShouldBe(-2L);
        view.Balance.ShouldBe(long.MinValue);

        region.Operations.ShouldContain("CompareExchange@144");
        region.Operations.ShouldContain("FetchAdd@160");
    }

    [Fact]
    public void AtomicOperationsOnAMisalignedViewThrow()
    {
        using var region = new ByteArrayNvmRegion(4096);
        var view = new Superblock.View(region, Base + 4);

        Should.Throw<NvmAlignmentException>(() => view.FetchAddGeneration(1)).Offset.ShouldBe(Base + 4 + 16);
    }

    [Fact]
    public void PersistCoversExactlyTheFieldOrTheWholeStruct()
    {
        using var region = new ByteArrayNvmRegion(4096);
        var view = new Superblock.View(region, Base);

        view.PersistGeneration();
        view.PersistKind();
        view.Persist();

        region.Persisted.ShouldBe([(Base + 16, 8L), (Base + 14, 1L), (Base, 64L)]);
    }

    [Fact]
    public void TheStructInfoListsEveryFieldInOffsetOrder()
    {
        Superblock.Info.Name.ShouldBe("Superblock");
        Superblock.Info.SizeBytes.ShouldBe(64);
        Superblock.Info.Fields.Select(f => (f.Name, f.Offset, f.SizeBytes, f.TypeName, f.Atomic)).ShouldBe(
        [
            ("Magic", 0, 8, "ulong", false),
            ("FormatVersion", 8, 4, "uint", false),
            ("Flags", 12, 2, "ushort", false),
            ("Kind", 14, 1, "byte", false),
            ("Bias", 15, 1, "sbyte", false),
            ("Generation", 16, 8, "ulong", true),
            ("CreatedTicks", 24, 8, "long", false),
            ("Balance", 32, 8, "long", true),
            ("Temperature", 40, 4, "int", false),
            ("Delta", 44, 2, "short", false),
        ]);
    }
}
