#!/usr/bin/env bash
# Measures `rallocator bench` over each fabric against an in-process blade server and writes
# bench/results/fabrics/<fabric>.json (one JSON object each). Usage: scripts/bench-fabrics.sh [OPS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
ops="${1:-200000}"
threads="${2:-2}"
out=bench/results/fabrics
mkdir -p "$out"
dotnet build src/RAllocator.Cli -c Release -nologo -v q >/dev/null
cli=(dotnet src/RAllocator.Cli/bin/Release/net10.0/rallocator.dll bench --size 64 --ops "$ops" --threads "$threads" --acquisitions 256 --json)
"${cli[@]}" --fabric loopback --nvm file > "$out/loopback.json"
"${cli[@]}" --fabric shm > "$out/shm.json"
"${cli[@]}" --fabric ucx --ucx-tls sm > "$out/ucx-sm.json"
"${cli[@]}" --fabric ucx --ucx-tls tcp > "$out/ucx-tcp.json"
echo "wrote $out/{loopback,shm,ucx-sm,ucx-tcp}.json (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
