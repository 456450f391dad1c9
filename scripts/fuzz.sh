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
# AFL_SKIP_CPUFREQ / AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES: containers have neither a cpufreq governor nor a
# core_pattern we may change. -m none: the .NET runtime reserves far more address space than AFL's default.
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_SKIP_BIN_CHECK=1
echo "[fuzz.sh] afl-fuzz on '$target' for ${seconds}s (findings in $out)" >&2
afl-fuzz -i "fuzz/corpus/$target" -o "$out" -V "$seconds" -t 10000 -m none -- "$publish/RAllocator.Fuzz" "$target" >&2 || true

found=0
mkdir -p "fuzz/regressions/$target"
for kind in crashes hangs; do
  for file in "$out"/default/"$kind"/id:*; do
    [ -e "$file" ] || continue
    found=1
    name="$kind-$(sha256sum "$file" | cut -c1-16)"
    cp "$file" "fuzz/regressions/$target/$name"
    echo "[fuzz.sh] $kind: fuzz/regressions/$target/$name" >&2
  done
done
stats="$out/default/fuzzer_stats"
if [ -f "$stats" ]; then
  grep -E '^(execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|bitmap_cvg) ' "$stats" >&2 || true
else
  echo "fuzz.sh: afl-fuzz wrote no fuzzer_stats: it did not start (see its output above)" >&2; exit 2
fi
exit "$found"
