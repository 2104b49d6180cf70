"""Does the frozen language model's hidden state at <ans> carry more than its own label logits? A probe.

Why: the shipped head reads the k-mer (and motif) features of a question's block, plus the frozen
model's own label logits (offset), which are one fixed linear readout of the final hidden state at
``<ans>``. Genomic Benchmarks' enhancer / open-chromatin / regulatory rows stay far below issue #20's
targets. If a logistic regression on the whole 256-wide hidden state (a new readout, fitted per
question) beats the same regression on the label logits, a per-question readout of the hidden state
is worth adding to the model; if not, the frozen model has nothing more to give these questions.

For each group: its training rows of the corpus (at most --train-rows, a seeded draw) and its dev
rows as ``genomicllm evaluate --label-limit 1000`` draws them (leak-filtered). Features: the 3-6-mer
frequencies (scripts/kmer_baseline.py), the frozen model's final hidden state at ``<ans>``
(head_fit.answer_states: the shipped model without its head), and the label logits that state gives
(the output layer's rows of the group's labels). Each set: standardised, L2 logistic regression,
C (from :data:`CS`) by 3-fold CV on the training rows; dev MCC. The shipped model's own dev MCC is printed beside.

    .venv/bin/python scripts/hidden_probe.py --data data/corpus --model models/default --out docs/stage22e
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

#: the ridges tried (C of scikit-learn's LogisticRegression), for every feature set
CS = (3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)

GROUPS = (
    "enhancer | GB:human_enhancers_ensembl",
    "enhancer | GB:human_enhancers_cohn",
    "open_chromatin | GB:human_ocr_ensembl",
    "regulatory | GB:human_ensembl_regulatory",
)


def main(argv=None) -> int:
    import kmer_baseline
    from kmer_baseline import features, fit, training_rows

    from genomicllm_kernel.evaluation import _sample, classification_metrics
    from genomicllm_kernel.head_fit import answer_states
    from genomicllm_kernel.model import load_torch_model
    from genomicllm_kernel.registry import TASKS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "corpus")
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    ap.add_argument("--groups", nargs="+", default=list(GROUPS))
    ap.add_argument("--train-rows", type=int, default=6000)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    # the k-mer baseline's grid (3e-5 to 3e-3) suits 5,440 k-mer columns; 256 or 2 columns want weaker ridges
    kmer_baseline.CS = CS

    net, tok = load_torch_model(args.model)
    codec = tok.codec
    train = training_rows(args.data)
    shipped = json.loads((args.model / "eval_dev.json").read_text())["groups"]
    result = {"model": str(args.model), "train_rows_cap": args.train_rows, "groups": {}}
    for key in args.groups:
        t0 = time.time()
        task, group = key.split(" | ", 1)
        rows = list(train[(task, group)])
        if len(rows) > args.train_rows:
            rows = random.Random(f"probe:{key}").sample(rows, args.train_rows)
        dev = _sample(args.data, "dev", [task], 300, label_limit=1000)[0][(task, group)]
        labels = list(TASKS[task].labels)
        prompts = [p for p, _ in rows] + [r["prompt"] for r in dev]
        y = np.array([labels.index(a) for _, a in rows])
        truth = [r["answer"] for r in dev]
        states = answer_states(net, codec, [codec.encode_prompt(p) for p in prompts], progress=False)
        out_rows = net.lm_head.weight.detach().numpy()[codec.label_ids(TASKS[task])]  # [labels, hidden]
        logits = states @ out_rows.T
        kmers = features(prompts).astype(np.float32)
        n = len(rows)
        sets = {
            "k-mers": kmers,
            "label logits": logits,
            "k-mers + label logits": np.hstack([kmers, logits]),
            "hidden state": states,
            "k-mers + hidden state": np.hstack([kmers, states]),
        }
        entry = {"train_rows": n, "dev_rows": len(dev), "shipped_dev_mcc": shipped.get(key, {}).get("mcc"), "sets": {}}
        for name, X in sets.items():
            sc, lr, C, _ = fit(X[:n], y)
            pred = [labels[i] for i in lr.predict(sc.transform(X[n:]))]
            m = classification_metrics(truth, pred)
            entry["sets"][name] = {"mcc": round(float(m["mcc"]), 4), "macro_f1": round(float(m["macro_f1"]), 4), "C": C}
        result["groups"][key] = entry
        print(key, json.dumps(entry), f"({time.time() - t0:.0f} s)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hidden_probe.json").write_text(json.dumps(result, indent=1) + "\n")
    names = list(next(iter(result["groups"].values()))["sets"])
    lines = [
        "# Probe: the frozen model's hidden state at <ans> against its label logits (Genomic Benchmarks groups, dev MCC)",
        "",
        f"`python scripts/hidden_probe.py --data {args.data} --model {args.model} --train-rows {args.train_rows}`: standardised L2 "
        f"logistic regression per feature set, C from {list(CS)} by 3-fold CV on the training rows; dev rows as `evaluate --label-limit 1000` draws them.",
        "",
        "| group | train / dev rows | shipped model | " + " | ".join(names) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for key, e in result["groups"].items():
        shipped_mcc = "" if e["shipped_dev_mcc"] is None else f"{e['shipped_dev_mcc']:.3f}"
        cells = " | ".join(f"{e['sets'][k]['mcc']:.3f}" for k in names)
        lines.append(f"| {key.replace(' | ', ' / ')} | {e['train_rows']} / {e['dev_rows']} | {shipped_mcc} | {cells} |")
    (args.out / "hidden_probe.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
