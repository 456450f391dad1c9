using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using RAllocator.Benchmarks.Columns;
using RAllocator.Benchmarks.Workloads;

namespace RAllocator.Benchmarks;

/// <summary>
/// Blade open/recovery time by region size: sparse files of 1, 4, 16 and 64 GiB formatted with 1 MiB slabs (made
/// in setup in a second; sparse files take only their metadata on disk). The cost follows the metadata, not the
/// region: the Slabs, MetadataKiB and ScannedKiB columns give what each size has to read.
/// </summary>
[Config(typeof(Config))]
public class BladeRecoveryBenchmarks : ICostProbe
{
    private RecoveryWorkload? _workload;

    [Params(1, 4, 16, 64)]
    public int RegionGiB { get; set; }

    [GlobalSetup]
    public void Setup() => _workload = RecoveryWorkload.Create((long)RegionGiB << 30);

    [GlobalCleanup]
    public void Cleanup() => _workload?.Dispose();

    [IterationSetup(Target = nameof(OpenReadOnlyAndScanColdCache))]
    public void DropPageCache() => _workload!.DropPageCache();

    /// <summary>MappedFileNvm.Open read-only + BladeImage.Open(ReadOnly) + Scan, page cache warm.</summary>
    [Benchmark(Baseline = true)]
    public long OpenReadOnlyAndScan() => _workload!.OpenReadOnlyAndScan().Slabs.Count;

    /// <summary>The same after the file's pages were dropped from the page cache (posix_fadvise DONTNEED), as after a reboot.</summary>
    [Benchmark]
    public long OpenReadOnlyAndScanColdCache() => _workload!.OpenReadOnlyAndScan().Slabs.Count;

    /// <summary>A blade server's restart: open read-write (new incarnation, superblock persisted) and start the agent.</summary>
    [Benchmark]
    public long RestartBladeServer() => _workload!.RestartBladeServer();

    public IReadOnlyDictionary<string, double> Probe(string benchmarkMethod)
    {
        var geometry = RecoveryWorkload.GeometryFor((long)RegionGiB << 30);
        return new Dictionary<string, double>
        {
            ["Slabs"] = geometry.SlabCount,
            ["MetadataKiB"] = geometry.MetadataBytes / 1024.0,
            ["ScannedKiB"] = RecoveryWorkload.ScannedArrayBytesOf(geometry) / 1024.0,
        };
    }

    private sealed class Config : BenchConfig
    {
        public Config() => AddColumn(
            new ProbeColumn("Slabs", "Slabs of 1 MiB in the region", "0"),
            new ProbeColumn("MetadataKiB", "Bytes before the data area (superblocks, fixed blocks, ring, bitmap, ownership, wear, node areas), KiB", "0.0"),
            new ProbeColumn("ScannedKiB", "Bytes of the metadata arrays Scan reads in bulk, KiB", "0.0"));
    }
}
