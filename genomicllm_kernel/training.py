"""``genomicllm train``: the training loop, built for 2 CPU cores first and a GPU when there is one.

Choices and why:
* Loss only on answer tokens (the prompt is given, never predicted).
* Task-mixture weights and a length curriculum from the config: early steps see short examples,
  the token limit rises linearly to the full context by ``curriculum_steps``.
* Batches are drawn in groups, sorted by length and cut, so padding stays small.
* One thread per process (measured fastest here); bf16 autocast on CUDA, and on CPUs with native
  bf16 matmuls (AVX512-BF16 / AMX; ``bench/train_speed.py`` measures both matmul peaks) when
  ``cpu_bf16`` is true or "auto"; fp32 elsewhere (the notes measured emulated bf16 15x slower).
* Checkpoints every ``checkpoint_minutes``: model in safetensors (``save_pretrained``) plus
  optimizer / scheduler / RNG state, so ``--resume`` continues exactly where a kill stopped it.
* Multi-process through torchrun (DDP: gloo on CPU, nccl on GPU); rank 0 writes.
"""
from __future__ import annotations

import bisect
import functools
import itertools
import json
import math
import os
import random
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, TrainingDivergedError
from .grammar import parse_prompt

MAX_BAD_STEPS = 20  # consecutive non-finite steps before training stops


@dataclass
class TrainConfig:
    data: str = "data/corpus"
    out: str = "runs/default"
    seed: int = 0
    #: "llama" or "qwen3" (Llama with q/k norms; see model.py)
    architecture: str = "llama"
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    ffn: int = 768
    context: int = 512
    text_vocab: int = 1500
    batch_size: int = 32
    lr: float = 2e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 100
    max_steps: int = 3000
    weight_decay: float = 0.01
    curriculum_start_tokens: int = 48
    curriculum_steps: int = 1000
    threads: int = 1
    checkpoint_minutes: float = 5.0
    log_every: int = 10
    max_train_tokens: int = 256  # longest example (prompt + answer) used for training
    cpu_bf16: bool | str = False  # true, false or "auto" (only where the CPU has native bf16)
    snapshot_every: int = 0  # keep the weights (no optimizer state) every N steps, for metric-by-step curves
    #: weight of classification label tokens in the loss, from step label_loss_from_step on (see weighted_loss)
    label_loss_weight: float = 1.0
    label_loss_from_step: int = 0
    #: weight of reading comprehension's <item:k> pointer tokens in the loss (see weighted_loss); 1 in
    #: the stages before this option existed, so they reproduce unchanged
    pointer_loss_weight: float = 1.0
    #: reading comprehension as an <item:k> pointer (true) or as free text (false); see codec.py
    item_pointers: bool = True
    #: where the <item:k> marker sits ("before_name" or "after_name", see codec.py); empty keeps the
    #: tokenizer's own (an init_from model's layout; before_name for a new tokenizer)
    item_marker: str = ""
    #: training-time views of an example with the same answer: reverse complements for strand-symmetric
    #: tasks, item orders for reading comprehension (the model must find the item, not learn its place)
    augment: bool = False
    augment_orders: int = 6
    #: with augment, also the strand-symmetric views read in the two other 3-mer frames (1 and 2 nt
    #: trimmed from the start): a motif then reaches the model as every chunking it can have
    augment_frames: bool = False
    #: start from this model folder's weights and tokenizer (a fresh optimizer and schedule): continued training
    init_from: str = ""
    task_weights: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: no such config file")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{path}: not valid TOML ({exc})") from None
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise InputError(f"{path}: unknown config keys {sorted(unknown)}")
        return cls(**raw)


def read_jsonl(path: Path):
    with open(path) as fh:
        for line in fh:
            yield json.loads(line)


