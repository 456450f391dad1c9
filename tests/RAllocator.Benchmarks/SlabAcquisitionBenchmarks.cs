using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using RAllocator.Benchmarks.Columns;
using RAllocator.Benchmarks.Workloads;

namespace RAllocator.Benchmarks;

/// <summary>
/// Slab acquisition by one working node over the loopback fabric against a file-backed blade:
/// <c>BladeClient.AcquireSlabAsync</c> (FETCH_AND_ADD + READ, acknowledgement WRITE + PERSIST posted) and
/// <c>ReturnSlabAsync</c> (free request WRITE + PERSIST posted). One operation is one acquisition; each iteration
/// is a batch of 512, and the blade agent runs only in the iteration setup (apply acknowledgements, drain frees,
/// reclaim after the node's epoch, refill the ring), never inside the timed batch.
/// </summary>
/// <remarks>
/// Persistence model: the benchmark process runs with <c>PMEM_IS_PMEM_FORCE=1</c>, so libpmem treats the blade
/// file as persistent memory and each PERSIST costs what it costs on real pmem (cache-line flushes and a fence),
/// but nothing is durable on a machine without pmem. Without it each PERSIST is an msync that reaches this
/// machine's disk (milliseconds here), which would measure the disk, not the protocol, and make each iteration's
/// agent passes take seconds. <c>scripts/bench.sh</c> measures the msync case too, with a short batch
/// (quick mode <c>acquire</c>). The RoundTrips/op column is the protocol's cost on any fabric.
/// </remarks>
[Config(typeof(Config))]
[MemoryDiagnoser]
public class SlabAcquisitionBenchmarks : ICostProbe
{
    private SlabAcquisitionWorkload? _workload;

    [GlobalSetup]
    public void Setup() => _workload = SlabAcquisitionWorkload.StartAsync().GetAwaiter().GetResult();

    [GlobalCleanup]
    public void Cleanup() => _workload?.Dispose();

    [IterationSetup]
    public void Settle() => _workload!.SettleAsync().GetAwaiter().GetResult();

    [IterationCleanup(Target = nameof(AcquireSlab))]
    public void ReturnAcquired() => _workload!.ReturnBatchAsync().GetAwaiter().GetResult();

    /// <summary>512 acquisitions in a row (slabs returned after the iteration, untimed): per acquisition.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = SlabAcquisitionWorkload.DefaultBatchLength)]
    public Task AcquireSlab() => _workload!.AcquireBatchAsync();

    /// <summary>512 times acquire a slab and return it at once: per acquire + return.</summary>
    [Benchmark(OperationsPerInvoke = SlabAcquisitionWorkload.DefaultBatchLength)]
    public Task AcquireAndReturnSlab() => _workload!.AcquireAndReturnBatchAsync();

    public IReadOnlyDictionary<string, double> Probe(string benchmarkMethod)
    {
        const int Batches = 4;
        using var workload = SlabAcquisitionWorkload.StartAsync().GetAwaiter().GetResult();
        long roundTrips = 0, verbs = 0, calls = 0;
        for (int batch = 0; batch < Batches; batch++)
        {
            workload.SettleAsync().GetAwaiter().GetResult();
            var before = workload.Client.Counters.Snapshot();
            long callsBefore = workload.BladeHandlerCalls;
            if (benchmarkMethod == nameof(AcquireAndReturnSlab))
            {
                workload.AcquireAndReturnBatchAsync().GetAwaiter().GetResult();
            }
            else
            {
                workload.AcquireBatchAsync().GetAwaiter().GetResult();
            }

            var cost = workload.Client.Counters.Snapshot().Since(before);
            roundTrips += cost.RoundTrips;
            verbs += cost.TotalVerbs;
            calls += workload.BladeHandlerCalls - callsBefore;
            workload.ReturnBatchAsync().GetAwaiter().GetResult();
        }

        double ops = (double)Batches * SlabAcquisitionWorkload.DefaultBatchLength;
        return new Dictionary<string, double>
        {
            ["RoundTrips/op"] = roundTrips / ops,
            ["Verbs/op"] = verbs / ops,
            ["BladeCalls/op"] = calls / ops,
        };
    }

    private sealed class Config : BenchConfig
    {
        public Config()
        {
            // A mutator: applies to whichever job runs (default, or --job short from the command line).
            AddJob(Job.Default.WithEnvironmentVariable(PmemModel.ForceVariable, "1").AsMutator());
            AddColumn(
            new ProbeColumn("RoundTrips/op", "Fabric completions waited for per operation (counted in the host on the same workload)"),
            new ProbeColumn("Verbs/op", "One-sided verbs issued per operation (READ, WRITE, FETCH_ADD, CAS, PERSIST)"),
            new ProbeColumn("BladeCalls/op", "Blade agent passes (blade CPU handler calls) during the timed batch, per operation"));
        }
    }
}
