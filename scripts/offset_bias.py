"""How much more the frozen language model knows about its own training rows (docs/experiments.md,
stage 8d): per composition block, the MCC of the frozen model's label logits alone (no head) on
the cached training states of a cached-head run and on the evaluator's dev sample. A head fitted
with those logits as its offset learns the residual of a model that is better on the training
rows than elsewhere, and early stopping on held-out training rows cannot see that.

    .venv/bin/python scripts/offset_bias.py --config configs/cpu_stage8c_fit.toml --out docs/stage8d
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    import head_fit_experiments as hfe
    from genomicllm_kernel.evaluation import classification_metrics
    from genomicllm_kernel.registry import TASKS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/cpu_stage8c_fit.toml")
    ap.add_argument("--out", default="docs/stage8d")
    args = ap.parse_args()
    cfg, model, codec, rows, states, dev, dev_states = hfe.load_cached(args.config)
    W = model.lm_head.weight.detach().numpy()

    def block(b: str) -> str:  # the many named-factor blocks share the pooled TF head
        return b if ("GUE" in b or " | " not in b) else b.split(" | ")[0]

    def mcc(states, tasks, labels, blocks):
        by = defaultdict(lambda: ([], []))
        for s, t, y, b in zip(states, tasks, labels, blocks):
            by[block(b)][0].append(int(y))
            by[block(b)][1].append(int(np.argmax(W[codec.label_ids(TASKS[t])] @ s)))
        return {k: {"mcc": round(float(classification_metrics(a, p)["mcc"]), 3), "n": len(a)} for k, (a, p) in by.items()}

    tr = mcc(states, [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])
    dv = mcc(dev_states, [r[1] for r in dev], [r[2] for r in dev], [r[3] for r in dev])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "offset_bias.json").write_text(json.dumps({"model": cfg.init_from, "train": tr, "dev": dv}, indent=1))
    lines = ["| block (question) | training rows: MCC (n) | dev sample: MCC (n) | train - dev |", "| --- | --- | --- | --- |"]
    for k in sorted(tr):
        d = dv.get(k)
        lines.append(
            f"| {k} | {tr[k]['mcc']:.2f} ({tr[k]['n']}) | " + (f"{d['mcc']:.2f} ({d['n']}) | {tr[k]['mcc'] - d['mcc']:+.2f} |" if d else "| |")
        )
    text = f"The frozen model's label logits alone ({cfg.init_from}), no head:\n\n" + "\n".join(lines) + "\n"
    (out / "offset_bias.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
