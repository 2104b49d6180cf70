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

from .composition import as_layout
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
    #: the step a stage was stopped at for time (its lr schedule still runs to max_steps), so that
    #: the config alone reproduces the shipped weights; None: run to max_steps
    stop_at_step: int | None = None
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
    #: name-key buckets (codec.py, "Name keys": one hashed token after every item name and after the
    #: reading-comprehension question's name); 0: none. An init_from model without them gets them
    #: appended to its vocabulary, their embeddings drawn like its own
    name_keys: int = 0
    #: text pieces appended to an init_from model's vocabulary before training (codec.rank_text_pieces
    #: over the training texts: the most tokens saved first), each new embedding row the mean of the
    #: rows of its old spelling; 0: the vocabulary as it is
    extend_text_pieces: int = 0
    #: training-time views of an example with the same answer: reverse complements for strand-symmetric
    #: tasks, item orders for reading comprehension (the model must find the item, not learn its place)
    augment: bool = False
    augment_orders: int = 6
    #: with augment, also the strand-symmetric views read in the two other 3-mer frames (1 and 2 nt
    #: trimmed from the start): a motif then reaches the model as every chunking it can have
    augment_frames: bool = False
    #: start from this model folder's weights and tokenizer (a fresh optimizer and schedule): continued training
    init_from: str = ""
    #: k-mer sizes of the composition input added at the <ans> token (composition.py); empty: none.
    #: An init_from model without the layer gets it at zero (composition_model.with_composition)
    composition: list = field(default_factory=list)
    #: with composition: "per_question" gives every classification question (and GUE TF set) its own
    #: block of the input (composition_model.py); empty: one block for all
    composition_blocks: str = ""
    #: rank of the per-question composition head at the final hidden state (0: none)
    composition_head_rank: int = 0
    #: names (prefixes) of the parameters that train; empty: all of them. ``["composition."]`` trains
    #: only the composition layer over a frozen model: its features reach classification questions
    #: only (codec.composition_features), so every other answer stays bit-identical to init_from's
    trainable: list = field(default_factory=list)
    task_weights: dict = field(default_factory=dict)
    #: training rows whose source starts with one of these are left out of the example bank (a task
    #: keeps its weight over its other sources), e.g. ["generated item names"]
    exclude_sources: list = field(default_factory=list)
    #: "sgd": optimizer steps through the model (every stage up to 8b); "cached_head": fit only the
    #: per-question composition head of an init_from model on its cached <ans> states (head_fit.py)
    method: str = "sgd"
    #: with cached_head: at most this many training examples per composition block, and the most epochs
    head_fit_examples: int = 20000
    #: with cached_head: block key -> its own cap in place of head_fit_examples (a block with tens of
    #: thousands of training rows, where the k-mer regression kept gaining up to all of them:
    #: docs/experiments.md, stage 15); every other block keeps the rows it would have had
    head_fit_examples_by_block: dict = field(default_factory=dict)
    head_fit_epochs: int = 40
    #: with cached_head: ridge penalty on the head's weights (head_fit.fit_head)
    head_fit_l2: float = 0.0
    #: with cached_head: "adamw" (one low-rank head for every block, fit_head) or "convex" (each
    #: block its own L2 logistic regression, ridge and positional part chosen by held-out loss,
    #: written into the low-rank head exactly: head_convex.py)
    head_fit_solver: str = "adamw"
    #: with head_fit_solver = "convex": the ridge strengths tried per block
    head_fit_ridges: list = field(default_factory=lambda: [0.03, 0.1, 0.3, 1.0, 3.0])
    #: with cached_head: the head also reads the ``composition_bin_ks``-mer frequencies of each of
    #: ``composition_bins`` equal parts of the sequence (composition.Layout; 0: the whole sequence only)
    composition_bins: int = 0
    composition_bin_ks: list = field(default_factory=list)
    #: with composition_bins: the blocks whose positional part is filled (empty: every block)
    composition_bin_blocks: list = field(default_factory=list)
    #: with cached_head: the head also reads the ``composition_phase_ks``-mers of each reading frame
    #: (composition.phased_rows), filled in the blocks of ``composition_phase_blocks`` only
    composition_phase_ks: list = field(default_factory=list)
    composition_phase_blocks: list = field(default_factory=list)
    #: with cached_head: the head may also read each motif's best log-odds score over the sequence
    #: (composition.Layout's motif part, motifs.py), for a JASPAR release named here (e.g.
    #: "JASPAR2026": its CORE vertebrate matrices, from pyjaspar), in the blocks of
    #: ``composition_motif_blocks`` only; the convex fit keeps them where the held-out loss falls
    composition_motifs: str = ""
    composition_motif_blocks: list = field(default_factory=list)
    #: with cached_head: the five coding / mRNA log-likelihoods (likelihoods.py) of the corpus's
    #: ``sequence_likelihoods.json`` (counted by ``data build`` on training transcripts), filled in the
    #: blocks of ``composition_likelihood_blocks`` only and read by the heads shared over a question's
    #: labels (head_symmetry), where the held-out loss falls
    composition_likelihoods: bool = False
    composition_likelihood_blocks: list = field(default_factory=list)
    #: with composition_likelihoods: the factors a shared fit also tries the standardised likelihood
    #: column of a ``P+likelihood`` part at (an n-fold weight is a ridge divided by n squared on that
    #: column alone); empty: 1 only
    head_fit_likelihood_weights: list = field(default_factory=list)
    #: with cached_head: the tasks whose head rows come from ``headfit.jsonl`` (windows of training
    #: transcripts that no language-model stage reads, data.builders.head_fit_tiles) instead of
    #: train.jsonl, so that the frozen model's offset on them is as honest as on unseen input
    head_fit_split_tasks: list = field(default_factory=list)
    #: with head_fit_split_tasks and the convex solver: the factors those tasks' blocks try the
    #: frozen model's logits at (head_convex.fit_block); empty: 1 only, as every other block
    head_fit_offset_scales: list = field(default_factory=list)
    #: with the convex solver: block name -> the one factor that block's frozen-model logits are
    #: read at, for blocks whose rows the language model was taught (no honest rows to choose a
    #: scale on); a choice made outside the fit, which the card states
    head_fit_offset_fixed: dict = field(default_factory=dict)
    #: with the convex solver: blocks whose rows the language model was taught, fitted with its logits
    #: at x1 and at x0 on the same held-out draw, the lower held-out loss kept. Those rows favour x1 (the
    #: model has seen them), so x0 is kept only where it wins anyway: stage 20's rule in one run
    head_fit_offset_choice: list = field(default_factory=list)
    #: with cached_head: earlier state caches (``states.npz`` of a run over the same init_from weights)
    #: whose rows are reused for identical prompts instead of running the frozen model on them again
    head_fit_reuse: list = field(default_factory=list)
    #: with head_fit_split_tasks: those rows' held-out tenth is drawn by region (the transcript a
    #: tile comes from: its tiles are correlated, so a tenth drawn by row favours what memorises them)
    head_fit_hold_out_regions: bool = False
    #: with the convex solver: blocks of a task with a ``label_symmetry`` are also fitted with weights
    #: shared over their labels (head_symmetry), tried at ``head_fit_symmetric_ridges``; the
    #: held-out loss chooses between that and the free fit
    head_fit_symmetric: bool = False
    head_fit_symmetric_ridges: list = field(default_factory=lambda: [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0])
    #: with the convex solver: blocks of a ``strand_symmetric`` task are also fitted on features
    #: averaged with their reverse complement's (head_symmetry.StrandInvariance); the held-out loss chooses
    head_fit_strand_invariant: bool = False
    #: with the convex solver: fit only these blocks' rows and copy every other block from
    #: ``head_fit_keep`` (a checkpoint fitted over the same init_from language model; head_keep.py)
    head_fit_blocks: list = field(default_factory=list)
    head_fit_keep: str = ""
    #: with cached_head: the order of each block's rows before its draws (the 12,000-row sample, the
    #: held-out tenth). "file": train.jsonl's order, which a rebuilt corpus with rows added anywhere
    #: reshuffles, so two fits of one block on two builds hold out different rows (docs/experiments.md,
    #: stage 22); "sorted": by prompt, answer and region, so the draws depend on the block's own rows only
    head_fit_row_order: str = "file"

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


