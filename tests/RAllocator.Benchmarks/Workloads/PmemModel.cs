namespace RAllocator.Benchmarks.Workloads;

/// <summary>How the benchmark process's persists reach the blade file, as libpmem decided at load.</summary>
internal static class PmemModel
{
    /// <summary>
    /// libpmem's switch: <c>1</c> makes <c>pmem_is_pmem</c> true for every mapping, so persists are cache-line
    /// flushes (the cost on real persistent memory) that are not durable on a machine without it. Read by libpmem
    /// when it loads, so it must be in the process environment before start (setting it from .NET is not seen).
    /// </summary>
    public const string ForceVariable = "PMEM_IS_PMEM_FORCE";

    /// <summary>"pmem-model (PMEM_IS_PMEM_FORCE=1)" or "msync", for reports.</summary>
    public static string Describe() =>
        Environment.GetEnvironmentVariable(ForceVariable) == "1"
            ? $"{ForceVariable}=1: persist = cache-line flush + fence (real-pmem cost model; not durable on this machine)"
            : "persist = msync of the mapped file (durable on the disk under the file)";
}
