"""Seconds to score sequences against the shipped model's JASPAR matrices, by windows per matrix product.

Why (bench/ANALYSIS.md): ``MotifSet.best_matches`` used to put up to 2,048 sequences in one product,
whose [windows, 2 x motifs] scores fall out of cache; ``MotifSet.WINDOWS_PER_PRODUCT`` now sizes the
products by windows. One thread is enough: numpy's matrix product is the work.

    .venv/bin/python bench/motif_products.py --model models/default
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from genomicllm_kernel.motifs import MotifSet

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    ap.add_argument("--sequences", type=int, default=200)
    args = ap.parse_args(argv)
    motifs = MotifSet.from_config(json.loads((args.model / "config.json").read_text())["composition_motifs"])
    rng = random.Random(0)
    default = MotifSet.WINDOWS_PER_PRODUCT
    print(f"| nt | {args.sequences} sequences of 2,048 rows per product (s) | 512 windows | 2,048 windows | 4,096 windows |")
    print("| --- | --- | --- | --- | --- |")
    for length in (70, 300, 1000):
        seqs = ["".join(rng.choices("ACGT", k=length)) for _ in range(args.sequences)]
        motifs.best_matches(seqs[:4], centres=False)  # warm-up
        cells = []
        t = time.perf_counter()
        motifs.best_matches(seqs, chunk=2048, centres=False)
        cells.append(time.perf_counter() - t)
        for windows in (512, 2048, 4096):
            MotifSet.WINDOWS_PER_PRODUCT = windows
            t = time.perf_counter()
            motifs.best_matches(seqs, centres=False)
            cells.append(time.perf_counter() - t)
        MotifSet.WINDOWS_PER_PRODUCT = default
        print(f"| {length} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
