using System.Diagnostics;

namespace RAllocator.Fabric.Ucx.Tests;

/// <summary>
/// Prints round-trip latencies and the blade progress thread's CPU time per transport (see README.md). Reports only:
/// timing on a shared 2-core machine is no basis for a pass/fail decision. The checks are on the results' values.
/// </summary>
public sealed class UcxLatencyReport(ITestOutputHelper output)
{
    private const int Iterations = 2000;

    /// <summary>Each transport with the default blade (spins 50 µs, then sleeps on its event fd) and one that never sleeps.</summary>
    public static TheoryData<string, int> Configurations => new()
    {
        { "sm", 50 },
        { "sm", 1_000_000 },
        { "tcp", 50 },
        { "tcp", 1_000_000 },
    };

    [Theory]
    [MemberData(nameof(Configurations))]
    public async Task Reports_verb_latencies_and_blade_cpu(string transport, int bladeSpinMicroseconds)
    {
        var options = UcxBlade.OptionsFor(transport) with { BladeSpinBeforeSleep = TimeSpan.FromMicroseconds(bladeSpinMicroseconds) };
        await using var blade = new UcxBlade(transport, options: options);
        var connection = blade.Connect(Bytes.Writable((0, 4096)));
        var buffer = new byte[64];
        var cpuBefore = blade.Exporter.ProgressThreadCpuTime;
        var wallClock = Stopwatch.StartNew();

        var fetchAdd = await MeasureAsync(async () => await connection.FetchAddAsync(0, 1));
        var read = await MeasureAsync(async () => await connection.ReadAsync(64, buffer));
        var write = await MeasureAsync(async () => await connection.WriteAsync(64, buffer));
        var persist = await MeasureAsync(async () => await connection.PersistAsync(64, 64));
        var writePersist = await MeasureAsync(async () => await connection.CreateBatch().Write(128, buffer).Persist(128, 64).PostAndWaitAsync());

        wallClock.Stop();
        var bladeCpu = blade.Exporter.ProgressThreadCpuTime - cpuBefore;
        output.WriteLine($"UCX {UcxAvailability.Version}, transport {transport}, blade spins {bladeSpinMicroseconds} µs before sleeping, 64 B, p50 / p99 over {Iterations}:");
        output.WriteLine($"  fetch-add          {fetchAdd}");
        output.WriteLine($"  read               {read}");
        output.WriteLine($"  write (+flush)     {write}");
        output.WriteLine($"  persist            {persist}");
        output.WriteLine($"  batch write+persist {writePersist}");
        output.WriteLine($"  blade progress thread CPU {bladeCpu.TotalMilliseconds:0} ms over {wallClock.ElapsedMilliseconds} ms of verbs");

        if (bladeSpinMicroseconds < 1000)
        {
            var idleBefore = blade.Exporter.ProgressThreadCpuTime;
            await Task.Delay(500, TestContext.Current.CancellationToken);
            output.WriteLine($"  blade progress thread CPU while idle for 500 ms: {(blade.Exporter.ProgressThreadCpuTime - idleBefore).TotalMilliseconds:0} ms");
        }

        // Both transports execute the verbs on the blade's CPU here (software RMA): its thread cannot have been idle.
        bladeCpu.ShouldBeGreaterThan(TimeSpan.Zero);
        blade.Region.LoadUInt64(0).ShouldBe((ulong)Iterations);
        connection.Counters.Snapshot().RoundTrips.ShouldBe(5L * Iterations);
    }

    private static async Task<string> MeasureAsync(Func<Task> operation)
    {
        var samples = new double[Iterations];
        for (var i = 0; i < Iterations; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await operation();
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        Array.Sort(samples);
        return $"{samples[Iterations / 2],7:0.0} µs / {samples[Iterations * 99 / 100],7:0.0} µs";
    }
}
