using System.Buffers.Binary;

namespace RAllocator.Nvm.Tests;

/// <summary>The fault model written at the top of SimulatedNvm.cs, one clause per test.</summary>
public sealed class SimulatedNvmTests
{
    [Fact]
    public void AnUnpersistedStoreIsLostOnCrashKeepingNone()
    {
        using var nvm = new SimulatedNvm(256);
        nvm.StoreUInt64(8, 42);
        nvm.LoadUInt64(8).ShouldBe(42UL, "loads see unpersisted stores");

        nvm.CrashKeepingNone();

        nvm.LoadUInt64(8).ShouldBe(0UL, "a store never persisted is lost when no pending store survives");
        nvm.PendingStores.ShouldBeEmpty("a crash drops every pending store");
        nvm.CrashCount.ShouldBe(1L, "the crash is counted");
    }

    [Fact]
    public void APersistedStoreSurvivesEveryCrash()
    {
        using var nvm = new SimulatedNvm(256);
        nvm.StoreUInt64(8, 42);
        nvm.Persist(8, 8);
        nvm.PendingStores.ShouldBeEmpty("Persist makes the covered store durable");

        nvm.CrashKeepingNone();
        nvm.LoadUInt64(8).ShouldBe(42UL, "a persisted store survives a crash that keeps nothing");
        nvm.Crash(seed: 7);
        nvm.LoadUInt64(8).ShouldBe(42UL, "a persisted store survives any crash");
    }

    [Fact]
    public void CrashKeepingAllMakesTheVisibleImageDurable()
    {
        using var nvm = new SimulatedNvm(256);
        nvm.StoreUInt64(0, 1);
        nvm.Write(13, [9, 9, 9]);
        var visible = new byte[256];
        nvm.Read(0, visible);

        nvm.CrashKeepingAll();

        nvm.DurableImageCopy().ShouldBe(visible, "keeping every pending store makes the whole visible image durable");
    }

    [Fact]
    public void AtomicResultsArePendingUntilPersisted()
    {
        using var nvm = new SimulatedNvm(256);
        nvm.CompareExchangeUInt64(0, 0, 5).ShouldBe(0UL, "the CAS succeeds");
        nvm.FetchAddUInt64(8, 3).ShouldBe(0UL, "the fetch-add returns the old value");
        nvm.PendingStores.Select(s => (s.Offset, s.Value)).ShouldBe(
            [(0L, 5UL), (8L, 3UL)],
            "a successful CAS and a fetch-add are stores like any other");

        nvm.CrashKeepingNone();
        nvm.LoadUInt64(0).ShouldBe(0UL, "an unpersisted CAS result is lost");
        nvm.LoadUInt64(8).ShouldBe(0UL, "an unpersisted fetch-add result is lost");
    }

    [Fact]
    public void AFailedCompareExchangeRecordsNoStore()
    {
        using var nvm = new SimulatedNvm(64);
        nvm.CompareExchangeUInt64(0, expected: 1, desired: 2).ShouldBe(0UL, "the CAS fails on a zero word");
        nvm.PendingStores.ShouldBeEmpty("a failed CAS writes nothing");
    }

    [Fact]
    public void CrashWithAnExplicitSubsetKeepsExactlyTheChosenWords()
    {
        using var nvm = new SimulatedNvm(512);
        for (int word = 0; word < 8; word++)
        {
            nvm.StoreUInt64(word * 64, (ulong)(100 + word));
        }

        nvm.PendingStores.Select(s => s.Index).ShouldBe(Enumerable.Range(0, 8), "pending stores are indexed in program order");
        nvm.Crash([1, 4, 6]);

        for (int word = 0; word < 8; word++)
        {
            ulong expected = word is 1 or 4 or 6 ? (ulong)(100 + word) : 0UL;
            nvm.LoadUInt64(word * 64).ShouldBe(expected, $"word {word} is durable exactly when its store was chosen");
        }
    }

