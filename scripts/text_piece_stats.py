"""How the model's text vocabulary spells a corpus's gene descriptions, and how appended pieces would.

    python scripts/text_piece_stats.py --model models/default --data data/corpus [--extend 0 500 1000 2000]

Why: a vocabulary learned once from an early corpus spells most words of the gene full names a
character a token, and a name spelled so is a long sequence to memorise (docs/experiments.md,
"Stage 11"). ``extend_text_pieces`` (TrainConfig) appends the pieces that save the most tokens; this
prints tokens per description answer for each size before a run spends compute on one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genomicllm_kernel.codec import rank_text_pieces  # noqa: E402
from genomicllm_kernel.tokenizer import GenomicLLMTokenizer  # noqa: E402
from genomicllm_kernel.training import read_jsonl, training_texts  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--data", default="data/corpus")
    ap.add_argument("--extend", type=int, nargs="*", default=[0, 500, 1000, 2000])
    args = ap.parse_args()
    tok = GenomicLLMTokenizer.from_pretrained(args.model)
    train = Path(args.data) / "train.jsonl"
    texts = training_texts(train)
    answers = [ex["answer"] for ex in read_jsonl(train) if ex["task"] == "gene_description"]
    rows = []
    for n in args.extend:
        codec = tok.codec.with_text_pieces(rank_text_pieces(texts, tok.vocab, n)) if n else tok.codec
        spelled = [codec.text_tokens(" " + a) for a in answers]
        total = sum(map(len, spelled))
        single = sum(len(t.strip()) <= 1 for s in spelled for t in s)
        rows.append(
            {
                "extend": n,
                "vocab": len(codec.vocab),
                "tokens_per_answer": round(total / len(answers), 2),
                "one_character_share": round(single / total, 3),
            }
        )
        print(
            f"extend {n}: vocabulary {len(codec.vocab)}, {total / len(answers):.1f} tokens per description answer, "
            f"{single / total:.2f} of them one character or a space",
            file=sys.stderr,
        )
    print(json.dumps({"model": args.model, "answers": len(answers), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
