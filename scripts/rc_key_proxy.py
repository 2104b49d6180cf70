"""Reading comprehension over unseen item names: where should a name's key enter the model? (issue #17)

    python scripts/rc_key_proxy.py --data data/corpus --variant folded --steps 1500 --out docs/stage12

Stage 9 (docs/experiments.md) gave every item name a hashed key token (``<key:h>``, codec.py "Name
keys") and found that no run, not even a fresh toy trained on reading comprehension alone, learned
to point at an item whose name it had never seen: the match needs two hops (a previous-token head
that copies the key onto the ``<item:k>`` marker after it, then a head at ``<ans>`` that matches the
question's key against those markers), and the optimiser did not find the first hop in 1,600 steps.

This proxy asks whether the first hop is what binds. It trains the same fresh toy (a Llama of
``--layers`` x ``--hidden``, reading comprehension only: the corpus's record rows and generated-name
rows, the answer's pointer token as the only loss) in one of three encodings, at equal steps and
batch size, and scores exact match on the dev split, whose generated item names never occur in
training (held out by name, data card):

* ``none``: no keys (the shipped model's layout, ``name <item:k> = value``);
* ``tokens``: key tokens in the stream (``name <key:h> <item:k> = value``, question ``name <key:h>
  <ans>``), stage 9k's layout;
* ``folded``: the same token stream, and each token that follows a key token also gets that key's
  embedding added to its own (the marker and ``<ans>``). That hard-wires the first hop, as a position
  embedding hard-wires where a token is; the model must still learn to match keys by attention and
  to answer with the marker it found (one hop), and a key is still a hash of the name alone.

The models, the optimiser, the data order and the seed are the same in every variant; only the
embedding differs. Not project code that ships: a proxy whose rows go to docs/experiments.md.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

VARIANTS = ("none", "tokens", "folded")


def rc_rows(path: Path) -> dict[str, list[dict]]:
    """Reading-comprehension rows of one split by source ('generated' or 'records'), in file order."""
    from rc_pointer_probe import rows_by_source

    return rows_by_source(path)


def encode(codec, rows: list[dict], max_len: int) -> list[tuple[list[int], int]]:
    """(prompt ids ending in <ans>, gold pointer token id) per row that fits ``max_len``."""
    from genomicllm_kernel.codec import ITEM_TOKENS
    from genomicllm_kernel.errors import InputError
    from genomicllm_kernel.grammar import parse_prompt

    out = []
    for r in rows:
        prompt = parse_prompt(r["prompt"])
        try:
            k = codec.pointed_item(prompt, r["answer"])
        except InputError:
            continue
        ids = codec.encode_prompt(prompt)
        if len(ids) <= max_len:
            out.append((ids, codec.vocab[ITEM_TOKENS[k - 1]]))
    return out


class Toy:
    """A fresh Llama whose input embedding optionally folds each key token into the next token."""

    def __init__(self, vocab_size: int, key_ids: list[int], args, fold: bool):
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(args.seed)
        cfg = LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=args.hidden,
            intermediate_size=args.ffn,
            num_hidden_layers=args.layers,
            num_attention_heads=args.heads,
            num_key_value_heads=args.heads,
            max_position_embeddings=1024,
            pad_token_id=0,
            tie_word_embeddings=False,
        )
        self.model = LlamaForCausalLM(cfg)
        self.fold = fold
        is_key = torch.zeros(vocab_size, dtype=torch.bool)
        is_key[key_ids] = True
        self.is_key = is_key

    def embeddings(self, ids):
        import torch

        emb = self.model.model.embed_tokens(ids)
        if not self.fold:
            return emb
        prev = torch.nn.functional.pad(ids[:, :-1], (1, 0))
        keyed = self.is_key[prev].unsqueeze(-1).to(emb.dtype)
        return emb + keyed * self.model.model.embed_tokens(prev)

    def last_logits(self, ids, mask):
        """Logits at each row's last real token (<ans>); rows are right-padded."""
        import torch

        out = self.model(inputs_embeds=self.embeddings(ids), attention_mask=mask).logits
        last = mask.sum(1) - 1
        return out[torch.arange(ids.shape[0]), last]


