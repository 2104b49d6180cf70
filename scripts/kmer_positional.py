"""Does *where* a k-mer sits add to a k-mer logistic regression? A proxy for a positional composition input.

Why: the shipped head reads the sequence's 3- to 6-mer frequencies (one bag for the whole sequence)
plus the frozen language model's label logits, and on the same rows it is within 0.02-0.04 of a
k-mer + LR baseline on the GUE TF sets (docs/experiments.md, stage 8d). GUE's TF and promoter
windows are aligned (centred on a peak, or on the TSS), so a motif's position may carry signal that
one bag of k-mers cannot see. Before widening the model's composition input, this measures the
gain on a plain logistic regression, at equal data:

* (A) the same-rows baseline's features: 3- to 6-mer frequencies of the whole sequence;
* (B) (A) plus 3- to 5-mer frequencies of each third of the sequence (4,032 more numbers).

Both are fitted on the same seeded sample of at most ``--train-rows`` training rows per group
(standardised, L2 logistic regression, C by 3-fold CV on those rows, as ``kmer_baseline.py``) and
scored on exactly the rows ``genomicllm evaluate --limit N`` draws (leak-filtered dev), so dev is
never read for a choice.

    .venv/bin/python scripts/kmer_positional.py --data data/corpus --out docs/stage8e
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kmer_baseline import KS, MIN_TRAIN, features, fit, training_rows  # noqa: E402

BIN_KS = (3, 4, 5)
BINS = 3


def positional_features(prompts: list[str]) -> np.ndarray:
    """(B): the model's positional composition input (composition.Layout): the whole sequence's 3- to
    6-mers, then the 3- to 5-mers of each third of each sequence item."""
    from genomicllm_kernel.composition import Layout
    from genomicllm_kernel.grammar import parse_prompt

    layout = Layout(KS, BINS, BIN_KS)
    return np.stack([layout.vector(parse_prompt(text).sequences) for text in prompts])


def main() -> int:
    from genomicllm_kernel.baselines import KMER_LR_DEV_MCC
    from genomicllm_kernel.evaluation import _sample, classification_metrics

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/corpus")
    ap.add_argument("--out", default="docs/stage8e")
    ap.add_argument("--limit", type=int, default=300, help="rows per group of the evaluation sample (as evaluate --limit)")
    ap.add_argument("--train-rows", type=int, default=12000, help="training rows per group (a seeded sample), the same for (A) and (B)")
    ap.add_argument("--groups", default=".", help="regular expression over 'task | group' (default: every classification group)")
    ap.add_argument("--model-eval", default="models/default/eval_dev.json", help="the shipped model's dev evaluation, printed beside")
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", category=UserWarning)

    train = training_rows(data)
    dev = _sample(data, "dev", None, args.limit)[0]
    model_eval = json.loads(Path(args.model_eval).read_text())["groups"] if Path(args.model_eval).exists() else {}
    result = {"train_rows_per_group": args.train_rows, "limit_per_group": args.limit, "bins": BINS, "bin_ks": list(BIN_KS), "groups": {}}
    earlier = out / "kmer_positional.json"
    if earlier.exists():  # a stopped run resumes: groups already scored with the same settings are kept
        kept = json.loads(earlier.read_text())
        if all(kept.get(k) == result[k] for k in ("train_rows_per_group", "limit_per_group", "bins", "bin_ks")):
            result["groups"] = kept["groups"]
    for task_id, group in sorted(k for k in dev if k in train):
        name = f"{task_id} | {group}"
        rows = train[(task_id, group)]
        if name in result["groups"] or not re.search(args.groups, name) or len(rows) < MIN_TRAIN or len({a for _, a in rows}) < 2:
            continue
        rows = random.Random(0).sample(rows, min(len(rows), args.train_rows))
        evaluated = dev[(task_id, group)]
        y = np.array([a for _, a in rows])
        entry = {"n": len(evaluated), "train_rows": len(rows)}
        for variant, make in (("A", features), ("B", positional_features)):
            t0 = time.time()
            sc, model, C, cv = fit(make([p for p, _ in rows]).astype(np.float32), y)
            pred = model.predict(sc.transform(make([r["prompt"] for r in evaluated]).astype(np.float32)))
            m = classification_metrics([r["answer"] for r in evaluated], list(pred))
            entry[variant] = {
                "mcc": round(float(m["mcc"]), 4),
                "accuracy": round(float(m["accuracy"]), 4),
                "C": C,
                "cv_log_loss": round(min(cv.values()), 5),  # on the training rows: a choice that never reads dev
                "seconds": round(time.time() - t0),
            }
        entry["model_dev_mcc"] = model_eval.get(name, {}).get("mcc")
        result["groups"][name] = entry
        print(
            f"{name}: n {entry['n']}, A {entry['A']['mcc']:.3f}, B {entry['B']['mcc']:.3f} ({entry['A']['seconds'] + entry['B']['seconds']} s)",
            flush=True,
        )
        (out / "kmer_positional.json").write_text(json.dumps(result, indent=1) + "\n")

    lines = [
        "# Positional k-mers on a logistic regression (`scripts/kmer_positional.py`)",
        "",
        f"`{' '.join(['.venv/bin/python', 'scripts/kmer_positional.py'] + sys.argv[1:])}`: at most {args.train_rows:,} training rows per group, "
        f"scored on the leak-filtered dev sample of `evaluate --limit {args.limit}`.",
        "",
        "| group | n | (A) 3-6-mers | (B) + 3-5-mers per third | B - A | shipped model | data README baseline |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, e in sorted(result["groups"].items()):
        readme = KMER_LR_DEV_MCC.get(name.split(" | ")[1])
        model = e["model_dev_mcc"]
        lines.append(
            f"| {name} | {e['n']} | {e['A']['mcc']:.3f} | {e['B']['mcc']:.3f} | {e['B']['mcc'] - e['A']['mcc']:+.3f} | "
            f"{'' if model is None else f'{model:.3f}'} | {'' if readme is None else f'{readme:.3f}'} |"
        )
    (out / "kmer_positional.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