def training_texts(path: Path) -> list[str]:
    """Every text a corpus file's prompts and answers spell: item texts, text answers, reading targets."""
    texts = []
    for ex in read_jsonl(path):
        p = parse_prompt(ex["prompt"])
        texts += [i.text() for i in p.items if not hasattr(i, "sequence")]
        if p.task.answer_kind == "text":
            texts.append(ex["answer"])
        if p.reading_target:
            texts.append(" " + p.reading_target)
    return texts


def build_tokenizer(cfg: TrainConfig):
    from .tokenizer import GenomicLLMTokenizer, learn_text_pieces

    texts = training_texts(Path(cfg.data) / "train.jsonl")
    return GenomicLLMTokenizer(text_pieces=learn_text_pieces(texts, size=cfg.text_vocab), item_pointers=cfg.item_pointers)


def add_text_pieces(model, tokenizer, texts, n_pieces: int) -> list[str]:
    """Append the ``n_pieces`` text pieces that save the most tokens over ``texts`` to ``tokenizer``,
    and give ``model`` their (tied) embedding rows: each the mean of the rows of the piece's old
    spelling, so a new piece starts where the model's reading of that spelling ends up on average
    (the usual initialisation of added subwords) and every existing id and row is unchanged."""
    import torch

    from .codec import rank_text_pieces

    codec = tokenizer.codec
    pieces = rank_text_pieces(texts, codec.vocab, n_pieces)
    spelled = {p: [codec.vocab[t] for t in codec.text_tokens(p)] for p in pieces}
    before = len(codec)
    tokenizer.add_text_pieces(pieces)
    after = len(tokenizer.codec)
    model.resize_token_embeddings(after, mean_resizing=False)
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        for p in pieces:
            weight[tokenizer.codec.vocab[p]] = weight[spelled[p]].mean(0)
    model.config.vocab_size = after
    assert after - before == len(pieces)
    return pieces


