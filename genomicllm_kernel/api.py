"""The one API every front end uses: :func:`ask` for prompts, :func:`predict` for batches.

An :class:`Answer` carries the task, the model's answer, its probability (every label's for a
classification), the exact check where the task has one, and which model and runtime answered.
Without a trained model, tasks with an exact computation still report the exact value (marked as
such, with no model answer); other tasks are refused with a clear message. No answer is faked.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator

from .checks import Check
from .errors import InputError, ModelUnavailableError, SequenceTooLongError
from .grammar import Prompt, SequenceItem, make_prompt, parse_prompt  # noqa: F401 (parse_prompt re-exported)
from .registry import get_task, task_for_question

BACKENDS = ("auto", "onnx", "onnx-int8", "torch")


@dataclass
class Answer:
    index: int
    prompt: str
    task: str
    question: str
    answer: str | None
    probability: float | None
    labels: dict[str, float] | None
    check: Check | None
    model: str | None
    runtime: str | None
    id: str | None = None
    window: tuple[int, int] | None = None  # 1-based inclusive coordinates on the record
    note: str | None = None

    def to_dict(self) -> dict:
        return {
            "index": self.index, "id": self.id, "task": self.task, "question": self.question,
            "answer": self.answer, "probability": self.probability, "labels": self.labels,
            "check": self.check.to_dict() if self.check else None, "model": self.model, "runtime": self.runtime,
            "window": list(self.window) if self.window else None, "note": self.note, "prompt": self.prompt,
        }


@dataclass
class Engine:
    """A loaded model behind a decoder, cached per (model dir, backend)."""

    path: Path
    backend: str
    decoder: object
    model_id: str
    runtime: str
    context: int = field(default=512)


_ENGINES: dict[tuple[str, str, int | None], Engine] = {}


def _model_id(path: Path) -> str:
    h = hashlib.sha256()
    with open(path / "model.safetensors", "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return f"{path.name}@{h.hexdigest()[:12]}"


def load_engine(model: str | Path | None = None, backend: str | None = None, threads: int | None = None) -> Engine:
    """Load (once per process and settings) the model behind ``backend``.

    ``model`` is a model folder or a zip of one (a Galaxy history dataset). ``auto`` (the default)
    uses ONNX Runtime when the model folder carries its ONNX export and onnxruntime is installed,
    else PyTorch. ``onnx`` / ``onnx-int8`` insist on ONNX Runtime (fp32 / dynamically quantized
    int8); ``torch`` is the reference backend.
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
    if key not in _ENGINES:
        verify_model_files(path, folder if backend.startswith("onnx") else None)
        if backend.startswith("onnx"):
            from .codec import HybridCodec
            from .ort_backend import ORTDecoder

            filename = "model_int8.onnx" if backend == "onnx-int8" else "model.onnx"
            if folder is None or not (folder / filename).exists():
                raise ModelUnavailableError(f"{path} has no ONNX export ({filename}); run 'genomicllm export --model {path}'"
                                            + (" --quantize int8" if backend == "onnx-int8" else "") + " or use --backend torch")
            decoder = ORTDecoder(folder, HybridCodec.from_dir(folder), threads=threads, filename=filename)
            runtime = f"onnxruntime-{decoder.provider}" + ("-int8" if backend == "onnx-int8" else "")
            model_id = _model_id(path) if (path / "model.safetensors").exists() else f"{path.name}@onnx"
        else:
            from .engine import TorchDecoder
            from .model import load_torch_model

            check_model_dir(path)
            net, tok = load_torch_model(path)
            decoder = TorchDecoder(net, tok, threads=threads or 1)
            runtime, model_id = "torch-cpu", _model_id(path)
        _ENGINES[key] = Engine(path, backend, decoder, model_id, runtime, decoder.context)
    return _ENGINES[key]


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def _exact(prompt: Prompt) -> str | None:
    task = prompt.task
    if task.checker is None:
        return None
    return task.checker(prompt.sequence, prompt.question, prompt.annotations)


