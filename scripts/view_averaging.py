"""Proxy experiment (issue #20 item 5, docs/experiments.md stage 8d): does averaging a
classification answer over views of the same sequence help? Views are the training views of
``training.views``: the reverse complement for strand-symmetric tasks, and the sequence with 1 or 2
nt trimmed from its start (the DNA tokens are non-overlapping 3-mers, so trimming moves every motif
into the other two chunkings), for every task but ORF (whose answer is the frame). Scores the evaluator's leak-filtered dev sample
(classification rows of a full ``genomicllm evaluate --limit 300``) with each averaging rule.

    .venv/bin/python scripts/view_averaging.py --model models/default --out docs/stage8d
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def views_of(prompt):
    """{name: prompt}: the original, trimmed by 1 and 2 nt, and (strand-symmetric tasks) the same on the reverse complement."""
    from genomicllm_kernel.checks import reverse_complement
    from genomicllm_kernel.grammar import SequenceItem

    def mapped(f):
        return dataclasses.replace(prompt, items=tuple(SequenceItem(f(i.sequence)) if isinstance(i, SequenceItem) else i for i in prompt.items))

    out = {"original": prompt}
    if prompt.task.id == "orf":  # the answer is the reading frame: trimming the start changes it
        return out
    out |= {"trim 1": mapped(lambda s: s[1:]), "trim 2": mapped(lambda s: s[2:])}
    if prompt.task.strand_symmetric:
        out |= {
            "rc": mapped(reverse_complement),
            "rc trim 1": mapped(lambda s: reverse_complement(s)[1:]),
            "rc trim 2": mapped(lambda s: reverse_complement(s)[2:]),
        }
    return out


RULES = {
    "original only": ("original",),
    "original + reverse complement (strand-symmetric tasks)": ("original", "rc"),
    "three frames": ("original", "trim 1", "trim 2"),
    "three frames x both strands (strand-symmetric tasks)": ("original", "trim 1", "trim 2", "rc", "rc trim 1", "rc trim 2"),
}


def main() -> int:
    from genomicllm_kernel.engine import GenomicLLM
    from genomicllm_kernel.evaluation import _sample, classification_metrics
    from genomicllm_kernel.grammar import parse_prompt
    from genomicllm_kernel.registry import TASKS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--data", default="data/corpus")
    ap.add_argument("--out", default="docs/stage8d")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--backend", default="onnx")
    args = ap.parse_args()
    engine = GenomicLLM.from_pretrained(args.model, args.backend)
    groups, _ = _sample(Path(args.data), "dev", None, args.limit)
    rows = [(task, group, r) for (task, group), rs in sorted(groups.items()) if TASKS[task].labels for r in rs]
    prompts, where = [], []
    for i, (_, _, r) in enumerate(rows):
        for name, view in views_of(parse_prompt(r["prompt"])).items():
            prompts.append(view)
            where.append((i, name))
    probs: dict[int, dict[str, dict]] = defaultdict(dict)
    from tqdm import tqdm

    with tqdm(total=len(prompts), desc="views", unit="prompt", disable=None) as bar:
        for (i, name), a in zip(where, engine.answer(prompts, batch_size=64, progress=bar.update)):
            probs[i][name] = a.labels
    result = {}
    for rule, names in RULES.items():
        by = defaultdict(lambda: ([], []))
        for i, (task, group, r) in enumerate(rows):
            labels = TASKS[task].labels
            used = [n for n in names if n in probs[i]]
            p = np.mean([[probs[i][n][lab] for lab in labels] for n in used], axis=0)
            for key in (f"{task} | {group}", task):
                by[key][0].append(r["answer"])
                by[key][1].append(labels[int(np.argmax(p))])
        result[rule] = {k: round(classification_metrics(t, p)["mcc"], 3) for k, (t, p) in sorted(by.items())}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "view_averaging.json").write_text(
        json.dumps({"model": engine.model_id, "runtime": engine.runtime, "rows": len(rows), "mcc": result}, indent=1)
    )
    names = list(RULES)
    lines = [
        "| dev MCC (leak-filtered, limit %d) | " % args.limit + " | ".join(f"({i})" for i in range(len(names))) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    lines += [f"| {k} | " + " | ".join(f"{result[n][k]:.2f}" for n in names) + " |" for k in result[names[0]]]
    text = (
        "\n".join(f"- ({i}) {n}" for i, n in enumerate(names))
        + f"\n\n{len(rows)} dev rows, {engine.model_id} on {engine.runtime}\n\n"
        + "\n".join(lines)
        + "\n"
    )
    (out / "view_averaging.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
