#!/usr/bin/env python3
"""Regenerates the README's measured blocks and plots from bench/results/*.json:

- kv: the results table (<!-- results:begin/end --> in README.md, and a copy in bench/results/README-table.md) and
  bench/results/kv-throughput.png from kv-comparison.json (scripts/bench-kv.sh);
- fabrics: the <!-- fabrics:begin/end --> table from fabrics/*.json (scripts/bench-fabrics.sh);
- spans: the <!-- spans:begin/end --> tables and bench/results/slab-sizing.png from slab-sizing.json, wear.json,
  placement.json and, when present, compaction.json (dotnet run -c Release --project tests/RAllocator.Benchmarks --
  slab-sizing | wear | placement | compaction).

`plot-results.py [kv] [fabrics] [spans]` does only the parts named (default: all). Uses matplotlib when installed;
otherwise kv-throughput.png is drawn by a tiny built-in bar-chart writer (zlib + struct), and slab-sizing.png is left
as it is (apt-get install python3-matplotlib)."""
import json, os, struct, sys, zlib

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "results")
parts = set(sys.argv[1:]) or {"kv", "fabrics", "spans"}  # e.g. `plot-results.py spans` redraws only that block and plot

def replace_block(name, block):
    """Replaces README.md's <!-- NAME:begin --> ... <!-- NAME:end --> block with BLOCK (which carries the markers)."""
    path = os.path.join(root, "..", "..", "README.md")
    text = open(path, encoding="utf-8").read()
    begin, end = text.find(f"<!-- {name}:begin -->"), text.find(f"<!-- {name}:end -->")
    if begin >= 0 and end > begin:
        open(path, "w", encoding="utf-8").write(text[:begin] + block + text[end + len(f"<!-- {name}:end -->\n"):])
        print(f"updated the {name} block in README.md")


