using static RAllocator.Fabric.Tests.Fixtures;

namespace RAllocator.Fabric.Tests;

/// <summary>The fault-injecting decorator: which operations fail, when, and that a seed reproduces them.</summary>
public sealed class FaultInjectingConnectionTests
{
    private static (FaultInjectingConnection Faulty, LoopbackConnection Inner, ByteArrayNvmRegion Region) Wrap(FaultInjectionOptions options)
    {
        var (fabric, region) = NewFabric();
        var inner = fabric.Connect(0, FabricAccess.Unrestricted);
        return (new FaultInjectingConnection(inner, options), inner, region);
    }

    [Fact]
    public async Task FailingTheThirdOperationFailsOnlyItAndItNeverReachesTheBlade()
    {
        var (faulty, inner, region) = Wrap(new FaultInjectionOptions { FailingOperations = new HashSet<long> { 3 } });

        await faulty.WriteAsync(0x00, Pattern(8, seed: 1));
        await faulty.WriteAsync(0x08, Pattern(8, seed: 2));
        var failure = await Should.ThrowAsync<FabricException>(async () => await faulty.WriteAsync(0x10, Pattern(8, seed: 3)));
        await faulty.WriteAsync(0x18, Pattern(8, seed: 4));

        failure.Status.ShouldBe(FabricStatus.InjectedFault, "the third operation was chosen to fail");
        region.Log.ShouldBe(["write 0x0+8", "write 0x8+8", "write 0x18+8"], "only the failed write is missing from the region");
        inner.Counters.Snapshot().Writes.ShouldBe(3, "a fault before execution never reaches the inner connection, so it costs nothing");
        faulty.FaultsInjected.ShouldBe(1);
        faulty.OperationsIssued.ShouldBe(4);
    }

    [Fact]
    public async Task FaultAfterExecutionAppliesTheVerbButReportsFailure()
    {
        var (faulty, _, region) = Wrap(new FaultInjectionOptions
        {
            FailingOperations = new HashSet<long> { 1 },
            Timing = InjectedFaultTiming.AfterExecution,
        });

        var failure = await Should.ThrowAsync<FabricException>(async () => await faulty.FetchAddAsync(0, 1));

        failure.Status.ShouldBe(FabricStatus.InjectedFault);
        failure.Message.ShouldContain("after it took effect", Case.Insensitive, "the message must say the verb was applied");
        region.LoadUInt64(0).ShouldBe(1UL, "a lost completion does not undo the atomic: a blind retry would apply it twice");
    }

    [Fact]
    public async Task AFixedSeedFailsTheSameOperationsOnEveryRun()
    {
        const int seed = 20240611;
        var options = new FaultInjectionOptions { Seed = seed, FailureProbability = 0.25, Timing = InjectedFaultTiming.Either };

        var firstRun = await FailingOrdinalsOfAScriptedRun(options);
        var secondRun = await FailingOrdinalsOfAScriptedRun(options);

        firstRun.ShouldNotBeEmpty($"seed {seed}: a 25% fault rate over 200 operations must fail some");
        firstRun.Count.ShouldBeLessThan(200, $"seed {seed}: a 25% fault rate must not fail everything");
        secondRun.ShouldBe(firstRun, $"seed {seed} must fail the same operations, at the same timing, on every run");
    }

    [Fact]
    public async Task DifferentSeedsFailDifferentOperations()
    {
        var first = await FailingOrdinalsOfAScriptedRun(new FaultInjectionOptions { Seed = 1, FailureProbability = 0.25 });
        var second = await FailingOrdinalsOfAScriptedRun(new FaultInjectionOptions { Seed = 2, FailureProbability = 0.25 });

        second.ShouldNotBe(first, "the seed, and nothing else, decides which operations fail (seeds 1 and 2)");
    }

    [Theory]
    [InlineData(0.0, 0)]
    [InlineData(1.0, 50)]
    public async Task ProbabilityZeroNeverFailsAndProbabilityOneAlwaysFails(double probability, int expectedFailures)
    {
        var (faulty, _, _) = Wrap(new FaultInjectionOptions { Seed = 7, FailureProbability = probability });

        var failures = 0;
        for (var i = 0; i < 50; i++)
        {
            try
            {
                await faulty.ReadAsync(0, new byte[8]);
            }
            catch (FabricException e) when (e.Status == FabricStatus.InjectedFault)
            {
                failures++;
            }
        }

        failures.ShouldBe(expectedFailures, $"probability {probability} over 50 operations (seed 7)");
    }

    [Fact]
    public async Task UnsignaledBatchesFromTheCrashPointOnAreDroppedSilently()
    {
        var (faulty, inner, region) = Wrap(new FaultInjectionOptions { DropUnsignaledFromOperation = 3 });

        await faulty.CreateBatch().Write(0x00, Pattern(8)).PostUnsignaled();
        await faulty.CreateBatch().Write(0x08, Pattern(8)).PostAndWaitAsync();
        await faulty.CreateBatch().Write(0x10, Pattern(8)).Persist(0x10, 8).PostUnsignaled();
        await faulty.CreateBatch().Write(0x18, Pattern(8)).PostAndWaitAsync();
        await faulty.CreateBatch().Write(0x20, Pattern(8)).PostUnsignaled();

        region.Log.ShouldBe(
            ["write 0x0+8", "write 0x8+8", "write 0x18+8"],
            "unsignaled work posted from the crash point on is lost; signaled work, whose poster is alive, still runs");
        faulty.UnsignaledBatchesDropped.ShouldBe(2);
        inner.Counters.Snapshot().UnsignaledPosts.ShouldBe(1, "dropped batches never reach the fabric, so they cost nothing there");
    }