def _with_sequence(prompt: Prompt, sequence: str) -> Prompt:
    items = tuple(SequenceItem(sequence) if isinstance(i, SequenceItem) else i for i in prompt.items)
    return replace(prompt, items=items)


def tokens_needed(decoder, prompt: Prompt) -> int:
    """Context positions a prompt takes: its tokens plus its longest possible answer."""
    return len(decoder.tok.encode_prompt(prompt)) + decoder.max_steps(prompt)


def sequence_limit(decoder, prompt: Prompt, context: int) -> int:
    """The longest sequence (nt) that fits the context beside this prompt's other items and question
    (0 when not even one base fits). Exact: the need only grows with the length, so a binary search
    over lengths finds the limit, the same figure every message and the Galaxy window bounds state."""
    lo, hi = 0, 3 * context + 3  # every 3-mer chunk costs at least one token
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if tokens_needed(decoder, _with_sequence(prompt, "A" * mid)) <= context:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _check_fits(engine: Engine, prompt: Prompt, where: str | None = None, windowed: bool = False) -> None:
    """Refuse a prompt whose tokens (prompt + longest answer) exceed the context, naming the limit and
    what is too long: the sequence (or window), or the annotation items themselves."""
    dec = engine.decoder
    need = tokens_needed(dec, prompt)
    if need <= engine.context:
        return
    prefix = f"{where}: " if where else ""
    n = len(prompt.sequence)
    limit = sequence_limit(dec, prompt, engine.context) if n else 0
    if limit == 0:
        raise SequenceTooLongError(
            f"{prefix}the prompt's items and question take {need} tokens, more than this model's context of "
            f"{engine.context} tokens; shorten the annotation items")
    if windowed:
        raise SequenceTooLongError(
            f"{prefix}a window of {n} nt is too long for {prompt.question!r}: this model reads at most {limit} nt "
            f"for this question (context {engine.context} tokens); choose --window-size {limit} or less")
    raise SequenceTooLongError(
        f"{prefix}sequence of {n} nt is too long for {prompt.question!r}: this model reads at most {limit} nt "
        f"for this question (context {engine.context} tokens); answer it window by window with "
        "'genomicllm predict --window-size N' (or predict(..., window_size=N))"
    )


def answer_prompts(prompts: list[Prompt], model=None, backend=None, batch_size: int = 32, progress=None,
                   ids: list[str | None] | None = None, windows=None, where: list[str | None] | None = None) -> Iterator[Answer]:
    """Answer parsed prompts in order, batching by task; yields as batches finish.

    ``where`` names each prompt in error messages (``line 5``, ``record r1``)."""
    if batch_size < 1:
        raise InputError(f"batch size must be a positive whole number, not {batch_size}")
    exact = [_exact(p) for p in prompts]
    try:
        engine = load_engine(model, backend)
    except ModelUnavailableError as exc:
        missing = [p for p, e in zip(prompts, exact) if e is None]
        if missing:
            raise ModelUnavailableError(f"{exc}; question {missing[0].question!r} needs a model answer") from None
        for i, (p, e) in enumerate(zip(prompts, exact)):
            yield Answer(i, p.text(), p.task.id, p.question, None, None, None, Check(e, None), None, None,
                         ids[i] if ids else None, windows[i] if windows else None,
                         note="no trained model is installed; only the exact computation is shown")
            if progress:
                progress(1)
        return
    for n, p in enumerate(prompts):
        _check_fits(engine, p, where[n] if where else None, windowed=bool(windows and windows[n]))
    start = 0
    while start < len(prompts):
        chunk = list(range(start, min(len(prompts), start + batch_size)))
        start = chunk[-1] + 1
        results: dict[int, object] = {}
        by_task: dict[str, list[int]] = {}
        for i in chunk:
            by_task.setdefault(prompts[i].task.id, []).append(i)
        for idx in by_task.values():
            for i, raw in zip(idx, engine.decoder.answer_batch([prompts[i] for i in idx])):
                results[i] = raw
        for i in chunk:
            raw, p, e = results[i], prompts[i], exact[i]
            check = Check(e, raw.text == e) if e is not None else None
            yield Answer(i, p.text(), p.task.id, p.question, raw.text, raw.probability, raw.labels, check,
                         engine.model_id, engine.runtime, ids[i] if ids else None, windows[i] if windows else None)
            if progress:
                progress(1)


