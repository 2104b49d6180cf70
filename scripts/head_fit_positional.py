"""Stage 8e's rows: the per-question head refitted on stage 8c's cached states, with and without the
3- to 5-mer frequencies of each third of the sequence (composition.Layout), and with them only in
the blocks where they lowered the held-out *training* loss.

Why: on a plain k-mer logistic regression (scripts/kmer_positional.py) the thirds added +0.05 to
+0.15 MCC on the GUE promoter sets and cost 0.02-0.07 on the TF sets. Which blocks get them is chosen
here from the training rows alone: each block's cross-entropy on the held-out tenth of its training
rows (the rows fit_head stops on), with the thirds against without. Every variant is fitted on the
same cached states, rows, seed and settings (the config's: stage 8c's recipe), so compute is equal
by construction; each is scored on the dev sample of ``genomicllm evaluate --limit N``
(leak-filtered), which no choice reads.

    .venv/bin/python scripts/head_fit_positional.py --config configs/cpu_stage8e_fit.toml --out docs/stage8e
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from head_fit_experiments import load_cached, scores  # noqa: E402


def per_block_held_out_loss(problem, a, b, seed: int) -> dict[int, float]:
    """Mean cross-entropy per block on the held-out rows fit_head stopped on."""
    import torch

    from genomicllm_kernel import head_fit

    held = torch.nonzero(head_fit.held_out_split(problem, torch.Generator().manual_seed(seed))).flatten()
    with torch.no_grad():
        ce = torch.cat([torch.nn.functional.cross_entropy(problem.logits(r, a, b), problem.labels[r], reduction="none") for r in held.split(4096)])
    blocks = problem.block[held]
    return {int(k): float(ce[blocks == k].mean()) for k in torch.unique(blocks).tolist()}


def main() -> int:
    import torch

    from genomicllm_kernel import head_fit
    from genomicllm_kernel.composition import Layout

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/cpu_stage8e_fit.toml")
    ap.add_argument("--out", default="docs/stage8e")
    ap.add_argument("--limit", type=int, default=300)
    args = ap.parse_args()
    cfg, model, codec, rows, states, dev, dev_states = load_cached(args.config, args.limit)
    blocks = list(model.config.composition_blocks)
    ks = tuple(cfg.composition)
    binned = Layout(ks, cfg.composition_bins, tuple(cfg.composition_bin_ks))
    dev4 = [r[:4] for r in dev]
    results, held = {}, {}

    def run(name: str, layout: Layout):
        print(f"--- {name}", flush=True)
        problem = head_fit.build_problem(model, codec, rows, states, layout)
        a, b, records, best = head_fit.fit_head(
            problem, len(blocks), cfg.composition_head_rank, model.config.hidden_size, cfg.head_fit_epochs, cfg.lr, cfg.weight_decay, cfg.seed,
            log=print, l2=cfg.head_fit_l2,
        )  # fmt: skip
        held[name] = per_block_held_out_loss(problem, a, b, cfg.seed)
        del problem
        dev_problem = head_fit.build_problem(model, codec, dev4, dev_states, layout)
        with torch.no_grad():
            pred = torch.cat([dev_problem.logits(r, a, b).argmax(-1) for r in torch.arange(len(dev)).split(4096)])
        results[name] = {
            "mcc": scores(dev, pred),
            "best_epoch": best,
            "held_out_loss": min(r["held_out_loss"] for r in records),
            "held_out_loss_per_block": {blocks[k]: round(v, 5) for k, v in held[name].items()},
        }

    whole_name, binned_name = "(0) 3-6-mers (stage 8c's recipe)", "(1) + 3-5-mers of each third, every block"
    run(whole_name, Layout(ks))
    run(binned_name, binned)
    chosen = tuple(blocks[k] for k in held[binned_name] if held[binned_name][k] < held[whole_name].get(k, float("inf")))
    chosen_name = "(2) + thirds only where they lowered the block's held-out training loss"
    run(chosen_name, dataclasses.replace(binned, bin_blocks=chosen))
    results[chosen_name]["bin_blocks"] = list(chosen)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"config": args.config, "train_rows": len(rows), "dev_rows": len(dev), "cfg": dataclasses.asdict(cfg)}
    (out / "head_fit_positional.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    names = list(results)
    groups = list(results[names[0]]["mcc"])
    lines = [f"train rows {len(rows):,}, dev rows {len(dev):,} (leak-filtered, limit {args.limit})", ""]
    lines += [f"- {n}: best epoch {results[n]['best_epoch']}, held-out training loss {results[n]['held_out_loss']:.4f}" for n in names]
    lines += ["", f"Blocks of (2): {', '.join(chosen) or 'none'}", ""]
    lines += ["| dev MCC | " + " | ".join(f"({i})" for i in range(len(names))) + " |", "| --- |" + " --- |" * len(names)]
    lines += [f"| {g} | " + " | ".join(f"{results[n]['mcc'].get(g, float('nan')):.3f}" for n in names) + " |" for g in groups]
    (out / "head_fit_positional.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
