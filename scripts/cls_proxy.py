#!/usr/bin/env python3
"""Equal-compute proxy runs for the classification design (docs/experiments.md).

Adapted from ``../shared/notes/cls_probe.py``: a small causal Llama (hidden 192, 4 layers) over the
project's non-overlapping 3-mer DNA tokens, label read at the last position, trained on GUE
tf_0..tf_4 + prom_core_all train only, scored on dev sequences whose middle 24-mer is not in that
task's train. The budget is a number of optimizer steps (batch 64), not minutes, so runs that share
the CPU with other work still get equal compute. The composition features are the project's own
(:mod:`genomicllm_kernel.composition`), so a row measures the code the model uses.

Variants:
  base        [bos] seq... [q] [ans]                  (the layout of the shipped model, TF sets pooled)
  item        [bos] seq... [tf_k] [q] [ans]           (the dataset item: transcription factor = GUE tf_K)
  kmer        base + 4/5-mer frequencies added to the last token's embedding
  kmer_item   kmer + the dataset item
  kmer_canon  kmer with strand-merged (canonical) counts
  kmer36      kmer with k = 3, 4, 5, 6

Usage: python scripts/cls_proxy.py VARIANT STEPS OUT.json   (SEED=0 by default; one thread)
"""

import csv
import gzip
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.metrics import matthews_corrcoef
from transformers import LlamaConfig, LlamaModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from genomicllm_kernel.composition import composition  # noqa: E402

torch.set_num_threads(1)
VARIANT, STEPS, OUT = sys.argv[1], int(sys.argv[2]), sys.argv[3]
KS = (3, 4, 5, 6) if VARIANT == "kmer36" else (4, 5)
KMER = VARIANT.startswith("kmer")
ITEM = VARIANT in ("item", "kmer_item")
G = Path(__file__).resolve().parents[2] / "shared" / "data" / "gue"
TASKS = ["tf_0", "tf_1", "tf_2", "tf_3", "tf_4", "prom_core_all"]
SEED = int(os.environ.get("SEED", "0"))
rng = random.Random(SEED)
torch.manual_seed(SEED)


def rows(t, split):
    with gzip.open(G / t / f"{split}.csv.gz", "rt") as fh:
        return [(r["sequence"].upper(), int(r["label"])) for r in csv.DictReader(fh)]


train = {t: rows(t, "train") for t in TASKS}
dev = {t: rows(t, "dev") for t in TASKS}
for t in TASKS:  # leak filter: middle 24-mer of a dev sequence in that task's train
    ks = set(s[i : i + 24] for s, _ in train[t] for i in range(len(s) - 23))
    dev[t] = [(s, lab) for s, lab in dev[t] if s[(len(s) - 24) // 2 : (len(s) - 24) // 2 + 24] not in ks]

NUC = "ACGTN"
CHUNKS = {a + b + c: i for i, (a, b, c) in enumerate((a, b, c) for a in NUC for b in NUC for c in NUC)}
SPECIAL = {"pad": 125, "bos": 126, "ans": 127, "q_tf": 128, "q_prom": 129, **{f"tf_{k}": 130 + k for k in range(5)}}
VOCAB = 140


def canonical_index(k):
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    idx, seen = [], {}
    for code in range(4**k):
        s = "".join("ACGT"[(code >> (2 * (k - 1 - j))) & 3] for j in range(k))
        rc = "".join(comp[c] for c in reversed(s))
        key = min(s, rc)
        idx.append(seen.setdefault(key, len(seen)))
    return np.array(idx), len(seen)


CANON = {k: canonical_index(k) for k in KS} if VARIANT == "kmer_canon" else {}
FEATS = sum(CANON[k][1] for k in KS) if CANON else sum(4**k for k in KS)


def features(seq):
    f = composition([seq], KS)
    if not CANON:
        return f
    out, off = [], 0
    for k in KS:
        block = f[off : off + 4**k]
        off += 4**k
        idx, n = CANON[k]
        out.append(np.bincount(idx, weights=block, minlength=n))
    return np.concatenate(out).astype(np.float32)


def encode(seq, task):
    s = "".join(c if c in "ACGT" else "N" for c in seq)
    dna = [CHUNKS[s[i : i + 3]] for i in range(0, len(s) - len(s) % 3, 3)]
    q = SPECIAL["q_prom"] if task.startswith("prom") else SPECIAL["q_tf"]
    item = [SPECIAL[task]] if ITEM and task.startswith("tf") else []
    return [SPECIAL["bos"]] + dna + item + [q, SPECIAL["ans"]]


class Net(nn.Module):
    def __init__(self, hidden=192, layers=4, heads=4):
        super().__init__()
        cfg = LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            intermediate_size=4 * hidden,
            max_position_embeddings=256,
        )
        self.lm = LlamaModel(cfg)
        self.head = nn.Linear(hidden, 2)
        if KMER:
            self.kproj = nn.Linear(FEATS, hidden)

    def forward(self, ids, mask, feats):
        emb = self.lm.embed_tokens(ids)
        last = mask.sum(1) - 1
        if KMER:
            emb = emb.clone()
            emb[torch.arange(ids.shape[0]), last] += self.kproj(feats)
        out = self.lm(inputs_embeds=emb, attention_mask=mask).last_hidden_state
        return self.head(out[torch.arange(ids.shape[0]), last])


def batch(items):
    enc = [encode(s, t) for s, t, _ in items]
    n = max(len(e) for e in enc)
    ids = torch.full((len(items), n), SPECIAL["pad"])
    mask = torch.zeros((len(items), n), dtype=torch.long)
    for i, a in enumerate(enc):
        ids[i, : len(a)] = torch.tensor(a)
        mask[i, : len(a)] = 1
    feats = torch.from_numpy(np.stack([features(s) for s, _, _ in items])) if KMER else None
    return ids, mask, feats, torch.tensor([lab for _, _, lab in items])


pool = [(s, t, lab) for t in TASKS for s, lab in train[t]]
net = Net()
opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.05)
params = sum(p.numel() for p in net.parameters())
t0 = time.time()
B = 64
for step in range(STEPS):
    frac = step / STEPS
    for g in opt.param_groups:
        g["lr"] = 1e-3 * min(1.0, step / 200) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
    ids, mask, feats, y = batch([rng.choice(pool) for _ in range(B)])
    loss = F.cross_entropy(net(ids, mask, feats), y)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    if (step + 1) % 200 == 0:
        print(f"{VARIANT} step {step + 1} loss {loss.item():.3f} {time.time() - t0:.0f}s", flush=True)
net.eval()
res = {"variant": VARIANT, "steps": STEPS, "examples": STEPS * B, "params": params, "seed": SEED, "seconds": round(time.time() - t0)}
with torch.no_grad():
    for t in TASKS:
        pred, ys = [], []
        for i in range(0, len(dev[t]), 256):
            ids, mask, feats, y = batch([(s, t, lab) for s, lab in dev[t][i : i + 256]])
            pred += net(ids, mask, feats).argmax(-1).tolist()
            ys += y.tolist()
        res[t] = round(matthews_corrcoef(ys, pred), 3)
        res[t + "_n"] = len(ys)
print(json.dumps(res))
Path(OUT).parent.mkdir(parents=True, exist_ok=True)
Path(OUT).write_text(json.dumps(res) + "\n")
