"""Proxy experiments for the cached-head stage (docs/experiments.md, stage 8c): variants of the
per-question composition head fitted on the same cached training states, scored on the same
leak-filtered dev sample as ``genomicllm evaluate --limit 300`` (dev MCC per task and source).

    .venv/bin/python scripts/head_fit_experiments.py --config configs/cpu_stage8c_fit.toml --out docs/stage8c

Every variant reads the train states cached by the config's run (``<out>/states.npz``, written by
``genomicllm train --config ...`` or here) and dev states cached beside them, so the variants differ
only in what the head sees and how it is regularised: equal data, equal epochs cap. The first row
is the init model's own head (stage 8b, SGD through the model), read from the same dev states; it
matches ``models/default/eval_dev.json`` (a check that the cache is the decoder's reading).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = [
    # name, composition ks, rank, lr, weight decay, with the language model's states
    ("refit 4/5-mers (8b's input), rank 16, lr 2e-3", (4, 5), 16, 2e-3, 0.01, True),
    ("refit 3-6-mers, rank 16, lr 2e-3", (3, 4, 5, 6), 16, 2e-3, 0.01, True),
    ("refit 3-6-mers, rank 16, lr 2e-3, no language model (k-mers alone)", (3, 4, 5, 6), 16, 2e-3, 0.01, False),
    ("refit 3-6-mers, rank 16, lr 5e-4", (3, 4, 5, 6), 16, 5e-4, 0.01, True),
    ("refit 3-6-mers, rank 16, lr 5e-4, weight decay 0.3", (3, 4, 5, 6), 16, 5e-4, 0.3, True),
    # second round (after the first five all kept epoch 1): a ridge penalty (head_fit_l2)
    ("refit 3-6-mers, rank 16, lr 2e-3, ridge 1e-5", (3, 4, 5, 6), 16, 2e-3, 0.01, True, 1e-5),
    ("refit 3-6-mers, rank 16, lr 2e-3, ridge 1e-4", (3, 4, 5, 6), 16, 2e-3, 0.01, True, 1e-4),
]


def dev_rows(cfg, codec, limit: int, split: str = "dev"):
    """(encoded, task, label index, block key, group) of the evaluator's dev sample, classification only."""
    from genomicllm_kernel.evaluation import _sample
    from genomicllm_kernel.grammar import parse_prompt
    from genomicllm_kernel.registry import TASKS

    tasks = [t for t, task in TASKS.items() if task.labels and float(cfg.task_weights.get(t, 1.0)) > 0]
    # the sample of a full `genomicllm evaluate` (every task): which rows a group keeps depends on
    # the groups sampled before it, so a classification-only sample would be another one
    groups, _ = _sample(Path(cfg.data), split, None, limit)
    out = []
    for (task_id, group), rows in sorted(groups.items()):
        if task_id not in tasks:
            continue
        for r in rows:
            ids = codec.encode_prompt(parse_prompt(r["prompt"]))
            out.append((ids, task_id, TASKS[task_id].labels.index(r["answer"]), codec.composition_block(ids) or "", group))
    return out


def load_cached(config: str, limit: int = 300, split: str = "dev"):
    """(cfg, model, codec, train rows, train states, dev rows, dev states) of a cached-head config:
    the train states from its run's cache (``head_fit.cached_states``), the dev sample's states
    cached beside them on first use."""
    import torch

    from genomicllm_kernel import head_fit
    from genomicllm_kernel.model import load_torch_model
    from genomicllm_kernel.training import TrainConfig

    cfg = TrainConfig.load(config)
    torch.set_num_threads(cfg.threads)
    model, tokenizer = load_torch_model(cfg.init_from)
    codec = tokenizer.codec
    run = Path(cfg.out)
    run.mkdir(parents=True, exist_ok=True)
    rows, states, _ = head_fit.cached_states(cfg, model, codec, run / "states.npz")
    dev = dev_rows(cfg, codec, limit, split)
    dev_path = run / f"{split}_states_full_eval_sample_{limit}.npz"
    if dev_path.exists():
        dev_states = np.load(dev_path)["states"]
    else:
        dev_states = head_fit.answer_states(model, codec, [r[0] for r in dev])
        np.savez(dev_path, states=dev_states)
    return cfg, model, codec, rows, states, dev, dev_states


