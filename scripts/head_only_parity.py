"""Answers from the head alone (head_only.py) against the full forward pass, on the shipped model.

A seeded draw of dev prompts of the classification tasks with head blocks at offset x0 and others
(promoter, ORF, gene biotype, TF binding) is answered twice per backend: with the head-only path,
and with every answer from the model (``decoder.head_only = None``). Prints how many rows the head
answered alone, the largest label-probability difference on them, and whether every answer agrees.

    .venv/bin/python scripts/head_only_parity.py --data data/corpus --model models/default
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from genomicllm_kernel.engine import GenomicLLM
    from genomicllm_kernel.grammar import parse_prompt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "corpus")
    ap.add_argument("--model", default=str(ROOT / "models" / "default"))
    ap.add_argument("--rows", type=int, default=400)
    ap.add_argument("--backends", nargs="+", default=["onnx", "onnx-int8", "torch"])
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in open(args.data / "dev.jsonl")]
    rows = [r for r in rows if r["task"] in ("promoter", "orf", "gene_biotype", "tf_binding")]
    rows = random.Random(0).sample(rows, min(args.rows, len(rows)))
    prompts = [parse_prompt(r["prompt"]) for r in rows]
    for backend in args.backends:
        llm = GenomicLLM.from_pretrained(args.model, backend)
        fast = list(llm.answer(prompts, 32))
        kept, llm.decoder.head_only = llm.decoder.head_only, None
        try:
            full = list(llm.answer(prompts, 32))
        finally:
            llm.decoder.head_only = kept
        covered = kept.covers(*llm.decoder.compact_features([llm.codec.encode_prompt(p) for p in prompts]))
        diff = [max(abs(a.labels[k] - b.labels[k]) for k in b.labels) for a, b in zip(fast, full)]
        on_head = max((d for d, c in zip(diff, covered) if c), default=0.0)
        same = sum(a.answer == b.answer for a, b in zip(fast, full))
        print(f"{backend}: {int(np.sum(covered))} of {len(prompts)} rows answered by the head alone; largest label-probability "
              f"difference on them {on_head:.1e}; same answer on {same} of {len(prompts)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
