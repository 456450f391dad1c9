namespace RAllocator.Fabric.Ucx.Tests;

public sealed class UcxAccessTests
{
    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Writes_atomics_and_persists_outside_the_writable_ranges_are_refused_and_change_nothing(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(Bytes.Writable((4096, 64), (8192, 64)));
        blade.Region.StoreUInt64(4160, 77);

        // Straddling the end of a range, outside every range, and an atomic just past one.
        var straddling = await Should.ThrowAsync<FabricException>(async () => await connection.WriteAsync(4090, Bytes.Pattern(16)));
        var outside = await Should.ThrowAsync<FabricException>(async () => await connection.WriteAsync(0, Bytes.Pattern(8)));
        var atomic = await Should.ThrowAsync<FabricException>(async () => await connection.FetchAddAsync(4160, 1));
        var persist = await Should.ThrowAsync<FabricException>(async () => await connection.PersistAsync(8000, 300));

        foreach (var failure in new[] { straddling, outside, atomic, persist })
        {
            failure.Status.ShouldBe(FabricStatus.RemoteAccessError);
            failure.Message.ShouldContain("registered ranges");
        }

        straddling.Message.ShouldContain("WRITE of 16 bytes at offset 0xffa");
        atomic.Message.ShouldContain("ATOMIC_FETCH_AND_ADD");
        blade.Region.LoadUInt64(4160).ShouldBe(77UL);
        var untouched = new byte[16];
        blade.Region.Read(4088, untouched);
        untouched.ShouldAllBe(b => b == 0);

        // A refusal does not fail the connection.
        await connection.WriteAsync(4096, Bytes.Pattern(64));
    }

    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Accesses_past_the_region_are_refused_even_for_reads(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(FabricAccess.Unrestricted);

        var read = await Should.ThrowAsync<FabricException>(async () => await connection.ReadAsync(UcxBlade.RegionLength - 4, new byte[8]));
        var negative = await Should.ThrowAsync<FabricException>(async () => await connection.WriteAsync(-8, new byte[8]));

        read.Status.ShouldBe(FabricStatus.RemoteAccessError);
        read.Message.ShouldContain("outside the blade region");
        negative.Status.ShouldBe(FabricStatus.RemoteAccessError);
    }

    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Misaligned_atomics_fail_with_an_alignment_error(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(Bytes.Writable((0, 64)));

        var fetchAdd = await Should.ThrowAsync<FabricException>(async () => await connection.FetchAddAsync(4, 1));
        var compareSwap = await Should.ThrowAsync<FabricException>(async () => await connection.CompareSwapAsync(12, 0, 1));

        fetchAdd.Status.ShouldBe(FabricStatus.RemoteAlignmentError);
        compareSwap.Status.ShouldBe(FabricStatus.RemoteAlignmentError);
        blade.Region.LoadUInt64(0).ShouldBe(0UL);
        blade.Region.LoadUInt64(8).ShouldBe(0UL);
    }

    [Fact]
    public async Task Nodes_granted_the_same_range_share_one_registration_until_the_last_leaves()
    {
        await using var blade = new UcxBlade("tcp");
        blade.Exporter.RegistrationCount.ShouldBe(1);

        var first = blade.Exporter.RegisterNode(Bytes.Writable((0, 8), (4096, 64)));
        var second = blade.Exporter.RegisterNode(Bytes.Writable((0, 8), (8192, 64)));
        blade.Exporter.RegistrationCount.ShouldBe(4);

        first.Dispose();
        blade.Exporter.RegistrationCount.ShouldBe(3);
        second.Dispose();
        second.Dispose();
        blade.Exporter.RegistrationCount.ShouldBe(1);
    }

    [Fact]
    public async Task A_writable_range_past_the_region_is_not_registered()
    {
        await using var blade = new UcxBlade("tcp");

        Should.Throw<ArgumentOutOfRangeException>(() => blade.Exporter.RegisterNode(Bytes.Writable((UcxBlade.RegionLength - 8, 16))));
        blade.Exporter.RegistrationCount.ShouldBe(1);
    }

    /// <summary>
    /// What UCX itself enforces, found by forging a description: the node's key for a 64-byte range is presented as
    /// covering 4 KiB, so the node-side check passes and only UCX could refuse the write past the registration.
    /// Over TCP and shared memory UCX executes RMA in software on the blade (AM emulation) and does not check the
    /// address against the key's registration: the write lands. That is why <see cref="UcxConnection"/> checks every
    /// verb against its ranges, and why isolation between nodes that do not trust each other needs hardware keys.
    /// </summary>
    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Ucx_software_rma_does_not_check_addresses_against_the_remote_key(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var genuine = blade.Register(Bytes.Writable((4096, 64))).ConnectionInfo;
        var key = genuine.Ranges.Single(range => range.Writable);
        var forged = new UcxConnectionInfo(genuine.WorkerAddress, genuine.RegionLength,
            [key with { Length = 4096 }]);
        await using var connection = UcxConnection.Connect(0, forged, "forger", blade.Options);

        await connection.WriteAsync(4096 + 1024, Bytes.Pattern(8, seed: 5));
        await connection.PersistAsync(4096 + 1024, 8);

        var stored = new byte[8];
        blade.Region.Read(4096 + 1024, stored);
        stored.ShouldBe(Bytes.Pattern(8, seed: 5));
    }

    /// <summary>
    /// The whole-region key comes from a registration without remote write permission. A node that marks it writable
    /// gets past its own check; over TCP and shared memory UCX's software RMA ignores the registration's protection
    /// too, and the write lands. RDMA hardware would refuse it (the MR lacks REMOTE_WRITE).
    /// </summary>
    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Ucx_software_rma_does_not_enforce_a_read_only_registration(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var genuine = blade.Register(FabricAccess.ReadOnly).ConnectionInfo;
        var readKey = genuine.Ranges.Single();
        readKey.Writable.ShouldBeFalse();
        var forged = new UcxConnectionInfo(genuine.WorkerAddress, genuine.RegionLength, [readKey with { Writable = true }]);
        await using var connection = UcxConnection.Connect(0, forged, "forger", blade.Options);

        await connection.WriteAsync(512, Bytes.Pattern(8, seed: 9));
        (await connection.FetchAddAsync(1024, 3)).ShouldBe(0UL);

        var stored = new byte[8];
        blade.Region.Read(512, stored);
        stored.ShouldBe(Bytes.Pattern(8, seed: 9));
        blade.Region.LoadUInt64(1024).ShouldBe(3UL);
    }
}