def scores(rows, pred) -> dict:
    from collections import defaultdict

    from genomicllm_kernel.evaluation import classification_metrics

    by = defaultdict(lambda: ([], []))
    for (_, task, label, _, group), p in zip(rows, pred):
        for key in (f"{task} | {group}", task):
            by[key][0].append(label)
            by[key][1].append(int(p))
    return {k: round(classification_metrics(t, p)["mcc"], 3) for k, (t, p) in sorted(by.items())}


def main() -> int:
    import torch

    from genomicllm_kernel import head_fit
    from genomicllm_kernel.composition import as_layout

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/cpu_stage8c_fit.toml")
    ap.add_argument("--out", default="docs/stage8c")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--only", type=int, nargs="*", help="fit only these variants (numbers as in the table, 1-based)")
    args = ap.parse_args()
    cfg, model, codec, rows, states, dev, dev_states = load_cached(args.config, args.limit)
    dev4 = [r[:4] for r in dev]
    results = {}

    # the init model's own head, from the same states
    with torch.no_grad():
        own = as_layout(model.config)
        feats = torch.from_numpy(codec.composition_features([r[0] for r in dev], own, model.config.composition_blocks))
        shifted = torch.from_numpy(dev_states) + model.composition_head(feats)
        problem = head_fit.build_problem(model, codec, dev4, shifted.numpy(), own)
        zero_a = torch.zeros(len(model.config.composition_blocks), problem.feats.shape[1], 1)
        pred = problem.logits(torch.arange(len(dev)), zero_a, torch.zeros(model.config.hidden_size, 1)).argmax(-1)
    results["init model's head (stage 8b: 1,000 SGD steps through the model)"] = {"mcc": scores(dev, pred)}

    out = Path(args.out)
    earlier = out / "head_fit_experiments.json"
    if earlier.exists():  # variants already scored on the same states are kept, not refitted
        results.update({k: v for k, v in json.loads(earlier.read_text())["results"].items() if k not in results})
    for number, (name, ks, rank, lr, wd, with_lm, *ridge) in enumerate(VARIANTS, 1):
        if name in results or (args.only and number not in args.only):
            continue
        print(f"--- {name}", flush=True)
        train_states = states if with_lm else np.zeros_like(states)
        problem = head_fit.build_problem(model, codec, rows, train_states, ks)
        a, b, records, best = head_fit.fit_head(
            problem,
            len(model.config.composition_blocks),
            rank,
            model.config.hidden_size,
            cfg.head_fit_epochs,
            lr,
            wd,
            cfg.seed,
            log=print,
            l2=ridge[0] if ridge else 0.0,
        )
        dev_problem = head_fit.build_problem(model, codec, dev4, dev_states if with_lm else np.zeros_like(dev_states), ks)
        with torch.no_grad():
            pred = torch.cat([dev_problem.logits(r, a, b).argmax(-1) for r in torch.arange(len(dev)).split(4096)])
        results[name] = {"mcc": scores(dev, pred), "best_epoch": best, "held_out_loss": min(r["held_out_loss"] for r in records)}
        del problem

    out.mkdir(parents=True, exist_ok=True)
    meta = {"config": args.config, "train_rows": len(rows), "dev_rows": len(dev), "cfg": dataclasses.asdict(cfg)}
    (out / "head_fit_experiments.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    names = list(results)
    keys = list(results[names[0]]["mcc"])
    lines = ["| dev MCC (leak-filtered, limit %d) | " % args.limit + " | ".join(f"({i})" for i in range(len(names))) + " |"]
    lines.append("| --- |" + " --- |" * len(names))
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(f"{results[n]['mcc'].get(k, float('nan')):.2f}" for n in names) + " |")
    legend = "\n".join(
        f"- ({i}) {n}" + (f" (best epoch {results[n]['best_epoch']})" if "best_epoch" in results[n] else "") for i, n in enumerate(names)
    )
    text = f"{legend}\n\ntrain rows {len(rows)}, dev rows {len(dev)}\n\n" + "\n".join(lines) + "\n"
    (out / "head_fit_experiments.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
