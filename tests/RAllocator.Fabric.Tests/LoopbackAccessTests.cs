using static RAllocator.Fabric.Tests.Fixtures;

namespace RAllocator.Fabric.Tests;

/// <summary>Per-node registrations: a node modifies only what the blade registered for it, and nothing outside the region.</summary>
public sealed class LoopbackAccessTests
{
    [Fact]
    public async Task WriteOutsideTheWritableRangesIsRefusedAndLeavesTheRegionUnchanged()
    {
        var (fabric, region) = NewFabric();
        await using var connection = fabric.Connect(0, Writable((0x100, 0x80)));
        var before = region.Snapshot();

        var failure = await Should.ThrowAsync<FabricException>(async () => await connection.WriteAsync(0x200, Pattern(8)));

        failure.Status.ShouldBe(FabricStatus.RemoteAccessError, "a write outside the node's registrations is a remote access error");
        region.Snapshot().ShouldBe(before, "a refused write must leave every byte of the region unchanged");
        region.Log.ShouldBeEmpty("a refused write must never reach the region");
    }

    [Fact]
    public async Task AccessErrorNamesTheNodeTheOffsetAndTheRegisteredRanges()
    {
        var (fabric, _) = NewFabric();
        await using var connection = fabric.Connect(2, Writable((0x100, 0x80)), nodeName: "worker-7");

        var failure = await Should.ThrowAsync<FabricException>(async () => await connection.WriteAsync(0x200, Pattern(8)));

        failure.Message.ShouldContain("worker-7", Case.Sensitive, "the message must say which node was refused");
        failure.Message.ShouldContain("blade 2", Case.Sensitive, "the message must say which blade refused it");
        failure.Message.ShouldContain("0x200", Case.Sensitive, "the message must give the refused offset");
        failure.Message.ShouldContain("[0x100, 0x180)", Case.Sensitive, "the message must list the node's writable ranges");
    }

    [Fact]
    public async Task WriteInsideARegisteredRangeSucceeds()
    {
        var (fabric, region) = NewFabric();
        await using var connection = fabric.Connect(0, Writable((0x100, 0x80), (0x400, 0x40)));

        await connection.WriteAsync(0x400, Pattern(0x40));

        region.Snapshot().AsSpan(0x400, 0x40).ToArray().ShouldBe(Pattern(0x40), "a write filling a registered range exactly is allowed");
    }

    [Theory]
    [InlineData(0x0F8, 16, "starts before the range")]
    [InlineData(0x178, 16, "ends past the range")]
    [InlineData(0x140, 0x80, "spans the range and its adjacent neighbour: one verb names one registration")]
    public async Task WriteNotWhollyInsideOneRangeIsRefused(long offset, int length, string why)
    {
        var (fabric, region) = NewFabric();
        await using var connection = fabric.Connect(0, Writable((0x100, 0x80), (0x180, 0x80)));
        var before = region.Snapshot();

        var failure = await Should.ThrowAsync<FabricException>(async () => await connection.WriteAsync(offset, Pattern(length)));

        failure.Status.ShouldBe(FabricStatus.RemoteAccessError, $"a write that {why} must be refused");
        region.Snapshot().ShouldBe(before, "a refused write must not land even partly");
    }

    [Fact]
    public async Task AtomicsOutsideTheWritableRangesAreRefusedAndChangeNothing()
    {
        var (fabric, region) = NewFabric();
        region.StoreUInt64(0x200, 77);
        await using var connection = fabric.Connect(0, Writable((0x100, 0x80)));

        var fetchAdd = await Should.ThrowAsync<FabricException>(async () => await connection.FetchAddAsync(0x200, 1));
        var compareSwap = await Should.ThrowAsync<FabricException>(async () => await connection.CompareSwapAsync(0x200, 77, 1));

        fetchAdd.Status.ShouldBe(FabricStatus.RemoteAccessError, "FETCH_AND_ADD needs a writable registration");
        compareSwap.Status.ShouldBe(FabricStatus.RemoteAccessError, "CMP_AND_SWP needs a writable registration");
        region.LoadUInt64(0x200).ShouldBe(77UL, "a refused atomic must leave the word unchanged");
    }

    [Fact]
    public async Task PersistOutsideTheWritableRangesIsRefusedAndFlushesNothing()
    {
        var (fabric, region) = NewFabric();
        await using var connection = fabric.Connect(0, Writable((0x100, 0x80)));

        var failure = await Should.ThrowAsync<FabricException>(async () => await connection.PersistAsync(0x100, 0x100));

        failure.Status.ShouldBe(FabricStatus.RemoteAccessError, "PERSIST is a modification right: outside the registration it is refused");
        region.Persists.ShouldBeEmpty("a refused persist must not flush anything");
    }

