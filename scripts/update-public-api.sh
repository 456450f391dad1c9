#!/usr/bin/env bash
# Records the current public API of every src/ project in its PublicAPI.Unshipped.txt (new symbols added,
# removed symbols dropped), from the PublicApiAnalyzers diagnostics RS0016/RS0017. Run after an intended API
# change; review the diff; move lines to PublicAPI.Shipped.txt when releasing. Optional argument: one project
# (or solution) to build instead of the whole solution.
set -euo pipefail
cd "$(dirname "$0")/.."
for round in 1 2 3 4 5 6; do
  log=$(mktemp)
  dotnet build "${1:-RAllocator.sln}" -nologo -v q -p:TreatWarningsAsErrors=false > "$log" 2>&1 || true
  changed=$(python3 - "$log" <<'PY'
import re, sys, collections, os
added, removed = collections.defaultdict(set), collections.defaultdict(set)
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.search(r"(RS0016|RS0017): Symbol '(.*)' is (?:not part of the declared public API|part of the declared API, but is either not public or could not be found).*\[(.*\.csproj)\]", line)
    if m:
        (added if m.group(1) == "RS0016" else removed)[os.path.dirname(m.group(3))].add(m.group(2))
changed = 0
for project in set(added) | set(removed):
    path = os.path.join(project, "PublicAPI.Unshipped.txt")
    lines = [l.rstrip("\n") for l in open(path)] if os.path.exists(path) else ["#nullable enable"]
    body = set(l for l in lines[1:] if l.strip()) - removed[project] | added[project]
    open(path, "w").write("\n".join(["#nullable enable"] + sorted(body)) + "\n")
    changed += 1
print(changed)
PY
)
  rm -f "$log"
  echo "round $round: updated $changed project(s)"
  [ "$changed" = "0" ] && break
done
