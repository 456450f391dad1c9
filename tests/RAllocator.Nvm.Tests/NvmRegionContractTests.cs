using System.Buffers.Binary;

namespace RAllocator.Nvm.Tests;

/// <summary>
/// The behaviour every <see cref="INvmRegion"/> promises, run against each implementation and backend by
/// the derived classes at the end of this file.
/// </summary>
public abstract class NvmRegionContractTests : IDisposable
{
    protected const long RegionBytes = 16 * 1024;

    private readonly List<INvmRegion> _regions = [];

    protected abstract INvmRegion CreateRegionCore(long lengthBytes);

    protected INvmRegion CreateRegion(long lengthBytes = RegionBytes)
    {
        var region = CreateRegionCore(lengthBytes);
        _regions.Add(region);
        return region;
    }

    public virtual void Dispose()
    {
        foreach (var region in _regions)
        {
            region.Dispose();
        }

        GC.SuppressFinalize(this);
    }

    [Fact]
    public void ANewRegionReadsAsZeroesAndReportsItsLength()
    {
        var region = CreateRegion();
        region.Length.ShouldBe(RegionBytes, "a region is exactly as long as requested");
        region.LoadUInt64(0).ShouldBe(0UL, "a new region holds zeroes");
        region.LoadUInt64(RegionBytes - 8).ShouldBe(0UL, "a new region holds zeroes up to its last word");
        region.Description.ShouldNotBeNullOrWhiteSpace("every region describes itself for logs");
    }

    [Fact]
    public void StoreThenLoadReturnsTheStoredWord()
    {
        var region = CreateRegion();
        region.StoreUInt64(8, 0xDEAD_BEEF_CAFE_F00D);
        region.StoreUInt64(RegionBytes - 8, ulong.MaxValue);
        region.LoadUInt64(8).ShouldBe(0xDEAD_BEEF_CAFE_F00DUL, "a load sees the latest store to its word");
        region.LoadUInt64(RegionBytes - 8).ShouldBe(ulong.MaxValue, "the last word of the region is usable");
        region.LoadUInt64(0).ShouldBe(0UL, "a store touches only its own word");
        region.LoadUInt64(16).ShouldBe(0UL, "a store touches only its own word");
    }

    [Fact]
    public void CompareExchangeSwapsOnlyWhenTheExpectedValueIsFoundAndReturnsWhatItFound()
    {
        var region = CreateRegion();
        region.StoreUInt64(64, 5);

        region.CompareExchangeUInt64(64, expected: 4, desired: 9).ShouldBe(5UL, "a failed CAS returns the value it found");
        region.LoadUInt64(64).ShouldBe(5UL, "a failed CAS leaves the word unchanged");

        region.CompareExchangeUInt64(64, expected: 5, desired: 9).ShouldBe(5UL, "a successful CAS returns the old value");
        region.LoadUInt64(64).ShouldBe(9UL, "a successful CAS installs the desired value");
    }

    [Fact]
    public void FetchAddReturnsThePreviousValueAndWrapsAroundModuloTwoToTheSixtyFour()
    {
        var region = CreateRegion();
        region.FetchAddUInt64(24, 3).ShouldBe(0UL, "fetch-add returns the value before the addition");
        region.FetchAddUInt64(24, 4).ShouldBe(3UL, "fetch-add returns the value before the addition");
        region.LoadUInt64(24).ShouldBe(7UL, "fetch-add adds");

        region.StoreUInt64(32, ulong.MaxValue);
        region.FetchAddUInt64(32, 2).ShouldBe(ulong.MaxValue, "fetch-add returns the old value even when it wraps");
        region.LoadUInt64(32).ShouldBe(1UL, "fetch-add wraps modulo 2^64");

        region.FetchAddUInt64(40, unchecked((ulong)-1L)).ShouldBe(0UL, "adding 2^64-1 subtracts one");
        region.LoadUInt64(40).ShouldBe(ulong.MaxValue, "adding 2^64-1 subtracts one");
    }

