using static RAllocator.Fabric.Tests.Fixtures;

namespace RAllocator.Fabric.Tests;

/// <summary>What each one-sided verb does to the blade's region.</summary>
public sealed class LoopbackVerbTests
{
    [Fact]
    public async Task ReadReturnsTheBytesStoredAtTheOffset()
    {
        var (fabric, region) = NewFabric();
        var stored = Pattern(48, seed: 7);
        region.Write(100, stored);
        await using var connection = fabric.Connect(0, FabricAccess.ReadOnly);

        var read = new byte[48];
        await connection.ReadAsync(100, read);

        read.ShouldBe(stored, "READ must return exactly the bytes the region holds at the offset");
    }

    [Fact]
    public async Task WriteStoresTheBytesAtTheOffsetAndNowhereElse()
    {
        var (fabric, region) = NewFabric();
        var before = region.Snapshot();
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        await connection.WriteAsync(64, Pattern(16));

        var after = region.Snapshot();
        after.AsSpan(64, 16).ToArray().ShouldBe(Pattern(16), "WRITE must store its payload at its offset");
        after.AsSpan(0, 64).ToArray().ShouldBe(before.AsSpan(0, 64).ToArray(), "WRITE must not touch bytes before its range");
        after.AsSpan(80).ToArray().ShouldBe(before.AsSpan(80).ToArray(), "WRITE must not touch bytes after its range");
    }

    [Fact]
    public async Task FetchAddReturnsTheWordBeforeTheAdditionAndLeavesTheSum()
    {
        var (fabric, region) = NewFabric();
        region.StoreUInt64(8, 40);
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        var previous = await connection.FetchAddAsync(8, 2);

        previous.ShouldBe(40UL, "FETCH_AND_ADD returns the value before the addition");
        region.LoadUInt64(8).ShouldBe(42UL, "FETCH_AND_ADD leaves the sum in the word");
    }

    [Fact]
    public async Task FetchAddWrapsAroundLikeAnUnsignedWord()
    {
        var (fabric, region) = NewFabric();
        region.StoreUInt64(16, ulong.MaxValue);
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        var previous = await connection.FetchAddAsync(16, 2);

        previous.ShouldBe(ulong.MaxValue);
        region.LoadUInt64(16).ShouldBe(1UL, "the 64-bit addition wraps modulo 2^64, as the NIC's does");
    }

    [Fact]
    public async Task CompareSwapInstallsTheDesiredValueWhenTheWordHoldsTheExpectedOne()
    {
        var (fabric, region) = NewFabric();
        region.StoreUInt64(24, 5);
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        var found = await connection.CompareSwapAsync(24, expected: 5, desired: 9);

        found.ShouldBe(5UL, "CMP_AND_SWP returns the value it found");
        region.LoadUInt64(24).ShouldBe(9UL, "a matching CMP_AND_SWP installs the desired value");
    }

    [Fact]
    public async Task CompareSwapLeavesTheWordAloneWhenItHoldsAnotherValue()
    {
        var (fabric, region) = NewFabric();
        region.StoreUInt64(24, 5);
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        var found = await connection.CompareSwapAsync(24, expected: 6, desired: 9);

        found.ShouldBe(5UL, "a failed CMP_AND_SWP still returns the value it found, so the caller can retry from it");
        region.LoadUInt64(24).ShouldBe(5UL, "a mismatching CMP_AND_SWP must not change the word");
    }

    [Fact]
    public async Task PersistMakesExactlyTheRequestedRangeDurable()
    {
        var (fabric, region) = NewFabric();
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        await connection.PersistAsync(128, 64);

        region.Persists.ShouldBe([(128L, 64L)], "PERSIST must flush exactly its range at the blade, once");
    }

    [Fact]
    public async Task SignaledBatchExecutesItsVerbsInPostingOrderBeforeItCompletes()
    {
        var (fabric, region) = NewFabric();
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        await connection.CreateBatch()
            .Write(0, new byte[] { 1 })
            .Write(0, new byte[] { 2 })
            .Persist(0, 8)
            .PostAndWaitAsync();

        region.Log.ShouldBe(["write 0x0+1", "write 0x0+1", "persist 0x0+8"], "a batch executes in posting order (RC ordering)");
        region.Snapshot()[0].ShouldBe((byte)2, "the later of two writes to one byte wins, because they run in order");
    }

    [Fact]
    public void UnsignaledBatchTakesEffectBeforePostUnsignaledReturns()
    {
        var (fabric, region) = NewFabric();
        var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        var post = connection.CreateBatch().Write(256, Pattern(8)).Persist(256, 8).PostUnsignaled();

        post.IsCompletedSuccessfully.ShouldBeTrue("the loopback executes unsignaled batches synchronously");
        region.Snapshot().AsSpan(256, 8).ToArray().ShouldBe(Pattern(8), "an unsignaled write lands before the post returns");
        region.Persists.ShouldBe([(256L, 8L)], "an unsignaled persist runs before the post returns");
    }

    [Fact]
    public void EveryVerbCompletesSynchronouslyWithoutLatencyOrYielding()
    {
        var (fabric, _) = NewFabric();
        var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        bool[] completedSynchronously =
        [
            connection.ReadAsync(0, new byte[8]).IsCompletedSuccessfully,
            connection.WriteAsync(0, new byte[8]).IsCompletedSuccessfully,
            connection.FetchAddAsync(0, 1).IsCompletedSuccessfully,
            connection.CompareSwapAsync(0, 1, 2).IsCompletedSuccessfully,
            connection.PersistAsync(0, 8).IsCompletedSuccessfully,
            connection.CreateBatch().Write(0, new byte[8]).PostAndWaitAsync().IsCompletedSuccessfully,
        ];

        completedSynchronously.ShouldAllBe(
            completed => completed,
            "with default options the loopback is synchronous, which keeps runs deterministic");
    }

    [Fact]
    public async Task ConnectionReportsItsBladeAndRegionLength()
    {
        var (fabric, _) = NewFabric();
        await using IFabricConnection connection = fabric.Connect(3, FabricAccess.ReadOnly);

        connection.BladeId.ShouldBe(3, "the connection reports the blade id it was connected with");
        connection.RegionLength.ShouldBe(RegionLength, "the connection addresses the whole blade region");
    }

    [Fact]
    public async Task CancelledOperationNeverReachesTheBlade()
    {
        var (fabric, region) = NewFabric();
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Should.ThrowAsync<OperationCanceledException>(async () => await connection.FetchAddAsync(0, 1, cancelled.Token));

        region.LoadUInt64(0).ShouldBe(0UL, "an operation cancelled before it starts must not execute");
        connection.Counters.Snapshot().TotalVerbs.ShouldBe(0, "an operation cancelled before it starts costs nothing");
    }
}
