"""``method = "cached_head"`` training: fit only the per-question composition head, on the frozen
model's cached ``<ans>`` states, to convergence.

Why: when the head is the only weight that trains, the language model's final hidden state at
``<ans>`` does not depend on a trained weight, and a label answer is read from that one position
(``formats.LabelAnswer``: a softmax over the task's label logits). The head's objective is then
exactly a low-rank multinomial logistic regression of the label on the prompt's k-mers, with the
frozen model's label logits as its offset. Stage 8b fitted it by SGD through the model: each of its
1,000 steps ran the frozen model again for 64 examples, and its dev MCC was still rising when the
time ran out. Here the frozen model runs once per training example (no autograd), and the head is
fitted over every cached example for as many epochs as a held-out tenth of them keeps improving,
in minutes. The fitted model is the same class and the same ONNX graph as stage 8b's, so nothing
downstream changes; a wider ``composition`` (e.g. 3- to 6-mers) widens the head's blocks, while the
input-side projection keeps its trained columns (the new k's columns at zero: same states).
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

from .composition import Layout, as_layout
from .data.builders import HEAD_FIT_SPLIT
from .errors import InputError

HELD_OUT = 0.1


def select_examples(cfg, codec) -> list[tuple[list[int], str, int, str, str]]:
    """(encoded prompt, task id, label index, block key, unit) of the classification training
    examples, at most ``cfg.head_fit_examples`` per composition block (a seeded sample), each with
    its strand-symmetric views when ``cfg.augment`` (training.views). ``unit`` is the region of a
    ``head_fit_split_tasks`` row (the transcript its tile comes from), "" for every other row."""
    from .grammar import parse_prompt
    from .registry import TASKS
    from .training import views

    if cfg.head_fit_row_order not in ("file", "sorted"):
        raise InputError(f'head_fit_row_order must be "file" or "sorted", not {cfg.head_fit_row_order!r}')
    sorted_rows = cfg.head_fit_row_order == "sorted"
    rng = random.Random(f"head_fit:{cfg.seed}")
    per_block: dict[str, list] = {}
    held_tasks = set(cfg.head_fit_split_tasks)
    for ex in _head_fit_rows(cfg):
        task = TASKS.get(ex["task"])
        if task is None or not task.labels or float(cfg.task_weights.get(ex["task"], 1.0)) <= 0:
            continue
        if (ex["task"] in held_tasks) != (ex["split"] == HEAD_FIT_SPLIT):
            continue
        prompt = parse_prompt(ex["prompt"])
        ids = codec.encode_prompt(prompt)
        if len(ids) + 1 > cfg.max_train_tokens:
            continue
        unit = str(ex.get("region", "")) if ex["task"] in held_tasks else ""
        row = (prompt, ex["task"], task.labels.index(ex["answer"]), unit)
        if sorted_rows:  # the sort key rides along until the block is complete
            row = (*row, (ex["prompt"], ex["answer"], str(ex.get("region", ""))))
        per_block.setdefault(codec.composition_block(ids) or "", []).append(row)
    if sorted_rows:
        per_block = {block: [r[:4] for r in sorted(rows, key=lambda r: r[4])] for block, rows in per_block.items()}
    unknown = sorted(set(cfg.head_fit_examples_by_block) - set(per_block))
    if unknown:
        raise InputError(f"head_fit_examples_by_block names {unknown}: no classification training rows of those blocks in {cfg.data}")
    out = []
    for block, rows in sorted(per_block.items()):
        if len(rows) > cfg.head_fit_examples:
            sample = rng.sample(rows, cfg.head_fit_examples)  # drawn even where a block's own cap replaces it:
            # the shared draw stays as it was, so every other block keeps exactly its rows
            rows = sample if block not in cfg.head_fit_examples_by_block else rows
        if block in cfg.head_fit_examples_by_block and len(rows) > int(cfg.head_fit_examples_by_block[block]):
            rows = random.Random(f"head_fit:{cfg.seed}:{block}").sample(rows, int(cfg.head_fit_examples_by_block[block]))
        for prompt, task_id, label, unit in rows:
            for view in views(prompt, rng, 1, cfg.augment_frames) if cfg.augment else [prompt]:
                out.append((codec.encode_prompt(view), task_id, label, block, unit))
    if not out:
        raise InputError(f"{cfg.data}/train.jsonl: no classification example to fit the composition head on")
    return out


def _head_fit_rows(cfg):
    """train.jsonl's rows, then, with ``head_fit_split_tasks``, headfit.jsonl's (data build writes it)."""
    from .training import read_jsonl

    yield from read_jsonl(Path(cfg.data) / "train.jsonl")
    if cfg.head_fit_split_tasks:
        path = Path(cfg.data) / f"{HEAD_FIT_SPLIT}.jsonl"
        if not path.exists():
            raise InputError(f"{path} not found: head_fit_split_tasks needs a corpus from this version's 'genomicllm data build'")
        yield from read_jsonl(path)


def answer_states(model, codec, encoded: list[list[int]], batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """[rows, hidden] float32: the frozen model's final hidden state at each prompt's ``<ans>``
    without the head (left-padded batches, inference's positions), as the decoder reads it."""
    import torch
    from tqdm import tqdm

    from .decoding import Decoder

    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out = np.zeros((len(encoded), model.config.hidden_size), dtype=np.float32)
    layout, blocks = as_layout(model.config), tuple(model.config.composition_blocks)
    pad_batch = Decoder(codec, model.config.max_position_embeddings).pad_batch  # inference's left padding
    bar = tqdm(total=len(order), desc="caching <ans> states", unit="ex", disable=None if progress else True)
    with torch.no_grad():
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            seqs = [encoded[i] for i in rows]
            ids, mask = pad_batch(seqs)
            feats = torch.from_numpy(codec.composition_features(seqs, layout, blocks))
            ids_t = torch.from_numpy(ids)
            embeds, _, _ = model.embeddings_with_composition(ids_t, feats)
            hidden = model.model(
                inputs_embeds=embeds, attention_mask=torch.from_numpy(mask), position_ids=torch.from_numpy(Decoder.positions(mask, False))
            ).last_hidden_state
            out[rows] = hidden[:, -1].float().numpy()
            bar.update(len(rows))
    bar.close()
    return out


def block_features(codec, encoded: list[list[int]], layout, block_keys=None, chunk: int = 8192) -> np.ndarray:
    """[rows, layout.size] float16: each prompt's own k-mer block (the head's input, unplaced);
    ``block_keys`` (each row's block) decide where the positional part is filled."""
    layout = as_layout(layout)
    keys = block_keys or [None] * len(encoded)
    out = np.zeros((len(encoded), layout.size), dtype=np.float16)
    # in chunks: the k-mer counts of 160 k rows at once peaked at 22 GB (float64 counts of every k)
    for s in range(0, len(encoded), chunk):
        out[s : s + chunk] = layout.vectors([codec.dna_runs(ids) for ids in encoded[s : s + chunk]], keys[s : s + chunk])
    return out


class HeadProblem:
    """The cached fitting problem: states, own-block features, block index, task and label per row."""

    def __init__(self, states, feats, block_index, label_ids, labels, lm_weight, units=None):
        import torch

        #: per row the unit its block's held-out tenth is drawn by ("": the row itself)
        self.units = list(units) if units is not None else [""] * len(labels)

        self.states = torch.from_numpy(states)
        self.feats = torch.from_numpy(feats)
        self.block = torch.from_numpy(np.asarray(block_index, dtype=np.int64))
        #: per row, the vocabulary ids of its task's labels, padded with -1 (tasks have 2 to 8 labels)
        width = max(len(x) for x in label_ids)
        self.label_ids = torch.tensor([list(x) + [-1] * (width - len(x)) for x in label_ids], dtype=torch.int64)
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.lm_weight = lm_weight.detach().float()

    def logits(self, rows, head_a, head_b):
        """Label logits of ``rows``: the frozen model's, plus the head's reading of their k-mers."""
        f = self.feats[rows].float()
        # per row its block's slice of the first layer: [rows, F] x [rows, F, r] -> [rows, r]
        u = _blockwise(f, self.block[rows], head_a)
        hidden = self.states[rows] + u @ head_b.T
        import torch

        ids = self.label_ids[rows]
        w = self.lm_weight[ids.clamp(min=0)]  # [rows, L, hidden]
        z = torch.einsum("nlh,nh->nl", w, hidden)
        return z.masked_fill(ids < 0, float("-inf"))


def _blockwise(f, block, head_a):
    """Row i's features through its own block of the first layer (one matmul per block present)."""
    import torch

    u = torch.zeros(f.shape[0], head_a.shape[-1], dtype=f.dtype)
    for b in torch.unique(block).tolist():
        sel = block == b
        u[sel] = f[sel] @ head_a[b]
    return u


def held_out_split(problem: HeadProblem, gen):
    """[rows] bool: the held-out tenth of each block's rows that :func:`fit_head` stops on (drawn
    first from its seeded generator, so a fresh generator of the same seed gives the same rows).
    Each block draws from its own generator (seeded from ``gen`` and the block's index), so its
    held-out rows depend on its own rows only: before stage 12 one generator ran through the blocks
    in turn, and new rows for one question moved the held-out rows, and so the choices, of others.
    A block whose rows all name a unit (``problem.units``: the transcript of a tile) holds out a
    tenth of its units instead: tiles of one transcript are correlated, and a tenth drawn by row
    rewarded what memorises them (docs/experiments.md, after stage 12)."""
    import torch

    held = torch.zeros(len(problem.labels), dtype=torch.bool)
    base = int(torch.randint(2**62, (1,), generator=gen))
    for b in torch.unique(problem.block).tolist():
        rows = torch.nonzero(problem.block == b).flatten()
        own = torch.Generator().manual_seed(base + int(b))
        units = [problem.units[i] for i in rows.tolist()]
        if all(units):  # a tenth of the block's units (regions), with all their rows
            names = sorted(set(units))
            chosen = {names[i] for i in torch.randperm(len(names), generator=own)[: max(1, int(len(names) * HELD_OUT))].tolist()}
            held[rows[torch.tensor([u in chosen for u in units])]] = True
            continue
        pick = rows[torch.randperm(len(rows), generator=own)[: max(1, int(len(rows) * HELD_OUT))]]
        held[pick] = True
    return held


def fit_head(
    problem: HeadProblem, n_blocks: int, rank: int, hidden: int, epochs: int, lr: float, weight_decay: float, seed: int, log=None, l2: float = 0.0
):
    """(first layer [blocks, F, rank], second layer [hidden, rank], per-epoch records): AdamW over
    shuffled minibatches, keeping the epoch with the lowest held-out cross-entropy (a seeded tenth
    of the rows, stratified by block) and stopping after 3 epochs without improvement. ``l2`` adds
    that multiple of both layers' squared weights to each minibatch's mean loss (a ridge penalty, as
    the k-mer logistic regression baseline has; AdamW's decoupled decay barely regularises here)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    held = held_out_split(problem, gen)
    train_rows, held_rows = torch.nonzero(~held).flatten(), torch.nonzero(held).flatten()
    width = problem.feats.shape[1]
    head_a = (torch.randn(n_blocks, width, rank, generator=gen) * (1.0 / width) ** 0.5).requires_grad_()
    head_b = torch.zeros(hidden, rank, requires_grad=True)
    opt = torch.optim.AdamW([head_a, head_b], lr=lr, weight_decay=weight_decay)
    ce = torch.nn.functional.cross_entropy

    def held_loss():
        with torch.no_grad():
            return float(
                sum(ce(problem.logits(r, head_a, head_b), problem.labels[r], reduction="sum") for r in held_rows.split(4096)) / len(held_rows)
            )

    best = (held_loss(), 0, head_a.detach().clone(), head_b.detach().clone())
    records = [{"epoch": 0, "held_out_loss": round(best[0], 5)}]
    batch = 512
    for epoch in range(1, epochs + 1):
        t0 = time.time()
        perm = train_rows[torch.randperm(len(train_rows), generator=gen)]
        total = 0.0
        for rows in perm.split(batch):
            loss = ce(problem.logits(rows, head_a, head_b), problem.labels[rows])
            opt.zero_grad(set_to_none=True)
            (loss + l2 * (head_a.pow(2).sum() + head_b.pow(2).sum()) if l2 else loss).backward()
            opt.step()
            total += loss.item() * len(rows)
        h = held_loss()
        rec = {"epoch": epoch, "train_loss": round(total / len(train_rows), 5), "held_out_loss": round(h, 5), "seconds": round(time.time() - t0, 1)}
        records.append(rec)
        if log:
            log(rec)
        if h < best[0]:
            best = (h, epoch, head_a.detach().clone(), head_b.detach().clone())
        elif epoch - best[1] >= 3:
            break
    return best[2], best[3], records, best[1]


def place_head(model, head_a, head_b, offset_scales=None) -> None:
    """Write a fitted head (first layer [blocks, F, rank], second layer [hidden, rank]) into
    ``model``, and with ``offset_scales`` ([blocks, F], head_convex.offset_scale_weights) its
    offset-scale layer."""
    import torch

    with torch.no_grad():
        # nn.Linear(blocks x F -> rank) stores [rank, blocks x F]; block b's columns are head_a[b].T
        model.composition_head[0].weight.copy_(head_a.permute(2, 0, 1).reshape(head_a.shape[-1], -1))
        model.composition_head[1].weight.copy_(head_b)
        if offset_scales is not None:
            model.composition_offset_scale.weight.copy_(torch.as_tensor(offset_scales, dtype=torch.float32).reshape(1, -1))


def read_head(model):
    """The inverse of :func:`place_head`: (first layer [blocks, F, rank], second layer [hidden, rank])."""
    w = model.composition_head[0].weight.detach()
    rank, blocks = w.shape[0], len(model.config.composition_blocks)
    return w.reshape(rank, blocks, -1).permute(1, 2, 0).contiguous(), model.composition_head[1].weight.detach()


def widened(model, layout, rank: int, offset_scale: bool = False):
    """``model`` (a GenomicLlamaForCausalLM) with the composition ``layout`` (a Layout, or k-mer
    sizes) and a fresh head of ``rank``: every other weight copied, the input-side projection's
    columns of the model's own ks kept and the new k's columns zero (it never reads the positional
    part), so the hidden states stay exactly the model's."""
    import torch

    from .composition import feature_size
    from .composition_model import GenomicLlamaConfig, GenomicLlamaForCausalLM

    layout = as_layout(layout)
    ks = list(layout.ks)
    old_ks = list(model.config.composition_ks)
    missing = [k for k in old_ks if k not in ks]
    if missing:
        raise InputError(f"composition {list(ks)} must keep the k-mer sizes of the model it starts from ({old_ks}): {missing} missing")
    cfg = model.config.to_dict()
    for key in ("model_type", "transformers_version"):
        cfg.pop(key, None)
    cfg.update(composition_ks=ks, composition_head_rank=rank, composition_bins=layout.bins, composition_bin_ks=list(layout.bin_ks))
    cfg.update(composition_bin_blocks=list(layout.bin_blocks))
    cfg.update(composition_phase_ks=list(layout.phase_ks), composition_phase_blocks=list(layout.phase_blocks))
    cfg.update(composition_offset_scale=offset_scale)
    motifs = layout.motifs.to_config() if layout.motifs is not None else None
    cfg.update(composition_motifs=motifs, composition_motif_blocks=list(layout.motif_blocks) if motifs else [])
    likelihoods = layout.likelihoods.to_config() if layout.likelihoods is not None else None
    cfg.update(composition_likelihoods=likelihoods, composition_likelihood_blocks=list(layout.likelihood_blocks) if likelihoods else [])
    new = GenomicLlamaForCausalLM(GenomicLlamaConfig(**cfg))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("composition")}
    missing_keys, unexpected = new.load_state_dict(state, strict=False)
    if unexpected or {m for m in missing_keys if not m.startswith("composition")}:
        raise RuntimeError(f"weights did not carry over: missing {missing_keys}, unexpected {unexpected}")
    with torch.no_grad():
        new.composition.weight.zero_()
        at_new = {k: sum(4**j for j in ks[: ks.index(k)]) for k in ks}
        at_old = {k: sum(4**j for j in old_ks[: old_ks.index(k)]) for k in old_ks}
        for k in old_ks:
            new.composition.weight[:, at_new[k] : at_new[k] + 4**k] = model.composition.weight[:, at_old[k] : at_old[k] + 4**k]
        assert new.composition.weight.shape[1] == feature_size(ks)
    new.tie_weights()
    new.eval()
    return new


