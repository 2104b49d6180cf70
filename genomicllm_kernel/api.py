"""The one API every front end uses: :func:`ask` for prompts, :func:`predict` for batches.

Both are shortcuts over :class:`~.engine.GenomicLLM` (``GenomicLLM.from_pretrained(model,
backend)``, cached per model, backend and threads). What they add is the no-model policy: without
a trained model, tasks with an exact computation still report the exact value (marked as such,
with no model answer); other tasks are refused with a clear message. No answer is faked.
"""

from __future__ import annotations

import functools
from typing import Iterable, Iterator

from .answer import Answer, exact_value
from .checks import Check
from .engine import BACKENDS, GenomicLLM, answer_jobs, parse_prompts, prediction_jobs, task_and_question, windows_of  # noqa: F401
from .errors import InputError, ModelUnavailableError
from .grammar import Prompt, make_prompt, parse_prompt  # noqa: F401 (re-exported)

__all__ = ["Answer", "BACKENDS", "GenomicLLM", "answer_prompts", "ask", "explain", "predict", "variant_effects", "windows_of"]


def answer_prompts(
    prompts: list[Prompt],
    model=None,
    backend=None,
    batch_size: int = 32,
    progress=None,
    ids: list[str | None] | None = None,
    windows=None,
    where: list[str | None] | None = None,
    offset: int = 0,
    threads: int | None = None,
) -> Iterator[Answer]:
    """Answer parsed prompts in order with the model (see :meth:`GenomicLLM.answer`), or, when no
    model is installed, with the exact computation alone where every prompt's task has one."""
    try:
        llm = GenomicLLM.from_pretrained(model, backend, threads)
    except ModelUnavailableError as exc:
        exact = [exact_value(p) for p in prompts]
        missing = [p for p, e in zip(prompts, exact) if e is None]
        if missing:
            raise ModelUnavailableError(f"{exc}; question {missing[0].question!r} needs a model answer") from None
        for i, (p, e) in enumerate(zip(prompts, exact)):
            yield Answer(
                offset + i,
                p.text(),
                p.task.id,
                p.question,
                None,
                None,
                None,
                Check(e, None),
                None,
                None,
                ids[i] if ids else None,
                windows[i] if windows else None,
                note="no trained model is installed; only the exact computation is shown",
            )
            if progress:
                progress(1)
        return
    yield from llm.answer(prompts, batch_size, progress, ids, windows, where, offset)


def ask(prompts: str | Iterable[str], model=None, backend=None, batch_size: int = 32, progress=None):
    """Answer one prompt (returns an :class:`Answer`) or several (returns a list)."""
    single, parsed, where = parse_prompts(prompts)
    answers = list(answer_prompts(parsed, model, backend, batch_size, progress, where=where))
    return answers[0] if single else answers


def predict(
    task: str,
    sequences,
    question: str | None = None,
    items: dict[str, str] | None = None,
    model=None,
    backend=None,
    batch_size: int = 32,
    window_size: int | None = None,
    window_step: int | None = None,
    progress=None,
) -> Iterator[Answer]:
    """Ask one task about many sequences: ``sequences`` holds strings, (id, sequence) pairs or
    ``fasta.Record`` objects (whose own ``items`` are added to their prompt, over ``items``).

    With ``window_size`` a long sequence is answered window by window (step ``window_step``,
    default the window size, at most the window size so that every base is read; the last window
    ends at the sequence end), each answer carrying its 1-based window coordinates. Streams: the
    input is read and answered in chunks, so memory stays flat with its length.
    """
    jobs = prediction_jobs(task, sequences, question, items, batch_size, window_size, window_step)
    answer = functools.partial(answer_prompts, model=model, backend=backend, batch_size=batch_size, progress=progress)
    yield from answer_jobs(answer, jobs, batch_size * 8)


def explain(prompt, model=None, backend=None, batch_size: int = 64, progress=None):
    """Which bases drove a classification answer: in-silico mutagenesis of ``prompt`` (a string in
    the grammar, e.g. ``"SEQ, core promoter ="``). Returns an :class:`~.mutagenesis.Explanation` with
    ``importance`` ([L]), ``delta()`` ([L, 4]) and ``probs`` ([L, 4, labels]) as NumPy arrays and a
    rich ``_repr_html_``. Needs a trained model (no exact computation explains anything)."""
    return GenomicLLM.from_pretrained(model, backend).explain(prompt, batch_size, progress)


def explain_records(
    task: str,
    sequences,
    question: str | None = None,
    items: dict[str, str] | None = None,
    model=None,
    backend=None,
    batch_size: int = 64,
    window_size: int | None = None,
    progress=None,
):
    """Explanations of many sequences (as :func:`predict` takes them), in order; with ``window_size``
    a long sequence is explained tile by tile (non-overlapping, every base once)."""
    from .mutagenesis import explain_jobs, tiled_jobs

    llm = GenomicLLM.from_pretrained(model, backend)
    jobs = tiled_jobs(prediction_jobs(task, sequences, question, items, batch_size), window_size)
    yield from explain_jobs(llm, jobs, batch_size, progress)


def variant_effects(
    vcf,
    reference,
    task: str,
    question: str | None = None,
    items: dict[str, str] | None = None,
    window: int = 300,
    cds=None,
    model=None,
    backend=None,
    batch_size: int = 32,
    progress=None,
):
    """What each SNV / short indel of a VCF (plain or bgzip path) does to a classification answer:
    the window centred on it from ``reference`` (FASTA path), the answered label's probability for
    ref and alt and their difference, as ``genomicllm variants`` computes them. ``cds`` is a BED of
    coding segments (path) for the exact protein change. Returns a
    :class:`~.variants.VariantEffects` (records, a DataFrame; a table with delta bars in Jupyter)."""
    from .variants import Summary, VariantEffects, open_reference, open_vcf, read_cds, score_variants

    if batch_size < 1:
        raise InputError(f"batch size must be a positive whole number, not {batch_size}")
    t, q = task_and_question(task, question, classification_for="variant effects")
    records, fasta, segments = open_vcf(vcf), open_reference(reference), read_cds(cds)
    llm = GenomicLLM.from_pretrained(model, backend)
    summary = Summary()
    calls = [c for _, cs in score_variants(llm, records, fasta, t.id, q, items, window, segments, batch_size, summary, progress) for c in cs]
    return VariantEffects(t.id, q, calls, summary, llm.model_id)
