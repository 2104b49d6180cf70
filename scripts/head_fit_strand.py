"""Does a strand-invariant head help the strand-symmetric questions? (issue #20, stage 13 proxy)

    .venv/bin/python scripts/head_fit_strand.py --config configs/cpu_stage13_fit.toml --out docs/stage13

A ChIP-seq peak, an open-chromatin region or an enhancer is the same whichever strand is read
(registry.Task.strand_symmetric), yet each question's head is a free regression over the k-mers of
the strand given, so a k-mer and its reverse complement get separate weights fitted on half the
evidence each. This script refits only those questions' blocks from the stage's cached head-fit
states, once as the pipeline does (head_convex.fit_block) and once on features averaged with their
reverse complement's (the thirds taken in reverse order), which head_symmetry.StrandInvariance
places exactly in the head. Every choice is made by the pipeline's held-out tenth; dev accuracy and
MCC per block are reported for the table only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_tables(table: list[dict], out: Path) -> None:
    """head_fit_strand.json and .md (a block name's "|" escaped for the table)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "head_fit_strand.json").write_text(json.dumps(table, indent=1) + "\n")
    lines = ["| block | variant | chosen | held-out loss | dev accuracy | dev MCC | dev n |", "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [
        f"| {r['block'].replace('|', chr(92) + '|')} | {r['variant']} | {r['chosen']} | {r['held-out loss']:.4f} | {r['dev accuracy']:.3f} | {r['dev MCC']:.3f} | {r['dev n']} |"
        for r in table
    ]
    (out / "head_fit_strand.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    import scipy.sparse as sp
    import torch
    from sklearn.metrics import matthews_corrcoef

    from genomicllm_kernel import head_convex, head_fit
    from genomicllm_kernel.composition import Layout
    from genomicllm_kernel.grammar import parse_prompt
    from genomicllm_kernel.head_symmetry import StrandInvariance
    from genomicllm_kernel.model import load_torch_model
    from genomicllm_kernel.registry import TASKS
    from genomicllm_kernel.training import TrainConfig, read_jsonl

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/cpu_stage13_fit.toml")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    cfg = TrainConfig.load(args.config)
    torch.set_num_threads(cfg.threads)
    model, tok = load_torch_model(cfg.init_from)
    codec = tok.codec
    layout = Layout(
        tuple(cfg.composition),
        cfg.composition_bins,
        tuple(cfg.composition_bin_ks),
        (),
        tuple(cfg.composition_phase_ks),
        tuple(cfg.composition_phase_blocks),
    )
    rows, states, _ = head_fit.cached_states(cfg, model, codec, Path(cfg.out) / "states.npz", progress=False)
    problem = head_fit.build_problem(model, codec, rows, states, layout, cfg.head_fit_hold_out_regions)
    held_all = head_fit.held_out_split(problem, torch.Generator().manual_seed(cfg.seed)).numpy()
    names = list(model.config.composition_blocks)
    symmetric = [b for b in names if any(t.strand_symmetric and b.split(" | ")[0] in t.question_keys for t in TASKS.values())]
    zero_a, zero_b = torch.zeros(len(names), layout.size, 1), torch.zeros(model.config.hidden_size, 1)
    # the dev rows of those blocks, leak-filtered, and their states without any head
    dev = []
    for ex in read_jsonl(Path(cfg.data) / "dev.jsonl"):
        task = TASKS.get(ex["task"])
        if ex["split"] != "dev" or ex.get("leak") or task is None or not task.strand_symmetric:
            continue
        ids = codec.encode_prompt(parse_prompt(ex["prompt"]))
        block = codec.composition_block(ids)
        if block in symmetric:
            dev.append((ids, ex["task"], task.labels.index(ex["answer"]), block))
    dev_states = head_fit.answer_states(model, codec, [r[0] for r in dev], progress=False)
    dev_problem = head_fit.build_problem(model, codec, dev, dev_states, layout)
    invariance = StrandInvariance()
    table = []
    with torch.no_grad():
        offset_all = torch.cat([problem.logits(r, zero_a, zero_b) for r in torch.arange(len(problem.labels)).split(8192)]).numpy()
        offset_dev = dev_problem.logits(torch.arange(len(dev)), zero_a, zero_b).numpy()
    for name in symmetric:
        b = names.index(name)
        sel = np.nonzero(problem.block.numpy() == b)[0]
        dsel = np.nonzero(dev_problem.block.numpy() == b)[0]
        if not len(sel) or not len(dsel):
            continue
        L = 2
        X = sp.csr_matrix(problem.feats[sel].float().numpy())
        Xd = dev_problem.feats[dsel].float().numpy()
        y, yd, held = problem.labels[sel].numpy(), dev_problem.labels[dsel].numpy(), held_all[sel]
        off, offd = offset_all[sel, :L], offset_dev[dsel, :L]
        for variant in ("free (stage 12)", "strand-invariant"):
            if variant == "free (stage 12)":
                W, c, choice = head_convex.fit_block(X, off, y, held, L, tuple(cfg.head_fit_ridges), layout.whole_size)
            else:
                W, c, choice = head_convex.fit_block(invariance.fold(X, layout), off, y, held, L, tuple(cfg.head_fit_ridges), layout.whole_size)
                W = invariance.place(W, layout)
            pred = (offd + Xd @ W + c).argmax(1)
            row = {
                "block": name,
                "variant": variant,
                "chosen": f"{choice['part']}, ridge {choice['ridge']:g}",
                "held-out loss": choice["held_out_loss"],
            }
            row.update(
                {"dev accuracy": round(float((pred == yd).mean()), 3), "dev MCC": round(float(matthews_corrcoef(yd, pred)), 3), "dev n": int(len(yd))}
            )
            table.append(row)
            print(json.dumps(row), flush=True)
    write_tables(table, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
