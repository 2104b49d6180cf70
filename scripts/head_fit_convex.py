"""Proxy experiment for stage 8d (docs/experiments.md): is the gap to the k-mer baseline in how the
head is fitted? Fits each composition block's head as a convex problem instead of stage 8c's AdamW
on a low-rank head: per block, a multinomial L2 logistic regression on standardised 3- to 6-mer
frequencies (L-BFGS to convergence), with and without the frozen model's label logits as offset,
over a grid of ridge strengths; the strength is chosen by the loss on a held-out tenth of the
training rows (dev is never read for a choice; every grid column is also scored, for the table).
Same cached training states (stage 8c's) and the same dev sample as scripts/head_fit_experiments.py.

    .venv/bin/python scripts/head_fit_convex.py --config configs/cpu_stage8c_fit.toml --out docs/stage8d
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

KS = (3, 4, 5, 6)
LAMS = [0.03, 0.1, 0.3, 1.0, 3.0]


def fit(X, mu, sd, off, y, lam, L):
    """(weights [F, L], bias [L]) in raw feature space of min mean CE(off + ((X - mu) / sd) V + c) + lam/2 |V|^2
    (the solver stage 8f ships: genomicllm_kernel.head_convex)."""
    from genomicllm_kernel import head_convex

    return head_convex.raw_weights(head_convex.solve(X, mu, sd, off, y, lam, L), mu, sd, X.shape[1], L)


def held_loss(z, y):
    from genomicllm_kernel.head_convex import cross_entropy

    return cross_entropy(z, y)


def main() -> int:
    import scipy.sparse as sp
    import torch

    import head_fit_experiments as hfe
    from genomicllm_kernel import head_fit

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/cpu_stage8c_fit.toml")
    ap.add_argument("--out", default="docs/stage8d")
    args = ap.parse_args()
    cfg, model, codec, rows, states, dev, dev_states = hfe.load_cached(args.config)

    def prep(rs, st):
        p = head_fit.build_problem(model, codec, [r[:4] for r in rs], st, KS)
        zero_a, zero_b = torch.zeros(len(model.config.composition_blocks), p.feats.shape[1], 1), torch.zeros(model.config.hidden_size, 1)
        with torch.no_grad():
            off = torch.cat([p.logits(r, zero_a, zero_b) for r in torch.arange(len(rs)).split(8192)])
        return p, off.numpy()

    P, OFF = prep(rows, states)
    D, DOFF = prep(dev, dev_states)
    gen = np.random.default_rng(cfg.seed)
    blocks, dblocks = np.asarray(P.block), np.asarray(D.block)
    names = [
        "k-mers alone, ridge by held-out",
        "with the model's logits, ridge of the k-mers-alone choice",
        "with the model's logits, ridge by held-out",
    ]
    names += [f"k-mers alone, ridge {lam}" for lam in LAMS] + [f"with the model's logits, ridge {lam}" for lam in LAMS]
    preds = {k: np.full(len(dev), -1) for k in names}
    chosen = {}
    for b in np.unique(blocks):
        r, dr = np.nonzero(blocks == b)[0], np.nonzero(dblocks == b)[0]
        if len(dr) == 0:
            continue
        t0 = time.time()
        L = int((P.label_ids[r[0]] >= 0).sum())
        X = sp.csr_matrix(P.feats[r].float().numpy())
        y = np.asarray(P.labels[r])
        mu = np.asarray(X.mean(0)).ravel()
        sd = np.sqrt(np.maximum(np.asarray(X.multiply(X).mean(0)).ravel() - mu**2, 0)) + 1e-3
        perm = gen.permutation(len(r))
        h, t = perm[: len(r) // 10], perm[len(r) // 10 :]
        off, Xdev, offd = OFF[r, :L], sp.csr_matrix(D.feats[dr].float().numpy()), DOFF[dr, :L]
        hk, hl = {}, {}
        for lam in LAMS:
            W, c = fit(X[t], mu, sd, np.zeros((len(t), L)), y[t], lam, L)
            hk[lam] = held_loss(X[h] @ W + c, y[h])
            preds[f"k-mers alone, ridge {lam}"][dr] = (Xdev @ W + c).argmax(1)
            W, c = fit(X[t], mu, sd, off[t], y[t], lam, L)
            hl[lam] = held_loss(off[h] + X[h] @ W + c, y[h])
            preds[f"with the model's logits, ridge {lam}"][dr] = (offd + Xdev @ W + c).argmax(1)
        lk, ll = min(hk, key=hk.get), min(hl, key=hl.get)
        preds[names[0]][dr] = preds[f"k-mers alone, ridge {lk}"][dr]
        preds[names[1]][dr] = preds[f"with the model's logits, ridge {lk}"][dr]
        preds[names[2]][dr] = preds[f"with the model's logits, ridge {ll}"][dr]
        name = model.config.composition_blocks[b]
        chosen[name] = {"rows": len(r), "k-mers alone": lk, "with the model": ll}
        print(f"{name}: {len(r)} rows, ridge {lk} / {ll} ({time.time() - t0:.0f} s)", flush=True)
    scores = {}
    for k, p in preds.items():
        p = p.copy()
        p[p < 0] = DOFF[p < 0].argmax(-1)  # blocks without a fit (no dev row): the model's own answer
        scores[k] = hfe.scores(dev, p)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "head_fit_convex.json").write_text(json.dumps({"lams": LAMS, "chosen": chosen, "mcc": scores}, indent=1))
    groups = list(scores[names[0]])
    lines = ["| dev MCC (leak-filtered, limit 300) | " + " | ".join(f"({i})" for i in range(len(names))) + " |", "| --- |" + " --- |" * len(names)]
    lines += [f"| {g} | " + " | ".join(f"{scores[n][g]:.2f}" for n in names) + " |" for g in groups]
    legend = "\n".join(f"- ({i}) {n}" for i, n in enumerate(names))
    (out / "head_fit_convex.md").write_text(f"{legend}\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