    [Fact]
    public void CrashRejectsAnIndexThatIsNotPending()
    {
        using var nvm = new SimulatedNvm(64);
        nvm.StoreUInt64(0, 1);
        Should.Throw<ArgumentOutOfRangeException>(() => nvm.Crash([1]), "only existing pending stores can be kept");
        nvm.PendingStores.Count.ShouldBe(1, "a rejected crash changes nothing");
        nvm.CrashCount.ShouldBe(0L, "a rejected crash is not counted");
    }

    [Fact]
    public void TheLatestKeptStoreOfAWordWins()
    {
        foreach (var (kept, expected) in new (int[] Kept, ulong Expected)[]
                 {
                     ([0], 10), ([0, 1], 20), ([1, 0], 20), ([0, 2], 30), ([2, 1], 30), ([], 0),
                 })
        {
            using var nvm = new SimulatedNvm(64);
            nvm.StoreUInt64(16, 10);
            nvm.StoreUInt64(16, 20);
            nvm.StoreUInt64(16, 30);
            nvm.Crash(kept);
            nvm.LoadUInt64(16).ShouldBe(expected, $"keeping [{string.Join(", ", kept)}] leaves the latest kept store in program order");
        }
    }

    [Fact]
    public void APartialWordWriteIsRecordedAsTheWholeResultingWord()
    {
        using var nvm = new SimulatedNvm(64);
        nvm.StoreUInt64(0, 0x1111_1111_1111_1111);
        nvm.Persist(0, 8);

        nvm.Write(2, [0xAA, 0xBB]);

        var store = nvm.PendingStores.ShouldHaveSingleItem("a write inside one word records one store");
        store.Offset.ShouldBe(0L, "the store is of the whole aligned word");
        store.Value.ShouldBe(0x1111_1111_BBAA_1111UL, "the store carries the old bytes merged with the new ones");
    }

    [Fact]
    public void AWordIsNeverHalfOldAndHalfNewAfterACrash()
    {
        const ulong old0 = 0x0000_0000_0000_0000, old1 = 0x0101_0101_0101_0101;
        var newBytes = Enumerable.Repeat((byte)0xEE, 12).ToArray();
        for (int subset = 0; subset < 4; subset++)
        {
            using var nvm = new SimulatedNvm(64);
            nvm.StoreUInt64(8, old1);
            nvm.Persist(0, 64);

            // 12 bytes from offset 2: the tail of word 0 and most of word 1, one pending store each.
            nvm.Write(2, newBytes);
            nvm.PendingStores.Select(s => s.Offset).ShouldBe([0L, 8L], "each touched word is one pending store");
            nvm.Crash(Enumerable.Range(0, 2).Where(i => (subset & (1 << i)) != 0));

            ulong word0 = nvm.LoadUInt64(0), word1 = nvm.LoadUInt64(8);
            word0.ShouldBeOneOf([old0, 0xEEEE_EEEE_EEEE_0000UL], "word 0 is wholly old or wholly new, never torn");
            word1.ShouldBeOneOf([old1, 0x0101_EEEE_EEEE_EEEEUL], "word 1 is wholly old or wholly new, never torn");
            (word0 != old0).ShouldBe((subset & 1) != 0, "word 0 is new exactly when its store was kept");
            (word1 != old1).ShouldBe((subset & 2) != 0, "word 1 is new exactly when its store was kept");
        }
    }

