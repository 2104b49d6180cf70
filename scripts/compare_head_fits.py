"""Two convex head fits side by side, block by block: what each chose and its held-out loss.

    .venv/bin/python scripts/compare_head_fits.py "stage 13" /tmp/old/train_config.json "stage 14" runs/cpu_stage14/checkpoint/train_config.json \
        --out docs/stage14/head_fits.md

Both fits must be of the same rows and held-out draw (same selection and seed, as a refit over the
same cached states is); then a lower held-out loss is a better head for that question, read before
any dev row. The table lists, per composition block, each fit's part (``whole``, ``positional``,
``phase``, ``frames``, with ``+motifs`` where it reads the motif scores), sharing, ridge, offset
scale and held-out loss, and the change.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name_a")
    ap.add_argument("config_a", type=Path)
    ap.add_argument("name_b")
    ap.add_argument("config_b", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    a, b = (json.loads(p.read_text())["fitted"]["blocks"] for p in (args.config_a, args.config_b))

    def what(c: dict) -> str:
        sharing = f", {c['sharing']}" if c.get("sharing") else ""
        return f"{c['part']}{sharing}, ridge {c['ridge']:g}, x{c.get('offset_scale', 1.0):g}"

    lines = [
        f"| block | rows | {args.name_a} | held-out loss | {args.name_b} | held-out loss | change |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = held_a = held_b = 0
    for block in sorted(set(a) | set(b)):
        ca, cb = a.get(block), b.get(block)
        if not ca or not cb:  # a block one fit lacks: the other's choice and loss, nothing to compare
            one = ca or cb
            cells = [what(ca), f"{ca['held_out_loss']:.4f}", "-", ""] if ca else ["-", "", what(cb), f"{cb['held_out_loss']:.4f}"]
            lines.append(f"| {block.replace('|', '/')} | {one['rows']} | {' | '.join(cells)} | |")
            continue
        if ca["rows"] == cb["rows"]:
            rows, held_a, held_b = rows + ca["rows"], held_a + ca["held_out_loss"] * ca["rows"], held_b + cb["held_out_loss"] * cb["rows"]
            count, change = str(cb["rows"]), f"{cb['held_out_loss'] - ca['held_out_loss']:+.4f}"
        else:  # other rows, another held-out tenth: the losses are not comparable
            count, change = f"{ca['rows']} -> {cb['rows']}", "other rows"
        lines.append(
            f"| {block.replace('|', '/')} | {count} | {what(ca)} | {ca['held_out_loss']:.4f} | {what(cb)} | {cb['held_out_loss']:.4f} | {change} |"
        )
    if rows:
        lines.append(f"| row-weighted mean | {rows} | | {held_a / rows:.4f} | | {held_b / rows:.4f} | {(held_b - held_a) / rows:+.4f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