class ExampleBank:
    """Tokenized training examples per task, sorted by length for the curriculum.

    With ``augment`` an example keeps several encoded views (see :func:`views`); sampling picks one.
    """

    def __init__(
        self,
        tokenizer,
        path: Path,
        max_tokens: int,
        weights: dict,
        augment: bool = False,
        orders: int = 6,
        seed: int = 0,
        frames: bool = False,
        exclude_sources: tuple = (),
    ):
        from .registry import TASKS

        per_task: dict[str, list] = {}
        skipped = 0
        rng = random.Random(f"views:{seed}")
        for ex in read_jsonl(path):
            if float(weights.get(ex["task"], 1.0)) <= 0:  # never sampled: not worth encoding
                continue
            if exclude_sources and ex.get("source", "").startswith(tuple(exclude_sources)):
                continue
            prompt = parse_prompt(ex["prompt"])
            encoded = []
            for view in views(prompt, rng, orders, frames) if augment else [prompt]:
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
            out += [
                dataclasses.replace(prompt, items=mapped(lambda s, k=k, rc=rc: (reverse_complement(s) if rc else s)[k:]))
                for rc in (False, True)
                for k in (1, 2)
            ]
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
        raise InputError(f'cpu_bf16 must be true, false or "auto", not {cfg.cpu_bf16!r}')
    return cfg.cpu_bf16


def add_name_keys(model, tokenizer, n_keys: int, seed: int) -> None:
    """Give ``tokenizer`` ``n_keys`` name-key tokens and ``model`` their (tied) embedding rows, drawn
    from a normal with the spread of its existing rows: a key only has to be told apart from every
    other key, which random rows of this size already are, and the same scale keeps them visible to
    attention trained on the old rows."""
    import torch

    before = len(tokenizer.codec)
    tokenizer.add_name_keys(n_keys)
    after = len(tokenizer.codec)
    if after == before:
        return
    old = model.get_input_embeddings().weight.detach()
    std = float(old.std())
    model.resize_token_embeddings(after, mean_resizing=False)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        weight[before:] = torch.randn(after - before, weight.shape[1], generator=gen) * std
    model.config.vocab_size = after


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
    ce = torch.nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1).clamp(min=0), reduction="none"
    ).view_as(shift_labels)
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


