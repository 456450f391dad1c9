#!/usr/bin/env bash
# Runs every RAllocator suite: installs the native libraries the tests need (as root, with apt), builds the
# solution, runs all test projects, and ends with one line "N passed, N failed". Exit code 0 only if all pass.
set -uo pipefail
cd "$(dirname "$0")/.."

# Native libraries and tools the suites load. libpmem backs MappedFileNvm (its tests fail loudly without it);
# libpmemobj and gcc build the PMDK side of the benchmarks and the C layout probes; UCX is the network fabric
# (shm and tcp in the tests); libibverbs/librdmacm headers are what the verbs bindings are checked against;
# spin model-checks spec/; afl++ drives the fuzz harnesses.
APT_PACKAGES=(libpmem1 libpmem-dev libpmemobj-dev gcc libucx-dev ucx-utils libibverbs-dev librdmacm-dev spin afl++)

log() { printf '[test.sh] %s\n' "$*"; }

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || { log "apt-get install failed for: ${missing[*]}"; echo "0 passed, 1 failed"; exit 1; }
  fi
else
  log "not root or no apt-get: not installing ${APT_PACKAGES[*]}; tests that need them will say what is missing"
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 COYOTE_CLI_TELEMETRY_OPTOUT=1
configuration="${CONFIGURATION:-Release}"
log_file="${TEST_LOG:-test.log}"
: > "$log_file"

log "building RAllocator.sln ($configuration)"
dotnet build RAllocator.sln -c "$configuration" -nologo -v q >> "$log_file" 2>&1
build_status=$?
if [ "$build_status" -ne 0 ]; then
  grep -E "error" "$log_file" | sort -u | head -50
  log "build failed (full log: $log_file)"
  echo "0 passed, 1 failed"
  exit 1
fi

log "running tests"
dotnet test RAllocator.sln -c "$configuration" --no-build -nologo 2>&1 | tee -a "$log_file"
test_status=${PIPESTATUS[0]}

# A test host that crashes (a native library's SIGSEGV, say) reports only the tests it finished, all passed:
# count each crash as a failure so the last line never reads "0 failed" for a run that lost tests.
awk '/^(Passed|Failed)!/ { for (i = 1; i <= NF; i++) { if ($i == "Passed:") p += $(i+1); if ($i == "Failed:") f += $(i+1) } }
     /\[FATAL ERROR\]|Test host process crashed|Test Run Aborted/ { f += 1 }
     END { printf "%d passed, %d failed\n", p, f }' "$log_file" | tee summary.txt
read -r passed _ failed _ < summary.txt
rm -f summary.txt
if [ "$test_status" -ne 0 ] || [ "${failed:-1}" -ne 0 ] || [ "${passed:-0}" -eq 0 ]; then
  exit 1
fi
exit 0