def _cache_key(cfg) -> str:
    """What the cached states depend on: the frozen model's weights file, the corpus, the selection."""
    train = Path(cfg.data) / "train.jsonl"
    parts = _weights_key(cfg) + [train.stat().st_size, train.stat().st_mtime_ns]
    if cfg.head_fit_split_tasks:
        held = Path(cfg.data) / f"{HEAD_FIT_SPLIT}.jsonl"
        parts += [sorted(cfg.head_fit_split_tasks), held.stat().st_size if held.exists() else 0]
    if cfg.head_fit_blocks:  # a partial refit's cache holds its blocks' states only (cached_states)
        parts += [["blocks", sorted(cfg.head_fit_blocks)]]
    if cfg.head_fit_row_order != "file":
        parts += [["row order", cfg.head_fit_row_order]]
    parts += [
        cfg.head_fit_examples,
        *([sorted(cfg.head_fit_examples_by_block.items())] if cfg.head_fit_examples_by_block else []),
        cfg.augment,
        cfg.augment_frames,
        cfg.seed,
        cfg.max_train_tokens,
        sorted(cfg.task_weights.items()),
    ]
    return json.dumps(parts, default=str)


def cached_states(cfg, model, codec, path: Path, progress: bool = True):
    """(rows of :func:`select_examples`, their :func:`answer_states`, the seconds those took), read
    from ``path`` when it was written for the same model, corpus and selection (a fit with other
    head settings reuses them; the card still counts the forward passes' time)."""
    key = _cache_key(cfg)
    if path.exists():
        saved = np.load(path, allow_pickle=False)
        if str(saved["key"]) == key:
            lengths, flat = saved["lengths"], saved["ids"]
            cuts = np.concatenate([[0], np.cumsum(lengths)])
            encoded = [flat[cuts[i] : cuts[i + 1]].tolist() for i in range(len(lengths))]
            # a cache written before units were kept: its rows were held out by row ("")
            units = saved["units"].tolist() if "units" in saved else [""] * len(encoded)
            rows = list(zip(encoded, saved["tasks"].tolist(), saved["labels"].tolist(), saved["blocks"].tolist(), units))
            return rows, saved["states"], float(saved["seconds"]) if "seconds" in saved else 0.0
    t0 = time.time()
    rows = select_examples(cfg, codec)
    states, reused_seconds = _reused_states(cfg, rows, model.config.hidden_size)
    # a partial refit reads its blocks' rows only: on a machine without the earlier caches it runs the
    # model on those (minutes), not on every selected row (an hour); the others stay NaN in the cache
    needed = _refit_row_mask(cfg, model, rows)
    todo = [i for i in range(len(rows)) if needed[i] and np.isnan(states[i, 0])]
    if todo:
        states[todo] = answer_states(model, codec, [rows[i][0] for i in todo], progress=progress)
    # the forward passes' cost: this run's, plus the reused rows' share of the run that computed them,
    # except in a partial refit (head_fit_keep): the kept run it continues counted those already
    seconds = time.time() - t0 + (0.0 if cfg.head_fit_keep else reused_seconds)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp, key=np.array(key), states=states, seconds=np.array(seconds), lengths=np.array([len(r[0]) for r in rows]), ids=np.concatenate([r[0] for r in rows]),
        tasks=np.array([r[1] for r in rows]), labels=np.array([r[2] for r in rows]), blocks=np.array([r[3] for r in rows]),
        units=np.array([r[4] for r in rows]),
    )  # fmt: skip
    tmp.rename(path)
    return rows, states, seconds


