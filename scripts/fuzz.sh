#!/usr/bin/env bash
# Runs AFL++ on one SharpFuzz harness of fuzz/RAllocator.Fuzz for a chosen time.
#
# Usage: scripts/fuzz.sh TARGET SECONDS [OUTPUT_DIR]
#   TARGET     image | areas | cli   (see fuzz/README.md)
#   SECONDS    how long afl-fuzz runs (afl-fuzz -V)
#   OUTPUT_DIR afl-fuzz's findings directory (default: $TMPDIR/rallocator-fuzz/TARGET)
# Exit code: 0 when AFL found no crash and no hang, 1 when it did (the inputs are copied to
# fuzz/regressions/TARGET/ so that tests/RAllocator.Fuzz.Tests replays them), 2 on a usage or set-up error.
# Needs: afl++ (apt-get install afl++) and the SharpFuzz instrumentation tool (dotnet tool SharpFuzz.CommandLine,
# installed here into $TMPDIR/rallocator-fuzz/tools if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:-}"; seconds="${2:-}"
if [ -z "$target" ] || [ -z "$seconds" ] || ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  sed -n '2,12p' "$0" >&2; exit 2
fi
case "$target" in image|areas|cli) ;; *) echo "fuzz.sh: unknown target '$target' (image, areas, cli)" >&2; exit 2 ;; esac
if ! command -v afl-fuzz >/dev/null 2>&1; then
  echo "fuzz.sh: afl-fuzz is missing: apt-get install afl++ (scripts/test.sh installs it as root)" >&2; exit 2
fi

work="${TMPDIR:-/tmp}/rallocator-fuzz"
out="${3:-$work/$target}"
publish="$work/publish"
tools="$work/tools"
mkdir -p "$work"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
if ! command -v sharpfuzz >/dev/null 2>&1 && [ ! -x "$tools/sharpfuzz" ]; then
  echo "[fuzz.sh] installing SharpFuzz.CommandLine into $tools" >&2
  dotnet tool install SharpFuzz.CommandLine --tool-path "$tools" >&2
fi
sharpfuzz_bin="$(command -v sharpfuzz || echo "$tools/sharpfuzz")"

echo "[fuzz.sh] publishing fuzz/RAllocator.Fuzz" >&2
rm -rf "$publish"
dotnet publish fuzz/RAllocator.Fuzz -c Release -o "$publish" -nologo -v q >&2
# Instrument the libraries whose branches the harnesses explore (not the harness, not the BCL).
for dll in RAllocator.Blade RAllocator.Protocol RAllocator.Nvm rallocator; do
  if [ -f "$publish/$dll.dll" ]; then
    "$sharpfuzz_bin" "$publish/$dll.dll" >&2
  fi
done

rm -rf "$out"
# How afl-fuzz must start the harness (see fuzz/README.md, "Running AFL++"):
# - `dotnet RAllocator.Fuzz.dll TARGET`, not the apphost: Fuzzer.OutOfProcess.Run makes the started process a fork
#   server that runs the inputs in a child it starts as `dotnet <Environment.CommandLine>`, i.e. `dotnet <the dll>`.
# - AFL_SKIP_BIN_CHECK: `dotnet` carries no AFL instrumentation (the coverage comes from the sharpfuzz-rewritten
#   assemblies, written into AFL's shared memory by SharpFuzz), so afl-fuzz's binary check must be skipped.
# - -m none: the .NET runtime reserves far more address space than AFL's default memory limit.
# - -t 10000: the first run of each (re)started child pays for the runtime start and the JIT.
# AFL_SKIP_CPUFREQ / AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES: containers have neither a cpufreq governor nor a
# core_pattern we may change. AFL_NO_AFFINITY: the machine is shared, do not pin to a core others use.
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_SKIP_BIN_CHECK=1 AFL_NO_AFFINITY=1
dotnet_bin="$(command -v dotnet)"
log="$work/$target.afl.log"
echo "[fuzz.sh] afl-fuzz on '$target' for ${seconds}s (findings in $out, afl-fuzz output in $log)" >&2
afl-fuzz -i "fuzz/corpus/$target" -o "$out" -V "$seconds" -t 10000 -m none -- \
  "$dotnet_bin" "$publish/RAllocator.Fuzz.dll" "$target" >"$log" 2>&1 || true

found=0
mkdir -p "fuzz/regressions/$target"
for kind in crashes hangs; do
  for file in "$out"/default/"$kind"/id:*; do
    [ -e "$file" ] || continue
    found=1
    name="$kind-$(sha256sum "$file" | cut -c1-16)"
    install -m 0644 "$file" "fuzz/regressions/$target/$name"
    echo "[fuzz.sh] $kind: fuzz/regressions/$target/$name" >&2
  done
done
stats="$out/default/fuzzer_stats"
if [ ! -f "$stats" ]; then
  sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' "$log" | tail -30 >&2
  echo "fuzz.sh: afl-fuzz wrote no fuzzer_stats: it did not start (see its output above, all of it in $log;" \
    "rerun with AFL_DEBUG=1 to see the harness's own output)" >&2
  exit 2
fi
field() { awk -v k="$1" '$1 == k { print $3 }' "$stats"; }
execs="$(field execs_done)"; run_time="$(field run_time)"
echo "[fuzz.sh] $target: execs_done=$execs run_time=${run_time}s" \
  "execs_per_sec=$(awk -v e="$execs" -v t="$run_time" 'BEGIN { printf "%.1f", (t > 0 ? e / t : 0) }')" \
  "corpus_count=$(field corpus_count) corpus_found=$(field corpus_found) saved_crashes=$(field saved_crashes)" \
  "saved_hangs=$(field saved_hangs) bitmap_cvg=$(field bitmap_cvg)"
exit "$found"
