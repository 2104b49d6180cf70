"""The inference object: ``GenomicLLM.from_pretrained(path, backend="auto", threads=None)``.

Modelled on Optimum's ``ORTModelForCausalLM.from_pretrained``: one object owns the decoder (ONNX
Runtime or PyTorch), its settings and the model's identity, encodes every prompt once (the length
check and the forward pass share the ids) and answers with :meth:`GenomicLLM.ask` /
:meth:`GenomicLLM.predict`. The module-level :func:`genomicllm_kernel.ask` / ``predict`` are
shortcuts over a cached instance.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from . import pieces
from .answer import Answer, exact_value
from .checks import Check
from .errors import InputError, ModelUnavailableError, SequenceTooLongError
from .formats import RawAnswer
from .grammar import Prompt, SequenceItem, make_prompt, parse_prompt
from .registry import get_task, task_for_question

BACKENDS = ("auto", "onnx", "onnx-int8", "torch")


def _model_id(path: Path) -> str:
    h = hashlib.sha256()
    with open(path / "model.safetensors", "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return f"{path.name}@{h.hexdigest()[:12]}"


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def _with_sequence(prompt: Prompt, sequence: str) -> Prompt:
    items = tuple(SequenceItem(sequence) if isinstance(i, SequenceItem) else i for i in prompt.items)
    return replace(prompt, items=items)


def tokens_needed(codec, prompt: Prompt, ids: list[int] | None = None) -> int:
    """Context positions a prompt takes: its tokens plus its longest possible answer."""
    return len(ids if ids is not None else codec.encode_prompt(prompt)) + codec.answer_format(prompt.task).max_steps(prompt)


def sequence_limit(codec, prompt: Prompt, context: int) -> int:
    """The longest sequence (nt) that fits the context beside this prompt's other items and question
    (0 when not even one base fits). Exact: the need only grows with the length, so a binary search
    over lengths finds the limit, the same figure every message and the Galaxy window bounds state."""
    lo, hi = 0, 3 * context + 3  # every 3-mer chunk costs at least one token
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if tokens_needed(codec, _with_sequence(prompt, "A" * mid)) <= context:
            lo = mid
        else:
            hi = mid - 1
    return lo


def windows_of(length: int, size: int, step: int) -> list[tuple[int, int]]:
    """0-based half-open windows covering a sequence; the last one is anchored at the end."""
    if length <= size:
        return [(0, length)]
    starts = list(range(0, length - size + 1, step))
    if starts[-1] + size < length:
        starts.append(length - size)
    return [(s, s + size) for s in starts]


def task_and_question(task: str, question: str | None = None, classification_for: str | None = None):
    """(task, question key): the task's default key when none is given; a key of another task is
    refused, and with ``classification_for`` (what needs it, e.g. 'scan') so is a task without labels."""
    t = get_task(task)
    q = question or t.default_question
    if task_for_question(q).id != t.id:
        raise InputError(f"question {q!r} belongs to task {task_for_question(q).id}, not {t.id}")
    if classification_for and not t.labels:
        raise InputError(f"{classification_for} needs a classification task (one with labels); {t.id} answers {t.answer_kind}")
    return t, q


def prediction_jobs(
    task: str,
    sequences,
    question: str | None = None,
    items: dict[str, str] | None = None,
    batch_size: int = 32,
    window_size: int | None = None,
    window_step: int | None = None,
):
    """Validate ``predict``'s options, then yield (record id, prompt, 1-based window or None) lazily."""
    t, q = task_and_question(task, question)
    if batch_size < 1:
        raise InputError(f"--batch-size must be a positive whole number, not {batch_size}")
    if window_size is None and window_step is not None:
        raise InputError("--window-step needs --window-size")
    if window_size is not None and window_size < 1:
        raise InputError(f"--window-size must be a positive number of nucleotides, not {window_size}")
    step = window_size if window_step is None else window_step
    if step is not None and step < 1:
        raise InputError(f"--window-step must be a positive number of nucleotides, not {step}")
    if step is not None and step > window_size:
        raise InputError(
            f"--window-step {step} is larger than --window-size {window_size}: the bases between "
            "windows would never be read; use a step of at most the window size"
        )

    def jobs():
        for n, rec in enumerate(sequences):
            rid, seq = (rec.id, rec.sequence) if hasattr(rec, "sequence") else (rec if isinstance(rec, tuple) else (f"seq{n + 1}", rec))
            own = {**(items or {}), **dict(getattr(rec, "items", ()) or ())}
            spans = windows_of(len(seq), window_size, step) if window_size else [(0, len(seq))]
            for s, e in spans:
                yield rid, make_prompt(q, seq[s:e], own), ((s + 1, e) if window_size else None)

    return jobs()


