"""Do JASPAR motif scores add to the k-mer regression on the classification rows? (issue #20, stage 14 proxy)

    .venv/bin/python scripts/motif_proxy.py --data data/corpus --out docs/stage14            # the evaluator's 300-row samples
    .venv/bin/python scripts/motif_proxy.py --data data/corpus --limit 1000 --out docs/stage14   # every leak-filtered GUE dev row

The per-question head of the shipped model is an L2 logistic regression over k-mer frequencies
with the language model's logits as offset, and on the GUE TF sets it scores about where the k-mer
regression alone does (``genomicllm tasks``: the language model alone reaches dev MCC 0.10-0.29
there, ``scripts/offset_honesty.py``). This proxy asks, before any model is refitted, whether a
different DNA representation moves that regression: each sequence's best log-odds score against
every JASPAR vertebrate matrix (``genomicllm_kernel/motifs.py``), alone and beside the k-mers.
Every variant is ``scripts/kmer_baseline.py``'s fit (standardised features, L2 logistic
regression, C by 3-fold cross-validation on the training rows; dev is never read for a choice) on
the same training rows of each group, scored on the sample ``genomicllm evaluate --limit N`` draws
(the rows of the model's own dev figures at the same limit).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = ("kmer", "motif", "kmer+motif")
DEFAULT_GROUPS = [f"tf_binding | GUE:tf_{k}" for k in range(5)] + [
    "promoter | GUE:prom_core_all", "promoter | GUE:prom_core_notata", "promoter | GUE:prom_core_tata", "promoter | GUE:prom_300_tata",
]  # fmt: skip


def main() -> int:
    import kmer_baseline

    from genomicllm_kernel.evaluation import _sample, classification_metrics
    from genomicllm_kernel.grammar import parse_prompt
    from genomicllm_kernel.motifs import RELEASE, TAX_GROUP, load_jaspar

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/corpus"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--groups", nargs="+", default=DEFAULT_GROUPS, help='"task | source group", as in eval_dev.json')
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--max-train", type=int, default=20000, help="a seeded sample of at most this many training rows per group")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    motifs = load_jaspar()
    train = kmer_baseline.training_rows(args.data)
    dev = _sample(args.data, "dev", None, args.limit)[0]
    rng = np.random.default_rng(0)
    result = {"motifs": f"{RELEASE} CORE {TAX_GROUP}, latest versions: {len(motifs)} matrices", "limit_per_group": args.limit, "groups": {}}

    def motif_features(prompts):
        return motifs.features([parse_prompt(p).sequences for p in prompts])

    for name in args.groups:
        task_id, group = (part.strip() for part in name.split("|"))
        rows, evaluated = train.get((task_id, group), []), dev.get((task_id, group), [])
        if not rows or not evaluated:
            print(f"{name}: no training or dev rows, skipped", flush=True)
            continue
        if len(rows) > args.max_train:
            rows = [rows[i] for i in sorted(rng.choice(len(rows), args.max_train, replace=False))]
        y = np.array([a for _, a in rows])
        truth = [r["answer"] for r in evaluated]
        t0 = time.time()
        train_parts = {"kmer": kmer_baseline.features([p for p, _ in rows]), "motif": motif_features([p for p, _ in rows])}
        dev_parts = {"kmer": kmer_baseline.features([r["prompt"] for r in evaluated]), "motif": motif_features([r["prompt"] for r in evaluated])}
        entry = {"train_rows": len(rows), "n": len(evaluated)}
        for variant in args.variants:
            X = np.concatenate([train_parts[p] for p in variant.split("+")], axis=1).astype(np.float32)
            D = np.concatenate([dev_parts[p] for p in variant.split("+")], axis=1).astype(np.float32)
            sc, model, C, cv = kmer_baseline.fit(X, y)
            m = classification_metrics(truth, list(model.predict(sc.transform(D))))
            entry[variant] = {"mcc": round(float(m["mcc"]), 4), "accuracy": round(float(m["accuracy"]), 4), "C": C, "cv_log_loss": round(cv[C], 4)}
        result["groups"][name] = entry
        print(f"{name}: {json.dumps(entry)} ({time.time() - t0:.0f} s)", flush=True)
    write_report(result, args.out, args.limit, args.variants)
    return 0


def write_report(result: dict, out: Path, limit: int, variants) -> None:
    """``motif_proxy_limit{limit}.json`` and its table (``.md``) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"motif_proxy_limit{limit}"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        f"Logistic regressions per group (C by 3-fold CV on the training rows), dev sample of `genomicllm evaluate --limit {limit}`; "
        f"motifs: {result['motifs']}.",
        "",
        "| group | train rows | dev n | "
        + " | ".join(f"{v} MCC" for v in variants)
        + " | "
        + " | ".join(f"{v} CV log loss" for v in variants)
        + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in variants) * 1 + " | " + " | ".join("---" for _ in variants) + " |",
    ]
    for name, e in result["groups"].items():
        cells = [f"{e[v]['mcc']:.3f}" for v in variants] + [f"{e[v]['cv_log_loss']:.4f}" for v in variants]
        lines.append(f"| {name.replace('|', '/')} | {e['train_rows']} | {e['n']} | " + " | ".join(cells) + " |")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