@dataclass
class TrainerState:
    """Where a run stands, saved beside each checkpoint's weights (``trainer_state.pt``, with the
    optimizer's state) and loaded by ``--resume``, as Hugging Face Trainer's ``TrainerState`` is:
    step, tokens, minutes, every rank's sampling RNG, torch's RNG and the batches still queued, so a
    resumed run continues exactly where a kill stopped it."""

    step: int = 0
    tokens_seen: int = 0
    elapsed: float = 0.0
    rng: list = field(default_factory=list)
    torch_rng: object = None
    queue: list = field(default_factory=list)
    optimizer: dict | None = None

    FILE = "trainer_state.pt"

    def save(self, folder: Path) -> None:
        import torch

        torch.save(
            {
                "optimizer": self.optimizer,
                "step": self.step,
                "tokens_seen": self.tokens_seen,
                "elapsed": self.elapsed,
                "rng": self.rng,
                "torch_rng": self.torch_rng,
                "queue": [[[n, p, a, al] for n, p, a, al in b] for b in self.queue],
            },
            folder / self.FILE,
        )

    @classmethod
    def load(cls, folder: Path) -> TrainerState:
        import torch

        saved = torch.load(folder / cls.FILE, weights_only=True)
        return cls(
            step=int(saved["step"]),
            tokens_seen=int(saved["tokens_seen"]),
            elapsed=float(saved["elapsed"]),
            rng=saved["rng"],
            torch_rng=saved["torch_rng"],
            optimizer=saved["optimizer"],
            queue=[[(int(n), list(p), list(a), int(al)) for n, p, a, al in b] for b in saved.get("queue", [])],
        )


