"""Per-question AUC and MCC of a model on the genome-window promoter rows (GENCODE TSS windows against
GC-matched background), where each question has too few rows for the evaluator's pooled figure to say
which question fails (issue #20, stage 22).

    .venv/bin/python scripts/question_auc.py --model models/default --data data/corpus --split test

Reads the split's promoter rows that come from neither GUE nor Genomic Benchmarks (leak-flagged rows
dropped), asks each through the engine and prints one markdown row per question: n, positives, AUC of
p(True), MCC at 0.5.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    from sklearn.metrics import matthews_corrcoef, roc_auc_score

    from genomicllm_kernel.engine import GenomicLLM

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--data", type=Path, default=Path("data/corpus"))
    ap.add_argument("--split", choices=("dev", "test"), default="test")
    ap.add_argument("--backend", default="torch")
    args = ap.parse_args()
    with open(args.data / f"{args.split}.jsonl") as fh:
        rows = [json.loads(line) for line in fh]
    rows = [r for r in rows if r["task"] == "promoter" and not r["source"].startswith(("GUE", "Genomic")) and not r.get("leak")]
    answers = GenomicLLM.from_pretrained(args.model, args.backend).ask([r["prompt"] for r in rows])
    by_question = defaultdict(list)
    for r, a in zip(rows, answers):
        by_question[r["question"]].append((r["answer"] == "True", a.labels["True"]))
    print(f"{args.model} on {args.data} {args.split} (genome-window promoter rows)\n")
    print("| question | n | positives | AUC | MCC |\n| --- | --- | --- | --- | --- |")
    for q, v in sorted(by_question.items()):
        y, p = [t for t, _ in v], [s for _, s in v]
        auc = f"{roc_auc_score(y, p):.3f}" if len(set(y)) > 1 else "-"
        print(f"| {q} | {len(v)} | {sum(y)} | {auc} | {matthews_corrcoef(y, [s > 0.5 for s in p]):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