def ask(prompts: str | Iterable[str], model=None, backend=None, batch_size: int = 32, progress=None):
    """Answer one prompt (returns an :class:`Answer`) or several (returns a list)."""
    single = isinstance(prompts, str)
    texts = [prompts] if single else list(prompts)
    where = [f"prompt {n}" if len(texts) > 1 else None for n in range(1, len(texts) + 1)]
    parsed = []
    for label, text in zip(where, texts):
        try:
            parsed.append(parse_prompt(text))
        except InputError as exc:
            raise type(exc)(f"{label}: {exc}" if label else str(exc)) from None
    answers = list(answer_prompts(parsed, model, backend, batch_size, progress, where=where))
    return answers[0] if single else answers


def windows_of(length: int, size: int, step: int) -> list[tuple[int, int]]:
    """0-based half-open windows covering a sequence; the last one is anchored at the end."""
    if length <= size:
        return [(0, length)]
    starts = list(range(0, length - size + 1, step))
    if starts[-1] + size < length:
        starts.append(length - size)
    return [(s, s + size) for s in starts]


def predict(task: str, sequences, question: str | None = None, items: dict[str, str] | None = None,
            model=None, backend=None, batch_size: int = 32, window_size: int | None = None,
            window_step: int | None = None, progress=None) -> Iterator[Answer]:
    """Ask one task about many sequences: ``sequences`` holds strings or (id, sequence) pairs.

    With ``window_size`` a long sequence is answered window by window (step ``window_step``,
    default the window size, at most the window size so that every base is read; the last window
    ends at the sequence end), each answer carrying its 1-based window coordinates. A record that
    carries its own ``items`` (``fasta.Record``) adds them to its prompt, over ``items``.
    """
    t = get_task(task)
    q = question or t.default_question
    if task_for_question(q).id != t.id:
        raise InputError(f"question {q!r} belongs to task {task_for_question(q).id}, not {t.id}")
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
        raise InputError(f"--window-step {step} is larger than --window-size {window_size}: the bases between "
                         "windows would never be read; use a step of at most the window size")

    def jobs():
        for n, rec in enumerate(sequences):
            rid, seq = (rec.id, rec.sequence) if hasattr(rec, "sequence") else (rec if isinstance(rec, tuple) else (f"seq{n + 1}", rec))
            own = {**(items or {}), **dict(getattr(rec, "items", ()) or ())}
            spans = windows_of(len(seq), window_size, step) if window_size else [(0, len(seq))]
            for s, e in spans:
                yield rid, make_prompt(q, seq[s:e], own), ((s + 1, e) if window_size else None)

    buffer: list = []
    offset = 0
    for job in jobs():
        buffer.append(job)
        if len(buffer) >= batch_size * 8:
            yield from _predict_chunk(buffer, offset, model, backend, batch_size, progress)
            offset += len(buffer)
            buffer = []
    if buffer:
        yield from _predict_chunk(buffer, offset, model, backend, batch_size, progress)


def _predict_chunk(buffer, offset, model, backend, batch_size, progress):
    where = [f"record {b[0]!r}" + (f" window {b[2][0]}-{b[2][1]}" if b[2] else "") for b in buffer]
    for a in answer_prompts([b[1] for b in buffer], model, backend, batch_size, progress,
                            ids=[b[0] for b in buffer], windows=[b[2] for b in buffer], where=where):
        a.index += offset
        yield a