def _weights_key(cfg) -> list:
    weights = Path(cfg.init_from) / "model.safetensors"
    return [str(weights.resolve()), weights.stat().st_size, weights.stat().st_mtime_ns]


def _reused_states(cfg, rows, hidden: int) -> tuple[np.ndarray, float]:
    """[rows, hidden] states (NaN where no earlier cache has the row) and the reused rows' share of
    the seconds their caches took: ``cfg.head_fit_reuse`` caches written over the same init_from
    weights file contribute the states of identical encoded prompts (the state depends only on the
    weights and the prompt; a different batch may change it by float rounding only)."""
    states = np.full((len(rows), hidden), np.nan, dtype=np.float32)
    weights, seconds = _weights_key(cfg), 0.0
    wanted: dict[bytes, list[int]] = {}
    for i, r in enumerate(rows):
        wanted.setdefault(np.asarray(r[0], dtype=np.int64).tobytes(), []).append(i)
    for earlier in cfg.head_fit_reuse:
        path = Path(earlier)
        if not path.exists():  # an optimisation only: a rebuild without the earlier run computes every row
            print(f"head_fit_reuse: {path} not found; its rows are computed", file=sys.stderr)
            continue
        saved = np.load(path, allow_pickle=False)
        if json.loads(str(saved["key"]))[:3] != weights:
            raise InputError(f"head_fit_reuse: {path} was cached over other weights than {cfg.init_from}")
        lengths, flat, cached = saved["lengths"], saved["ids"], saved["states"]
        cuts = np.concatenate([[0], np.cumsum(lengths)])
        hits = 0
        for j in range(len(lengths)):
            if np.isnan(cached[j, 0]):  # a partial refit's cache: a row it never computed
                continue
            for i in wanted.pop(flat[cuts[j] : cuts[j + 1]].tobytes(), []):
                states[i] = cached[j]
                hits += 1
        seconds += float(saved["seconds"]) * hits / max(1, len(lengths)) if "seconds" in saved else 0.0
    return states, seconds