def in_chunks(jobs: Iterable, size: int) -> Iterator[list]:
    """Lists of at most ``size`` items: streaming in constant memory whatever the input's length."""
    buffer: list = []
    for job in jobs:
        buffer.append(job)
        if len(buffer) >= size:
            yield buffer
            buffer = []
    if buffer:
        yield buffer


def answer_jobs(answer, jobs: Iterable, chunk: int) -> Iterator[Answer]:
    """Answer ``(record id, prompt, window)`` jobs chunk by chunk, in constant memory, with
    ``answer(prompts, ids=, windows=, where=, offset=)`` (:meth:`GenomicLLM.answer` or
    :func:`~.api.answer_prompts`); errors name the record and window."""
    offset = 0
    for part in in_chunks(jobs, chunk):
        where = [f"record {rid!r}" + (f" window {w[0]}-{w[1]}" if w else "") for rid, _, w in part]
        yield from answer([j[1] for j in part], ids=[j[0] for j in part], windows=[j[2] for j in part], where=where, offset=offset)
        offset += len(part)


class GenomicLLM:
    """A loaded model behind one decoder; answers parsed prompts, batching by task."""

    _cache: dict[tuple[str, str, int | None], GenomicLLM] = {}

    def __init__(self, path: Path, backend: str, decoder, model_id: str, runtime: str):
        self.path, self.backend, self.decoder, self.model_id, self.runtime = path, backend, decoder, model_id, runtime
        from .gene_table import gene_table_for

        #: the gene table shipped beside the model (gene_table.py): the database check of description answers
        self.gene_table = gene_table_for(path)

    #: answer long reverse / complement questions piece by piece (pieces.py); False: whole, as the
    #: model alone reads them (the model card's curve by length reports both)
    read_in_pieces = True

    def gene_record_name(self, prompt) -> str | None:
        """The full name of the gene the prompt's symbol / id items name, from the shipped gene table."""
        row = self.gene_table.lookup(prompt.annotations) if self.gene_table else None
        return row[2] if row else None

    @property
    def codec(self):
        return self.decoder.tok

    @property
    def context(self) -> int:
        return self.decoder.context

    @classmethod
    def from_pretrained(cls, model: str | Path | None = None, backend: str | None = "auto", threads: int | None = None) -> GenomicLLM:
        """Load (once per process and settings) a model folder, or a zip of one, behind ``backend``.

        ``auto`` uses ONNX Runtime when the folder carries its ONNX export and onnxruntime is
        installed, else PyTorch; ``onnx`` / ``onnx-int8`` insist on ONNX Runtime (fp32 /
        dynamically quantized int8); ``torch`` is the reference. ``threads``: intra-op threads
        (default 1, or ``$GENOMICLLM_THREADS`` for ONNX Runtime).
        """
        from .model import check_model_dir, resolve_model_path, verify_model_files
        from .ort_backend import onnx_dir

        backend = backend or "auto"
        if backend not in BACKENDS:
            raise InputError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
        path = resolve_model_path(model)
        if not (path / "config.json").exists():
            check_model_dir(path)  # raises the standard 'no trained model' message
        path = path.resolve()
        folder = onnx_dir(path)
        if backend == "auto":
            backend = "onnx" if folder is not None and _has_onnxruntime() else "torch"
        key = (str(path), backend, threads)
        if key not in cls._cache:
            verify_model_files(path, folder if backend.startswith("onnx") else None)
            if backend.startswith("onnx"):
                from .codec import HybridCodec
                from .ort_backend import ORTDecoder

                filename = "model_int8.onnx" if backend == "onnx-int8" else "model.onnx"
                if folder is None or not (folder / filename).exists():
                    raise ModelUnavailableError(
                        f"{path} has no ONNX export ({filename}); run 'genomicllm export --model {path}'"
                        + (" --quantize int8" if backend == "onnx-int8" else "")
                        + " or use --backend torch"
                    )
                decoder = ORTDecoder(folder, HybridCodec.from_pretrained(folder), threads=threads, filename=filename)
                runtime = f"onnxruntime-{decoder.provider}" + ("-int8" if backend == "onnx-int8" else "")
                model_id = _model_id(path) if (path / "model.safetensors").exists() else f"{path.name}@onnx"
            else:
                from .decoding import TorchDecoder
                from .model import load_torch_model

                check_model_dir(path)
                net, tok = load_torch_model(path)
                decoder = TorchDecoder(net, tok, threads=threads or 1)
                runtime, model_id = "torch-cpu", _model_id(path)
            from .head_only import HeadOnlyAnswers

            decoder.head_only = HeadOnlyAnswers.from_model_dir(path)
            cls._cache[key] = cls(path, backend, decoder, model_id, runtime)
        return cls._cache[key]

    # ---- length ---------------------------------------------------------------------------
    def sequence_limit(self, prompt: Prompt) -> int:
        return sequence_limit(self.codec, prompt, self.context)

    def check_fits(self, prompt: Prompt, ids: list[int], where: str | None = None, windowed: bool = False) -> None:
        """Refuse a prompt whose tokens (prompt + longest answer) exceed the context, naming the limit
        and what is too long: the sequence (or window), or the annotation items themselves."""
        need = tokens_needed(self.codec, prompt, ids)
        if need <= self.context:
            return
        prefix = f"{where}: " if where else ""
        n = len(prompt.sequence)
        limit = self.sequence_limit(prompt) if n else 0
        if limit == 0:
            raise SequenceTooLongError(
                f"{prefix}the prompt's items and question take {need} tokens, more than this model's context of "
                f"{self.context} tokens; shorten the annotation items"
            )
        if windowed:
            raise SequenceTooLongError(
                f"{prefix}a window of {n} nt is too long for {prompt.question!r}: this model reads at most {limit} nt "
                f"for this question (context {self.context} tokens); choose --window-size {limit} or less"
            )
        raise SequenceTooLongError(
            f"{prefix}sequence of {n} nt is too long for {prompt.question!r}: this model reads at most {limit} nt "
            f"for this question (context {self.context} tokens); answer it window by window with "
            "'genomicllm predict --window-size N' (or predict(..., window_size=N))"
        )

    # ---- answering ------------------------------------------------------------------------
    def answer(
        self,
        prompts: list[Prompt],
        batch_size: int = 32,
        progress=None,
        ids: list[str | None] | None = None,
        windows=None,
        where: list[str | None] | None = None,
        offset: int = 0,
    ) -> Iterator[Answer]:
        """Answer parsed prompts in order, batching by task; yields as batches finish. Every prompt
        is encoded once, checked against the context before any is answered, and ``where`` names
        each prompt in error messages (``line 5``, ``record 'r1'``)."""
        if batch_size < 1:
            raise InputError(f"batch size must be a positive whole number, not {batch_size}")
        encoded = [self.codec.encode_prompt(p) for p in prompts]
        for n, (p, e) in enumerate(zip(prompts, encoded)):
            self.check_fits(p, e, where[n] if where else None, windowed=bool(windows and windows[n]))
        for start in range(0, len(prompts), batch_size):
            chunk = list(range(start, min(len(prompts), start + batch_size)))
            by_task: dict[str, list[int]] = {}
            for i in chunk:
                by_task.setdefault(prompts[i].task.id, []).append(i)
            results: dict[int, object] = {}
            notes: dict[int, str] = {}
            for idx in by_task.values():
                asked, asked_ids, spans = [], [], {}  # the prompts the decoder reads: a long reverse / complement one in pieces
                for i in idx:
                    split = pieces.pieces_of(prompts[i]) if self.read_in_pieces else None
                    spans[i] = (len(asked), len(asked) + len(split or [None]))
                    asked += split or [prompts[i]]
                    asked_ids += [self.codec.encode_prompt(part) for part in split] if split else [encoded[i]]
                    if split:
                        notes[i] = pieces.note(len(split))
                raw = self.decoder.answer_batch(asked, asked_ids)
                for i, (a, b) in spans.items():
                    parts = raw[a:b]
                    if len(parts) == 1:
                        results[i] = parts[0]
                    else:
                        text = pieces.join(prompts[i], [r.text for r in parts])
                        results[i] = RawAnswer(text, float(np.prod([r.probability for r in parts])), None)
            for i in chunk:
                raw, p = results[i], prompts[i]
                e = exact_value(p)
                if e is None and p.task.id == "gene_description":
                    e = self.gene_record_name(p)
                check = Check(e, raw.text == e) if e is not None else None
                yield Answer(
                    offset + i,
                    p.text(),
                    p.task.id,
                    p.question,
                    raw.text,
                    raw.probability,
                    raw.labels,
                    check,
                    self.model_id,
                    self.runtime,
                    ids[i] if ids else None,
                    windows[i] if windows else None,
                    note=notes.get(i),
                )
                if progress:
                    progress(1)

    def label_probabilities_of_variants(self, reference: Prompt, variants: list[Prompt], batch_size: int = 64) -> list[dict[str, float]]:
        """Every label's probability for each of ``variants``, prompts of ``reference``'s
        classification question whose sequence differs from it (in-silico mutagenesis); the backend
        reuses the reference's KV cache up to each variant's first changed token where it can."""
        ref = self.codec.encode_prompt(reference)
        encoded = [self.codec.encode_prompt(p) for p in variants]
        for p, e in zip(variants, encoded):
            self.check_fits(p, e, None)
        return [raw.labels for raw in self.decoder.answer_sharing_prefix(ref, variants, encoded, batch_size)]

    def label_probabilities_of_pairs(
        self, pairs: list[tuple[Prompt, Prompt]], batch_size: int = 32
    ) -> list[tuple[str, dict[str, float], dict[str, float]]]:
        """(the reference's answered label, every label's probability for the reference, and for the
        variant) for (reference, variant) prompts of one classification question: variant effects.
        The backend continues each variant from its own reference's KV cache where it can."""
        if not pairs:
            return []
        refs = [self.codec.encode_prompt(r) for r, _ in pairs]
        alts = [self.codec.encode_prompt(a) for _, a in pairs]
        for (r, a), er, ea in zip(pairs, refs, alts):
            self.check_fits(r, er, None)
            self.check_fits(a, ea, None)
        raw = self.decoder.answer_pairs_sharing_prefix([r for r, _ in pairs], refs, alts, batch_size)
        return [(r.text, r.labels, a.labels) for r, a in raw]

    def ask(self, prompts: str | Iterable[str], batch_size: int = 32, progress=None):
        """Answer one prompt (returns an :class:`Answer`) or several (returns a list)."""
        single, parsed, where = parse_prompts(prompts)
        answers = list(self.answer(parsed, batch_size, progress, where=where))
        return answers[0] if single else answers

    def predict(
        self,
        task: str,
        sequences,
        question: str | None = None,
        items: dict[str, str] | None = None,
        batch_size: int = 32,
        window_size: int | None = None,
        window_step: int | None = None,
        progress=None,
    ) -> Iterator[Answer]:
        """Ask one task about many sequences (see :func:`genomicllm_kernel.api.predict`)."""
        jobs = prediction_jobs(task, sequences, question, items, batch_size, window_size, window_step)
        yield from answer_jobs(functools.partial(self.answer, batch_size=batch_size, progress=progress), jobs, batch_size * 8)

    def explain(self, prompt, batch_size: int = 64, progress=None):
        """In-silico mutagenesis of one classification prompt: an :class:`~.mutagenesis.Explanation`
        (every position x every other base, each variant sequence one forward pass, batched)."""
        from .mutagenesis import explain_prompt

        return explain_prompt(self, prompt, batch_size, progress)


def parse_prompts(prompts: str | Iterable[str]) -> tuple[bool, list[Prompt], list[str | None]]:
    """(one prompt given, parsed prompts, their names for messages: ``prompt N`` in a list)."""
    single = isinstance(prompts, str)
    texts = [prompts] if single else list(prompts)
    where = [f"prompt {n}" if len(texts) > 1 else None for n in range(1, len(texts) + 1)]
    parsed = []
    for label, text in zip(where, texts):
        try:
            parsed.append(parse_prompt(text))
        except InputError as exc:
            raise type(exc)(f"{label}: {exc}" if label else str(exc)) from None
    return single, parsed, where
