"""Does the composition input hurt generation? Exact match on short generation prompts with the
k-mer features fed to every question (as stage 6 was trained) and to classification questions only
(``codec.composition_features`` since stage 7). Rows of docs/experiments.md.

    python scripts/composition_gate.py --model runs/cpu_stage6/checkpoint [--data data/corpus]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genomicllm_kernel.composition import composition  # noqa: E402
from genomicllm_kernel.engine import GenomicLLM  # noqa: E402


def _longest(prompt: str) -> int:
    return max((len(s) for s in prompt.split(", ")[:-1]), default=0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default=str(ROOT / "data" / "corpus"))
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in open(Path(args.data) / "dev.jsonl")]
    groups = {
        "reverse_complement, 1-32 nt": [r for r in rows if r["task"] == "reverse_complement" and not r["leak"] and _longest(r["prompt"]) <= 32][:120],
        "nt2aa, 1-32 nt": [r for r in rows if r["task"] == "nt2aa" and not r["leak"] and _longest(r["prompt"]) <= 32][:60],
        "reading comprehension, org.Hs.eg.db records": [
            r for r in rows if r["task"] == "reading_comprehension" and r["source"] == "org.Hs.eg.db records" and not r["leak"]
        ][:150],
    }
    llm = GenomicLLM.from_pretrained(args.model, backend="torch", threads=2)
    codec = llm.codec
    gated = codec.composition_features

    def every_question(encoded, ks):
        return np.stack([composition(codec.dna_runs(ids), ks) for ids in encoded])

    print("| group | n | features on every question | classification questions only |")
    print("| --- | --- | --- | --- |")
    for name, sel in groups.items():
        scores = []
        for fn in (every_question, gated):
            codec.composition_features = fn
            answers = llm.ask([r["prompt"] for r in sel], batch_size=32)
            scores.append(np.mean([a.answer == r["answer"] for a, r in zip(answers, sel)]))
        print(f"| {name} | {len(sel)} | {scores[0]:.3f} | {scores[1]:.3f} |")
    codec.composition_features = gated
    return 0


if __name__ == "__main__":
    sys.exit(main())