# KV store vs pmemobj: bench/results/kv-comparison.json from scripts/bench-kv.sh.
if "kv" in parts:
    data = json.load(open(os.path.join(root, "kv-comparison.json")))
    rows = data["rows"]
    if not rows:
        sys.exit("plot-results.py: kv-comparison.json has no rows; run scripts/bench-kv.sh first")

    lines = ["| persistence | workload | threads | records × ops | RAllocator KV (ops/s) | pmemobj KV (ops/s) | ratio |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["mode"], r["workload"], r["threads"])):
        mode = "msync (durable here)" if r["mode"] == "msync" else "cache-line flush, PMEM_IS_PMEM_FORCE=1 (not durable here)"
        lines.append(f"| {mode} | {r['workload']} | {r['threads']} | {r['records']:,} × {r['operations']:,} | {r['rallocator_ops_per_s']:,.0f} | "
                     f"{r['pmemobj_ops_per_s']:,.0f} | {r['ratio_rallocator_over_pmemobj']:.2f}× |")
    table = "<!-- results:begin -->\n" + "\n".join(lines) + "\n<!-- results:end -->\n"
    open(os.path.join(root, "README-table.md"), "w").write(table)
    readme = os.path.join(root, "..", "..", "README.md")
    text = open(readme, encoding="utf-8").read()
    begin, end = text.find("<!-- results:begin -->"), text.find("<!-- results:end -->")
    if begin >= 0 and end > begin:
        # The README's block is replaced in place, so the table there is always the last measured one.
        open(readme, "w", encoding="utf-8").write(text[:begin] + table + text[end + len("<!-- results:end -->\n"):])
        print("updated the results block in README.md")
    print(table)

    png = os.path.join(root, "kv-throughput.png")
    labels = [f"{r['mode']} {r['workload']} t{r['threads']}" for r in rows]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(max(6, len(rows) * 0.9), 4))
        xs = range(len(rows))
        ax.bar([x - 0.2 for x in xs], [r["rallocator_ops_per_s"] for r in rows], 0.4, label="RAllocator KV")
        ax.bar([x + 0.2 for x in xs], [r["pmemobj_ops_per_s"] for r in rows], 0.4, label="pmemobj KV")
        ax.set_xticks(list(xs)); ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
        ax.set_yscale("log"); ax.set_ylabel("ops/s (log)"); ax.legend(); fig.tight_layout(); fig.savefig(png, dpi=120)
    except ImportError:
        # Minimal PNG: pairs of bars (blue RAllocator, orange pmemobj), heights on a log10 scale; no text.
        import math
        w, h = 40 * len(rows) + 20, 220
        px = [[(255, 255, 255)] * w for _ in range(h)]
        top = max(math.log10(max(r["rallocator_ops_per_s"], r["pmemobj_ops_per_s"], 10)) for r in rows)
        for i, r in enumerate(rows):
            for j, (v, c) in enumerate(((r["rallocator_ops_per_s"], (31, 119, 180)), (r["pmemobj_ops_per_s"], (255, 127, 14)))):
                bh = int(200 * math.log10(max(v, 1)) / top)
                for y in range(h - 10 - bh, h - 10):
                    for x in range(20 + 40 * i + 14 * j, 20 + 40 * i + 14 * j + 12):
                        px[y][x] = c
        raw = b"".join(b"\x00" + bytes(v for p in row for v in p) for row in px)
        chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
        open(png, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    print(f"wrote {os.path.join(root, 'README-table.md')} and {png}")


# Fabrics: bench/results/fabrics/*.json from scripts/bench-fabrics.sh (rallocator bench --json per fabric).
fabrics_dir = os.path.join(root, "fabrics")
fabric_rows = []
for name in ["shm", "ucx-sm", "ucx-tcp"]:
    path = os.path.join(fabrics_dir, f"{name}.json")
    if os.path.exists(path):
        fabric_rows.append(json.load(open(path)))
if fabric_rows and "fabrics" in parts:
    out = ["| fabric | alloc p50 / p99 (ns) | alloc throughput | slab acquire p50 / p99 (µs) | round trips per acquire | bytes per acquire | blade CPU |",
           "|---|---:|---:|---:|---:|---:|---|"]
    for r in fabric_rows:
        cpu = f"{r['blade_cpu_ms']:,.0f} ms in {r['wall_seconds']:.2f} s ({r['blade_cpu_percent_of_one_core']:.0f}% of a core)" if r.get("blade_cpu_ms") is not None else "n/a"
        out.append(f"| {r['fabric']} | {r['alloc_p50_ns']:,.0f} / {r['alloc_p99_ns']:,.0f} | {r['alloc_throughput_ops_per_s']/1e6:.2f} M/s ({r['threads']} threads) | "
                   f"{r['acquire_p50_ns']/1000:,.1f} / {r['acquire_p99_ns']/1000:,.1f} | {r['round_trips_per_acquire']:.3f} | {r['bytes_per_acquire']:.0f} | {cpu} |")
    replace_block("fabrics", "<!-- fabrics:begin -->\n" + "\n".join(out) + "\n<!-- fabrics:end -->\n")


# Many blades, slab sizes, wear: slab-sizing.json, wear.json, placement.json (and compaction.json when present),
# written by tests/RAllocator.Benchmarks (`-- slab-sizing`, `-- wear`, `-- placement`, `-- compaction`).
def load(name):
    path = os.path.join(root, name)
    return json.load(open(path)) if os.path.exists(path) else None


def mean(values):
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def policy_label(name):
    return {"fixed-64KiB": "fixed 64 KiB", "fixed-256KiB": "fixed 256 KiB", "fixed-1MiB": "fixed 1 MiB"}.get(name, name)


sizing, wear, placement, compaction = (load(n) for n in ("slab-sizing.json", "wear.json", "placement.json", "compaction.json"))
if "spans" in parts and sizing is not None:
    out = ["| mix | slab sizing | acquisitions per million allocations | fragmentation, time-averaged | fragmentation at peak | peak held | slabs by size (64 KiB / 128 KiB / 256 KiB / 512 KiB / 1 MiB) |",
           "|---|---|---:|---:|---:|---:|---|"]
    for mix in sizing["mixes"]:
        for name, r in mix["policies"].items():
            label = f"**{policy_label(name)}**" if name == "adaptive" else policy_label(name)
            out.append(f"| {mix['mix']} | {label} | {r['acquisitions_per_million_allocations']:,.0f} | {r['fragmentation_time_averaged']:.1%} | "
                       f"{r['fragmentation_at_peak']:.1%} | {r['peak_held_mib']:.1f} MiB | {' / '.join(str(c) for c in r['slabs_by_span'])} |")
    out += ["", "| measured | baseline | RAllocator |", "|---|---:|---:|"]
    if wear is not None:
        lw = [r["least_worn_first"]["max_over_mean"] for r in wear["runs"]]
        ff = [r["first_in_first_out"]["max_over_mean"] for r in wear["runs"]]
        out.append(f"| wear, max / mean hand-outs per slab after {wear['handouts_per_run']:,} hand-outs ({len(lw)} seeds) | "
                   f"{mean(ff):.2f} (first-in-first-out reuse) | {mean(lw):.2f} (least-worn-first refill) |")
    if placement is not None:
        p = placement["summary"]
        out.append(f"| utilization spread (max − min) / mean over 4 blades, at the end ({len(placement['runs'])} seeds) | "
                   f"{p['round_robin_final_spread_mean']:.2f} (round robin) | {p['coordinator_final_spread_mean']:.2f} (coordinator hints) |")
        out.append(f"| the same, averaged over the run | {p['round_robin_time_averaged_spread_mean']:.2f} | {p['coordinator_time_averaged_spread_mean']:.2f} |")
    if compaction is not None:
        # Before is the fragmented heap (the baseline); after is what CompactAsync left.
        for mode, label in (("compaction", "compaction of sparse slabs"), ("migration", f"migration off blade {compaction.get('migration', {}).get('evacuated_blade', 1)}")):
            c = compaction.get(mode)
            if c is None:
                continue
            out.append(f"| {label}: utilization (live bytes / held slab bytes), slabs held | "
                       f"{c['before']['utilization']:.1%}, {c['before']['slabs_held']} slabs | {c['after']['utilization']:.1%}, {c['after']['slabs_held']} slabs |")
            out.append(f"| {label}: objects moved, round trips per moved object (without the callback's) | | "
                       f"{c['objects_moved']:,}, {c['round_trips_per_moved_object']:.2f} ({c['round_trips_per_moved_object_excluding_callback']:.2f}) |")
    replace_block("spans", "<!-- spans:begin -->\n" + "\n".join(out) + "\n<!-- spans:end -->\n")
    print("\n".join(out))

    png = os.path.join(root, "slab-sizing.png")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        markers = {"fixed-64KiB": "o", "fixed-256KiB": "s", "fixed-1MiB": "D", "adaptive": "*"}
        for i, mix in enumerate(sizing["mixes"]):
            fixed = [(n, r) for n, r in mix["policies"].items() if n != "adaptive"]
            left.plot([r["acquisitions_per_million_allocations"] for _, r in fixed], [r["fragmentation_time_averaged"] for _, r in fixed],
                      color=colors[i], linewidth=1, alpha=0.5)
            for name, r in mix["policies"].items():
                left.scatter(r["acquisitions_per_million_allocations"], r["fragmentation_time_averaged"], color=colors[i],
                             marker=markers.get(name, "x"), s=170 if name == "adaptive" else 45, edgecolors="black", linewidths=0.5, zorder=3)
            left.plot([], [], color=colors[i], label=mix["mix"])
        for name, marker in markers.items():
            left.scatter([], [], color="white", edgecolors="black", marker=marker, label=policy_label(name))
        left.set_xscale("log")
        left.set_xlabel("slab acquisitions per million allocations (log; 2 round trips each)")
        left.set_ylabel("internal fragmentation, time-averaged")
        left.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        left.set_title("slab size: fixed vs adaptive (lower left is better)", fontsize=10)
        left.legend(fontsize=7, loc="upper right")
        bars = []
        if wear is not None:
            bars.append(("wear max/mean", mean(r["first_in_first_out"]["max_over_mean"] for r in wear["runs"]),
                         mean(r["least_worn_first"]["max_over_mean"] for r in wear["runs"]), "FIFO", "least worn first"))
        if placement is not None:
            bars.append(("blade utilization spread", placement["summary"]["round_robin_final_spread_mean"],
                         placement["summary"]["coordinator_final_spread_mean"], "round robin", "coordinator"))
        xs = range(len(bars))
        right.bar([x - 0.2 for x in xs], [b[1] for b in bars], 0.4, label="baseline", color="#bbbbbb")
        right.bar([x + 0.2 for x in xs], [b[2] for b in bars], 0.4, label="RAllocator", color=colors[0])
        for x, b in zip(xs, bars):
            right.text(x - 0.2, b[1], f"{b[1]:.2f}\n{b[3]}", ha="center", va="bottom", fontsize=7)
            right.text(x + 0.2, b[2], f"{b[2]:.2f}\n{b[4]}", ha="center", va="bottom", fontsize=7)
        right.set_xticks(list(xs))
        right.set_xticklabels([b[0] for b in bars], fontsize=8)
        right.set_ylim(0, max([b[1] for b in bars] + [1]) * 1.3)
        right.set_title("wear and placement (lower is better)", fontsize=10)
        right.legend(fontsize=7, loc="upper left")
        fig.tight_layout()
        fig.savefig(png, dpi=120)
        print(f"wrote {png}")
    except ImportError:
        print(f"matplotlib is not installed (apt-get install python3-matplotlib): {png} left as it is")
