#!/usr/bin/env bash
# Measures RAllocator and PMDK's libpmemobj on this machine and writes bench/results/:
#   pmdk-comparison.json, pmdk-comparison.md   allocate+free pairs per size: RAllocator vs pmemobj (msync and pmem model)
#   slab-acquisition.md                        one-sided slab acquisition: time, round trips, blade calls
#   recovery.md                                blade open + scan time of 1, 4, 16, 64 GiB sparse images, metadata bytes
#   raw/*.jsonl, raw/env.json                  the lines the programs printed, from which the above are written
# With --bdn it also runs the BenchmarkDotNet suites (--job short) and copies their reports to bench/results/bdn/.
#
# Usage: scripts/bench.sh [--quick] [--bdn] [--sizes "16 64 256 1024 4096 65536"]
#   --quick  fewer operations (a smoke run). The default run measures for about 2 minutes, plus builds (3-7 minutes in
#            all on a busy 2-core machine); --bdn adds the BenchmarkDotNet run (about 5-10 minutes there).
# Needs: dotnet (global.json's SDK), gcc, libpmemobj-dev (PMDK; installed here with apt-get when run as root).
# Every number comes from a run made by this script; nothing is typed in.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes="16 64 256 1024 4096 65536"
thread_sizes="64 256"          # sizes also measured with 2 threads
quick=0
bdn=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --bdn) bdn=1 ;;
    --sizes) sizes="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$quick" = 1 ]; then
  rallocator_ops=200000; model_ops=50000; msync_ops=20; runs=3; acquire_batches=3; recovery_runs=3
else
  rallocator_ops=1000000; model_ops=200000; msync_ops=100; runs=5; acquire_batches=8; recovery_runs=5
fi
# msync acquisitions wait for the disk (milliseconds each): a short batch keeps the run bounded.
msync_acquire_batch=32; msync_acquire_batches=3

