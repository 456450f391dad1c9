namespace RAllocator.Fabric.Ucx.Tests;

/// <summary>The counters follow LoopbackConnection's rules, so cost models hold across fabrics.</summary>
public sealed class UcxCountingTests
{
    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Each_awaited_verb_is_one_round_trip_with_its_payload_bytes(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(Bytes.Writable((0, 4096)));

        await connection.ReadAsync(0, new byte[100]);
        await connection.WriteAsync(0, new byte[40]);
        await connection.FetchAddAsync(8, 1);
        await connection.CompareSwapAsync(16, 0, 1);
        await connection.PersistAsync(0, 64);

        connection.Counters.Snapshot().ShouldBe(new FabricCounterSnapshot(
            RoundTrips: 5, Reads: 1, Writes: 1, FetchAdds: 1, CompareSwaps: 1, Persists: 1,
            UnsignaledPosts: 0, BytesToBlade: 40 + 8 + 16, BytesFromBlade: 100 + 8 + 8));
    }

    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Batches_count_one_round_trip_when_signaled_and_none_when_unsignaled(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(Bytes.Writable((0, 4096)));

        await connection.CreateBatch().Write(0, new byte[10]).Write(10, new byte[20]).Persist(0, 30).PostAndWaitAsync();
        await connection.CreateBatch().Write(100, new byte[5]).Persist(100, 5).PostUnsignaled();

        connection.Counters.Snapshot().ShouldBe(new FabricCounterSnapshot(
            RoundTrips: 1, Reads: 0, Writes: 3, FetchAdds: 0, CompareSwaps: 0, Persists: 2,
            UnsignaledPosts: 1, BytesToBlade: 35, BytesFromBlade: 0));
    }

    [Fact]
    public async Task A_refused_verb_counts_its_verb_and_round_trip_but_no_bytes()
    {
        await using var blade = new UcxBlade("tcp");
        var connection = blade.Connect(Bytes.Writable((0, 8)));

        await Should.ThrowAsync<FabricException>(async () => await connection.WriteAsync(64, new byte[8]));
        await Should.ThrowAsync<FabricException>(async () => await connection.FetchAddAsync(3, 1));

        connection.Counters.Snapshot().ShouldBe(new FabricCounterSnapshot(
            RoundTrips: 2, Reads: 0, Writes: 1, FetchAdds: 1, CompareSwaps: 0, Persists: 0,
            UnsignaledPosts: 0, BytesToBlade: 0, BytesFromBlade: 0));
    }
}
