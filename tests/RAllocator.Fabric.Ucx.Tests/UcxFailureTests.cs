namespace RAllocator.Fabric.Ucx.Tests;

public sealed class UcxFailureTests
{
    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task A_failing_verb_ends_its_batch_and_later_verbs_never_execute(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(Bytes.Writable((0, 64)));

        var failure = await Should.ThrowAsync<FabricException>(async () => await connection.CreateBatch()
            .Write(0, Bytes.Pattern(8, seed: 1))
            .Write(4096, Bytes.Pattern(8, seed: 2))
            .Write(8, Bytes.Pattern(8, seed: 3))
            .PostAndWaitAsync());

        failure.Status.ShouldBe(FabricStatus.RemoteAccessError);
        blade.Region.LoadUInt64(0).ShouldBe(BitConverter.ToUInt64(Bytes.Pattern(8, seed: 1)));
        blade.Region.LoadUInt64(8).ShouldBe(0UL);
    }

    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task An_unsignaled_batch_failure_is_reported_once_by_the_next_operation(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(Bytes.Writable((0, 64)));

        await connection.CreateBatch().Write(1000, Bytes.Pattern(8)).PostUnsignaled();

        var reported = await Should.ThrowAsync<FabricException>(async () => await connection.ReadAsync(0, new byte[8]));
        reported.Status.ShouldBe(FabricStatus.RemoteAccessError);
        reported.Message.ShouldContain("earlier unsignaled batch failed");
        await connection.ReadAsync(0, new byte[8]);
    }

    [Theory(Timeout = 60_000)]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task Operations_fail_unreachable_once_the_blade_is_gone(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(Bytes.Writable((0, 64)));
        await connection.FetchAddAsync(0, 1);

        blade.DisposeExporter();

        // TCP detects the closed peer (UCP_ERR_HANDLING_MODE_PEER); shared memory cannot, so the timeout decides.
        var failure = await Should.ThrowAsync<FabricException>(async () => await connection.FetchAddAsync(0, 1, TestContext.Current.CancellationToken));
        failure.Status.ShouldBe(FabricStatus.Unreachable);

        // The connection stays failed, without waiting again, and without counting what never left the node.
        var before = connection.Counters.Snapshot();
        var again = await Should.ThrowAsync<FabricException>(async () => await connection.ReadAsync(0, new byte[8]));
        again.Status.ShouldBe(FabricStatus.Unreachable);
        again.Message.ShouldContain("First failure");
        connection.Counters.Snapshot().ShouldBe(before);
    }

    [Fact]
    public async Task Connecting_to_a_blade_that_is_gone_fails_unreachable()
    {
        await using var blade = new UcxBlade("tcp");
        var info = blade.Register(Bytes.Writable((0, 64))).ConnectionInfo;
        blade.DisposeExporter();

        var failure = Should.Throw<FabricException>(() => UcxConnection.Connect(0, info, "late", blade.Options));

        failure.Status.ShouldBe(FabricStatus.Unreachable);
    }

    [Theory]
    [MemberData(nameof(Transports.All), MemberType = typeof(Transports))]
    public async Task A_disposed_connection_fails_unreachable_and_counts_nothing(string transport)
    {
        await using var blade = new UcxBlade(transport);
        var connection = blade.Connect(Bytes.Writable((0, 64)));

        await connection.DisposeAsync();
        await connection.DisposeAsync();

        var failure = await Should.ThrowAsync<FabricException>(async () => await connection.WriteAsync(0, new byte[8]));
        failure.Status.ShouldBe(FabricStatus.Unreachable);
        failure.Message.ShouldContain("disposed");
        connection.Counters.Snapshot().TotalVerbs.ShouldBe(0);
    }

    [Fact]
    public async Task Null_dereferences_still_throw_after_ucx_is_loaded()
    {
        // libucs installs SIGSEGV handlers when it loads; with them a null dereference would kill the process.
        await using var blade = new UcxBlade("tcp");
        blade.Connect(FabricAccess.ReadOnly);
        string? missing = null;

        Should.Throw<NullReferenceException>(() => missing!.Length);
    }
}