log() { printf '[bench.sh] %s\n' "$*" >&2; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# --- prerequisites -------------------------------------------------------------------------------------------
if [ ! -f /usr/include/libpmemobj.h ] || ! command -v gcc >/dev/null; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    log "installing gcc libpmemobj-dev"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libpmemobj-dev >/dev/null
  else
    echo "bench.sh: needs gcc and libpmemobj-dev (PMDK): apt-get install gcc libpmemobj-dev" >&2
    exit 1
  fi
fi

work="${TMPDIR:-/tmp}/rallocator-bench"
mkdir -p "$work"
results=bench/results
raw="$results/raw"
mkdir -p "$raw"
rm -f "$raw"/*.jsonl

avail_kib=$(df -Pk "$work" | awk 'NR==2 {print $4}')
if [ "${avail_kib:-0}" -lt $((1024 * 1024)) ]; then
  echo "bench.sh: less than 1 GiB free under $work; the sparse images need only a few MiB, but PMDK pools need 64 MiB each" >&2
  exit 1
fi

# --- build ---------------------------------------------------------------------------------------------------
pmdk_bin="$work/pmemobj_bench"
log "building bench/pmdk/pmemobj_bench.c"
gcc -O2 -Wall -Wextra -o "$pmdk_bin" bench/pmdk/pmemobj_bench.c -lpmemobj -lpmem -lpthread

log "building tests/RAllocator.Benchmarks (Release)"
dotnet build tests/RAllocator.Benchmarks -c Release -nologo -v q >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
bench_dll=tests/RAllocator.Benchmarks/bin/Release/net10.0/RAllocator.Benchmarks.dll
quick_mode() { dotnet "$bench_dll" "$@"; }

# The CLI's bench command, when it exists and prints the same measurement (alloc_free_pair_ns); else the quick mode.
use_cli=0
if [ -f src/RAllocator.Cli/RAllocator.Cli.csproj ] \
   && dotnet build src/RAllocator.Cli -c Release -nologo -v q >"$work/cli-build.log" 2>&1; then
  cli_probe=$(dotnet run -c Release --no-build --project src/RAllocator.Cli -- bench --fabric loopback --size 64 --ops 1000 --json 2>/dev/null || true)
  case "$cli_probe" in *'"alloc_free_pair_ns"'*) use_cli=1 ;; esac
fi
if [ "$use_cli" = 1 ]; then
  log "RAllocator side: src/RAllocator.Cli bench"
else
  log "RAllocator side: tests/RAllocator.Benchmarks quick mode 'pairs' (no CLI bench printing alloc_free_pair_ns)"
fi

# --- environment ---------------------------------------------------------------------------------------------
json_escape() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
load_now() { cut -d' ' -f1-3 /proc/loadavg; }
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_start=$(load_now)
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
pmdk_version=$(dpkg-query -W -f='${Version}' libpmemobj1 2>/dev/null || pkg-config --modversion libpmemobj 2>/dev/null || echo unknown)
tmp_fs=$(df -PT "$work" | awk 'NR==2 {print $2 " (" $1 ")"}')

# --- allocate + free pairs -----------------------------------------------------------------------------------
run_pairs() { # size threads
  local size=$1 threads=$2
  if [ "$use_cli" = 1 ] && [ "$threads" = 1 ]; then
    dotnet run -c Release --no-build --project src/RAllocator.Cli -- bench --fabric loopback --size "$size" --ops "$rallocator_ops" --json \
      >>"$raw/rallocator-pairs.jsonl"
  else
    quick_mode pairs --size "$size" --ops "$rallocator_ops" --threads "$threads" --runs "$runs" --json >>"$raw/rallocator-pairs.jsonl"
  fi
  "$pmdk_bin" --size "$size" --ops "$msync_ops" --threads "$threads" --runs 3 --dir "$work" >>"$raw/pmemobj-msync.jsonl"
  PMEM_IS_PMEM_FORCE=1 "$pmdk_bin" --size "$size" --ops "$model_ops" --threads "$threads" --runs "$runs" --dir "$work" \
    >>"$raw/pmemobj-pmem-model.jsonl"
}

for size in $sizes; do
  log "pairs: size $size, 1 thread"
  run_pairs "$size" 1
done
for size in $thread_sizes; do
  case " $sizes " in *" $size "*) log "pairs: size $size, 2 threads"; run_pairs "$size" 2 ;; esac
done

# --- slab acquisition ----------------------------------------------------------------------------------------
log "slab acquisition: PMEM_IS_PMEM_FORCE=1 (pmem cost model), batches of 512"
PMEM_IS_PMEM_FORCE=1 quick_mode acquire --batches "$acquire_batches" --json >>"$raw/acquire.jsonl"
log "slab acquisition: msync (durable on disk), batches of $msync_acquire_batch"
quick_mode acquire --batch "$msync_acquire_batch" --batches "$msync_acquire_batches" --json >>"$raw/acquire.jsonl"

# --- recovery ------------------------------------------------------------------------------------------------
log "recovery: 1, 4, 16, 64 GiB sparse images"
quick_mode recovery --sizes-gib 1,4,16,64 --runs "$recovery_runs" --json >>"$raw/recovery.jsonl"

# --- report --------------------------------------------------------------------------------------------------
finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cat >"$raw/env.json" <<EOF
{"started_utc":"$started","finished_utc":"$finished","load_start":"$load_start","load_end":"$(load_now)",
 "cpu":"$(json_escape "$cpu")","cores":"$(nproc)","kernel":"$(json_escape "$(uname -sr)")",
 "dotnet":"$(dotnet --version)","pmdk_version":"$(json_escape "$pmdk_version")","tmp_filesystem":"$(json_escape "$tmp_fs")",
 "quick":$([ "$quick" = 1 ] && echo true || echo false),"rallocator_side":"$([ "$use_cli" = 1 ] && echo cli || echo benchmarks-quick-mode)"}
EOF
quick_mode report --raw "$raw" --out "$results" --json >/dev/null
log "wrote $results/pmdk-comparison.{json,md}, $results/slab-acquisition.md, $results/recovery.md"

# --- BenchmarkDotNet (optional) ------------------------------------------------------------------------------
if [ "$bdn" = 1 ]; then
  log "BenchmarkDotNet: --job short, all suites (a few minutes)"
  artifacts="$work/bdn-artifacts"
  rm -rf "$artifacts"
  dotnet run -c Release --project tests/RAllocator.Benchmarks -- --filter '*' --job short --artifacts "$artifacts" \
    >"$work/bdn.log" 2>&1 || { tail -50 "$work/bdn.log" >&2; exit 1; }
  mkdir -p "$results/bdn"
  cp "$artifacts"/results/*-report-github.md "$results/bdn/"
  log "copied BenchmarkDotNet reports to $results/bdn/"
fi
cat "$results/pmdk-comparison.md"