def build_problem(model, codec, rows, states, layout, hold_out_units: bool = False) -> HeadProblem:
    """The fitting problem of ``rows`` (encoded, task, label, block key[, unit]) with their cached
    states; with ``hold_out_units`` the held-out tenth is drawn by the rows' units (held_out_split)."""
    from .registry import TASKS

    blocks = list(model.config.composition_blocks)
    block_index = [blocks.index(_block_name(r[3], blocks)) for r in rows]
    feats = block_features(codec, [r[0] for r in rows], layout, [blocks[i] for i in block_index])
    label_ids = [codec.label_ids(TASKS[r[1]]) for r in rows]
    units = [r[4] if len(r) > 4 else "" for r in rows] if hold_out_units else None
    return HeadProblem(states, feats, block_index, label_ids, [r[2] for r in rows], model.lm_head.weight, units)


def fit_cached_head(cfg, progress: bool = True) -> Path:
    """The whole stage: select, cache, fit, write ``cfg.out/checkpoint`` (weights, tokenizer,
    train_config.json) and ``train_log.jsonl`` (one record per epoch)."""
    import torch

    from .composition_model import GenomicLlamaForCausalLM
    from .head_convex import offset_scale_weights
    from .model import load_torch_model

    if not cfg.init_from:
        raise InputError('method = "cached_head" fits a head over an existing model: set init_from')
    if not cfg.composition_head_rank:
        raise InputError('method = "cached_head" needs composition_head_rank > 0')
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t_start = time.time()
    model, tokenizer = load_torch_model(cfg.init_from)
    if not isinstance(model, GenomicLlamaForCausalLM) or not getattr(model.config, "composition_blocks", None):
        raise InputError(f"{cfg.init_from}: cached_head needs a model with per-question composition blocks (a stage-8b-like model)")
    codec = tokenizer.codec
    from .composition_model import per_question_blocks

    # blocks the registry gained after init_from was fitted (e.g. "proximal promoter | GUE"): their
    # rows would otherwise land in the pooled block. The input side pools every block's k-mers, so
    # the frozen model's states do not change.
    extra = [b for b in per_question_blocks() if b not in model.config.composition_blocks]
    model.config.composition_blocks = list(model.config.composition_blocks) + extra
    ks = tuple(cfg.composition or model.config.composition_ks)
    init = as_layout(model.config)
    if cfg.composition_bins:
        layout = Layout(ks, cfg.composition_bins, tuple(cfg.composition_bin_ks), tuple(cfg.composition_bin_blocks))
    else:
        layout = Layout(ks, init.bins, init.bin_ks, init.bin_blocks)
    if cfg.composition_phase_ks:
        blocks = _named_blocks(cfg, model, "composition_phase_ks", "composition_phase_blocks", "reads the reading frames")
        layout = dataclasses.replace(layout, phase_ks=tuple(cfg.composition_phase_ks), phase_blocks=blocks)
    else:
        layout = dataclasses.replace(layout, phase_ks=init.phase_ks, phase_blocks=init.phase_blocks)
    if cfg.composition_motifs:
        from .motifs import load_jaspar

        blocks = _named_blocks(cfg, model, "composition_motifs", "composition_motif_blocks", "reads the motif scores")
        layout = dataclasses.replace(layout, motifs=load_jaspar(cfg.composition_motifs), motif_blocks=blocks)
    else:
        layout = dataclasses.replace(layout, motifs=init.motifs, motif_blocks=init.motif_blocks)
    if cfg.composition_likelihoods:
        from .likelihoods import FILENAME, SequenceLikelihoods

        path = Path(cfg.data) / FILENAME
        if not path.exists():
            raise InputError(f"composition_likelihoods: {path} is missing (genomicllm data build writes it)")
        blocks = _named_blocks(cfg, model, "composition_likelihoods", "composition_likelihood_blocks", "reads the likelihoods")
        layout = dataclasses.replace(layout, likelihoods=SequenceLikelihoods.load(path), likelihood_blocks=blocks)
    else:
        layout = dataclasses.replace(layout, likelihoods=init.likelihoods, likelihood_blocks=init.likelihood_blocks)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t_cache = time.time()
    rows, states, cache_seconds = cached_states(cfg, model, codec, out / "states.npz", progress)
    # the forward passes count once: as the cache's recorded seconds, not again as this run's wall time
    cache_wall = time.time() - t_cache
    kept = None
    if cfg.head_fit_blocks or cfg.head_fit_keep:
        rows, states, kept = _rows_to_refit(cfg, model, rows, states, layout)
    encoded = [r[0] for r in rows]
    if cfg.head_fit_hold_out_regions and not cfg.head_fit_split_tasks:
        raise InputError("head_fit_hold_out_regions draws the held-out tenth of head_fit_split_tasks rows by region: name those tasks")
    problem = build_problem(model, codec, rows, states, layout, cfg.head_fit_hold_out_regions)
    tokens = sum(len(e) for e in encoded)
    minutes_cached = (time.time() - t_start) / 60
    log_path = out / "train_log.jsonl"
    log_fh = open(log_path, "w")

    def log(rec):
        minutes = (time.time() - t_start - cache_wall + cache_seconds) / 60
        entry = {
            "device": "cpu", "step": rec["epoch"], "loss": rec["train_loss"], "held_out_loss": rec["held_out_loss"], "lr": cfg.lr,
            "tokens_seen": tokens, "tokens_per_s": round(tokens / max(1e-9, cache_seconds or minutes_cached * 60), 1), "minutes": round(minutes, 2),
            "max_len": cfg.max_train_tokens, "world": 1, "bf16": False, "skipped_steps": 0, "examples": len(rows),
        }  # fmt: skip
        log_fh.write(json.dumps(entry) + "\n")
        log_fh.flush()
        if progress:
            print(f"epoch {rec['epoch']}: train {rec['train_loss']:.4f}, held-out {rec['held_out_loss']:.4f} ({rec['seconds']} s)", flush=True)

    fitted: dict = {"examples": len(rows), "tokens": tokens, "solver": cfg.head_fit_solver}
    scales = None
    if cfg.head_fit_solver == "convex":
        head_a, head_b, layout, fitted["blocks"] = _convex(cfg, model, problem, layout, log, progress, kept)
        names = list(model.config.composition_blocks)
        by_index = {names.index(b): c for b, c in fitted["blocks"].items()}
        if any(c.get("offset_scale", 1.0) != 1.0 for c in by_index.values()):
            scales = offset_scale_weights(by_index, len(names), layout)
    elif kept is not None:
        raise InputError('head_fit_keep needs head_fit_solver = "convex" (a block\'s fit must depend on its own rows only)')
    elif cfg.head_fit_solver == "adamw":
        head_a, head_b, records, best_epoch = fit_head(
            problem, len(model.config.composition_blocks), cfg.composition_head_rank, model.config.hidden_size, cfg.head_fit_epochs,
            cfg.lr, cfg.weight_decay, cfg.seed, log, cfg.head_fit_l2,
        )  # fmt: skip
        fitted.update(best_epoch=best_epoch, epochs=records)
    else:
        raise InputError(f'head_fit_solver must be "adamw" or "convex", not {cfg.head_fit_solver!r}')
    log_fh.close()
    new = widened(model, layout, cfg.composition_head_rank, offset_scale=scales is not None)
    place_head(new, head_a, head_b, scales)
    ckpt = out / "checkpoint"
    new.save_pretrained(ckpt, safe_serialization=True)
    tokenizer.save_pretrained(ckpt)
    summary = dict(cfg.__dict__, fitted=fitted)
    (ckpt / "train_config.json").write_text(json.dumps(summary, indent=1))
    return ckpt