    [Fact]
    public void PersistFlushesEveryPendingStoreInTheCoveringLinesAndNothingElse()
    {
        using var nvm = new SimulatedNvm(256);
        nvm.StoreUInt64(0, 1);    // line 0
        nvm.StoreUInt64(56, 2);   // line 0
        nvm.StoreUInt64(64, 3);   // line 1
        nvm.StoreUInt64(192, 4);  // line 3

        nvm.Persist(60, 1);       // one byte in line 0

        nvm.PendingStores.Select(s => s.Offset).ShouldBe([64L, 192L], "only stores in line 0 leave the pending list");
        nvm.PendingStores.Select(s => s.Index).ShouldBe([0, 1], "the remaining pending stores are re-indexed from 0");
        nvm.CrashKeepingNone();
        nvm.LoadUInt64(0).ShouldBe(1UL, "a store in a flushed line is durable even outside the persisted bytes");
        nvm.LoadUInt64(56).ShouldBe(2UL, "every store in a flushed line is durable");
        nvm.LoadUInt64(64).ShouldBe(0UL, "a store in an unflushed line is not");
        nvm.LoadUInt64(192).ShouldBe(0UL, "a store in an unflushed line is not");
    }

    [Fact]
    public void PersistAcrossALineBoundaryFlushesBothLines()
    {
        using var nvm = new SimulatedNvm(256);
        nvm.StoreUInt64(0, 1);
        nvm.StoreUInt64(120, 2);
        nvm.StoreUInt64(128, 3);
        nvm.Persist(62, 4);
        nvm.PendingStores.Select(s => s.Offset).ShouldBe([128L], "bytes 62..65 cover lines 0 and 1, not line 2");
    }

    [Fact]
    public void TheBeforePersistHookFiresWithIncreasingIndicesBeforeAnythingIsFlushed()
    {
        using var nvm = new SimulatedNvm(256);
        var seen = new List<(long Index, int Pending)>();
        nvm.BeforePersist = index => seen.Add((index, nvm.PendingStores.Count));

        nvm.StoreUInt64(0, 1);
        nvm.Persist(0, 8);
        nvm.Persist(0, 0);
        nvm.StoreUInt64(64, 2);
        nvm.Persist(64, 8);

        seen.ShouldBe([(0L, 1), (1L, 0), (2L, 1)], "the hook sees persist indices 0, 1, 2 and the stores not yet flushed");
        nvm.PersistCount.ShouldBe(3L, "every Persist call is counted, even an empty one");
    }

    [Fact]
    public void APowerFailureThrownFromTheHookLeavesThatPersistsStoresPending()
    {
        using var nvm = new SimulatedNvm(256);
        nvm.BeforePersist = index =>
        {
            if (index == 1)
            {
                throw new SimulatedPowerFailure(index);
            }
        };

        nvm.StoreUInt64(0, 1);
        nvm.Persist(0, 8);
        nvm.StoreUInt64(8, 2);
        Should.Throw<SimulatedPowerFailure>(() => nvm.Persist(8, 8), "the hook's failure propagates out of Persist")
            .PersistIndex.ShouldBe(1L, "the failure names its persist point");

        nvm.PendingStores.Select(s => (s.Offset, s.Value)).ShouldBe([(8L, 2UL)], "the interrupted persist flushed nothing");
        nvm.CrashKeepingNone();
        nvm.LoadUInt64(0).ShouldBe(1UL, "the persist before the crash point is durable");
        nvm.LoadUInt64(8).ShouldBe(0UL, "the store of the interrupted persist is lost");
    }

    [Fact]
    public void CrashingAtEachPersistPointKeepsExactlyTheEarlierSteps()
    {
        const int steps = 4;
        for (int crashPoint = 0; crashPoint <= steps; crashPoint++)
        {
            using var nvm = new SimulatedNvm(512);
            int k = crashPoint;
            nvm.BeforePersist = index =>
            {
                if (index == k)
                {
                    throw new SimulatedPowerFailure(index);
                }
            };

            try
            {
                for (int step = 0; step < steps; step++)
                {
                    nvm.StoreUInt64(step * 64, (ulong)step + 1);
                    nvm.Persist(step * 64, 8);
                }
            }
            catch (SimulatedPowerFailure)
            {
            }

            nvm.CrashKeepingNone();
            for (int step = 0; step < steps; step++)
            {
                nvm.LoadUInt64(step * 64).ShouldBe(
                    step < crashPoint ? (ulong)step + 1 : 0UL,
                    $"crashing at persist point {crashPoint}: step {step} is durable exactly when its persist completed");
            }
        }
    }

