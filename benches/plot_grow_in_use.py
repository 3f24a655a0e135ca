#!/usr/bin/env python3
"""Plot grow_in_use: cumulative time against region size for each variant.

Input: the CSV written by `GROW_CSV=1 cargo bench --bench grow_in_use`
(default target/tmp/criterion/grow_in_use_cumulative.csv).
Output: benches/grow_in_use.png (default).

Needs matplotlib (`python3 -m pip install matplotlib`).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    src = sys.argv[1] if len(sys.argv) > 1 else "target/tmp/criterion/grow_in_use_cumulative.csv"
    out = sys.argv[2] if len(sys.argv) > 2 else "benches/grow_in_use.png"
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    sizes = [int(r["size_mib"]) for r in rows]
    variants = [k for k in rows[0] if k != "size_mib"]
    fig, (lin, log) = plt.subplots(1, 2, figsize=(12, 4.5))
    for v in variants:
        t = [float(r[v]) for r in rows]
        for ax in (lin, log):
            ax.plot(sizes, t, label=f"{v} ({t[-1]:.2f} s)")
    for ax, scale in ((lin, "linear"), (log, "log")):
        ax.set_yscale(scale)
        ax.set_xlabel("region size (MiB), grown in 1 MiB steps")
        ax.set_ylabel("cumulative time (s)")
        ax.grid(True, alpha=0.3)
    lin.set_title("grow_in_use: whole region touched after each grow")
    log.set_title("same, log scale")
    lin.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
