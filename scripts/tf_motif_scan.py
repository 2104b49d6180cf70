"""Which factor is each GUE TF set? A JASPAR enrichment scan of each set's training rows (issue #20, item 2).

    .venv/bin/python scripts/tf_motif_scan.py --data data/corpus --out docs/stage14

GUE's tf_0 .. tf_4 are five ENCODE ChIP-seq experiments whose factors were never published. For
every JASPAR vertebrate matrix (``genomicllm_kernel/motifs.py``) this scores each training sequence
by its best log-odds match (either strand) and ranks the matrices by how well that score separates
the set's bound sequences from its unbound ones (AUROC). A ChIP-seq peak is centred on the factor's
site, so the true factor's best match also sits near the centre of bound sequences: the scan
reports, per matrix, the share of bound and of unbound sequences whose best match lies within
``--centre`` nt of the middle.

A set is *named* (its factor accepted as an alias of ``GUE tf_K``) only when all of these hold:
its best matrix has AUROC >= 0.75; that matrix's best matches are centred in bound sequences at
least twice as often as in unbound ones; and every matrix of another factor family (another name
before the first digit or ``::``) is at least 0.05 AUROC below it. Otherwise the scan reports the
leading families and names nothing: an alias would say more than the evidence does.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MIN_AUROC, MIN_CENTRAL_RATIO, MIN_MARGIN = 0.75, 2.0, 0.05


def family(name: str) -> str:
    """A motif name's family stem: 'ELK3' -> 'ELK', 'FOSL1::JUND' -> 'FOSL', 'Atf1' -> 'ATF'."""
    return re.split(r"[0-9:]", name.upper(), maxsplit=1)[0] or name.upper()


def main() -> int:
    import kmer_baseline
    from sklearn.metrics import roc_auc_score

    from genomicllm_kernel.grammar import parse_prompt
    from genomicllm_kernel.motifs import RELEASE, TAX_GROUP, load_jaspar

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/corpus"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-label", type=int, default=4000, help="a seeded sample of at most this many bound and unbound sequences per set")
    ap.add_argument("--centre", type=int, default=10)
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args()
    motifs = load_jaspar()
    train = kmer_baseline.training_rows(args.data)
    rng = np.random.default_rng(0)
    report = {"motifs": f"{RELEASE} CORE {TAX_GROUP}, latest versions: {len(motifs)} matrices", "rule": {
        "min_auroc": MIN_AUROC, "min_central_ratio": MIN_CENTRAL_RATIO, "min_margin_to_other_families": MIN_MARGIN, "centre_nt": args.centre}, "sets": {}}  # fmt: skip
    for k in range(5):
        rows = train.get(("tf_binding", f"GUE:tf_{k}"), [])
        by_seq = {}
        for prompt, answer in rows:  # the item and bare forms of one row are one sequence
            by_seq["".join(parse_prompt(prompt).sequences)] = answer == "True"
        seqs = {label: [s for s, v in by_seq.items() if v == label] for label in (True, False)}
        sample = {
            label: [seqs[label][i] for i in sorted(rng.choice(len(seqs[label]), min(args.per_label, len(seqs[label])), replace=False))]
            for label in seqs
        }
        t0 = time.time()
        scores, centres = motifs.best_matches(sample[True] + sample[False])
        y = np.r_[np.ones(len(sample[True])), np.zeros(len(sample[False]))]
        length = np.array([len(s) for s in sample[True] + sample[False]])
        central = np.abs(centres - (length // 2)[:, None]) <= args.centre
        auroc = np.array([roc_auc_score(y, np.nan_to_num(scores[:, j], neginf=-1e9)) for j in range(len(motifs))])
        order = np.argsort(-auroc)
        top = [
            {
                "id": motifs.ids[j], "name": motifs.names[j], "family": family(motifs.names[j]), "auroc": round(float(auroc[j]), 4),
                "central_bound": round(float(central[y == 1, j].mean()), 3), "central_unbound": round(float(central[y == 0, j].mean()), 3),
            }
            for j in order[: args.top]
        ]  # fmt: skip
        best = top[0]
        other = max((float(auroc[j]) for j in order if family(motifs.names[j]) != best["family"]), default=0.0)
        named = (
            best["auroc"] >= MIN_AUROC
            and best["central_bound"] >= MIN_CENTRAL_RATIO * max(best["central_unbound"], 1e-9)
            and best["auroc"] - other >= MIN_MARGIN
        )
        families = list(dict.fromkeys(t["family"] for t in top))
        report["sets"][f"GUE tf_{k}"] = {
            "bound": len(sample[True]), "unbound": len(sample[False]), "top": top, "best_other_family_auroc": round(other, 4),
            "named": best["name"] if named else None, "leading_families": families[:4],
        }  # fmt: skip
        leaders = ", ".join(f"{t['name']} {t['auroc']:.3f}" for t in top[:5])
        print(f"GUE tf_{k}: {leaders}; named: {best['name'] if named else 'none'} ({time.time() - t0:.0f} s)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tf_motif_scan.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [
        f"JASPAR enrichment scan of each GUE TF set's training rows ({report['motifs']}): matrices ranked by the AUROC of each "
        f"sequence's best match, bound vs unbound; 'central' is the share whose best match lies within {args.centre} nt of the middle.",
        f"A set is named only if its best matrix has AUROC >= {MIN_AUROC}, is central in bound sequences >= {MIN_CENTRAL_RATIO}x as often "
        f"as in unbound ones, and leads every other family by >= {MIN_MARGIN}.",
        "",
        "| set | named | leading families | top matrices (AUROC, central bound / unbound) |",
        "| --- | --- | --- | --- |",
    ]
    for name, s in report["sets"].items():
        tops = "; ".join(f"{t['name']} {t['id']} {t['auroc']:.3f} ({t['central_bound']:.2f} / {t['central_unbound']:.2f})" for t in s["top"][:5])
        lines.append(f"| {name} | {s['named'] or 'none'} | {', '.join(s['leading_families'])} | {tops} |")
    (args.out / "tf_motif_scan.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
