using System.Diagnostics;
using static RAllocator.Fabric.Tests.Fixtures;

namespace RAllocator.Fabric.Tests;

/// <summary>Unreachable blades, partitioned links, closed connections, and the simulated round-trip latency.</summary>
public sealed class LoopbackAvailabilityTests
{
    private static readonly Func<IFabricConnection, Task>[] s_everyOperation =
    [
        async c => await c.ReadAsync(0, new byte[8]),
        async c => await c.WriteAsync(0, new byte[8]),
        async c => await c.FetchAddAsync(0, 1),
        async c => await c.CompareSwapAsync(0, 0, 1),
        async c => await c.PersistAsync(0, 8),
        async c => await c.CreateBatch().Write(0, new byte[8]).PostAndWaitAsync(),
    ];

    [Fact]
    public async Task EveryOperationFailsWithUnreachableWhileTheBladeIsDown()
    {
        var (fabric, region) = NewFabric();
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);
        fabric.SetReachable(false);

        foreach (var operation in s_everyOperation)
        {
            var failure = await Should.ThrowAsync<FabricException>(() => operation(connection));
            failure.Status.ShouldBe(FabricStatus.Unreachable, "no verb completes while the blade is down");
            failure.Message.ShouldContain("unreachable", Case.Insensitive, "the message must say the blade is unreachable");
        }

        region.Log.ShouldBeEmpty("nothing reaches a blade that is down");
        region.LoadUInt64(0).ShouldBe(0UL, "no atomic reaches a blade that is down");
    }

    [Fact]
    public async Task OperationsResumeWhenTheBladeComesBackWithItsContentsIntact()
    {
        var (fabric, _) = NewFabric();
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);
        await connection.FetchAddAsync(0, 5);

        fabric.SetReachable(false);
        await Should.ThrowAsync<FabricException>(async () => await connection.FetchAddAsync(0, 1));
        fabric.SetReachable(true);

        (await connection.FetchAddAsync(0, 1)).ShouldBe(5UL, "the region survives the outage, and the failed verb never applied");
    }

    [Fact]
    public async Task PartitionedLinkFailsOnlyThatNodesConnection()
    {
        var (fabric, _) = NewFabric();
        await using var isolated = fabric.Connect(0, FabricAccess.Unrestricted, nodeName: "isolated");
        await using var healthy = fabric.Connect(0, FabricAccess.Unrestricted, nodeName: "healthy");

        isolated.SetLinkUp(false);

        var failure = await Should.ThrowAsync<FabricException>(async () => await isolated.FetchAddAsync(0, 1));
        failure.Status.ShouldBe(FabricStatus.Unreachable, "a partitioned node cannot reach the blade");
        failure.Message.ShouldContain("isolated", Case.Sensitive, "the message must name the partitioned node");
        (await healthy.FetchAddAsync(0, 1)).ShouldBe(0UL, "other nodes keep reaching the blade during a partition");

        isolated.SetLinkUp(true);
        (await isolated.FetchAddAsync(0, 1)).ShouldBe(1UL, "a healed link works again");
    }

    [Fact]
    public async Task UnsignaledBatchPostedWhileUnreachableIsLostAndReportedOnceTheBladeReturns()
    {
        var (fabric, region) = NewFabric();
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);
        fabric.SetReachable(false);

        await connection.CreateBatch().Write(0, Pattern(8)).PostUnsignaled();
        fabric.SetReachable(true);

        var reported = await Should.ThrowAsync<FabricException>(async () => await connection.ReadAsync(0, new byte[8]));
        reported.Status.ShouldBe(FabricStatus.Unreachable, "the lost batch is reported with the status that lost it");
        region.Log.ShouldBeEmpty("a batch posted to an unreachable blade never executes, even after it returns");
    }

    [Fact]
    public async Task EveryOperationFailsWithUnreachableAfterTheConnectionIsDisposed()
    {
        var (fabric, region) = NewFabric();
        var connection = fabric.Connect(0, FabricAccess.Unrestricted);
        await connection.DisposeAsync();
        await connection.DisposeAsync();

        connection.IsDisposed.ShouldBeTrue();
        foreach (var operation in s_everyOperation)
        {
            var failure = await Should.ThrowAsync<FabricException>(() => operation(connection));
            failure.Status.ShouldBe(FabricStatus.Unreachable, "a closed connection reaches nothing");
            failure.Message.ShouldContain("disposed", Case.Insensitive, "the message must say the connection was closed");
        }

        var unsignaled = await Should.ThrowAsync<FabricException>(async () =>
            await connection.CreateBatch().Write(0, new byte[8]).PostUnsignaled());
        unsignaled.Status.ShouldBe(FabricStatus.Unreachable, "even an unsignaled post fails at once on a closed connection");
        region.Log.ShouldBeEmpty("nothing reaches the blade through a closed connection");
    }

    [Fact]
    public async Task DisposingOneConnectionLeavesTheOthersWorking()
    {
        var (fabric, _) = NewFabric();
        var closed = fabric.Connect(0, FabricAccess.Unrestricted);
        await using var open = fabric.Connect(0, FabricAccess.Unrestricted);

        await closed.DisposeAsync();

        (await open.FetchAddAsync(0, 1)).ShouldBe(0UL, "closing a connection is local to it");
    }

    [Theory]
    [InlineData(20)]
    [InlineData(15_000)]
    public async Task RoundTripLatencyDelaysEveryWaitedCompletion(int latencyMicroseconds)
    {
        var latency = TimeSpan.FromMicroseconds(latencyMicroseconds);
        var (fabric, _) = NewFabric(new LoopbackOptions { RoundTripLatency = latency });
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        var singleVerb = Stopwatch.StartNew();
        await connection.FetchAddAsync(0, 1);
        singleVerb.Stop();

        var batch = Stopwatch.StartNew();
        await connection.CreateBatch().Write(0, new byte[8]).Persist(0, 8).PostAndWaitAsync();
        batch.Stop();

        singleVerb.Elapsed.ShouldBeGreaterThanOrEqualTo(latency, "an awaited verb completes no sooner than one round trip");
        batch.Elapsed.ShouldBeGreaterThanOrEqualTo(latency, "a signaled batch completes no sooner than one round trip");
    }

    [Fact]
    public async Task LatencyIsPaidAfterTheVerbTookEffect()
    {
        var (fabric, region) = NewFabric(new LoopbackOptions { RoundTripLatency = TimeSpan.FromMilliseconds(200) });
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        var write = connection.WriteAsync(0, Pattern(8)).AsTask();
        try
        {
            region.Snapshot().AsSpan(0, 8).ToArray().ShouldBe(
                Pattern(8), "other nodes can observe a write before its writer receives the completion");
        }
        finally
        {
            await write;
        }
    }

    [Fact]
    public void NegativeLatencyIsRejected()
    {
        Should.Throw<ArgumentOutOfRangeException>(
            () => new LoopbackFabric(new ByteArrayNvmRegion(64), new LoopbackOptions { RoundTripLatency = TimeSpan.FromTicks(-1) }),
            "a round trip cannot take negative time");
    }
}