    [Fact]
    public async Task DropUnsignaledFromNowDropsEveryLaterUnsignaledBatch()
    {
        var (faulty, _, region) = Wrap(new FaultInjectionOptions());

        await faulty.CreateBatch().Write(0x00, Pattern(8)).PostUnsignaled();
        faulty.DropUnsignaledFromNow();
        await faulty.CreateBatch().Write(0x08, Pattern(8)).PostUnsignaled();
        await faulty.WriteAsync(0x10, Pattern(8));

        region.Log.ShouldBe(["write 0x0+8", "write 0x10+8"], "the unsignaled batch posted after the crash is lost");
    }

    [Fact]
    public async Task InjectedFaultOnAnUnsignaledBatchIsReportedByTheNextOperationOnce()
    {
        var (faulty, _, region) = Wrap(new FaultInjectionOptions { FailingOperations = new HashSet<long> { 1 } });

        var post = faulty.CreateBatch().Write(0, Pattern(8)).PostUnsignaled();
        post.IsCompletedSuccessfully.ShouldBeTrue("an unsignaled post has no completion to carry the fault");

        var reported = await Should.ThrowAsync<FabricException>(async () => await faulty.ReadAsync(0, new byte[8]));
        reported.Status.ShouldBe(FabricStatus.InjectedFault, "the next operation reports the unsignaled batch's fault");
        reported.Message.ShouldContain("earlier unsignaled batch", Case.Insensitive);
        region.Log.ShouldBeEmpty("a fault before execution means the batch never ran");

        await faulty.ReadAsync(0, new byte[8]);
    }

    [Fact]
    public async Task InjectedFaultNamesTheOperationAndTheSeedThatReproducesIt()
    {
        var (faulty, _, _) = Wrap(new FaultInjectionOptions { Seed = 4242, FailingOperations = new HashSet<long> { 2 } });

        await faulty.ReadAsync(0, new byte[8]);
        var failure = await Should.ThrowAsync<FabricException>(async () => await faulty.CompareSwapAsync(0x40, 0, 1));

        failure.Message.ShouldContain("#2", Case.Sensitive, "the message names the operation ordinal");
        failure.Message.ShouldContain("ATOMIC_CMP_AND_SWP", Case.Sensitive, "the message names the verb");
        failure.Message.ShouldContain("0x40", Case.Sensitive, "the message names the offset");
        failure.Message.ShouldContain("4242", Case.Sensitive, "the message names the seed that reproduces the fault");
    }

    [Fact]
    public async Task DecoratorForwardsTheInnerConnectionsIdentityAndCounters()
    {
        var (fabric, _) = NewFabric();
        var inner = fabric.Connect(5, FabricAccess.Unrestricted);
        var faulty = new FaultInjectingConnection(inner, new FaultInjectionOptions());

        await faulty.FetchAddAsync(0, 1);

        faulty.Counters.ShouldBeSameAs(inner.Counters, "the decorator reports the inner connection's counters");
        faulty.BladeId.ShouldBe(5);
        faulty.RegionLength.ShouldBe(RegionLength);
        faulty.Counters.Snapshot().FetchAdds.ShouldBe(1);

        await faulty.DisposeAsync();
        inner.IsDisposed.ShouldBeTrue("disposing the decorator closes the connection it owns");
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void ProbabilityOutsideZeroToOneIsRejected(double probability)
    {
        var (fabric, _) = NewFabric();
        Should.Throw<ArgumentOutOfRangeException>(
            () => new FaultInjectingConnection(fabric.Connect(0, FabricAccess.Unrestricted), new FaultInjectionOptions { FailureProbability = probability }),
            $"a probability of {probability} is meaningless");
    }

    /// <summary>Runs a fixed mix of 200 verbs and batches; returns "ordinal:timing" for every injected fault.</summary>
    private static async Task<List<string>> FailingOrdinalsOfAScriptedRun(FaultInjectionOptions options)
    {
        var (faulty, _, _) = Wrap(options);
        var failures = new List<string>();
        for (var ordinal = 1; ordinal <= 200; ordinal++)
        {
            try
            {
                switch (ordinal % 5)
                {
                    case 0: await faulty.ReadAsync(0, new byte[16]); break;
                    case 1: await faulty.WriteAsync(8, new byte[8]); break;
                    case 2: await faulty.FetchAddAsync(0, 1); break;
                    case 3: await faulty.CompareSwapAsync(0, 0, 1); break;
                    default: await faulty.CreateBatch().Write(16, new byte[8]).Persist(16, 8).PostAndWaitAsync(); break;
                }
            }
            catch (FabricException e) when (e.Status == FabricStatus.InjectedFault)
            {
                failures.Add($"{ordinal}:{(e.Message.Contains("after it took effect") ? "after" : "before")}");
            }
        }

        return failures;
    }
}
