using static RAllocator.Fabric.Tests.Fixtures;

namespace RAllocator.Fabric.Tests;

/// <summary>Remote atomics act on one aligned 8-byte word; bulk verbs have no alignment rule.</summary>
public sealed class LoopbackAlignmentTests
{
    [Theory]
    [InlineData(FabricVerb.FetchAdd, 1)]
    [InlineData(FabricVerb.FetchAdd, 4)]
    [InlineData(FabricVerb.CompareSwap, 7)]
    [InlineData(FabricVerb.CompareSwap, 12)]
    public async Task MisalignedAtomicFailsWithRemoteAlignmentErrorAndChangesNothing(FabricVerb verb, long offset)
    {
        var (fabric, region) = NewFabric();
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);
        var before = region.Snapshot();

        var failure = await Should.ThrowAsync<FabricException>(async () =>
        {
            if (verb == FabricVerb.FetchAdd)
            {
                await connection.FetchAddAsync(offset, 1);
            }
            else
            {
                await connection.CompareSwapAsync(offset, 0, 1);
            }
        });

        failure.Status.ShouldBe(FabricStatus.RemoteAlignmentError, $"{verb} at offset {offset} is not 8-byte aligned");
        failure.Message.ShouldContain("aligned", Case.Insensitive, "the message must say what was wrong");
        region.Snapshot().ShouldBe(before, "a misaligned atomic must change nothing");
    }

    [Fact]
    public async Task BulkVerbsAtOddOffsetsAreAllowed()
    {
        var (fabric, region) = NewFabric();
        await using var connection = fabric.Connect(0, FabricAccess.Unrestricted);

        await connection.WriteAsync(3, Pattern(5));
        var read = new byte[5];
        await connection.ReadAsync(3, read);
        await connection.PersistAsync(3, 5);

        read.ShouldBe(Pattern(5), "READ and WRITE are byte-addressed: only atomics need alignment");
        region.Persists.ShouldBe([(3L, 5L)], "PERSIST is byte-addressed too");
    }
}
