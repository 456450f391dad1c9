using RAllocator.Blade;
using RAllocator.Fabric;

namespace RAllocator.HardwareFuzz.Tests;

/// <summary>The hardware fuzzer on the loopback fabric: a bounded run keeps every invariant, a planted fabric bug is
/// found, and a seed replays.</summary>
public sealed class HardwareFuzzerTests
{
    private const int Seed = 20261126;

    [Fact]
    public async Task TwentySecondsOfRandomCrashesOnTheLoopbackFabricKeepEveryInvariant()
    {
        await using var fabric = new LoopbackFabricUnderTest();

        var report = await HardwareFuzzer.RunAsync(fabric, new HardwareFuzzOptions(Seed, TimeSpan.FromSeconds(20)), cancellationToken: TestContext.Current.CancellationToken);

        TestContext.Current.TestOutputHelper?.WriteLine(report.ToString());
        report.Violations.ShouldBeEmpty(report.ToString());
        report.NodeCrashes.ShouldBeGreaterThan(0, "the run must exercise node recovery");
        report.BladeRestarts.ShouldBeGreaterThan(0, "the run must exercise blade recovery");
        report.Allocations.ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task ABoundedRunOverUcxTcpKeepsEveryInvariant()
    {
        // CI's bounded hardware-fuzz pass: the same driver over a real network engine (UCX over TCP on loopback).
        await using var fabric = new UcxFabricUnderTest("tcp");

        var report = await HardwareFuzzer.RunAsync(fabric, new HardwareFuzzOptions(Seed, TimeSpan.FromSeconds(40)), cancellationToken: TestContext.Current.CancellationToken);

        TestContext.Current.TestOutputHelper?.WriteLine(report.ToString());
        report.Violations.ShouldBeEmpty(report.ToString());
        report.NodeCrashes.ShouldBeGreaterThan(0, "the run must exercise node recovery");
        report.BladeRestarts.ShouldBeGreaterThan(0, "the run must exercise blade recovery");
        report.Allocations.ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task AFabricThatDropsPersistsIsCaughtLosingAcknowledgedOwnership()
    {
        await using var fabric = new PersistDroppingFabric(new LoopbackFabricUnderTest());

        var report = await HardwareFuzzer.RunAsync(fabric, new HardwareFuzzOptions(Seed, TimeSpan.FromMinutes(2), MaxSteps: 20_000), cancellationToken: TestContext.Current.CancellationToken);

        report.Passed.ShouldBeFalse("acknowledgements that never reach persistence must be lost by some power failure");
        report.Violations.ShouldContain(v => v.Contains("did not get it back", StringComparison.Ordinal) || v.Contains("acknowledged ownership lost", StringComparison.Ordinal), report.ToString());
    }

    [Fact]
    public async Task TheSameSeedReplaysTheSameRun()
    {
        var options = new HardwareFuzzOptions(Seed, TimeSpan.FromMinutes(2), MaxSteps: 3_000);
        await using var first = new LoopbackFabricUnderTest();
        await using var second = new LoopbackFabricUnderTest();

        var a = await HardwareFuzzer.RunAsync(first, options, cancellationToken: TestContext.Current.CancellationToken);
        var b = await HardwareFuzzer.RunAsync(second, options, cancellationToken: TestContext.Current.CancellationToken);

        (a.Steps, a.Allocations, a.Frees, a.OutOfMemory, a.NodeCrashes, a.BladeRestarts, a.AgentPasses)
            .ShouldBe((b.Steps, b.Allocations, b.Frees, b.OutOfMemory, b.NodeCrashes, b.BladeRestarts, b.AgentPasses));
        a.Steps.ShouldBe(3_000);
    }

    /// <summary>A planted fabric bug: PERSIST completes without making anything durable (single verbs and batches).</summary>
    private sealed class PersistDroppingFabric(IFabricUnderTest inner) : IFabricUnderTest
    {
        public string Name => "loopback with PERSIST dropped (planted bug)";

        public async Task<IFabricConnection> ConnectAsync(uint nodeId, CancellationToken cancellationToken) =>
            new PersistDroppingConnection(await inner.ConnectAsync(nodeId, cancellationToken));

        public Task RestartBladeAsync(int crashSeed, CancellationToken cancellationToken) => inner.RestartBladeAsync(crashSeed, cancellationToken);

        public void RunAgentPass() => inner.RunAgentPass();

        public BladeState ScanImage() => inner.ScanImage();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    private sealed class PersistDroppingConnection(IFabricConnection inner) : IFabricConnection
    {
        public int BladeId => inner.BladeId;

        public long RegionLength => inner.RegionLength;

        public FabricCounters Counters => inner.Counters;

        public ValueTask ReadAsync(long remoteOffset, Memory<byte> destination, CancellationToken cancellationToken = default) => inner.ReadAsync(remoteOffset, destination, cancellationToken);

        public ValueTask WriteAsync(long remoteOffset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default) => inner.WriteAsync(remoteOffset, source, cancellationToken);

        public ValueTask<ulong> FetchAddAsync(long remoteOffset, ulong delta, CancellationToken cancellationToken = default) => inner.FetchAddAsync(remoteOffset, delta, cancellationToken);

        public ValueTask<ulong> CompareSwapAsync(long remoteOffset, ulong expected, ulong desired, CancellationToken cancellationToken = default) => inner.CompareSwapAsync(remoteOffset, expected, desired, cancellationToken);

        public ValueTask PersistAsync(long remoteOffset, long length, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public FabricBatch CreateBatch() => new((operations, signaled, cancellationToken) =>
        {
            var batch = inner.CreateBatch();
            foreach (var operation in operations.Where(o => o.Verb == FabricVerb.Write))
            {
                batch.Write(operation.RemoteOffset, operation.Source);
            }

            return signaled ? batch.PostAndWaitAsync(cancellationToken) : batch.PostUnsignaled(cancellationToken);
        });

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
