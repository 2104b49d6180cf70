"""Batch classification throughput of two models, question by question, alternated in one process.

    python bench/question_throughput.py OLD_MODEL NEW_MODEL [--n 2000] [--backend onnx-int8]

Why: a change to a model's input (stage 14's motif scores) costs time only for the questions that
read it; bench/run.py measures one question. This runs bench/run.py's throughput (batch 64, one
thread, the same GUE-length sequences) for a question of each kind, twice, alternating the models.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

os.environ.setdefault("GENOMICLLM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

QUESTIONS = ("core promoter", "transcription factor binding site", "splice site")


def main() -> int:
    from run import gue_sequences, throughput

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs=2)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--backend", default="onnx-int8")
    args = ap.parse_args()
    rng = random.Random(0)
    prompts = {q: [f"{s}, {q} =" for s in gue_sequences(args.n, rng)] for q in QUESTIONS}
    best: dict = {}
    for _ in range(2):
        for model in args.models:
            for q, ps in prompts.items():
                best[(model, q)] = max(best.get((model, q), 0.0), throughput(model, args.backend, ps, 64))
    print(f"| question | {args.models[0]} (seq/s) | {args.models[1]} (seq/s) | ratio |")
    print("| --- | --- | --- | --- |")
    for q in QUESTIONS:
        a, b = best[(args.models[0], q)], best[(args.models[1], q)]
        print(f"| {q} | {a:.0f} | {b:.0f} | {b / a:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
