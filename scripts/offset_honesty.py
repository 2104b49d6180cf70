"""Is the frozen language model's own answer honest on the rows a head is fitted on? (issue #20, stage 12)

    .venv/bin/python scripts/offset_honesty.py --model models/default --out docs/stage12
    .venv/bin/python scripts/offset_honesty.py --groups tf_binding@GUE:tf_0 promoter@GUE:prom_core_all --out docs/stage14 --name offset_honesty_gue

A per-question head is fitted with the language model's label logits as its offset. If the model
has memorised its training rows, the offset is far better there than on new input, and a head
fitted on those rows learns to trust it. This script zeroes the head (and the offset scale) of
``--model`` in memory, so that it answers with the language model alone. It then scores ORF and
sequence direction on 300 rows of each of train.jsonl, headfit.jsonl (tiles of training
transcripts that no language-model stage reads) and the dev tiles, leak-flagged rows dropped
(``docs/stage12/offset_honesty.md``). ``--groups`` names other questions, each ``task`` or
``task@source`` (one source of it, e.g. a GUE set); a group without head-fit rows skips that file.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TASKS = ("orf", "sequence_direction")
SOURCES = (("train", "train.jsonl"), ("headfit", "headfit.jsonl"), ("dev", "dev.jsonl"))


def main(argv=None) -> int:
    import numpy as np
    import torch
    from sklearn.metrics import matthews_corrcoef

    from genomicllm_kernel.engine import GenomicLLM
    from genomicllm_kernel.grammar import parse_prompt
    from genomicllm_kernel.model import load_torch_model
    from genomicllm_kernel.training import read_jsonl

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--data", type=Path, default=Path("data/corpus"))
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--groups", nargs="+", default=list(TASKS), help="task or task@source, e.g. tf_binding@GUE:tf_0")
    ap.add_argument("--name", default="offset_honesty", help="the output files' stem")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    model, tok = load_torch_model(args.model)
    with torch.no_grad():
        for name in ("composition_head", "composition_offset_scale"):
            for p in getattr(model, name).parameters() if hasattr(model, name) else ():
                p.zero_()
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        alone = GenomicLLM.from_pretrained(tmp, "torch", threads=2)
        for group in args.groups:
            task, _, source = group.partition("@")
            for split, file in SOURCES:
                rows = [r for r in read_jsonl(args.data / file) if r["task"] == task and not r.get("leak") and source in ("", r["source"])]
                if not rows:
                    continue
                random.Random(0).shuffle(rows)
                rows = rows[: args.rows]
                answers = [a.answer for a in alone.answer([parse_prompt(r["prompt"]) for r in rows], 64)]
                truth = [r["answer"] for r in rows]
                table.append(
                    {
                        "task": group,
                        "rows": split,
                        "n": len(rows),
                        "accuracy": round(float(np.mean([a == b for a, b in zip(answers, truth)])), 3),
                        "mcc": round(float(matthews_corrcoef(truth, answers)), 3),
                    }
                )
                print(json.dumps(table[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = (
        "offset_honesty"
        if args.groups == list(TASKS)
        else "offset_honesty_" + "_".join(g.replace("@", "-").replace(":", "-") for g in args.groups)[:80]
    )
    (args.out / f"{stem}.json").write_text(json.dumps({"model": str(args.model), "rows": table}, indent=1) + "\n")
    lines = [f"Language model alone (head zeroed) of `{args.model}`:", "", "| task | rows | n | accuracy | MCC |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['task']} | {r['rows']} | {r['n']} | {r['accuracy']:.3f} | {r['mcc']:.3f} |" for r in table]
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