class Trainer:
    """One training run (or its resumption), in named steps: set-up in ``__init__``, then
    :meth:`train` loops over :meth:`next_batch`, :meth:`training_step`, :meth:`log_step`,
    :meth:`save_snapshot` and :meth:`save_checkpoint`. The order of every random draw is fixed, so
    ``--resume`` after a kill ends with the same weights as an uninterrupted run."""

    def __init__(self, cfg: TrainConfig, resume: bool = False, progress: bool = True):
        import torch
        import torch.distributed as dist

        from .model import build_model
        from .tokenizer import GenomicLLMTokenizer

        self.cfg, self.torch = cfg, torch
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if torch.cuda.is_available() else torch.device("cpu")
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        torch.set_num_threads(cfg.threads)
        self.out = Path(cfg.out)
        self.ckpt = self.out / "checkpoint"
        data = Path(cfg.data)
        if not (data / "train.jsonl").exists():
            raise InputError(f"{data}/train.jsonl not found; run 'genomicllm data build --out {data}' first")

        saved: TrainerState | None = None
        if resume and (self.ckpt / "model.safetensors").exists():
            from .model import load_causal_lm

            self.tokenizer = GenomicLLMTokenizer.from_pretrained(self.ckpt)
            self.model = load_causal_lm(self.ckpt)
            saved = TrainerState.load(self.ckpt)
        else:
            if self.rank == 0:
                self.out.mkdir(parents=True, exist_ok=True)
            if cfg.init_from:
                from .model import load_torch_model

                self.model, self.tokenizer = load_torch_model(cfg.init_from)
                torch.manual_seed(cfg.seed)
            else:
                self.tokenizer = build_tokenizer(cfg)
                self.model = build_model(
                    self.tokenizer, cfg.hidden, cfg.layers, cfg.heads, cfg.ffn, cfg.context, cfg.seed, cfg.architecture, cfg.composition or None
                )
            if cfg.composition and not getattr(self.model.config, "composition_ks", None):
                from .composition_model import with_composition

                from .composition_model import per_question_blocks

                if cfg.composition_blocks not in ("", "per_question"):
                    raise InputError(f'composition_blocks must be "per_question" or empty, not {cfg.composition_blocks!r}')
                blocks = per_question_blocks() if cfg.composition_blocks == "per_question" else ()
                self.model = with_composition(
                    self.model, self.tokenizer.codec.vocab["<ans>"], tuple(cfg.composition), blocks, cfg.composition_head_rank
                )
            if cfg.item_marker:
                self.tokenizer.use_item_marker(cfg.item_marker)
            if cfg.name_keys:
                add_name_keys(self.model, self.tokenizer, cfg.name_keys, cfg.seed)
            if cfg.extend_text_pieces:
                if not cfg.init_from:
                    raise InputError("extend_text_pieces extends an init_from model's vocabulary; a new tokenizer learns text_vocab pieces")
                add_text_pieces(self.model, self.tokenizer, training_texts(data / "train.jsonl"), cfg.extend_text_pieces)
        self.model.to(self.device)
        self.bf16 = use_bf16(cfg, self.device.type)
        self.device_name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        # the loss weights before and from label_loss_from_step, built once (not a host-to-device copy per step)
        self.weights_by_phase = {
            late: answer_token_weights(self.tokenizer.codec, cfg, cfg.label_loss_from_step if late else 0, self.device) for late in (False, True)
        }
        self.bank = ExampleBank(
            self.tokenizer,
            data / "train.jsonl",
            min(cfg.max_train_tokens, cfg.context),
            cfg.task_weights,
            augment=cfg.augment,
            orders=cfg.augment_orders,
            seed=cfg.seed,
            frames=cfg.augment_frames,
            exclude_sources=tuple(cfg.exclude_sources),
        )
        params = self.trainable_parameters()
        decay = [p for n, p in params if p.ndim >= 2]
        no_decay = [p for n, p in params if p.ndim < 2]
        self.opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr,
            betas=(0.9, 0.98),
            fused=self.device.type == "cuda",
        )
        self.rng = random.Random(f"{cfg.seed}:{self.rank}")
        self.state = TrainerState()
        if saved is not None:
            self.opt.load_state_dict(saved.optimizer)
            self.state = saved
            self.load_rng_state(saved)
        self.net = self.model
        if self.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(self.model)
        self.log = open(self.out / "train_log.jsonl", "a") if self.rank == 0 else None
        self.bar = None
        if progress and self.rank == 0:
            from tqdm import tqdm

            self.bar = tqdm(total=cfg.max_steps, initial=self.state.step, desc="training", unit="step", disable=None)
        self.skipped = self.bad_steps = 0

    def trainable_parameters(self) -> list:
        """(name, parameter) pairs that train: all, or those named by ``cfg.trainable`` (the rest frozen)."""
        named = list(self.model.named_parameters())
        if not self.cfg.trainable:
            return named
        prefixes = tuple(self.cfg.trainable)
        picked = [(n, p) for n, p in named if n.startswith(prefixes)]
        if not picked:
            raise InputError(f"trainable {list(prefixes)} names no parameter of the model (its names start with e.g. {named[0][0]!r})")
        for n, p in named:
            p.requires_grad_(n.startswith(prefixes))
        return picked

    def load_rng_state(self, saved: TrainerState) -> None:
        """This rank's sampling RNG and torch's RNG as the checkpoint left them."""
        self.rng.setstate(_to_rng_state(saved.rng[self.rank] if self.rank < len(saved.rng) else saved.rng[0]))
        self.torch.set_rng_state(saved.torch_rng)

    def max_len(self) -> int:
        """The length curriculum: the longest example (tokens) allowed at the current step."""
        cfg = self.cfg
        frac = min(1.0, self.state.step / max(1, cfg.curriculum_steps))
        return int(cfg.curriculum_start_tokens + frac * (cfg.max_train_tokens - cfg.curriculum_start_tokens))

    def next_batch(self, max_len: int) -> list:
        """The next batch from the queue, refilled with a length-sorted, shuffled group when empty."""
        if not self.state.queue:
            cfg = self.cfg
            group = sorted(self.bank.sample(self.rng, cfg.batch_size * 8, max_len), key=lambda r: r[0])
            self.state.queue = [group[i : i + cfg.batch_size] for i in range(0, len(group), cfg.batch_size)]
            self.rng.shuffle(self.state.queue)
        return self.state.queue.pop()

    def training_step(self, batch: list):
        """One optimizer step; returns (loss, tokens in the batch). A step whose gradient is not finite
        is skipped, and MAX_BAD_STEPS of them in a row stop the run."""
        torch, cfg, step = self.torch, self.cfg, self.state.step
        cpu_batch = _collate(batch, self.tokenizer.pad_token_id)
        n_tok = int(cpu_batch[1].sum()) * self.world  # counted on the CPU: no GPU sync per step
        ids, mask, labels, pos = (t.to(self.device, non_blocking=True) for t in cpu_batch)
        extra = {}
        if getattr(self.model.config, "composition_ks", None):
            blocks = getattr(self.model.config, "composition_blocks", ())
            feats = self.tokenizer.codec.composition_features([p for _, p, _, _ in batch], as_layout(self.model.config), blocks)
            extra["dna_features"] = torch.from_numpy(feats).to(self.device, non_blocking=True)
        for g in self.opt.param_groups:
            g["lr"] = lr_at(cfg, step)
        token_weights = self.weights_by_phase[step >= cfg.label_loss_from_step]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            if self.prefix_is_frozen:
                loss = self.loss_after_frozen_prefix(ids, mask, labels, pos, extra, token_weights, batch)
            elif token_weights is not None:
                logits = self.net(input_ids=ids, attention_mask=mask, position_ids=pos, **extra).logits
                loss = weighted_loss(logits, labels, token_weights)
            else:
                loss = self.net(input_ids=ids, attention_mask=mask, position_ids=pos, labels=labels, **extra).loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], 1.0)
        # A non-finite step must not reach the weights (a bf16 continuation run on a GPU went NaN at
        # step 490 and never came back). One sync per step; the decision is the same on every DDP rank.
        if torch.isfinite(grad_norm):
            self.opt.step()
            self.bad_steps = 0
        else:
            self.skipped += 1
            self.bad_steps += 1
            if self.bad_steps >= MAX_BAD_STEPS:
                raise TrainingDivergedError(
                    f"training diverged: loss not finite for {self.bad_steps} steps in a row at step {step + 1} "
                    f"(the last checkpoint in {self.ckpt} holds finite weights); lower lr or raise warmup_steps"
                )
        return loss, n_tok

    @functools.cached_property
    def prefix_is_frozen(self) -> bool:
        """Whether only the composition layer trains: then nothing before a prompt's ``<ans>`` token
        depends on a trained weight, and :meth:`loss_after_frozen_prefix` applies."""
        return bool(self.cfg.trainable) and all(n.startswith("composition") for n, p in self.model.named_parameters() if p.requires_grad)

    def loss_after_frozen_prefix(self, ids, mask, labels, pos, extra, token_weights, batch):
        """The loss of a step in which only the composition layer trains, about half the cost of the
        full pass: the positions before the batch's first ``<ans>`` do not depend on any trained
        weight, so they run once without autograd and the rest continues from their KV cache."""
        torch = self.torch
        cut = min(len(p) for _, p, _, _ in batch) - 1  # every row's <ans> (its prompt's last token) is after the cut
        with torch.no_grad():
            past = self.model.model(input_ids=ids[:, :cut], attention_mask=mask[:, :cut], position_ids=pos[:, :cut], use_cache=True).past_key_values
        logits = self.net(
            input_ids=ids[:, cut:], attention_mask=mask, position_ids=pos[:, cut:], past_key_values=past, use_cache=True, **extra
        ).logits
        if token_weights is None:
            token_weights = torch.ones(logits.shape[-1], device=logits.device)
        return weighted_loss(logits, labels[:, cut:], token_weights)

    def log_step(self, loss, max_len: int, tokens_per_s: float, minutes: float) -> None:
        rec = {
            "device": self.device_name,
            "step": self.state.step,
            "loss": round(loss.item(), 4),
            "lr": lr_at(self.cfg, self.state.step),
            "tokens_seen": self.state.tokens_seen,
            "tokens_per_s": round(tokens_per_s, 1),
            "minutes": round(minutes, 2),
            "max_len": max_len,
            "world": self.world,
            "bf16": self.bf16,
            "skipped_steps": self.skipped,
        }
        self.log.write(json.dumps(rec) + "\n")
        self.log.flush()
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tokens_per_s:.0f}")

    def save_snapshot(self) -> None:
        _save_weights(self.model, self.tokenizer, self.out / "snapshots" / f"step_{self.state.step:06d}")

    def save_checkpoint(self, elapsed: float) -> None:
        """Weights, tokenizer, config and TrainerState, written to a temporary folder and swapped in
        (a kill mid-save leaves the previous checkpoint); every rank's RNG is gathered to rank 0."""
        import shutil

        torch = self.torch
        rng_states = [_rng_state_to_list(self.rng.getstate())]
        if self.world > 1:
            import torch.distributed as dist

            gathered = [None] * self.world
            dist.all_gather_object(gathered, rng_states[0])
            rng_states = gathered
        if self.rank != 0:
            return
        self.state.elapsed, self.state.rng = elapsed, rng_states
        self.state.torch_rng, self.state.optimizer = torch.get_rng_state(), self.opt.state_dict()
        ckpt = self.ckpt
        tmp = ckpt.with_name(ckpt.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(tmp, safe_serialization=True)
        self.tokenizer.save_pretrained(tmp)
        self.state.save(tmp)
        (tmp / "train_config.json").write_text(json.dumps(self.cfg.__dict__, indent=1))
        self.state.optimizer = None  # held only while saving
        if ckpt.exists():
            old = ckpt.with_name(ckpt.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            ckpt.rename(old)
            tmp.rename(ckpt)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(ckpt)

    def train(self, max_minutes: float | None = None, stop_at_step: int | None = None) -> Path:
        """Run to ``max_steps`` (or stop early with a checkpoint, as a kill would); returns the checkpoint."""
        cfg, state = self.cfg, self.state
        last_ckpt = t_start = time.time()
        base_elapsed = state.elapsed
        window_tokens, window_t = 0, time.time()
        self.model.train()
        while state.step < cfg.max_steps:
            if max_minutes is not None and (time.time() - t_start) / 60 > max_minutes:
                break
            if stop_at_step is not None and state.step >= stop_at_step:
                break
            max_len = self.max_len()
            loss, n_tok = self.training_step(self.next_batch(max_len))
            state.step += 1
            state.tokens_seen += n_tok
            window_tokens += n_tok
            if self.bar is not None:
                self.bar.update(1)
            if self.rank == 0 and state.step % cfg.log_every == 0:
                now = time.time()
                self.log_step(loss, max_len, window_tokens / max(1e-9, now - window_t), (base_elapsed + now - t_start) / 60)
                window_tokens, window_t = 0, now
            if self.rank == 0 and cfg.snapshot_every and state.step % cfg.snapshot_every == 0:
                self.save_snapshot()
            if time.time() - last_ckpt > cfg.checkpoint_minutes * 60:
                self.save_checkpoint(base_elapsed + time.time() - t_start)
                last_ckpt = time.time()
        self.save_checkpoint(base_elapsed + time.time() - t_start)
        self.close()
        return self.ckpt

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.log:
            self.log.close()
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()


def train(cfg: TrainConfig, resume: bool = False, max_minutes: float | None = None, progress: bool = True, stop_at_step: int | None = None) -> Path:
    """Train (or resume) a run; ``max_minutes`` / ``stop_at_step`` stop early with a checkpoint, as a kill would."""
    if cfg.method == "cached_head":
        from .head_fit import fit_cached_head

        ckpt = Path(cfg.out) / "checkpoint"
        if resume and (ckpt / "model.safetensors").exists():
            return ckpt  # a finished fit has nothing to resume; it is deterministic, rerun without --resume to redo it
        return fit_cached_head(cfg, progress)
    if cfg.method != "sgd":
        raise InputError(f'method must be "sgd" or "cached_head", not {cfg.method!r}')
    return Trainer(cfg, resume, progress).train(max_minutes, stop_at_step if stop_at_step is not None else cfg.stop_at_step)


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
