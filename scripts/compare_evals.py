#!/usr/bin/env python3
"""Markdown table of two ``genomicllm evaluate`` results side by side, per task and source group
(the primary metric of each group), for docs/experiments.md.

    python scripts/compare_evals.py NAME_A A/eval_dev.json NAME_B B/eval_dev.json
"""

import json
import sys

PRIMARY = ("mcc", "exact_match", "mae", "rouge_l")


def main(argv):
    name_a, path_a, name_b, path_b = argv
    a, b = (json.load(open(p)) for p in (path_a, path_b))
    print(f"| task / group | metric | {name_a} | {name_b} |")
    print("| --- | --- | --- | --- |")
    for key in sorted(set(a["groups"]) | set(b["groups"])):
        ga, gb = a["groups"].get(key, {}), b["groups"].get(key, {})
        metric = next((m for m in PRIMARY if m in (gb or ga)), None)
        if metric is None:
            continue

        def cell(g):
            return f"{g[metric]:.3f} (n {g['n']})" if g and metric in g else "-"

        print(f"| {key} | {metric.replace('_', ' ')} | {cell(ga)} | {cell(gb)} |")
    for t in ("gc_content", "reverse_complement", "nt2aa"):
        for name, r in ((name_a, a), (name_b, b)):
            by = r["tasks"].get(t, {}).get("exact_by_length", {})
            if by:
                cells = ", ".join(f"{k} nt {v['exact_match']:.3f} (n {v['n']})" for k, v in by.items())
                print(f"| {t} exact match by length | {name} | {cells} | |")


if __name__ == "__main__":
    main(sys.argv[1:])