    [Fact]
    public void ConcurrentFetchAddsFromSeveralThreadsEachGetADistinctTicket()
    {
        const int threadCount = 4;
        const int addsPerThread = 5_000;
        var region = CreateRegion();
        var tickets = new ulong[threadCount][];
        using var start = new Barrier(threadCount);
        var threads = Enumerable.Range(0, threadCount).Select(t => new Thread(() =>
        {
            var mine = new ulong[addsPerThread];
            start.SignalAndWait();
            for (int i = 0; i < addsPerThread; i++)
            {
                mine[i] = region.FetchAddUInt64(128, 1);
            }

            tickets[t] = mine;
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        var all = tickets.SelectMany(t => t).ToList();
        all.Distinct().Count().ShouldBe(threadCount * addsPerThread, "no two fetch-adds may return the same old value");
        all.Max().ShouldBe((ulong)(threadCount * addsPerThread - 1), "the tickets are exactly 0 .. n-1");
        region.LoadUInt64(128).ShouldBe((ulong)(threadCount * addsPerThread), "no increment is lost");
    }

    [Fact]
    public void ConcurrentCompareExchangeIncrementsLoseNoUpdate()
    {
        const int threadCount = 4;
        const int incrementsPerThread = 2_000;
        var region = CreateRegion();
        var threads = Enumerable.Range(0, threadCount).Select(_ => new Thread(() =>
        {
            for (int i = 0; i < incrementsPerThread; i++)
            {
                ulong seen = region.LoadUInt64(256);
                for (int attempt = 0; ; attempt++)
                {
                    attempt.ShouldBeLessThan(1_000_000, "a CAS retry loop must make progress");
                    ulong found = region.CompareExchangeUInt64(256, seen, seen + 1);
                    if (found == seen)
                    {
                        break;
                    }

                    seen = found;
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        region.LoadUInt64(256).ShouldBe((ulong)(threadCount * incrementsPerThread), "CAS loops lose no increment");
    }

    [Theory]
    [InlineData(0, 64)]
    [InlineData(3, 1)]
    [InlineData(5, 13)]
    [InlineData(8, 8)]
    [InlineData(61, 7)]
    [InlineData(1, 4093)]
    public void BulkWriteThenReadRoundTripsAtAnyAlignment(long offset, int length)
    {
        var region = CreateRegion();
        var data = new byte[length];
        new Random(length).NextBytes(data);
        region.Write(offset, data);

        var back = new byte[length];
        region.Read(offset, back);
        back.ShouldBe(data, "a read returns exactly the bytes written");

        var before = new byte[1];
        if (offset > 0)
        {
            region.Read(offset - 1, before);
            before[0].ShouldBe((byte)0, "a write touches no byte before its range");
        }

        var after = new byte[1];
        region.Read(offset + length, after);
        after[0].ShouldBe((byte)0, "a write touches no byte after its range");
    }

    [Fact]
    public void BulkWriteAndWordStoresShareLittleEndianBytes()
    {
        var region = CreateRegion();
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 0x0102_0304_0506_0708);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(8), 0x1112_1314_1516_1718);
        region.Write(48, bytes);
        region.LoadUInt64(48).ShouldBe(0x0102_0304_0506_0708UL, "bytes and words are one little-endian image");
        region.LoadUInt64(56).ShouldBe(0x1112_1314_1516_1718UL, "bytes and words are one little-endian image");

        region.StoreUInt64(48, 0xAABB_CCDD_EEFF_0011);
        var back = new byte[3];
        region.Read(49, back);
        back.ShouldBe(new byte[] { 0x00, 0xFF, 0xEE }, "a read of a stored word sees its little-endian bytes");
    }

    [Fact]
    public void PersistAcceptsEveryRangeInsideTheRegion()
    {
        var region = CreateRegion();
        region.StoreUInt64(4096 + 8, 42);
        region.Persist(4096 + 8, 8);
        region.Persist(3, 5000);
        region.Persist(RegionBytes, 0);
        region.Persist(0, RegionBytes);
        region.PersistAll();
        region.LoadUInt64(4096 + 8).ShouldBe(42UL, "persisting does not change what loads see");
    }

    public static TheoryData<string, long, long> OutsideRanges => new()
    {
        { "negative offset", -1, 8 },
        { "offset past the end", RegionBytes + 8, 0 },
        { "range crossing the end", RegionBytes - 4, 8 },
        { "offset at long.MinValue", long.MinValue, 8 },
        { "huge length that would overflow offset + length", 8, long.MaxValue },
        { "negative length", 8, -8 },
    };

    [Theory]
    [MemberData(nameof(OutsideRanges))]
    public void RangesOutsideTheRegionThrowArgumentOutOfRange(string what, long offset, long length)
    {
        var region = CreateRegion();
        Should.Throw<ArgumentOutOfRangeException>(() => region.Persist(offset, length), $"Persist must reject a {what}");
        if (length is >= 0 and <= 64)
        {
            var buffer = new byte[length];
            Should.Throw<ArgumentOutOfRangeException>(() => region.Read(offset, buffer), $"Read must reject a {what}");
            Should.Throw<ArgumentOutOfRangeException>(() => region.Write(offset, buffer), $"Write must reject a {what}");
        }
    }

    [Theory]
    [InlineData(-8)]
    [InlineData(RegionBytes)]
    [InlineData(RegionBytes - 4)]
    [InlineData(long.MaxValue - 7)]
    public void WordAccessesOutsideTheRegionThrowArgumentOutOfRange(long offset)
    {
        var region = CreateRegion();
        var e = Should.Throw<ArgumentOutOfRangeException>(() => region.LoadUInt64(offset), "a load outside the region is refused");
        e.Message.ShouldContain(offset.ToString(), customMessage: "the message names the offending offset");
        Should.Throw<ArgumentOutOfRangeException>(() => region.StoreUInt64(offset, 1), "a store outside the region is refused");
        Should.Throw<ArgumentOutOfRangeException>(() => region.CompareExchangeUInt64(offset, 0, 1), "a CAS outside the region is refused");
        Should.Throw<ArgumentOutOfRangeException>(() => region.FetchAddUInt64(offset, 1), "a fetch-add outside the region is refused");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(7)]
    [InlineData(4095)]
    public void MisalignedWordAccessesThrowNvmAlignmentException(long offset)
    {
        var region = CreateRegion();
        Should.Throw<NvmAlignmentException>(() => region.LoadUInt64(offset), "8-byte atomics need aligned words")
            .Offset.ShouldBe(offset, "the exception carries the misaligned offset");
        Should.Throw<NvmAlignmentException>(() => region.StoreUInt64(offset, 1), "8-byte atomics need aligned words");
        Should.Throw<NvmAlignmentException>(() => region.CompareExchangeUInt64(offset, 0, 1), "8-byte atomics need aligned words");
        Should.Throw<NvmAlignmentException>(() => region.FetchAddUInt64(offset, 1), "8-byte atomics need aligned words");
        region.LoadUInt64(offset & ~7L).ShouldBe(0UL, "a refused access changes nothing");
    }

    [Fact]
    public void EmptyReadsAndWritesAtTheVeryEndAreAllowed()
    {
        var region = CreateRegion();
        region.Read(RegionBytes, Span<byte>.Empty);
        region.Write(RegionBytes, ReadOnlySpan<byte>.Empty);
        region.Persist(RegionBytes, 0);
    }

    [Fact]
    public void EveryCallAfterDisposeThrowsObjectDisposedException()
    {
        var region = CreateRegion();
        region.Dispose();
        region.Dispose();
        Should.Throw<ObjectDisposedException>(() => region.LoadUInt64(0), "a disposed region refuses loads");
        Should.Throw<ObjectDisposedException>(() => region.StoreUInt64(0, 1), "a disposed region refuses stores");
        Should.Throw<ObjectDisposedException>(() => region.CompareExchangeUInt64(0, 0, 1), "a disposed region refuses CAS");
        Should.Throw<ObjectDisposedException>(() => region.FetchAddUInt64(0, 1), "a disposed region refuses fetch-add");
        Should.Throw<ObjectDisposedException>(() => region.Read(0, new byte[8]), "a disposed region refuses reads");
        Should.Throw<ObjectDisposedException>(() => region.Write(0, new byte[8]), "a disposed region refuses writes");
        Should.Throw<ObjectDisposedException>(() => region.Persist(0, 8), "a disposed region refuses persists");
    }
}

public sealed class SimulatedNvmContractTests : NvmRegionContractTests
{
    protected override INvmRegion CreateRegionCore(long lengthBytes) => new SimulatedNvm(lengthBytes);
}

public sealed class MappedFileNvmLibpmemContractTests : NvmRegionContractTests
{
    private readonly TempDirectory _directory = new();

    protected override INvmRegion CreateRegionCore(long lengthBytes)
    {
        Assert.SkipUnless(NvmRegions.IsLibpmemAvailable, $"libpmem backend not testable: {NvmRegions.LibpmemUnavailableReason}");
        var region = MappedFileNvm.Create(_directory.File($"{Guid.NewGuid():N}.nvm"), lengthBytes, NvmBackendRequest.Libpmem);
        region.Backend.ShouldBe(MappedFileNvm.LibpmemBackend, "these tests exercise the libpmem backend");
        return region;
    }

    public override void Dispose()
    {
        base.Dispose();
        _directory.Dispose();
    }
}

public sealed class MappedFileNvmMsyncContractTests : NvmRegionContractTests
{
    private readonly TempDirectory _directory = new();

    protected override INvmRegion CreateRegionCore(long lengthBytes)
    {
        var region = MappedFileNvm.Create(_directory.File($"{Guid.NewGuid():N}.nvm"), lengthBytes, NvmBackendRequest.Msync);
        region.Backend.ShouldBe(MappedFileNvm.MsyncBackend, "these tests exercise the mmap + msync fallback");
        return region;
    }

    public override void Dispose()
    {
        base.Dispose();
        _directory.Dispose();
    }
}