def _block_name(key: str, names: list) -> str:
    """The block a row's key lands in: a named item without its own block falls back to the pooled one."""
    return key if key in names else key.split(" | ")[0]


def _refit_row_mask(cfg, model, rows) -> list[bool]:
    """Which selected rows a fit reads: every row, or with ``head_fit_blocks`` the rows of those
    blocks (named blocks the init model lacks count as their pooled block, as in the fit)."""
    if not cfg.head_fit_blocks:
        return [True] * len(rows)
    names, refit = list(model.config.composition_blocks), set(cfg.head_fit_blocks)
    return [_block_name(r[3], names) in refit for r in rows]


def _rows_to_refit(cfg, model, rows, states, layout):
    """(the rows and states of ``cfg.head_fit_blocks``, the kept head they are merged into)."""
    from .head_keep import KeptHead, check_refit_blocks

    if not (cfg.head_fit_blocks and cfg.head_fit_keep):
        raise InputError("head_fit_blocks and head_fit_keep go together: the blocks to fit, and the checkpoint the other blocks are kept from")
    kept = KeptHead.load(cfg.head_fit_keep, model, cfg.composition_head_rank)
    kept.check_layout(layout)
    check_refit_blocks(cfg.head_fit_blocks, list(model.config.composition_blocks), kept)
    chosen = [i for i, keep in enumerate(_refit_row_mask(cfg, model, rows)) if keep]
    if not chosen:
        raise InputError(f"head_fit_blocks {sorted(cfg.head_fit_blocks)}: no training rows of those blocks in {cfg.data}")
    return [rows[i] for i in chosen], states[chosen], kept


