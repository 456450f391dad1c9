#!/usr/bin/env bash
# YCSB on RAllocator's persistent KV store (rallocator ycsb) and on a pmemobj-backed KV store (bench/kv/pmemobj_kv.c),
# same workloads, key choosers, record size, record/operation counts and threads; writes bench/results/kv/*.json and
# bench/results/kv-comparison.json (one object per run, plus ratios). Two durability settings on each side:
#   msync:      both sides persist with msync of a page-cache mapping (durable on this disk)
#   pmem-model: PMEM_IS_PMEM_FORCE=1: both use cache-line flushes (the cost of real pmem; NOT durable here)
# Usage: scripts/bench-kv.sh [--quick] [--workloads "a b c d f"] [--threads "1 2"] [--record-size 1000]
# Needs `rallocator ycsb` (src/RAllocator.Cli with YcsbCommand registered), gcc and libpmemobj-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
workloads="a b c d f"; threads_list="1 2"; record_size=1000; quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --workloads) workloads="$2"; shift ;;
    --threads) threads_list="$2"; shift ;;
    --record-size) record_size="$2"; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "bench-kv.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
# msync costs milliseconds per persist: the durable runs are kept short.
if [ "$quick" = 1 ]; then model_records=2000; model_ops=5000; msync_records=100; msync_ops=200
else model_records=20000; model_ops=50000; msync_records=300; msync_ops=600; fi
log() { printf '[bench-kv.sh] %s\n' "$*" >&2; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
work="${TMPDIR:-/tmp}/rallocator-bench-kv"; mkdir -p "$work"
out=bench/results/kv; mkdir -p "$out"; rm -f "$out"/*.json

log "building bench/kv/pmemobj_kv.c"
gcc -O2 -Wall -Wextra -o "$work/pmemobj_kv" bench/kv/pmemobj_kv.c -lpmemobj -lpmem -lpthread -lm
log "building src/RAllocator.Cli (Release)"
dotnet build src/RAllocator.Cli -c Release -nologo -v q >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
cli="src/RAllocator.Cli/bin/Release/net10.0/rallocator.dll"
if ! dotnet "$cli" ycsb --help >/dev/null 2>&1; then
  echo "bench-kv.sh: 'rallocator ycsb' is not registered (add YcsbCommand.Create(cli) to Program.BuildRootCommand)" >&2; exit 1
fi

for mode in pmem-model msync; do
  if [ "$mode" = msync ]; then records=$msync_records; ops=$msync_ops; env_force=(); else records=$model_records; ops=$model_ops; env_force=(PMEM_IS_PMEM_FORCE=1); fi
  for w in $workloads; do
    for t in $threads_list; do
      log "$mode: workload $w, $t thread(s), $records records, $ops operations, $record_size B"
      env "${env_force[@]}" dotnet "$cli" ycsb --workload "$w" --records "$records" --operations "$ops" --record-size "$record_size" --threads "$t" --nvm file --json \
        | python3 -c 'import json,sys; d=json.load(sys.stdin); d["mode"]=sys.argv[1]; print(json.dumps(d))' "$mode" >"$out/rallocator-$mode-$w-t$t.json"
      env "${env_force[@]}" "$work/pmemobj_kv" --workload "$w" --records "$records" --operations "$ops" --record-size "$record_size" --threads "$t" --dir "$work" \
        | python3 -c 'import json,sys; d=json.load(sys.stdin); d["mode"]=sys.argv[1]; print(json.dumps(d))' "$mode" >"$out/pmemobj-$mode-$w-t$t.json"
    done
  done
done

python3 - "$out" <<'PY'
import json, glob, os, sys
out = sys.argv[1]; rows = []
for f in sorted(glob.glob(os.path.join(out, "rallocator-*.json"))):
    r = json.load(open(f)); p = json.load(open(f.replace("rallocator-", "pmemobj-")))
    rows.append({"mode": r["mode"], "workload": r["workload"], "threads": r["threads"], "records": r["records"], "operations": r["operations"],
                 "record_size": r["record_size"], "rallocator_ops_per_s": r["throughput_ops_per_s"], "pmemobj_ops_per_s": p["throughput_ops_per_s"],
                 "ratio_rallocator_over_pmemobj": round(r["throughput_ops_per_s"] / p["throughput_ops_per_s"], 3),
                 "rallocator_durability": r["durability"], "pmemobj_durability": p["durability"]})
json.dump({"what": "YCSB throughput: RAllocator KV (skip list on the working-node heap, embedded blade on a mapped file) vs a pmemobj hash table",
           "rows": rows}, open(os.path.join(os.path.dirname(out), "kv-comparison.json"), "w"), indent=2)
print(json.dumps(rows, indent=1))
PY
log "wrote $out/*.json and bench/results/kv-comparison.json; run scripts/plot-results.py for the table and plot"
