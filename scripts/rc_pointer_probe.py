"""Does the frozen model's state say which item a reading-comprehension question names? (issue #17)

    python scripts/rc_pointer_probe.py --model runs/cpu_stage8c/checkpoint [--name-keys 1024] --out docs/stage9

Stage 9 (docs/experiments.md) found that continued training does not teach the model to point at an
unseen item name. Before building a pointer head into the model, this probe asks whether the match
is readable from the frozen model at all. For every reading-comprehension prompt it runs the model
once and keeps, per layer, the hidden state at ``<ans>`` and at each ``<item:k>`` marker. A bilinear
pointer (score of item k = (W_q h_ans) . (W_k h_marker_k), softmax over the prompt's items, plus
the model's own pointer logits as offset) is fitted on training prompts and scored on dev prompts,
whose item names never occur as targets in training (held out by name, data card).

``--name-keys`` encodes the prompts with name keys (codec.py, "Name keys"; the rows appended to the
frozen model's vocabulary are random, drawn as training.add_name_keys draws them, and never trained),
so the marker's previous token is one token per name.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rows_by_source(path: Path) -> dict[str, list[dict]]:
    """Every reading-comprehension row of a split by source ('generated' or 'records'), in file order."""
    out: dict[str, list[dict]] = {"generated": [], "records": []}
    for line in open(path):
        if '"reading_comprehension"' not in line:
            continue
        r = json.loads(line)
        out["generated" if r["source"].startswith("generated") else "records"].append(r)
    return out


def rows(path: Path, n: int, rng: random.Random) -> dict[str, list[dict]]:
    """Reading-comprehension rows by source ('generated' or 'records'), at most n of each."""
    return {k: rng.sample(v, min(n, len(v))) for k, v in rows_by_source(path).items()}


def states(model, tokenizer, examples: list[dict]):
    """Per example: (hidden at <ans> [L+1, D], hidden at markers [L+1, K, D], model's pointer logits [K], gold k)."""
    import torch

    from genomicllm_kernel.codec import ITEM_TOKENS
    from genomicllm_kernel.grammar import parse_prompt

    item_ids = [tokenizer.codec.vocab[t] for t in ITEM_TOKENS]
    out = []
    with torch.no_grad():
        for r in examples:
            prompt = parse_prompt(r["prompt"])
            ids = tokenizer.encode_prompt(prompt)
            gold = tokenizer.codec.pointed_item(prompt, r["answer"]) - 1
            x = torch.tensor([ids])
            res = model.model(input_ids=x, output_hidden_states=True)
            hs = torch.stack(res.hidden_states)[:, 0]  # [L+1, T, D]
            logits = model.lm_head(res.last_hidden_state[0, -1])
            pos = [ids.index(i) for i in item_ids if i in ids]
            out.append((hs[:, -1].numpy(), hs[:, pos].numpy(), logits[item_ids[: len(pos)]].numpy(), gold))
    return out


def stacked(examples, layer: int):
    """(ans [N, D], markers [N, K, D], offset [N, K] with -inf past each prompt's items, gold [N])."""
    import torch

    k = max(m.shape[1] for _, m, _, _ in examples)
    d = examples[0][0].shape[-1]
    ans = torch.zeros(len(examples), d)
    markers = torch.zeros(len(examples), k, d)
    offset = torch.full((len(examples), k), float("-inf"))
    for i, (a, m, o, _) in enumerate(examples):
        ans[i] = torch.from_numpy(a[layer])
        markers[i, : m.shape[1]] = torch.from_numpy(m[layer])
        offset[i, : m.shape[1]] = torch.from_numpy(o)
    return ans, markers, offset, torch.tensor([g for *_, g in examples])


def pointer_scores(wq, wk, ans, markers, offset):
    return offset + torch_einsum(wk(markers), wq(ans)) / wq.out_features**0.5


def torch_einsum(keys, query):
    import torch

    return torch.einsum("nkr,nr->nk", keys, query)


def fit_pointer(train, layer: int, rank: int, epochs: int, seed: int):
    """A bilinear pointer over one layer's states, with the model's pointer logits as offset."""
    import torch

    torch.manual_seed(seed)
    ans, markers, offset, gold = stacked(train, layer)
    wq = torch.nn.Linear(ans.shape[1], rank, bias=False)
    wk = torch.nn.Linear(ans.shape[1], rank, bias=False)
    opt = torch.optim.AdamW(list(wq.parameters()) + list(wk.parameters()), lr=3e-3, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(gold), generator=gen)
        for i in range(0, len(gold), 256):
            b = order[i : i + 256]
            loss = torch.nn.functional.cross_entropy(pointer_scores(wq, wk, ans[b], markers[b], offset[b]), gold[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return wq, wk


def accuracy(examples, layer: int | None, wq=None, wk=None) -> float:
    import torch

    ans, markers, offset, gold = stacked(examples, layer or 0)
    with torch.no_grad():
        scores = offset if layer is None else pointer_scores(wq, wk, ans, markers, offset)
    return float((scores.argmax(1) == gold).float().mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="runs/cpu_stage8c/checkpoint")
    ap.add_argument("--data", default="data/corpus")
    ap.add_argument("--name-keys", type=int, default=0)
    ap.add_argument("--train", type=int, default=4000, help="training prompts per source")
    ap.add_argument("--dev", type=int, default=300, help="dev prompts per source")
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--layers", type=int, nargs="*", help="hidden-state layers to probe (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs/stage9")
    args = ap.parse_args(argv)

    import torch

    from genomicllm_kernel.model import load_torch_model
    from genomicllm_kernel.training import add_name_keys

    torch.set_num_threads(1)
    model, tokenizer = load_torch_model(args.model)
    model.eval()
    if args.name_keys:
        add_name_keys(model, tokenizer, args.name_keys, args.seed)
    rng = random.Random(args.seed)
    train = rows(Path(args.data) / "train.jsonl", args.train, rng)
    dev = rows(Path(args.data) / "dev.jsonl", args.dev, rng)
    tr = states(model, tokenizer, train["generated"] + train["records"])
    dv = {k: states(model, tokenizer, v) for k, v in dev.items()}
    n_layers = tr[0][0].shape[0]
    table = {"model's own pointer": {k: accuracy(v, None) for k, v in dv.items()}}
    for layer in args.layers if args.layers is not None else range(n_layers):
        wq, wk = fit_pointer(tr, layer, args.rank, args.epochs, args.seed)
        table[f"pointer on layer {layer}"] = {k: accuracy(v, layer, wq, wk) for k, v in dv.items()}
        table[f"pointer on layer {layer}"]["train"] = accuracy(tr, layer, wq, wk)
        print(layer, table[f"pointer on layer {layer}"], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"rc_pointer_probe{'_keys' if args.name_keys else ''}"
    (out / f"{stem}.json").write_text(json.dumps({"args": vars(args), "dev_exact_match": table}, indent=1))
    lines = [
        f"# Reading comprehension: a pointer over the frozen model's states ({'name keys' if args.name_keys else 'no name keys'})",
        "",
        f"`python scripts/rc_pointer_probe.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        "| pointer | dev, generated (unseen) names | dev, records | train (both) |",
        "| --- | --- | --- | --- |",
    ]
    for name, r in table.items():
        lines.append(f"| {name} | {r['generated']:.3f} | {r['records']:.3f} | {r.get('train', float('nan')):.3f} |")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
