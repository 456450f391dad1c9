using static RAllocator.Fabric.Tests.Fixtures;

namespace RAllocator.Fabric.Tests;

/// <summary>The counters charge exactly what the same calls would cost on hardware.</summary>
public sealed class LoopbackCountingTests
{
    [Fact]
    public async Task FetchAddFollowedByReadCostsTwoRoundTrips()
    {
        var (fabric, _) = NewFabric();
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        await connection.FetchAddAsync(0, 1);
        await connection.ReadAsync(64, new byte[64]);

        connection.Counters.Snapshot().ShouldBe(
            new FabricCounterSnapshot(RoundTrips: 2, Reads: 1, Writes: 0, FetchAdds: 1, CompareSwaps: 0, Persists: 0,
                UnsignaledPosts: 0, BytesToBlade: 8, BytesFromBlade: 8 + 64),
            "each awaited verb is one round trip; FAA moves 8 bytes each way, READ its length back");
    }

    public static TheoryData<FabricVerb> SingleVerbs => [.. Enum.GetValues<FabricVerb>()];

    [Theory]
    [MemberData(nameof(SingleVerbs))]
    public async Task EachAwaitedVerbCountsItsVerbOneRoundTripAndItsPayload(FabricVerb verb)
    {
        var (fabric, _) = NewFabric();
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        var expected = verb switch
        {
            FabricVerb.Read => new FabricCounterSnapshot(1, Reads: 1, 0, 0, 0, 0, 0, BytesToBlade: 0, BytesFromBlade: 32),
            FabricVerb.Write => new FabricCounterSnapshot(1, 0, Writes: 1, 0, 0, 0, 0, BytesToBlade: 24, BytesFromBlade: 0),
            FabricVerb.FetchAdd => new FabricCounterSnapshot(1, 0, 0, FetchAdds: 1, 0, 0, 0, BytesToBlade: 8, BytesFromBlade: 8),
            FabricVerb.CompareSwap => new FabricCounterSnapshot(1, 0, 0, 0, CompareSwaps: 1, 0, 0, BytesToBlade: 16, BytesFromBlade: 8),
            FabricVerb.Persist => new FabricCounterSnapshot(1, 0, 0, 0, 0, Persists: 1, 0, BytesToBlade: 0, BytesFromBlade: 0),
            _ => throw new ArgumentOutOfRangeException(nameof(verb)),
        };

        switch (verb)
        {
            case FabricVerb.Read: await connection.ReadAsync(0, new byte[32]); break;
            case FabricVerb.Write: await connection.WriteAsync(0, new byte[24]); break;
            case FabricVerb.FetchAdd: await connection.FetchAddAsync(0, 1); break;
            case FabricVerb.CompareSwap: await connection.CompareSwapAsync(0, 0, 1); break;
            case FabricVerb.Persist: await connection.PersistAsync(0, 4096); break;
        }

        connection.Counters.Snapshot().ShouldBe(expected, $"{verb} must count its verb, one round trip and exactly its payload");
    }

    [Fact]
    public async Task SignaledBatchCountsEachVerbAndItsBytesButOneRoundTrip()
    {
        var (fabric, _) = NewFabric();
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        await connection.CreateBatch().Write(0, new byte[16]).Write(64, new byte[8]).Persist(0, 72).PostAndWaitAsync();

        connection.Counters.Snapshot().ShouldBe(
            new FabricCounterSnapshot(RoundTrips: 1, Reads: 0, Writes: 2, FetchAdds: 0, CompareSwaps: 0, Persists: 1,
                UnsignaledPosts: 0, BytesToBlade: 24, BytesFromBlade: 0),
            "a signaled batch is one completion however many verbs it carries");
    }

    [Fact]
    public async Task UnsignaledWriteAndPersistBatchCostsNoRoundTrip()
    {
        var (fabric, _) = NewFabric();
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        await connection.CreateBatch().Write(128, new byte[40]).Persist(128, 40).PostUnsignaled();

        connection.Counters.Snapshot().ShouldBe(
            new FabricCounterSnapshot(RoundTrips: 0, Reads: 0, Writes: 1, FetchAdds: 0, CompareSwaps: 0, Persists: 1,
                UnsignaledPosts: 1, BytesToBlade: 40, BytesFromBlade: 0),
            "an unsignaled batch counts its verbs and one unsignaled post, and no round trip");
    }

    [Fact]
    public async Task EmptyBatchCostsNothing()
    {
        var (fabric, _) = NewFabric();
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        await connection.CreateBatch().PostAndWaitAsync();
        await connection.CreateBatch().PostUnsignaled();

        connection.Counters.Snapshot().ShouldBe(default, "posting no work requests produces no completion and no traffic");
    }

    [Fact]
    public async Task EachConnectionCountsOnlyItsOwnTraffic()
    {
        var (fabric, _) = NewFabric();
        await using var first = fabric.Connect(0, FabricAccess.Unrestricted);
        await using var second = fabric.Connect(0, FabricAccess.Unrestricted);

        await first.FetchAddAsync(0, 1);

        second.Counters.Snapshot().ShouldBe(default, "counters are per connection, like per-queue-pair statistics");
        first.Counters.Snapshot().RoundTrips.ShouldBe(1);
    }

    [Fact]
    public async Task RejectedVerbCountsItsVerbAndRoundTripButNoBytes()
    {
        var (fabric, _) = NewFabric();
        await using var connection = fabric.Connect(0, Writable((0, 64)));

        await Should.ThrowAsync<FabricException>(async () => await connection.WriteAsync(1024, new byte[16]));

        connection.Counters.Snapshot().ShouldBe(
            new FabricCounterSnapshot(RoundTrips: 1, Reads: 0, Writes: 1, FetchAdds: 0, CompareSwaps: 0, Persists: 0,
                UnsignaledPosts: 0, BytesToBlade: 0, BytesFromBlade: 0),
            "a verb the blade rejects reached it and cost a round trip, but moved no payload");
    }

    [Fact]
    public async Task OperationsThatNeverLeaveTheNodeCountNothing()
    {
        var (fabric, _) = NewFabric();
        var connection = fabric.Connect(0, FabricAccess.Unrestricted);
        fabric.SetReachable(false);

        await Should.ThrowAsync<FabricException>(async () => await connection.FetchAddAsync(0, 1));
        await Should.ThrowAsync<FabricException>(async () => await connection.CreateBatch().Write(0, new byte[8]).PostAndWaitAsync());
        fabric.SetReachable(true);
        await connection.DisposeAsync();
        await Should.ThrowAsync<FabricException>(async () => await connection.ReadAsync(0, new byte[8]));

        connection.Counters.Snapshot().ShouldBe(default, "an unreachable or closed connection sends nothing, so it costs nothing");
    }
}