def build_tokenizer(cfg: TrainConfig):
    from .tokenizer import GenomicLLMTokenizer, learn_text_pieces

    texts = []
    for ex in read_jsonl(Path(cfg.data) / "train.jsonl"):
        p = parse_prompt(ex["prompt"])
        texts += [i.text() for i in p.items if not hasattr(i, "sequence")]
        if p.task.answer_kind == "text":
            texts.append(ex["answer"])
        if p.reading_target:
            texts.append(" " + p.reading_target)
    return GenomicLLMTokenizer(text_pieces=learn_text_pieces(texts, size=cfg.text_vocab), item_pointers=cfg.item_pointers)


class ExampleBank:
    """Tokenized training examples per task, sorted by length for the curriculum.

    With ``augment`` an example keeps several encoded views (see :func:`views`); sampling picks one.
    """

    def __init__(self, tokenizer, path: Path, max_tokens: int, weights: dict, augment: bool = False,
                 orders: int = 6, seed: int = 0, frames: bool = False):
        from .registry import TASKS

        per_task: dict[str, list] = {}
        skipped = 0
        rng = random.Random(f"views:{seed}")
        for ex in read_jsonl(path):
            prompt = parse_prompt(ex["prompt"])
            encoded = []
            for view in (views(prompt, rng, orders, frames) if augment else [prompt]):
                ids = tokenizer.encode_prompt(view)
                ans = tokenizer.encode_answer(view, ex["answer"])
                if len(ids) + len(ans) <= max_tokens:
                    encoded.append((len(ids) + len(ans), ids, ans, int(tokenizer.codec.is_aligned(view))))
            if not encoded:
                skipped += 1
                continue
            per_task.setdefault(ex["task"], []).append(encoded)
        if not per_task:
            raise InputError(f"{path}: no training examples fit {max_tokens} tokens")
        self.tasks = sorted(per_task)
        self.examples = {t: sorted(v, key=lambda r: r[0][0]) for t, v in per_task.items()}
        self.lengths = {t: [r[0][0] for r in v] for t, v in self.examples.items()}
        self.weights = [float(weights.get(t, 1.0)) for t in self.tasks]
        self.skipped = skipped
        self.unknown = set(weights) - set(TASKS)

    def sample(self, rng: random.Random, n: int, max_len: int):
        out = []
        for _ in range(n):
            t = rng.choices(self.tasks, self.weights)[0]
            hi = bisect.bisect_right(self.lengths[t], max_len)
            hi = max(hi, 1)
            encoded = self.examples[t][rng.randrange(hi)]
            out.append(encoded[0] if len(encoded) == 1 else encoded[rng.randrange(len(encoded))])
        return out


def views(prompt, rng: random.Random, orders: int, frames: bool = False) -> list:
    """The prompt and the views of it that have the same answer: its reverse complement for a
    strand-symmetric task (and, with ``frames``, both strands with 1 and 2 nt trimmed from the start,
    which moves every motif into the other two 3-mer chunkings: the DNA tokens are non-overlapping,
    so without it a motif the model learned in one frame is new to it in another); up to ``orders``
    item orders for reading comprehension."""
    import dataclasses

    from .checks import reverse_complement
    from .grammar import SequenceItem

    out = [prompt]
    if prompt.task.strand_symmetric and prompt.sequence:
        def mapped(f):
            return tuple(SequenceItem(f(i.sequence)) if isinstance(i, SequenceItem) else i for i in prompt.items)

        out.append(dataclasses.replace(prompt, items=mapped(reverse_complement)))
        if frames and len(prompt.sequence) > 8:
            out += [dataclasses.replace(prompt, items=mapped(lambda s, k=k, rc=rc: (reverse_complement(s) if rc else s)[k:]))
                    for rc in (False, True) for k in (1, 2)]
    if prompt.task.extractive and len(prompt.items) > 1:
        if len(prompt.items) <= 5:  # at most 120 orders: pick among all of them
            others = [o for o in itertools.permutations(prompt.items) if o != prompt.items]
            picked = rng.sample(others, min(orders - 1, len(others)))
        else:
            picked = []
            while len(picked) < orders - 1:
                items = list(prompt.items)
                rng.shuffle(items)
                if tuple(items) != prompt.items and tuple(items) not in picked:
                    picked.append(tuple(items))
        out += [dataclasses.replace(prompt, items=o) for o in picked]
    return out