    [Fact]
    public async Task ReadOnlyNodeStillReadsTheWholeRegion()
    {
        var (fabric, region) = NewFabric();
        region.Write(0, Pattern((int)RegionLength));
        await using var connection = fabric.Connect(0, FabricAccess.ReadOnly);

        var read = new byte[RegionLength];
        await connection.ReadAsync(0, read);

        read.ShouldBe(Pattern((int)RegionLength), "every node may read the whole region");
    }

    [Theory]
    [InlineData(FabricVerb.Read, RegionLength - 4, 8)]
    [InlineData(FabricVerb.Read, -1, 8)]
    [InlineData(FabricVerb.Write, RegionLength, 1)]
    [InlineData(FabricVerb.Write, long.MaxValue - 2, 8)]
    [InlineData(FabricVerb.FetchAdd, RegionLength, 8)]
    [InlineData(FabricVerb.CompareSwap, -8, 8)]
    [InlineData(FabricVerb.Persist, 0, RegionLength + 1)]
    [InlineData(FabricVerb.Persist, 8, -8)]
    public async Task VerbsOutsideTheRegionFailWithRemoteAccessErrorEvenWhenUnrestricted(FabricVerb verb, long offset, long length)
    {
        var (fabric, region) = NewFabric();
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);
        var before = region.Snapshot();

        var failure = await Should.ThrowAsync<FabricException>(async () =>
        {
            switch (verb)
            {
                case FabricVerb.Read: await connection.ReadAsync(offset, new byte[length]); break;
                case FabricVerb.Write: await connection.WriteAsync(offset, new byte[length]); break;
                case FabricVerb.FetchAdd: await connection.FetchAddAsync(offset, 1); break;
                case FabricVerb.CompareSwap: await connection.CompareSwapAsync(offset, 0, 1); break;
                case FabricVerb.Persist: await connection.PersistAsync(offset, length); break;
            }
        });

        failure.Status.ShouldBe(FabricStatus.RemoteAccessError, $"{verb} at {offset}+{length} lies outside the region");
        region.Snapshot().ShouldBe(before, "an out-of-region verb must change nothing");
        region.Persists.ShouldBeEmpty("an out-of-region verb must flush nothing");
    }

    [Fact]
    public void ConnectRefusesARegistrationThatExtendsPastTheRegion()
    {
        var (fabric, _) = NewFabric();

        Should.Throw<ArgumentOutOfRangeException>(
            () => fabric.Connect(0, Writable((RegionLength - 8, 16))),
            "a blade cannot register memory it does not have");
    }

    [Fact]
    public async Task FailingVerbEndsASignaledBatchAfterTheVerbsBeforeItTookEffect()
    {
        var (fabric, region) = NewFabric();
        await using var connection = fabric.Connect(0, Writable((0, 0x100)));

        var failure = await Should.ThrowAsync<FabricException>(async () => await connection.CreateBatch()
            .Write(0x00, Pattern(8, seed: 1))
            .Write(0x800, Pattern(8, seed: 2))
            .Write(0x10, Pattern(8, seed: 3))
            .PostAndWaitAsync());

        failure.Status.ShouldBe(FabricStatus.RemoteAccessError, "the batch's completion carries its failing verb's status");
        region.Snapshot().AsSpan(0, 8).ToArray().ShouldBe(Pattern(8, seed: 1), "verbs before the failure have executed");
        region.Log.ShouldBe(["write 0x0+8"], "verbs after the failure are flushed, never executed, as on an RC queue pair in error");
    }

    [Fact]
    public async Task UnsignaledBatchFailureIsReportedByTheNextOperationExactlyOnce()
    {
        var (fabric, _) = NewFabric();
        await using var connection = fabric.Connect(0, Writable((0, 0x100)));

        var post = connection.CreateBatch().Write(0x800, Pattern(8)).PostUnsignaled();
        post.IsCompletedSuccessfully.ShouldBeTrue("an unsignaled post has no completion to carry the failure");

        var reported = await Should.ThrowAsync<FabricException>(async () => await connection.ReadAsync(0, new byte[8]));
        reported.Status.ShouldBe(FabricStatus.RemoteAccessError, "the next operation reports the unsignaled batch's status");
        reported.Message.ShouldContain("earlier unsignaled batch", Case.Insensitive, "the report must say the failure came from an earlier batch");

        await connection.ReadAsync(0, new byte[8]);
    }
}