def _named_blocks(cfg, model, option: str, blocks_option: str, what: str) -> tuple:
    """The composition blocks a layout part is offered to (``cfg.<blocks_option>``), each one a
    block of the init model: an option that adds a part names the questions that read it."""
    blocks = tuple(getattr(cfg, blocks_option))
    if not blocks:
        raise InputError(f"{option} needs {blocks_option}: the questions whose block {what}")
    unknown = [b for b in blocks if b not in model.config.composition_blocks]
    if unknown:
        raise InputError(f"{blocks_option} {unknown} are not composition blocks of {cfg.init_from}")
    return blocks


def offset_grid(cfg, names: list[str]) -> dict | None:
    """Block name -> the factors its fit tries the frozen model's logits at (None: 1 everywhere).
    The offset may be scaled by choice only where the head rows are honest about it (the blocks of
    ``head_fit_split_tasks``, fitted on headfit.jsonl); ``head_fit_offset_fixed`` names blocks read
    at one given factor; ``head_fit_offset_choice`` names taught blocks tried at x1 and x0, where
    the rows' bias towards x1 makes a win for x0 a conservative one."""
    from .registry import TASKS

    scaled = {b for t in cfg.head_fit_split_tasks for b in names if b.split(" | ")[0] in TASKS[t].question_keys}
    grid = {b: tuple(cfg.head_fit_offset_scales) for b in scaled} if cfg.head_fit_offset_scales else {}
    for block, factor in cfg.head_fit_offset_fixed.items():
        if block not in names:
            raise InputError(f"head_fit_offset_fixed names {block!r}, not a composition block of {cfg.init_from}")
        if block in scaled and cfg.head_fit_offset_scales:
            raise InputError(f"head_fit_offset_fixed names {block!r}, whose offset scale its held-out rows choose (head_fit_split_tasks)")
        if not 0.0 <= float(factor) <= 1.0:
            raise InputError(f"head_fit_offset_fixed: {block!r} = {factor}: a factor from 0 to 1")
        grid[block] = (float(factor),)
    for block in cfg.head_fit_offset_choice:
        if block not in names:
            raise InputError(f"head_fit_offset_choice names {block!r}, not a composition block of {cfg.init_from}")
        if block in grid:
            raise InputError(f"head_fit_offset_choice names {block!r}, whose factor is already chosen by its held-out rows or fixed")
        grid[block] = (1.0, 0.0)
    return grid or None


