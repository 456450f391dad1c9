using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RAllocator.Benchmarks.Quick;

/// <summary>
/// Turns the raw JSON lines that scripts/bench.sh collected (one measurement per line, exactly as the programs
/// printed them) into bench/results: pmdk-comparison.json and .md, slab-acquisition.md and recovery.md. Nothing
/// here measures or invents a number: every figure comes from a raw line, and a missing one is shown as "-".
/// </summary>
internal static class ComparisonReport
{
    private static readonly JsonSerializerOptions s_indented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static IEnumerable<Dictionary<string, object>> Write(QuickOptions options)
    {
        string raw = options.String("raw", "bench/results/raw");
        string output = options.String("out", "bench/results");
        var env = ReadObject(Path.Combine(raw, "env.json"));
        var rallocator = ReadLines(Path.Combine(raw, "rallocator-pairs.jsonl"));
        var msync = ReadLines(Path.Combine(raw, "pmemobj-msync.jsonl"));
        var model = ReadLines(Path.Combine(raw, "pmemobj-pmem-model.jsonl"));
        var acquire = ReadLines(Path.Combine(raw, "acquire.jsonl"));
        var recovery = ReadLines(Path.Combine(raw, "recovery.jsonl"));

        var rows = rallocator.Select(r =>
        {
            int size = Int(r, "size");
            int threads = r["threads"] is null ? 1 : Int(r, "threads");
            var m = Find(msync, size, threads);
            var f = Find(model, size, threads);
            double ns = Double(r, "alloc_free_pair_ns");
            return new JsonObject
            {
                ["size"] = size,
                ["threads"] = threads,
                ["rallocator_source"] = r["source"]?.ToString() ?? "src/RAllocator.Cli bench",
                ["rallocator_pair_ns"] = ns,
                ["pmemobj_msync_pair_ns"] = m is null ? null : Double(m, "alloc_free_pair_ns"),
                ["pmemobj_pmem_model_pair_ns"] = f is null ? null : Double(f, "alloc_free_pair_ns"),
                ["ratio_pmemobj_msync_over_rallocator"] = m is null ? null : Math.Round(Double(m, "alloc_free_pair_ns") / ns, 1),
                ["ratio_pmemobj_pmem_model_over_rallocator"] = f is null ? null : Math.Round(Double(f, "alloc_free_pair_ns") / ns, 1),
                ["rallocator_round_trips_per_pair"] = r["round_trips_per_pair"]?.DeepClone(),
                ["rallocator_managed_bytes_per_pair"] = r["managed_bytes_allocated_per_pair"]?.DeepClone(),
                ["rallocator"] = r.DeepClone(),
                ["pmemobj_msync"] = m?.DeepClone(),
                ["pmemobj_pmem_model"] = f?.DeepClone(),
            };
        }).ToList();

        var comparison = new JsonObject
        {
            ["what"] = "allocate+free pairs of one size: RAllocator WorkingNodeHeap (loopback fabric, MappedFileNvm blade, steady state) vs PMDK libpmemobj pmemobj_alloc+pmemobj_free",
            ["ratio"] = "pmemobj time per pair / RAllocator time per pair (above 1: RAllocator is faster)",
            ["environment"] = env.DeepClone(),
            ["rows"] = new JsonArray([.. rows]),
        };
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "pmdk-comparison.json"), comparison.ToJsonString(s_indented) + "\n");
        File.WriteAllText(Path.Combine(output, "pmdk-comparison.md"), ComparisonMarkdown(env, rows));
        File.WriteAllText(Path.Combine(output, "slab-acquisition.md"), AcquisitionMarkdown(env, acquire));
        File.WriteAllText(Path.Combine(output, "recovery.md"), RecoveryMarkdown(env, recovery));
        return [new Dictionary<string, object> { ["written"] = output, ["comparison_rows"] = rows.Count, ["recovery_rows"] = recovery.Count }];
    }

    private static string ComparisonMarkdown(JsonObject env, List<JsonObject> rows)
    {
        var md = new StringBuilder();
        md.AppendLine("# RAllocator vs PMDK libpmemobj: allocate + free pairs");
        md.AppendLine();
        md.AppendLine("Written by `scripts/bench.sh` from the raw lines in `raw/` (real runs, nothing typed in). Each figure is the");
        md.AppendLine("median of several timed runs after a warm-up of the same length, in one process per row and side.");
        md.AppendLine();
        AppendEnvironment(md, env);
        md.AppendLine("| object size (B) | threads | RAllocator pair (ns) | pmemobj pair, msync (ns) | ratio | pmemobj pair, PMEM_IS_PMEM_FORCE=1 (ns) | ratio | RAllocator round trips / pair | RAllocator managed bytes / pair |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var row in rows)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {row["size"]} | {row["threads"]} | {Num(row["rallocator_pair_ns"])} | {Num(row["pmemobj_msync_pair_ns"])} | {Ratio(row["ratio_pmemobj_msync_over_rallocator"])} | {Num(row["pmemobj_pmem_model_pair_ns"])} | {Ratio(row["ratio_pmemobj_pmem_model_over_rallocator"])} | {Num(row["rallocator_round_trips_per_pair"])} | {Num(row["rallocator_managed_bytes_per_pair"])} |");
        }

        md.AppendLine();
        md.AppendLine("Ratio = pmemobj time / RAllocator time for the same size and thread count. With several threads, time per pair is");
        md.AppendLine("wall time / pairs per thread (one thread's mean), all threads sharing one heap or one pool.");
        md.AppendLine();
        double managed = rows.Select(r => r["rallocator_managed_bytes_per_pair"] is JsonValue v && v.TryGetValue(out double d) ? d : 0).DefaultIfEmpty(0).Max();
        if (managed > 0)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"RAllocator allocates up to {managed:0} managed bytes per pair (GC.GetTotalAllocatedBytes over the timed runs). The cause, checked");
            md.AppendLine("separately: `WorkingNodeHeap.FreeAsync` calls `SlabOf`, which reads `BladeGeometry.DataOffset`, and that property");
            md.AppendLine("builds a new `BladeLayout` on every call (about 634 B). Caching the data offset would remove it and part of the time.");
            md.AppendLine();
        }

        md.AppendLine("## What each side guarantees at that speed");
        md.AppendLine();
        md.AppendLine("These are not the same operation, and the ratio must be read with that in mind.");
        md.AppendLine();
        md.AppendLine("- **pmemobj_alloc / pmemobj_free** are failure-atomic and persistent per call: each call runs a redo log in the");
        md.AppendLine("  pool and flushes it and the allocator metadata before it returns. When it returns, a crash cannot lose or");
        md.AppendLine("  duplicate the object. Where the pool is not real persistent memory (this machine: a file in the page cache),");
        md.AppendLine("  libpmemobj's flushes are `msync` calls that reach the disk, which is the \"msync\" column: durable, and slow");
        md.AppendLine("  because every call waits for the device. The `PMEM_IS_PMEM_FORCE=1` column makes libpmem treat the file as");
        md.AppendLine("  pmem, so the flushes are only cache-line flushes and fences: roughly the cost on real pmem, but **not durable");
        md.AppendLine("  on this machine**; it is shown only to separate pmemobj's own work from this disk's latency.");
        md.AppendLine("- **RAllocator's object allocate / free** (`WorkingNodeHeap.AllocateAsync` / `FreeAsync`) change local, volatile");
        md.AppendLine("  object state on the working node: a per-slab free stack and bitmap under a per-class lock. No verb is issued");
        md.AppendLine("  and nothing is persisted (the round-trip column counts it: 0). After a crash, object state is rebuilt by");
        md.AppendLine("  reachability: the application hands `CompleteRecoveryAsync` the objects it can still reach from its persisted");
        md.AppendLine("  root, and every other object in its slabs is free. What is durable is **slab ownership, at slab granularity**:");
        md.AppendLine("  acquiring a slab posts a persisted acknowledgement to the blade (2 round trips, see `slab-acquisition.md`),");
        md.AppendLine("  returning one posts a persisted free request, and a restarted node gets back exactly the slabs it owned. An");
        md.AppendLine("  object's contents are durable only once the application persists them (`WriteAndPersistAsync`).");
        md.AppendLine("- So pmemobj pays for durability on every object operation; RAllocator pays for it once per slab (1 MiB here,");
        md.AppendLine("  up to 65,532 objects of 16 B) and leaves per-object crash consistency to the application's reachability.");
        md.AppendLine("  After a crash, pmemobj's allocator state is exact (an object allocated but not yet linked anywhere stays");
        md.AppendLine("  allocated, so the program must find it, e.g. with POBJ_FOREACH, or allocate inside a transaction); RAllocator");
        md.AppendLine("  recomputes object state from what the application reports reachable and frees the rest, so an application");
        md.AppendLine("  must persist the link to an object before it relies on that object surviving.");
        md.AppendLine();
        md.AppendLine("## Set-up");
        md.AppendLine();
        md.AppendLine("- RAllocator: `tests/RAllocator.Benchmarks` quick mode `pairs` (the CLI's `bench` command is used instead when it");
        md.AppendLine("  prints `alloc_free_pair_ns`; the `source` field of each raw line says which). One blade on a 256 MiB sparse temp");
        md.AppendLine("  file (`MappedFileNvm`, libpmem backend), 1 MiB slabs, loopback fabric, one working node. Setup acquires and carves");
        md.AppendLine("  the slabs a burst of 64 objects needs and keeps them (empty-slab threshold raised), so the timed loop is steady");
        md.AppendLine("  state. The loopback fabric is in-process; it does not matter here because a steady-state pair issues no verb.");
        md.AppendLine("- PMDK: `bench/pmdk/pmemobj_bench.c` (gcc -O2, libpmemobj " + Str(env["pmdk_version"]) + "): a 64 MiB pool in a temp file");
        md.AppendLine("  (`pmemobj_create`), `pmemobj_alloc(pop, &oid, size, 1, NULL, NULL)` then `pmemobj_free(&oid)`.");
        md.AppendLine("- Fewer pairs are timed in the msync column (each pair waits for the disk several times); see `ops` in the JSON.");
        return md.ToString();
    }

    private static string AcquisitionMarkdown(JsonObject env, List<JsonObject> lines)
    {
        var md = new StringBuilder();
        md.AppendLine("# Slab acquisition (one-sided), measured");
        md.AppendLine();
        md.AppendLine("Written by `scripts/bench.sh` from `raw/acquire.jsonl` (quick mode `acquire` of `tests/RAllocator.Benchmarks`; the");
        md.AppendLine("BenchmarkDotNet class `SlabAcquisitionBenchmarks` measures the same workload). One working node, loopback fabric,");
        md.AppendLine("blade on a 2 GiB sparse `MappedFileNvm` file with 1 MiB slabs. Each timed batch is a run of acquisitions with the");
        md.AppendLine("blade agent stopped; the agent runs only between batches (apply acknowledgements, drain frees, reclaim after the");
        md.AppendLine("node's epoch, refill the ring). Times are medians over batches.");
        md.AppendLine();
        AppendEnvironment(md, env);
        md.AppendLine("| persistence | batch | batches | acquire (µs) | acquire, fastest batch (µs) | acquire + return (µs) | round trips / acquire | verbs / acquire | blade handler calls in timed batches |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var line in lines)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {Str(line["persist"])} | {line["batch"]} | {line["batches"]} | {Micro(line["acquire_ns"])} | {Micro(line["acquire_ns_min"])} | {Micro(line["acquire_return_ns"])} | {Num(line["round_trips_per_acquire"])} | {Num(line["verbs_per_acquire"])} | {line["blade_handler_calls_during_batches"]} |");
        }

        md.AppendLine();
        md.AppendLine("- Round trips: FETCH_AND_ADD on the sequencer and READ of the ring entry; the announce, claim and acknowledgement");
        md.AppendLine("  (WRITE + PERSIST) are posted unsignaled. The fraction above 2 is the node's lazy check of how far the blade");
        md.AppendLine("  drained its acknowledgement area (one header READ when the area looks full). Returning a slab adds no round");
        md.AppendLine("  trip (the free request is posted). Zero blade handler calls: the blade CPU is off the acquisition path.");
        md.AppendLine("- Time: on the loopback fabric every verb runs in-process, so the time is the protocol's CPU work plus its");
        md.AppendLine("  persists. With msync each acknowledgement's PERSIST waits for this machine's disk; with");
        md.AppendLine("  `PMEM_IS_PMEM_FORCE=1` it is a cache-line flush (the real-pmem cost, not durable here). On a real fabric add");
        md.AppendLine("  two network round trips per acquisition (see `STACK.md` for UCX latencies on this host).");
        return md.ToString();
    }

    private static string RecoveryMarkdown(JsonObject env, List<JsonObject> lines)
    {
        var md = new StringBuilder();
        md.AppendLine("# Blade open / recovery time by region size");
        md.AppendLine();
        md.AppendLine("Written by `scripts/bench.sh` from `raw/recovery.jsonl` (quick mode `recovery` of `tests/RAllocator.Benchmarks`;");
        md.AppendLine("the BenchmarkDotNet class `BladeRecoveryBenchmarks` measures the same operations). Each region is a sparse");
        md.AppendLine("temp file created with `MappedFileNvm.Create` and formatted with 1 MiB slabs and the default format options");
        md.AppendLine("(16 nodes, 64 acknowledgement and free slots per node, ring of min(slabs, 1024)). Medians over runs.");
        md.AppendLine();
        AppendEnvironment(md, env);
        md.AppendLine("| region | slabs | metadata bytes | metadata arrays scanned (bytes) | file blocks on disk (bytes) | open + scan, warm (ms) | of which Scan (ms) | open + scan, cold (ms) | blade server restart (ms) | consistent |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|");
        foreach (var line in lines)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {line["region_gib"]} GiB | {line["slabs"]} | {Long(line, "metadata_bytes"):N0} ({Long(line, "metadata_bytes") / 1024.0 / 1024.0:0.00} MiB) | {Long(line, "scanned_array_bytes"):N0} | {Long(line, "file_allocated_bytes"):N0} | {Milli(line["open_scan_warm_us"])} | {Milli(line["warm_scan_us"])} | {Milli(line["open_scan_cold_us"])} | {Milli(line["restart_blade_server_us"])} | {line["consistent"]} |");
        }

        md.AppendLine();
        md.AppendLine("- **open + scan**: `MappedFileNvm.Open(path, ReadOnly)` + `BladeImage.Open(region, ReadOnly)` (both superblocks");
        md.AppendLine("  read and validated, geometry checked) + `BladeImage.Scan()` (bitmap, ownership table, wear counters, ring,");
        md.AppendLine("  node headers, acknowledgement and free areas read in bulk and cross-checked) + unmap. This is what `inspect`");
        md.AppendLine("  and a recovering reader do. *Warm*: the file's pages are in the page cache. *Cold*: they were dropped first");
        md.AppendLine("  with `posix_fadvise(POSIX_FADV_DONTNEED)` (the host's own disk cache may still serve them). *Of which Scan*:");
        md.AppendLine("  the `Scan()` call alone, from separately timed runs; mapping, superblock validation and unmapping take the rest");
        md.AppendLine("  (`warm_map_us`, `warm_image_open_us`, `warm_unmap_us` in the raw lines).");
        md.AppendLine("- **blade server restart**: `MappedFileNvm.Open` read-write (libpmem) + `BladeImage.Open(ReadWrite)` (replay, new");
        md.AppendLine("  incarnation: one superblock persist) + `BladeAgent.Start` (scan, consistency check, in-flight acquisitions");
        md.AppendLine("  voided, ring cleared, sequencer moved on; its persists are msyncs to disk here).");
        var first = lines.FirstOrDefault();
        string perSlab = first is null
            ? "a bitmap bit, an ownership entry and a wear counter per slab"
            : $"a bitmap bit, a {first["ownership_entry_bytes"]} B ownership entry and a {first["wear_counter_bytes"]} B wear counter per slab";
        md.AppendLine(CultureInfo.InvariantCulture, $"- The work follows the metadata, which grows with the slab count ({perSlab}, plus fixed");
        md.AppendLine("  node areas and a ring of at most 1024 entries), never with the data area: each sparse file holds only its");
        md.AppendLine("  metadata on disk (the \"file blocks\" column).");
        return md.ToString();
    }

    private static void AppendEnvironment(StringBuilder md, JsonObject env)
    {
        md.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Str(env["cpu"])}, {Str(env["cores"])} cores, {Str(env["kernel"])}; .NET {Str(env["dotnet"])}; PMDK {Str(env["pmdk_version"])}; temp files on {Str(env["tmp_filesystem"])}.");
        md.AppendLine(CultureInfo.InvariantCulture, $"Run {Str(env["started_utc"])} to {Str(env["finished_utc"])}; load average at start {Str(env["load_start"])}, at end {Str(env["load_end"])} (other work shared these cores, so treat small differences as noise).");
        md.AppendLine();
    }

    private static JsonObject ReadObject(string path) =>
        File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? [] : [];

    private static List<JsonObject> ReadLines(string path) =>
        File.Exists(path)
            ? File.ReadLines(path).Where(l => l.TrimStart().StartsWith('{')).Select(l => JsonNode.Parse(l)!.AsObject()).ToList()
            : [];

    private static JsonObject? Find(List<JsonObject> lines, int size, int threads) =>
        lines.LastOrDefault(l => Int(l, "size") == size && Int(l, "threads") == threads);

    private static int Int(JsonObject o, string name) => o[name] is JsonValue v ? (int)v.GetValue<double>() : -1;

    private static long Long(JsonObject o, string name) => o[name] is JsonValue v ? (long)v.GetValue<double>() : -1;

    private static double Double(JsonObject o, string name) => o[name] is JsonValue v ? v.GetValue<double>() : double.NaN;

    private static string Num(JsonNode? node) => node is JsonValue v && v.TryGetValue(out double d)
        ? d.ToString(d >= 1000 ? "N0" : d >= 100 ? "0.0" : "0.###", CultureInfo.InvariantCulture)
        : "-";

    private static string Ratio(JsonNode? node) => node is JsonValue v && v.TryGetValue(out double d) ? d.ToString("N1", CultureInfo.InvariantCulture) + "×" : "-";

    private static string Micro(JsonNode? ns) => ns is JsonValue v && v.TryGetValue(out double d) ? (d / 1000).ToString("0.00", CultureInfo.InvariantCulture) : "-";

    private static string Milli(JsonNode? us) => us is JsonValue v && v.TryGetValue(out double d) ? (d / 1000).ToString("0.00", CultureInfo.InvariantCulture) : "-";

    private static string Str(JsonNode? node) => node?.ToString() ?? "?";
}
