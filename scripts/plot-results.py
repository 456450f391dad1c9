#!/usr/bin/env python3
"""Regenerates bench/results/README-table.md (the README's results table, for the block between
<!-- results:begin --> and <!-- results:end -->) and bench/results/kv-throughput.png from bench/results/kv-comparison.json
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