def _collate(batch, pad_id: int):
    """Pad a batch into (ids, mask, labels, positions) CPU tensors.

    Built in numpy with cached position rows: a GPU step of the default model at batch 512 is tens of
    milliseconds, so building the batch one small torch tensor per row would keep the GPU waiting.
    """
    import numpy as np
    import torch

    n = max(r[0] for r in batch)
    ids = np.full((len(batch), n), pad_id, dtype=np.int64)
    labels = np.full((len(batch), n), -100, dtype=np.int64)
    mask = np.zeros((len(batch), n), dtype=np.int64)
    pos = np.zeros((len(batch), n), dtype=np.int64)
    for i, (length, p, a, aligned) in enumerate(batch):
        lp = len(p)
        ids[i, :lp] = p
        ids[i, lp:length] = a
        labels[i, lp:length] = a
        mask[i, :length] = 1
        pos[i, :length] = _positions(lp, len(a), bool(aligned))
    return tuple(torch.from_numpy(x) for x in (ids, mask, labels, pos))


@functools.lru_cache(maxsize=4096)
def _positions(prompt_len: int, answer_len: int, aligned: bool):
    import numpy as np

    from .codec import position_ids

    return np.asarray(position_ids(prompt_len, answer_len, aligned), dtype=np.int64)


def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(cfg: TrainConfig, device_type: str) -> bool:
    if device_type == "cuda":
        return True
    if cfg.cpu_bf16 == "auto":
        return cpu_has_native_bf16()
    if not isinstance(cfg.cpu_bf16, bool):
        raise InputError(f"cpu_bf16 must be true, false or \"auto\", not {cfg.cpu_bf16!r}")
    return cfg.cpu_bf16


def weighted_loss(logits, labels, token_weights):
    """Mean answer-token cross-entropy, each target token counted ``token_weights[token]`` times.

    Why: the loss is a mean over answer tokens, and a 40-token reverse-complement answer outweighs
    a one-token label 40 to 1; in the default mixture the label tokens were about 4% of the loss,
    and after 1,400 steps every classifier still answered its prior. Counting them more gives the
    classification tasks their share of the gradient without changing the generation targets. The
    one-token ``<item:k>`` answers of reading comprehension are in the same position: a third of
    stage 4's examples, but by an estimate from its mixture weights and answer lengths about 3% of
    its loss.
    """
    import torch

    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    valid = shift_labels != -100
    ce = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                           shift_labels.reshape(-1).clamp(min=0), reduction="none").view_as(shift_labels)
    w = valid.float() * token_weights[shift_labels.clamp(min=0)]
    return (ce * w).sum() / w.sum().clamp(min=1.0)


def answer_token_weights(codec, cfg: "TrainConfig", step: int, device=None):
    """The per-vocabulary loss weights of ``weighted_loss`` at ``step``; None where every weight is 1."""
    import torch

    label_w = cfg.label_loss_weight if step >= cfg.label_loss_from_step else 1.0
    if label_w == 1.0 and cfg.pointer_loss_weight == 1.0:
        return None
    weights = torch.ones(len(codec.vocab), device=device)
    weights[codec.ids_with_prefix("<label:")] = label_w
    weights[codec.ids_with_prefix("<item:")] = cfg.pointer_loss_weight
    return weights


