// xUnit1031: these tests must stay synchronous, because the hand-pumped context that schedules them belongs to the
// test thread; they read results only of operations already asserted complete, so nothing ever blocks.
#pragma warning disable xUnit1031

using static RAllocator.Fabric.Tests.Fixtures;

namespace RAllocator.Fabric.Tests;

/// <summary>
/// <see cref="LoopbackOptions.YieldAtEachVerb"/> makes every verb a scheduling point. A hand-pumped
/// synchronization context plays the scheduler here, so each interleaving is chosen by the test, not by chance.
/// </summary>
public sealed class LoopbackSchedulingTests
{
    private static readonly LoopbackOptions s_yielding = new() { YieldAtEachVerb = true };

    [Fact]
    public void YieldingVerbDoesNotExecuteUntilTheSchedulerResumesIt()
    {
        var (fabric, region) = NewFabric(s_yielding);
        var connection = fabric.Connect(0, FabricAccess.Unrestricted);
        using var installed = ManualSynchronizationContext.Install(out var scheduler);

        var fetchAdd = connection.FetchAddAsync(0, 1);

        fetchAdd.IsCompleted.ShouldBeFalse("with YieldAtEachVerb a verb yields before it executes");
        region.LoadUInt64(0).ShouldBe(0UL, "the verb must not have executed before its scheduling point resumes");

        scheduler.RunAll();

        fetchAdd.IsCompletedSuccessfully.ShouldBeTrue("resuming the scheduling point runs the verb to completion");
        fetchAdd.Result.ShouldBe(0UL);
        region.LoadUInt64(0).ShouldBe(1UL, "the verb executed once resumed");
    }

    [Fact]
    public void AnotherCallerInterleavesBetweenTheVerbsOfABatch()
    {
        var (fabric, region) = NewFabric(s_yielding);
        var first = fabric.Connect(0, FabricAccess.Unrestricted);
        var second = fabric.Connect(0, FabricAccess.Unrestricted);
        using var installed = ManualSynchronizationContext.Install(out var scheduler);

        var firstBatch = first.CreateBatch().Write(0x10, new byte[1]).Write(0x11, new byte[1]).PostAndWaitAsync();
        var secondBatch = second.CreateBatch().Write(0x20, new byte[1]).Write(0x21, new byte[1]).PostAndWaitAsync();
        scheduler.RunAll();

        firstBatch.IsCompletedSuccessfully.ShouldBeTrue();
        secondBatch.IsCompletedSuccessfully.ShouldBeTrue();
        region.Log.ShouldBe(
            ["write 0x10+1", "write 0x20+1", "write 0x11+1", "write 0x21+1"],
            "each verb is its own scheduling point, so batches are ordered within but not atomic across connections");
    }

    [Fact]
    public void BladeFailingBetweenTwoVerbsOfABatchFailsTheVerbsNotYetExecuted()
    {
        var (fabric, region) = NewFabric(s_yielding);
        var connection = fabric.Connect(0, FabricAccess.Unrestricted);
        using var installed = ManualSynchronizationContext.Install(out var scheduler);

        var batch = connection.CreateBatch().Write(0, Pattern(8)).Write(8, Pattern(8)).PostAndWaitAsync();
        scheduler.RunOne().ShouldBeTrue("the first verb's scheduling point is pending");
        fabric.SetReachable(false);
        scheduler.RunAll();

        batch.IsFaulted.ShouldBeTrue("a batch interrupted by a blade failure completes with an error");
        var failure = Should.Throw<FabricException>(() => batch.GetAwaiter().GetResult());
        failure.Status.ShouldBe(FabricStatus.Unreachable, "the interrupted batch reports the blade as unreachable");
        region.Log.ShouldBe(["write 0x0+8"], "only the verb executed before the failure took effect");
    }

    [Fact]
    public void DisposeDuringAScheduledVerbFailsThatVerb()
    {
        var (fabric, region) = NewFabric(s_yielding);
        var connection = fabric.Connect(0, FabricAccess.Unrestricted);
        using var installed = ManualSynchronizationContext.Install(out var scheduler);

        var write = connection.WriteAsync(0, Pattern(8));
        _ = connection.DisposeAsync();
        scheduler.RunAll();

        var failure = Should.Throw<FabricException>(() => write.GetAwaiter().GetResult());
        failure.Status.ShouldBe(FabricStatus.Unreachable, "a verb resumed after its connection closed must not execute");
        region.Log.ShouldBeEmpty("the verb must not reach the region");
    }
}