def _convex(cfg, model, problem, layout, log, progress: bool, kept=None):
    """head_convex's fit of every block, its one log record, and the layout it chose: the positional
    part only in the blocks whose held-out loss it lowered (none: the whole-sequence layout). With
    ``kept`` (head_keep.KeptHead) the problem holds the refitted blocks' rows only, and every other
    block is copied from the kept head before the layout's unread parts are dropped."""
    import torch

    from .head_convex import fit_convex_head

    if cfg.composition_bin_blocks:
        raise InputError('head_fit_solver = "convex" chooses the blocks that read the positional part: leave composition_bin_blocks empty')
    layout = dataclasses.replace(layout, bin_blocks=())  # an init model's choice is made again
    from .registry import TASKS

    names = list(model.config.composition_blocks)
    grid = offset_grid(cfg, names)
    symmetries = None
    if cfg.head_fit_symmetric:
        from .head_symmetry import SYMMETRIES

        symmetries = {
            b: SYMMETRIES[t.label_symmetry] for t in TASKS.values() if t.label_symmetry for b in names if b.split(" | ")[0] in t.question_keys
        }
    strand = (
        [b for t in TASKS.values() if t.strand_symmetric for b in names if b.split(" | ")[0] in t.question_keys]
        if cfg.head_fit_strand_invariant
        else []
    )
    head_a, head_b, choices, positional = fit_convex_head(
        problem, len(names), cfg.composition_head_rank, layout, cfg.seed, tuple(cfg.head_fit_ridges), print if progress else None, names,
        cfg.threads, grid, symmetries, tuple(cfg.head_fit_symmetric_ridges), strand, kept.head_b if kept is not None else None,
        tuple(cfg.head_fit_likelihood_weights or (1.0,)),
    )  # fmt: skip
    if kept is not None:
        head_a, choices = kept.merge(head_a, choices, names, set(cfg.head_fit_blocks), layout)
        positional = sorted(b for b, ch in choices.items() if ch["part"].split("+")[0] == "positional")
    # the blocks whose fitted head reads the reading frames' columns (a shared reversal never does)
    frames = slice(layout.whole_size, layout.bins_start)
    framed = [b for b in choices if names[b] in layout.phase_blocks and bool(head_a[b, frames].abs().sum() > 0)]
    for b in choices:
        choices[b]["reads_frames"] = b in framed
    scored = sorted(b for b, c in choices.items() if c["part"].endswith("+motifs"))
    # the blocks whose fitted head reads the likelihoods (only a fit shared over labels may)
    likely = slice(layout.likelihood_start, layout.size)
    weighed = [b for b in choices if names[b] in layout.likelihood_blocks and bool(head_a[b, likely].abs().sum() > 0)]
    # each part of the layout kept where some block reads it, dropped (columns and all) where none does
    parts = [(slice(0, layout.whole_size), True)]
    parts.append((frames, bool(framed)))
    parts.append((slice(layout.bins_start, layout.motif_start), bool(positional)))
    parts.append((slice(layout.motif_start, layout.likelihood_start), bool(scored)))
    parts.append((likely, bool(weighed)))
    head_a = torch.cat([head_a[:, cols] for cols, kept in parts if kept], dim=1)
    if not framed:
        layout = dataclasses.replace(layout, phase_ks=(), phase_blocks=())
    elif layout.phase_ks:
        layout = dataclasses.replace(layout, phase_blocks=tuple(names[b] for b in sorted(framed)))
    if layout.bins and positional:
        layout = dataclasses.replace(layout, bin_blocks=tuple(names[b] for b in sorted(positional)))
    elif layout.bins:
        layout = dataclasses.replace(layout, bins=0, bin_ks=(), bin_blocks=())
    if layout.motifs is not None:
        layout = (
            dataclasses.replace(layout, motif_blocks=tuple(names[b] for b in scored))
            if scored
            else dataclasses.replace(layout, motifs=None, motif_blocks=())
        )
    if layout.likelihoods is not None:
        layout = (
            dataclasses.replace(layout, likelihood_blocks=tuple(names[b] for b in sorted(weighed)))
            if weighed
            else dataclasses.replace(layout, likelihoods=None, likelihood_blocks=())
        )
    assert head_a.shape[1] == layout.size
    rows = sum(c["rows"] for c in choices.values())
    # row-weighted means over the blocks (each block's held-out tenth is a tenth of its rows)
    held = sum(c["held_out_loss"] * c["rows"] for c in choices.values()) / max(1, rows)
    train = sum(c["train_loss"] * c["rows"] for c in choices.values()) / max(1, rows)
    seconds = sum(c["seconds"] for c in choices.values() if "kept_from" not in c)  # this run's fits only
    log({"epoch": 1, "train_loss": round(train, 5), "held_out_loss": round(held, 5), "seconds": round(seconds, 1)})
    return head_a, head_b, layout, {names[b]: c for b, c in choices.items()}