def lr_at(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    frac = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def train(cfg: TrainConfig, resume: bool = False, max_minutes: float | None = None, progress: bool = True,
          stop_at_step: int | None = None) -> Path:
    """Train (or resume) a run; ``max_minutes`` / ``stop_at_step`` stop early with a checkpoint, as a kill would."""
    import torch
    import torch.distributed as dist

    from .model import build_model
    from .tokenizer import GenomicLLMTokenizer

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if torch.cuda.is_available() else torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    ckpt = out / "checkpoint"
    data = Path(cfg.data)
    if not (data / "train.jsonl").exists():
        raise InputError(f"{data}/train.jsonl not found; run 'genomicllm data build --out {data}' first")

    if resume and (ckpt / "model.safetensors").exists():
        from .model import load_causal_lm

        tokenizer = GenomicLLMTokenizer.from_pretrained(ckpt)
        model = load_causal_lm(ckpt)
        state = torch.load(ckpt / "trainer_state.pt", weights_only=True)
    else:
        if rank == 0:
            out.mkdir(parents=True, exist_ok=True)
        if cfg.init_from:
            from .model import load_torch_model

            model, tokenizer = load_torch_model(cfg.init_from)
            torch.manual_seed(cfg.seed)
        else:
            tokenizer = build_tokenizer(cfg)
            model = build_model(tokenizer, cfg.hidden, cfg.layers, cfg.heads, cfg.ffn, cfg.context, cfg.seed,
                                cfg.architecture)
        state = None
        if cfg.item_marker:
            tokenizer.use_item_marker(cfg.item_marker)
    model.to(device)
    bf16 = use_bf16(cfg, device.type)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    # the loss weights before and from label_loss_from_step, built once (not a host-to-device copy per step)
    weights_by_phase = {late: answer_token_weights(tokenizer.codec, cfg, cfg.label_loss_from_step if late else 0, device)
                        for late in (False, True)}
    bank = ExampleBank(tokenizer, data / "train.jsonl", min(cfg.max_train_tokens, cfg.context), cfg.task_weights,
                       augment=cfg.augment, orders=cfg.augment_orders, seed=cfg.seed, frames=cfg.augment_frames)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98),
                            fused=device.type == "cuda")
    rng = random.Random(f"{cfg.seed}:{rank}")
    step, tokens_seen, elapsed = 0, 0, 0.0
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        step, tokens_seen, elapsed = int(state["step"]), int(state["tokens_seen"]), float(state["elapsed"])
        rng.setstate(_to_rng_state(state["rng"][rank] if rank < len(state["rng"]) else state["rng"][0]))
        torch.set_rng_state(state["torch_rng"])
        queue = [[(int(n), list(p), list(a), int(al)) for n, p, a, al in b] for b in state.get("queue", [])]
    else:
        queue = []
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    log = open(out / "train_log.jsonl", "a") if rank == 0 else None
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=cfg.max_steps, initial=step, desc="training", unit="step", disable=None)
    last_ckpt = time.time()
    t_start = time.time()
    skipped = bad_steps = 0
    window_tokens, window_t = 0, time.time()
    model.train()
    while step < cfg.max_steps:
        if max_minutes is not None and (time.time() - t_start) / 60 > max_minutes:
            break
        if stop_at_step is not None and step >= stop_at_step:
            break
        frac = min(1.0, step / max(1, cfg.curriculum_steps))
        max_len = int(cfg.curriculum_start_tokens + frac * (cfg.max_train_tokens - cfg.curriculum_start_tokens))
        if not queue:
            group = sorted(bank.sample(rng, cfg.batch_size * 8, max_len), key=lambda r: r[0])
            queue = [group[i : i + cfg.batch_size] for i in range(0, len(group), cfg.batch_size)]
            rng.shuffle(queue)
        batch = queue.pop()
        cpu_batch = _collate(batch, tokenizer.pad_token_id)
        n_tok = int(cpu_batch[1].sum()) * world  # counted on the CPU: no GPU sync per step
        ids, mask, labels, pos = (t.to(device, non_blocking=True) for t in cpu_batch)
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, step)
        token_weights = weights_by_phase[step >= cfg.label_loss_from_step]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            if token_weights is not None:
                logits = net(input_ids=ids, attention_mask=mask, position_ids=pos).logits
                loss = weighted_loss(logits, labels, token_weights)
            else:
                loss = net(input_ids=ids, attention_mask=mask, position_ids=pos, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        # A non-finite step must not reach the weights (a bf16 continuation run on a GPU went NaN at
        # step 490 and never came back). One sync per step; the decision is the same on every DDP rank.
        if torch.isfinite(grad_norm):
            opt.step()
            bad_steps = 0
        else:
            skipped += 1
            bad_steps += 1
            if bad_steps >= MAX_BAD_STEPS:
                raise TrainingDivergedError(
                    f"training diverged: loss not finite for {bad_steps} steps in a row at step {step + 1} "
                    f"(the last checkpoint in {ckpt} holds finite weights); lower lr or raise warmup_steps")
        step += 1
        tokens_seen += n_tok
        window_tokens += n_tok
        if bar is not None:
            bar.update(1)
        if rank == 0 and step % cfg.log_every == 0:
            now = time.time()
            tps = window_tokens / max(1e-9, now - window_t)
            window_tokens, window_t = 0, now
            rec = {"device": device_name, "step": step, "loss": round(loss.item(), 4), "lr": lr_at(cfg, step), "tokens_seen": tokens_seen,
                   "tokens_per_s": round(tps, 1), "minutes": round((elapsed + now - t_start) / 60, 2), "max_len": max_len,
                   "world": world, "bf16": bf16, "skipped_steps": skipped}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if bar is not None:
                bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tps:.0f}")
        if rank == 0 and cfg.snapshot_every and step % cfg.snapshot_every == 0:
            _save_weights(model, tokenizer, out / "snapshots" / f"step_{step:06d}")
        if time.time() - last_ckpt > cfg.checkpoint_minutes * 60:
            _save(model, tokenizer, opt, ckpt, step, tokens_seen, elapsed + time.time() - t_start, rng, rank, world, cfg, queue)
            last_ckpt = time.time()
    _save(model, tokenizer, opt, ckpt, step, tokens_seen, elapsed + time.time() - t_start, rng, rank, world, cfg, queue)
    if bar is not None:
        bar.close()
    if log:
        log.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    global _last_model
    _last_model = model  # kept for inspection (tests compare ranks' weights)
    return ckpt


