namespace RAllocator.Protocol.Tests;

/// <summary>The adaptive slab-sizing policy's rules (spec/slab-sizing.md), one by one, and the heap acting on them.</summary>
public sealed class SlabSizingTests
{
    private const ulong Base = 64 * 1024;
    private static readonly AdaptiveSlabSizing s_policy = new();

    private static SlabSizingContext Context(long allocationsSince = 0, int lastSpanClass = 0, long lastCapacity = 1000, long liveBytes = 0, long heldBytes = 0,
        int minSpanClass = 0, int maxSpanClass = 4) =>
        new(SizeClass: 5, ObjectSizeBytes: 64, BaseSlabBytes: Base, minSpanClass, maxSpanClass, allocationsSince, lastSpanClass, lastCapacity, liveBytes, heldBytes);

    [Fact]
    public void AClassStartsWithTheSmallestSlabThatHoldsItsObject() =>
        s_policy.ChooseSpanClass(Context(lastSpanClass: -1, minSpanClass: 2)).ShouldBe(2);

    [Fact]
    public void AClassThatUsedUpItsSlabWithNewAllocationsDoublesIt() =>
        s_policy.ChooseSpanClass(Context(allocationsSince: 1000, lastSpanClass: 1, liveBytes: 100L << 20, heldBytes: 101L << 20)).ShouldBe(2);

    [Fact]
    public void AClassThatNeededASlabAfterFewAllocationsHalvesIt() =>
        s_policy.ChooseSpanClass(Context(allocationsSince: 100, lastSpanClass: 3, liveBytes: 100L << 20, heldBytes: 101L << 20)).ShouldBe(2);

    [Fact]
    public void InBetweenTheSpanStays() =>
        s_policy.ChooseSpanClass(Context(allocationsSince: 500, lastSpanClass: 3, liveBytes: 100L << 20, heldBytes: 101L << 20)).ShouldBe(3);

    [Fact]
    public void AClassWhoseSlabsAreMostlyHolesTakesTheSmallestSlab() =>
        s_policy.ChooseSpanClass(Context(allocationsSince: 5000, lastSpanClass: 3, liveBytes: 10L << 20, heldBytes: 30L << 20, minSpanClass: 1)).ShouldBe(1);

    [Fact]
    public void GrowthIsCappedByHalfTheLiveBytes()
    {
        // Doubling would give class 4 (1 MiB), but the class holds only 600 KiB live: at most 300 KiB, so 256 KiB (class 2).
        s_policy.ChooseSpanClass(Context(allocationsSince: 2000, lastSpanClass: 3, liveBytes: 600 * 1024, heldBytes: 700 * 1024)).ShouldBe(2);
    }

    [Fact]
    public void FixedSizingClampsToWhatTheObjectNeedsAndTheBladesServe()
    {
        new FixedSlabSizing(0).ChooseSpanClass(Context(minSpanClass: 2)).ShouldBe(2);
        new FixedSlabSizing(6).ChooseSpanClass(Context(maxSpanClass: 4)).ShouldBe(4);
    }

    [Fact]
    public async Task UnderTheAdaptivePolicyAGrowingClassTakesLargerSlabsAndASparseOneStaysSmall()
    {
        var blade = EmbeddedBlade.Format(0, new SimulatedNvm(64 << 20), Base,
            new BladeFormatOptions { MaxNodes = 2, RingCapacity = 16, MaxSlabSpan = 16, SpanRingCapacity = 2 });
        using var stop = new CancellationTokenSource();
        var agent = blade.RunAgentAsync(stop.Token);
        try
        {
            var heap = await EmbeddedNode.OpenHeapAsync([blade], 1, new HeapOptions { SlabSizing = new AdaptiveSlabSizing() },
                new ProtocolOptions { RingReadRetryLimit = 20000 });
            for (int i = 0; i < 3; i++)
            {
                await heap.AllocateAsync(4000); // a sparse class: three objects, one small slab
            }

            for (int i = 0; i < 200_000; i++)
            {
                await heap.AllocateAsync(64); // a growing class: 12.5 MiB of objects
            }

            var stats = heap.GetStatistics();
            stats.SlabsBySpanClass![4].ShouldBeGreaterThan(0, "the growing class reached 1 MiB slabs");
            stats.SlabsAcquired.ShouldBeLessThan(200_000 * 64 / (long)Base / 2, "fewer than half the acquisitions of 64 KiB slabs");
            stats.Fragmentation.ShouldBeLessThan(0.35);
        }
        finally
        {
            await stop.CancelAsync();
            await agent;
        }
    }
}