    [Fact]
    public void TheSameSeedGivesTheSameCrashState()
    {
        static byte[] CrashWith(int seed)
        {
            using var nvm = new SimulatedNvm(1024);
            for (int i = 0; i < 128; i++)
            {
                nvm.StoreUInt64(i * 8, (ulong)i + 1);
            }

            nvm.Crash(seed);
            return nvm.DurableImageCopy();
        }

        CrashWith(12345).ShouldBe(CrashWith(12345), "a crash is reproducible from its seed");
        CrashWith(1).ShouldNotBe(CrashWith(2), "different seeds choose different subsets of 128 stores");
        int kept = Enumerable.Range(0, 128).Count(i => BitConverter.ToUInt64(CrashWith(12345), i * 8) != 0);
        kept.ShouldBeInRange(32, 96, "each store is kept with probability 1/2");
    }

    [Fact]
    public void ACrashIsARestartAfterWhichTheRegionStaysUsable()
    {
        using var nvm = new SimulatedNvm(128);
        nvm.StoreUInt64(0, 1);
        nvm.Crash(seed: 3);
        nvm.Crash(seed: 4);

        nvm.StoreUInt64(64, 9);
        nvm.Persist(64, 8);
        nvm.CrashKeepingNone();

        nvm.LoadUInt64(64).ShouldBe(9UL, "stores after a restart persist as before");
        nvm.CrashCount.ShouldBe(3L, "every crash is counted");
        var visible = new byte[128];
        nvm.Read(0, visible);
        visible.ShouldBe(nvm.DurableImageCopy(), "after a crash the visible image is the durable image");
    }

    [Fact]
    public void FromDurableImageStartsOnACopyOfThatImage()
    {
        var image = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(8), 77);
        using var nvm = SimulatedNvm.FromDurableImage(image);
        image[8] = 0;

        nvm.LoadUInt64(8).ShouldBe(77UL, "the region starts on the image, copied");
        nvm.PendingStores.ShouldBeEmpty("a restarted image has nothing pending");
        nvm.CrashKeepingNone();
        nvm.LoadUInt64(8).ShouldBe(77UL, "the image is durable");

        var copy = nvm.DurableImageCopy();
        copy[8] = 1;
        nvm.DurableImageCopy()[8].ShouldBe((byte)77, "DurableImageCopy returns a copy");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-8)]
    [InlineData(12)]
    public void LengthsThatAreNotAPositiveMultipleOfEightAreRejected(long length)
    {
        Should.Throw<ArgumentOutOfRangeException>(() => new SimulatedNvm(length), "the region is made of whole 8-byte words");
    }

    [Fact]
    public void ManyThreadsStoringAndPersistingLeaveAConsistentImage()
    {
        const int threadCount = 4;
        const int wordsPerThread = 64;
        using var nvm = new SimulatedNvm(threadCount * wordsPerThread * 8);
        var threads = Enumerable.Range(0, threadCount).Select(t => new Thread(() =>
        {
            for (int i = 0; i < wordsPerThread; i++)
            {
                long offset = (t * wordsPerThread + i) * 8L;
                nvm.StoreUInt64(offset, (ulong)offset + 1);
                nvm.Persist(offset, 8);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        nvm.PendingStores.ShouldBeEmpty("every store was persisted by its own thread");
        nvm.PersistCount.ShouldBe((long)threadCount * wordsPerThread, "every Persist was counted once");
        nvm.CrashKeepingNone();
        for (long offset = 0; offset < nvm.Length; offset += 8)
        {
            nvm.LoadUInt64(offset).ShouldBe((ulong)offset + 1, "every persisted word survives");
        }
    }
}