_last_model = None


def _rng_state_to_list(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _to_rng_state(obj):
    version, internal, gauss = obj
    return (version, tuple(internal), gauss)


def _save_weights(model, tokenizer, folder: Path) -> None:
    import shutil

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)  # a step redone after a resume replaces its snapshot
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    tmp.rename(folder)


def _save(model, tokenizer, opt, ckpt: Path, step, tokens_seen, elapsed, rng, rank, world, cfg, queue) -> None:
    import torch
    import torch.distributed as dist

    rng_states = [_rng_state_to_list(rng.getstate())]
    if world > 1:
        gathered = [None] * world
        dist.all_gather_object(gathered, rng_states[0])
        rng_states = gathered
    if rank != 0:
        return
    tmp = ckpt.with_name(ckpt.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    torch.save({"optimizer": opt.state_dict(), "step": step, "tokens_seen": tokens_seen, "elapsed": elapsed,
                "rng": rng_states, "torch_rng": torch.get_rng_state(),
                "queue": [[[n, p, a, al] for n, p, a, al in b] for b in queue]}, tmp / "trainer_state.pt")
    (tmp / "train_config.json").write_text(json.dumps(cfg.__dict__, indent=1))
    if ckpt.exists():
        old = ckpt.with_name(ckpt.name + ".old")
        import shutil

        shutil.rmtree(old, ignore_errors=True)
        ckpt.rename(old)
        tmp.rename(ckpt)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(ckpt)
