"""The k-mer + logistic regression baseline, scored on exactly the rows the model is scored on.

Why: the baseline figures of ``../shared/data/README.md`` (``baselines.KMER_LR_DEV_MCC``) are
computed on the whole GUE dev split (prom_300 and splice: on that README's own 80/20 cut), while the
model's dev figures are computed on the evaluator's leak-filtered sample (rows whose middle 24-mer
occurs in training are dropped; at most ``--limit`` rows per group). The two are different rows, so
a model-vs-baseline verdict read across them mixes the gap with the difference in difficulty. This
script fits the same kind of baseline (3- to 6-mer frequencies, standardised, L2 logistic
regression, C chosen by 3-fold cross-validation on the training rows only: dev is never read for a
choice) on each classification group's training rows in the corpus (same task, same source group)
and scores it on the sample that ``genomicllm evaluate --limit N [--label-limit M]`` draws (same seed, every task),
for dev and test. The features are the model's own composition input (``composition.py``).

    .venv/bin/python scripts/kmer_baseline.py --data data/corpus --out models/default/baseline_kmer_lr.json

The output sits beside the model's ``eval_dev.json``: ``genomicllm tasks``, the Galaxy help and the
model card read it for the same-rows comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KS = (3, 4, 5, 6)
CS = (3e-5, 1e-4, 3e-4, 1e-3, 3e-3)
MIN_TRAIN = 50


def features(prompts: list[str]) -> np.ndarray:
    from genomicllm_kernel.composition import composition
    from genomicllm_kernel.grammar import parse_prompt

    out = []
    for text in prompts:
        prompt = parse_prompt(text)
        out.append(composition([s for s in prompt.sequences], KS))
    return np.stack(out)


def fit(X: np.ndarray, y: np.ndarray, seed: int = 0):
    """(scaler, model, chosen C, cross-validated log loss per C): L2 logistic regression on
    standardised features, C by 3-fold stratified CV on these training rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    cv = {}
    for C in CS:
        losses = []
        for tr, te in folds.split(X, y):
            sc = StandardScaler().fit(X[tr])
            m = LogisticRegression(C=C, max_iter=1000).fit(sc.transform(X[tr]), y[tr])
            losses.append(log_loss(y[te], m.predict_proba(sc.transform(X[te])), labels=m.classes_))
        cv[C] = float(np.mean(losses))
    best = min(cv, key=cv.get)
    sc = StandardScaler().fit(X)
    return sc, LogisticRegression(C=best, max_iter=1000).fit(sc.transform(X), y), best, cv


def training_rows(data: Path) -> dict[tuple, list]:
    """(task, source group) -> [(prompt, answer)] of the corpus's classification training rows."""
    from genomicllm_kernel.evaluation import source_group
    from genomicllm_kernel.registry import TASKS

    train: dict[tuple, list] = defaultdict(list)
    with open(data / "train.jsonl") as fh:
        for line in fh:
            ex = json.loads(line)
            if TASKS.get(ex["task"]) and TASKS[ex["task"]].labels:
                train[(ex["task"], source_group(ex["source"]))].append((ex["prompt"], ex["answer"]))
    return train


def main() -> int:
    from genomicllm_kernel.evaluation import _sample, classification_metrics

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/corpus")
    ap.add_argument("--out", default="models/default/baseline_kmer_lr.json")
    ap.add_argument("--limit", type=int, default=300, help="as genomicllm evaluate --limit")
    ap.add_argument("--label-limit", type=int, default=None, help="as genomicllm evaluate --label-limit (default: --limit)")
    args = ap.parse_args()
    data = Path(args.data)
    warnings.filterwarnings("ignore", category=UserWarning)

    train = training_rows(data)
    samples = {split: _sample(data, split, None, args.limit, label_limit=args.label_limit)[0] for split in ("dev", "test")}
    result = {
        "baseline": "k-mer (3-6) frequencies, standardised, L2 logistic regression; C by 3-fold CV on the training rows",
        "data": str(data),
        "limit_per_group": args.limit,
        "limit_per_label_group": args.label_limit or args.limit,
        "cs": list(CS),
        "groups": {},
    }
    keys = sorted({k for s in samples.values() for k in s if k in train})
    for task_id, group in keys:
        rows = train[(task_id, group)]
        if len(rows) < MIN_TRAIN or len({a for _, a in rows}) < 2:
            continue
        t0 = time.time()
        X = features([p for p, _ in rows]).astype(np.float32)
        y = np.array([a for _, a in rows])
        sc, model, C, cv = fit(X, y)
        for split, groups in samples.items():
            evaluated = groups.get((task_id, group))
            if not evaluated:
                continue
            pred = model.predict(sc.transform(features([r["prompt"] for r in evaluated]).astype(np.float32)))
            m = classification_metrics([r["answer"] for r in evaluated], list(pred))
            entry = {k: round(float(v), 4) for k, v in m.items() if k != "n"} | {"n": m["n"], "train_rows": len(rows), "C": C}
            result["groups"].setdefault(split, {})[f"{task_id} | {group}"] = entry
        print(
            f"{task_id} | {group}: {len(rows)} train rows, C {C}, dev {result['groups'].get('dev', {}).get(f'{task_id} | {group}')} ({time.time() - t0:.0f} s)",
            flush=True,
        )
    out = Path(args.out)
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