def padded(chunk):
    """(ids, mask, gold) tensors of (prompt ids, gold id) rows, right-padded to the longest."""
    import torch

    width = max(len(ids) for ids, _ in chunk)
    ids = torch.zeros(len(chunk), width, dtype=torch.long)
    mask = torch.zeros(len(chunk), width, dtype=torch.long)
    for i, (row, _) in enumerate(chunk):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask, torch.tensor([g for _, g in chunk])


def batches(encoded, size: int, rng: random.Random):
    order = list(range(len(encoded)))
    while True:
        rng.shuffle(order)
        for s in range(0, len(order) - size + 1, size):
            yield padded([encoded[i] for i in order[s : s + size]])


def exact_match(toy: Toy, encoded, item_ids: list[int]) -> float:
    """Share of rows whose best pointer token (among the item markers) is the gold one."""
    import torch

    toy.model.eval()
    hits = 0
    with torch.no_grad():
        for s in range(0, len(encoded), 32):
            ids, mask, gold = padded(encoded[s : s + 32])
            logits = toy.last_logits(ids, mask)[:, item_ids]
            pred = torch.tensor(item_ids)[logits.argmax(-1)]
            hits += int((pred == gold).sum())
    toy.model.train()
    return hits / max(1, len(encoded))


def _shown(value):
    """A path as the repository-relative text a reader reruns it with; anything else as it is."""
    if isinstance(value, Path):
        try:
            return str(value.resolve().relative_to(ROOT))
        except ValueError:
            return str(value)
    return value


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data/corpus")
    ap.add_argument("--model", type=Path, default=ROOT / "models/default", help="folder whose vocabulary (codec) the prompts are encoded with")
    ap.add_argument("--variant", choices=VARIANTS, required=True)
    ap.add_argument("--name-keys", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--ffn", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--max-len", type=int, default=320)
    ap.add_argument("--dev", type=int, default=300, help="dev rows per source")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    import torch

    from genomicllm_kernel.codec import ITEM_TOKENS, HybridCodec, key_tokens

    torch.set_num_threads(args.threads)
    codec = HybridCodec.from_pretrained(args.model)
    if args.variant != "none":
        codec = codec.with_name_keys(args.name_keys)
    rng = random.Random(args.seed)
    train = rc_rows(args.data / "train.jsonl")
    dev = rc_rows(args.data / "dev.jsonl")
    train_enc = encode(codec, train["generated"] + train["records"], args.max_len)
    dev_enc = {k: encode(codec, random.Random(0).sample(v, min(args.dev, len(v))), args.max_len) for k, v in dev.items()}
    train_names = {r["prompt"].rsplit("reading comprehension:", 1)[-1].strip(" =").lower() for r in train["generated"]}
    dev_names = {r["prompt"].rsplit("reading comprehension:", 1)[-1].strip(" =").lower() for r in dev["generated"]}
    item_ids = [codec.vocab[t] for t in ITEM_TOKENS]
    key_ids = [codec.vocab[t] for t in key_tokens(args.name_keys)] if args.variant != "none" else []
    toy = Toy(len(codec), key_ids, args, fold=args.variant == "folded")
    opt = torch.optim.AdamW(toy.model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / args.warmup))
    curve = []
    t0 = time.time()
    feed = batches(train_enc, args.batch, rng)
    for step in range(1, args.steps + 1):
        ids, mask, gold = next(feed)
        loss = torch.nn.functional.cross_entropy(toy.last_logits(ids, mask), gold)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(toy.model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % args.eval_every == 0 or step == args.steps:
            row = {"step": step, "loss": round(float(loss.detach()), 4), "minutes": round((time.time() - t0) / 60, 1)}
            row.update({f"dev {k}": round(exact_match(toy, v, item_ids), 3) for k, v in dev_enc.items()})
            curve.append(row)
            print(json.dumps(row), flush=True)
    result = {
        "variant": args.variant,
        "args": {k: _shown(v) for k, v in vars(args).items()},
        "train rows": len(train_enc),
        "dev rows": {k: len(v) for k, v in dev_enc.items()},
        "dev generated names also in train": len(dev_names & train_names),
        "curve": curve,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"rc_key_proxy_{args.variant}.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
