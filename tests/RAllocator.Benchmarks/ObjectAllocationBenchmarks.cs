using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using RAllocator.Benchmarks.Columns;
using RAllocator.Benchmarks.Workloads;
using RAllocator.Protocol;

namespace RAllocator.Benchmarks;

/// <summary>
/// Object allocate + free on a working node, per size class, in steady state: a file-backed blade (sparse temp
/// file, <c>MappedFileNvm</c>) behind the loopback fabric, and every slab the workload touches already acquired
/// and carved in setup. One operation is one allocate and one free. The blade agent does not run: none is needed,
/// and the RoundTrips/op, Verbs/op and BladeCalls/op columns (counted on the same code path) show it.
/// </summary>
[Config(typeof(Config))]
[MemoryDiagnoser]
public class ObjectAllocationBenchmarks : ICostProbe
{
    /// <summary>Objects allocated before the first is freed in <see cref="AllocateBurstThenFree"/>.</summary>
    public const int Burst = 64;

    private ObjectPairWorkload? _workload;

    [Params(16, 64, 256, 1024, 4096, 65536)]
    public int SizeBytes { get; set; }

    [GlobalSetup]
    public void Setup() => _workload = ObjectPairWorkload.StartAsync(SizeBytes, Burst).GetAwaiter().GetResult();

    [GlobalCleanup]
    public void Cleanup() => _workload?.Dispose();

    /// <summary>Allocate one object and free it at once: the hot path of both operations.</summary>
    [Benchmark(Baseline = true)]
    public RemotePtr AllocateFreePair() => _workload!.AllocateFreePair();

    /// <summary>Allocate 64 objects, then free them (they span several slabs for large classes): per allocate + free.</summary>
    [Benchmark(OperationsPerInvoke = Burst)]
    public RemotePtr AllocateBurstThenFree() => _workload!.AllocateBurstThenFree();

    public IReadOnlyDictionary<string, double> Probe(string benchmarkMethod)
    {
        const int Pairs = 64 * 256;
        using var workload = ObjectPairWorkload.StartAsync(SizeBytes, Burst).GetAwaiter().GetResult();
        var before = workload.Counters.Snapshot();
        long callsBefore = workload.BladeHandlerCalls;
        if (benchmarkMethod == nameof(AllocateBurstThenFree))
        {
            for (int i = 0; i < Pairs / Burst; i++)
            {
                workload.AllocateBurstThenFree();
            }
        }
        else
        {
            for (int i = 0; i < Pairs; i++)
            {
                workload.AllocateFreePair();
            }
        }

        var cost = workload.Counters.Snapshot().Since(before);
        return new Dictionary<string, double>
        {
            ["RoundTrips/op"] = (double)cost.RoundTrips / Pairs,
            ["Verbs/op"] = (double)(cost.TotalVerbs) / Pairs,
            ["BladeCalls/op"] = (double)(workload.BladeHandlerCalls - callsBefore) / Pairs,
        };
    }

    private sealed class Config : BenchConfig
    {
        public Config() => AddColumn(
            new ProbeColumn("RoundTrips/op", "Fabric completions waited for per allocate+free (counted in the host on the same workload)"),
            new ProbeColumn("Verbs/op", "One-sided verbs issued per allocate+free (READ, WRITE, FETCH_ADD, CAS, PERSIST)"),
            new ProbeColumn("BladeCalls/op", "Blade agent passes (blade CPU handler calls) per allocate+free"));
    }
}
