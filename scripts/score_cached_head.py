"""Score a fitted cached-head checkpoint on the dev sample from cached states, beside earlier heads.

Why: a head fitted by ``genomicllm train --config C`` (method = "cached_head") changes only the
per-question head, so its dev answers are the cached dev ``<ans>`` states plus the head's reading
of each prompt's k-mers: minutes, where export + ``genomicllm evaluate`` take half an hour. The
dev sample is the one of ``genomicllm evaluate --limit N`` (leak-filtered); stage 8e's column (0)
reproduced the shipped model's evaluated figures on every group this way. A decision still rests
on the exported model's evaluation; this ranks candidates on the same rows.

    .venv/bin/genomicllm train --config configs/cpu_stage8f_fit.toml
    .venv/bin/python scripts/score_cached_head.py --config configs/cpu_stage8f_fit.toml --out docs/stage8f \
        --compare docs/stage8e/head_fit_positional.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from head_fit_experiments import load_cached, scores  # noqa: E402


def main() -> int:
    import torch

    from genomicllm_kernel import head_fit
    from genomicllm_kernel.composition import as_layout
    from genomicllm_kernel.model import load_torch_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--checkpoint", help="default: the config's out/checkpoint")
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--split", default="dev", choices=["dev", "test"], help="test: read only after the decision it checks")
    ap.add_argument(
        "--compare",
        nargs="*",
        default=[],
        help="earlier results to print beside: head_fit_positional.json's form, or an evaluate JSON (eval_dev.json)",
    )
    args = ap.parse_args()
    cfg, model, codec, _, _, dev, dev_states = load_cached(args.config, args.limit, args.split)
    ckpt = Path(args.checkpoint or Path(cfg.out) / "checkpoint")
    fitted, _ = load_torch_model(ckpt)
    layout = as_layout(fitted.config)
    problem = head_fit.build_problem(fitted, codec, [r[:4] for r in dev], dev_states, layout)
    a, b = head_fit.read_head(fitted)
    with torch.no_grad():
        pred = torch.cat([problem.logits(r, a, b).argmax(-1) for r in torch.arange(len(dev)).split(4096)])
    name = f"{args.config} ({ckpt})"
    mine = scores(dev, pred)
    train_cfg = json.loads((ckpt / "train_config.json").read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"split": args.split, "config": args.config, "checkpoint": str(ckpt), "dev_rows": len(dev), "limit": args.limit, "mcc": mine}
    record["bin_blocks"] = list(layout.bin_blocks)
    record["fitted"] = train_cfg.get("fitted", {})
    (out / f"score_cached_head_{args.split}.json").write_text(json.dumps(record, indent=1) + "\n")
    columns = {}
    for path in args.compare:
        earlier = json.loads(Path(path).read_text())
        if "groups" in earlier:  # a `genomicllm evaluate` JSON: one column, its groups' MCC
            columns[f"{path} (evaluated)"] = {g: round(m["mcc"], 3) for g, m in {**earlier["groups"], **earlier["tasks"]}.items() if "mcc" in m}
            continue
        if "mcc" in earlier:  # this script's own JSON
            columns[f"{earlier['config']} (cached)"] = earlier["mcc"]
            continue
        for k, v in earlier["results"].items():
            columns[k] = v["mcc"]
    columns[name] = mine
    names = list(columns)
    lines = [
        f"{args.split} rows {len(dev):,} (leak-filtered, limit {args.limit}); positional part in: {', '.join(layout.bin_blocks) or 'no block'}",
        "",
    ]
    lines += [f"- ({i}) {n}" for i, n in enumerate(names)]
    lines += ["", f"| {args.split} MCC | " + " | ".join(f"({i})" for i in range(len(names))) + " |", "| --- |" + " --- |" * len(names)]
    for g in mine:
        lines.append(f"| {g} | " + " | ".join(f"{columns[n].get(g, float('nan')):.3f}" for n in names) + " |")
    groups = [g for g in mine if " | " in g]
    lines.append(
        f"| mean over the {len(groups)} groups | "
        + " | ".join(f"{sum(columns[n].get(g, 0) for g in groups) / len(groups):.3f}" for n in names)
        + " |"
    )
    (out / f"score_cached_head_{args.split}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
