#!/usr/bin/env python3
"""Regenerates the README's results table (the block between <!-- results:begin --> and <!-- results:end -->
in README.md, and a copy in bench/results/README-table.md) and bench/results/kv-throughput.png from bench/results/kv-comparison.json
(written by scripts/bench-kv.sh). Uses matplotlib when installed; otherwise writes the PNG with a tiny built-in
bar-chart writer (zlib + struct), so it never needs a download."""
import json, os, struct, sys, zlib

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "results")
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


def replace_block(name, block):
    """Replaces README.md's <!-- NAME:begin --> ... <!-- NAME:end --> block with BLOCK (which carries the markers)."""
    path = os.path.join(root, "..", "..", "README.md")
    text = open(path, encoding="utf-8").read()
    begin, end = text.find(f"<!-- {name}:begin -->"), text.find(f"<!-- {name}:end -->")
    if begin >= 0 and end > begin:
        open(path, "w", encoding="utf-8").write(text[:begin] + block + text[end + len(f"<!-- {name}:end -->\n"):])
        print(f"updated the {name} block in README.md")


# Fabrics: bench/results/fabrics/*.json from scripts/bench-fabrics.sh (rallocator bench --json per fabric).
fabrics_dir = os.path.join(root, "fabrics")
fabric_rows = []
for name in ["shm", "ucx-sm", "ucx-tcp"]:
    path = os.path.join(fabrics_dir, f"{name}.json")
    if os.path.exists(path):
        fabric_rows.append(json.load(open(path)))
if fabric_rows:
    out = ["| fabric | alloc p50 / p99 (ns) | alloc throughput | slab acquire p50 / p99 (µs) | round trips per acquire | bytes per acquire | blade CPU |",
           "|---|---:|---:|---:|---:|---:|---|"]
    for r in fabric_rows:
        cpu = f"{r['blade_cpu_ms']:,.0f} ms in {r['wall_seconds']:.2f} s ({r['blade_cpu_percent_of_one_core']:.0f}% of a core)" if r.get("blade_cpu_ms") is not None else "n/a"
        out.append(f"| {r['fabric']} | {r['alloc_p50_ns']:,.0f} / {r['alloc_p99_ns']:,.0f} | {r['alloc_throughput_ops_per_s']/1e6:.2f} M/s ({r['threads']} threads) | "
                   f"{r['acquire_p50_ns']/1000:,.1f} / {r['acquire_p99_ns']/1000:,.1f} | {r['round_trips_per_acquire']:.3f} | {r['bytes_per_acquire']:.0f} | {cpu} |")
    replace_block("fabrics", "<!-- fabrics:begin -->\n" + "\n".join(out) + "\n<!-- fabrics:end -->\n")
