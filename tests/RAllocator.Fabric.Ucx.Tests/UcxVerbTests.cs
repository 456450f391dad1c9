namespace RAllocator.Fabric.Ucx.Tests;

public sealed class UcxVerbTests
{
    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Write_then_read_round_trips_through_the_blade_mapping(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(Bytes.Writable((4096, 4096)));
        var written = Bytes.Pattern(1000, seed: 7);

        await connection.WriteAsync(4100, written);

        var viaBlade = new byte[1000];
        blade.Region.Read(4100, viaBlade);
        viaBlade.ShouldBe(written);
        var viaFabric = new byte[1000];
        await connection.ReadAsync(4100, viaFabric);
        viaFabric.ShouldBe(written);
    }

    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Read_sees_what_the_blade_stored_anywhere_in_the_region(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(FabricAccess.ReadOnly);
        blade.Region.Write(UcxBlade.RegionLength - 16, Bytes.Pattern(16, seed: 3));

        var read = new byte[16];
        await connection.ReadAsync(UcxBlade.RegionLength - 16, read);

        read.ShouldBe(Bytes.Pattern(16, seed: 3));
    }

    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Fetch_add_returns_the_previous_value_and_adds(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(Bytes.Writable((64, 8)));
        blade.Region.StoreUInt64(64, 40);

        var previous = await connection.FetchAddAsync(64, 2);

        previous.ShouldBe(40UL);
        blade.Region.LoadUInt64(64).ShouldBe(42UL);
    }

    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Compare_swap_swaps_only_on_a_match_and_returns_the_value_found(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(Bytes.Writable((128, 64)));
        blade.Region.StoreUInt64(136, 5);

        (await connection.CompareSwapAsync(136, expected: 4, desired: 9)).ShouldBe(5UL);
        blade.Region.LoadUInt64(136).ShouldBe(5UL);

        (await connection.CompareSwapAsync(136, expected: 5, desired: 9)).ShouldBe(5UL);
        blade.Region.LoadUInt64(136).ShouldBe(9UL);
    }

    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Persist_completes_after_earlier_writes_reached_the_mapping(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(Bytes.Writable((8192, 8192)));
        var written = Bytes.Pattern(4096, seed: 11);

        await connection.CreateBatch().Write(8192, written).Persist(8192, 4096).PostAndWaitAsync();
        await connection.PersistAsync(8192, 3);

        var stored = new byte[4096];
        blade.Region.Read(8192, stored);
        stored.ShouldBe(written);
    }

    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task A_batch_lands_its_writes_in_order(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(Bytes.Writable((0, 4096)));

        // Overlapping writes: only in-order execution leaves the last one's bytes on top.
        await connection.CreateBatch()
            .Write(0, Bytes.Pattern(256, seed: 1))
            .Write(128, Bytes.Pattern(256, seed: 2))
            .Write(200, Bytes.Pattern(8, seed: 3))
            .Persist(0, 512)
            .PostAndWaitAsync();

        var expected = new byte[512];
        Bytes.Pattern(256, seed: 1).CopyTo(expected, 0);
        Bytes.Pattern(256, seed: 2).CopyTo(expected, 128);
        Bytes.Pattern(8, seed: 3).CopyTo(expected, 200);
        var stored = new byte[512];
        blade.Region.Read(0, stored);
        stored.ShouldBe(expected);
    }

    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Fetch_adds_from_two_connections_lose_no_increment(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var first = blade.Connect(Bytes.Writable((0, 8)), "first");
        var second = blade.Connect(Bytes.Writable((0, 8)), "second");
        const int PerConnection = 2000;

        async Task<List<ulong>> AddAsync(IFabricConnection connection)
        {
            await Task.Yield();
            var seen = new List<ulong>(PerConnection);
            for (var i = 0; i < PerConnection; i++)
            {
                seen.Add(await connection.FetchAddAsync(0, 1));
            }

            return seen;
        }

        var results = await Task.WhenAll([Task.Run(() => AddAsync(first)), Task.Run(() => AddAsync(second))]);

        blade.Region.LoadUInt64(0).ShouldBe(2UL * PerConnection);
        // Every previous value handed out exactly once: no two increments saw the same word.
        results.SelectMany(seen => seen).Order().ShouldBe(Enumerable.Range(0, 2 * PerConnection).Select(v => (ulong)v));
    }

    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Concurrent_callers_on_one_connection_take_turns(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(Bytes.Writable((0, 8)));

        var tasks = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < 500; i++)
            {
                await connection.FetchAddAsync(0, 1);
            }
        })).ToArray();
        await Task.WhenAll(tasks);

        blade.Region.LoadUInt64(0).ShouldBe(2000UL);
    }

    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Unrestricted_access_writes_anywhere_with_the_whole_region_key(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(FabricAccess.Unrestricted);

        await connection.WriteAsync(UcxBlade.RegionLength - 8, Bytes.Pattern(8));
        (await connection.FetchAddAsync(0, 5)).ShouldBe(0UL);

        connection.Access.IsUnrestricted.ShouldBeTrue();
        blade.Region.LoadUInt64(0).ShouldBe(5UL);
    }
}
