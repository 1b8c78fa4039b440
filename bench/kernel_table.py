"""One table over several bench runs, one row per forced scan kernel and dataset: best
one-thread peer ÷ imgscout per radius (batch and single) and, for batches, kNN against FAISS
flat. The README's per-kernel table.

    python bench/kernel_table.py bench/results.json bench/kernels/avx2/results.json \\
        bench/kernels/portable/results.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import fmt_ratio, range_ratio

RADII = (0, 4, 8, 12, 16, 20, 24, 32)
KNN = ("1", "10")


def kernel_of(results: dict[str, Any]) -> str:
    for section in results.get("datasets", {}).values():
        info = section.get("info", {})
        if "kernel" in info:
            return str(info["kernel"])
    return str(results.get("config", {}).get("kernel") or "?")


def rows(results: dict[str, Any], batch: bool) -> list[str]:
    out = []
    kernel = kernel_of(results)
    for label, section in results.get("datasets", {}).items():
        if "10,000,000" in label:
            continue
        cells = []
        for radius in RADII:
            row = section.get("range", {}).get(str(radius))
            cells.append(fmt_ratio(range_ratio(row, batch)[0] if row else None))
        for k in KNN if batch else ():
            systems = section.get("knn", {}).get(k, {}).get("systems", {})
            mine = systems.get("imgscout knn_arrays")
            faiss = systems.get("FAISS flat search batch")
            cells.append(
                fmt_ratio(faiss["median_us"] / mine["median_us"]) if mine and faiss else "-"
            )
        out.append(f"| {kernel} | {label} | " + " | ".join(cells) + " |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="results.json of each run")
    args = parser.parse_args()
    runs = [json.loads(path.read_text()) for path in args.results]
    columns = [f"r{r}" for r in RADII]
    for title, batch in (
        ("Batches (`query_arrays`, one thread)", True),
        ("Single queries (`query_arrays` of one hash)", False),
    ):
        heads = columns + ([f"kNN k={k}" for k in KNN] if batch else [])
        print(f"{title}:\n\n| kernel | data | " + " | ".join(heads) + " |")
        print("|---|---|" + "---:|" * len(heads))
        for results in runs:
            print("\n".join(rows(results, batch)))
        print()


if __name__ == "__main__":
    main()
