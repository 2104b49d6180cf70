"""Which bases drove a classification: in-silico mutagenesis (ISM) through the engine.

Why ISM and not gradients or attention: it is the standard attribution of regulatory genomics
(every position x every other base, one forward pass per variant sequence), it needs nothing from
the model but its answers, so it is exactly as faithful as the model's own probabilities and works
the same on every backend (PyTorch, ONNX Runtime fp32 / int8). The variant sequences go through
:meth:`GenomicLLM.label_probabilities_of_variants` in batches: the model is causal, so a variant's
tokens before its substitution are the reference's, and each batch continues from the reference's
key/value cache where its rows first differ (half the work on average; fp32 answers are those of
full passes, tested; int8's dynamic quantization depends on the batch either way, about 0.02).

``importance`` of a position is the probability of the answered label on the sequence minus its
mean over the three substitutions there (all four bases where the sequence has N or another
ambiguity code): positive where the base supports the answer, negative where it works against it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, replace
from typing import Iterable, Iterator

import numpy as np

from .errors import InputError
from .grammar import Prompt, SequenceItem, parse_prompt

BASES = "ACGT"
#: the longest sequence one explanation takes (3 variant prompts per base): 'predict --window-size' beyond
MAX_EXPLAIN_NT = 20_000


@dataclass
class Explanation:
    """One sequence's ISM: ``probs[i, b, k]`` is the probability of label ``labels[k]`` with base
    ``BASES[b]`` at position ``i`` (the unchanged sequence's where ``BASES[b]`` is its own base)."""

    prompt: str
    task: str
    question: str
    sequence: str
    labels: tuple[str, ...]
    label: str
    reference: np.ndarray  # [K] label probabilities of the unchanged sequence
    probs: np.ndarray  # [L, 4, K]
    id: str | None = None
    #: 1-based first position of this sequence on its record (windowed input); 1 otherwise
    offset: int = 1

    @property
    def probability(self) -> float:
        return float(self.reference[self.labels.index(self.label)])

    def delta(self, label: str | None = None) -> np.ndarray:
        """[L, 4]: change of ``label``'s probability (default: the answered label) per substitution."""
        k = self.labels.index(label or self.label)
        return self.probs[:, :, k] - self.reference[k]

    def _is_own_base(self) -> np.ndarray:
        own = np.zeros((len(self.sequence), 4), dtype=bool)
        for b, base in enumerate(BASES):
            own[:, b] = np.frombuffer(self.sequence.encode(), dtype=np.uint8) == ord(base)
        return own

    @property
    def importance(self) -> np.ndarray:
        """[L]: the answered label's probability minus its mean over the substitutions at each position."""
        d = self.delta()
        own = self._is_own_base()
        others = (~own).sum(axis=1)
        return -(np.where(own, 0.0, d).sum(axis=1) / others)

    def least_favoured_bases(self) -> str:
        """Per position, the base that lowers the answered label's probability most."""
        return "".join(BASES[i] for i in self.delta().argmin(axis=1))

    def rows(self) -> Iterator[tuple]:
        """(id, position 1-based on the record, base, importance, delta_A, delta_C, delta_G, delta_T)."""
        d, imp = self.delta(), self.importance
        for i, base in enumerate(self.sequence):
            yield (self.id or "", self.offset + i, base, float(imp[i]), *map(float, d[i]))

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "task": self.task,
            "question": self.question,
            "answer": self.label,
            "probability": self.probability,
            "labels": dict(zip(self.labels, map(float, self.reference))),
            "start": self.offset,
            "sequence": self.sequence,
            "importance": [round(float(x), 6) for x in self.importance],
            "delta": {b: [round(float(x), 6) for x in self.delta()[:, n]] for n, b in enumerate(BASES)},
        }

    def _repr_html_(self) -> str:
        """The sequence with each base shaded by its importance (green supports the answer, red works against it)."""
        imp = self.importance
        scale = float(np.abs(imp).max()) or 1.0
        cells = []
        for i, (base, v) in enumerate(zip(self.sequence, imp)):
            a = min(1.0, abs(float(v)) / scale)
            colour = f"rgba(0,150,0,{a:.2f})" if v > 0 else f"rgba(200,0,0,{a:.2f})"
            cells.append(f'<span title="{self.offset + i}: {base} {v:+.4f}" style="background:{colour}">{html.escape(base)}</span>')
        head = html.escape(f"{self.question} = {self.label} (p {self.probability:.3f}); in-silico mutagenesis over {len(self.sequence)} nt")
        return f'<div><div>{head}</div><div style="font-family:monospace;word-break:break-all">{"".join(cells)}</div></div>'


def check_explainable(prompt: Prompt) -> None:
    """Explanations are of classification answers about a sequence; anything else is refused."""
    if not prompt.task.labels:
        raise InputError(
            f"explain needs a classification question (a task with labels, e.g. 'core promoter'); {prompt.question!r} "
            f"of task {prompt.task.id} answers {prompt.task.answer_kind}, which in-silico mutagenesis does not score"
        )
    if not prompt.sequence:
        raise InputError(f"explain needs a nucleotide sequence in the prompt; {prompt.text()!r} has none")
    if len(prompt.sequence) > MAX_EXPLAIN_NT:
        raise InputError(
            f"a sequence of {len(prompt.sequence):,} nt is too long to explain at once (at most {MAX_EXPLAIN_NT:,} nt); "
            "use --window-size to explain it window by window"
        )


def variant_prompts(prompt: Prompt) -> Iterator[tuple[int, int, Prompt]]:
    """(position, base index, prompt) for every substitution of the prompt's sequence."""
    seq = prompt.sequence
    for i, own in enumerate(seq):
        for b, base in enumerate(BASES):
            if base != own:
                s = seq[:i] + base + seq[i + 1 :]
                yield i, b, replace(prompt, items=tuple(SequenceItem(s) if isinstance(x, SequenceItem) else x for x in prompt.items))


def explain_prompt(
    llm, prompt: Prompt | str, batch_size: int = 64, progress=None, id: str | None = None, offset: int = 1, where: str | None = None
) -> Explanation:
    """ISM of one prompt with a loaded :class:`~.engine.GenomicLLM` (batches of ``batch_size``)."""
    if isinstance(prompt, str):
        prompt = parse_prompt(prompt)
    check_explainable(prompt)
    first = next(llm.answer([prompt], where=[where] if where else None))
    labels = tuple(prompt.task.labels)
    reference = np.array([first.labels[x] for x in labels])
    probs = np.repeat(reference[None, None, :], len(prompt.sequence), axis=0).repeat(4, axis=1)
    jobs = list(variant_prompts(prompt))
    for start in range(0, len(jobs), batch_size):
        part = jobs[start : start + batch_size]
        for (i, b, _), got in zip(part, llm.label_probabilities_of_variants(prompt, [p for _, _, p in part], batch_size)):
            probs[i, b] = [got[x] for x in labels]
        if progress:
            progress(len(part))
    return Explanation(prompt.text(), prompt.task.id, prompt.question, prompt.sequence, labels, first.answer, reference, probs, id, offset)


def tiled_jobs(jobs: Iterable, window_size: int | None) -> Iterator[tuple]:
    """Split each ``(record id, prompt, None)`` job into non-overlapping tiles of ``window_size`` nt
    (the last one shorter): unlike predict's windows, every base is explained exactly once, so the
    per-base output (and a bedGraph of it) has one row per position."""
    if window_size is not None and window_size < 1:
        raise InputError(f"--window-size must be a positive number of nucleotides, not {window_size}")
    for rid, prompt, _ in jobs:
        seq = prompt.sequence
        if not window_size or len(seq) <= window_size:
            yield rid, prompt, None
            continue
        for s in range(0, len(seq), window_size):
            tile = seq[s : s + window_size]
            items = tuple(SequenceItem(tile) if isinstance(x, SequenceItem) else x for x in prompt.items)
            yield rid, replace(prompt, items=items), (s + 1, s + len(tile))


def explain_jobs(llm, jobs: Iterable, batch_size: int = 64, progress=None) -> Iterator[Explanation]:
    """Explanations of ``(record id, prompt, window)`` jobs (:func:`~.engine.prediction_jobs`), in order."""
    for rid, prompt, window in jobs:
        where = f"record {rid!r}" + (f" window {window[0]}-{window[1]}" if window else "")
        try:
            check_explainable(prompt)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
        yield explain_prompt(llm, prompt, batch_size, progress, rid, window[0] if window else 1, where)


def explanation_faithfulness(explanations: Iterable[Explanation], llm, top: int = 10, seed: int = 0) -> dict:
    """The deletion test of attribution methods: on sequences the model calls True, set the ``top``
    most important bases to the model's least-favoured base and, separately, ``top`` random bases to
    a random other base; report the mean drop of p(True) of each and their ratio."""
    rng = np.random.default_rng(seed)
    drops_top, drops_random = [], []
    for e in explanations:
        if e.label != "True" or len(e.sequence) < 2 * top:
            continue
        worst = e.least_favoured_bases()
        order = np.argsort(-e.importance)[:top]
        picks = rng.choice(len(e.sequence), size=top, replace=False)
        seq_top, seq_rand = list(e.sequence), list(e.sequence)
        for i in order:
            seq_top[i] = worst[i]
        for i in picks:
            seq_rand[i] = rng.choice([b for b in BASES if b != e.sequence[i]])
        base = parse_prompt(e.prompt)
        mutated = [
            replace(base, items=tuple(SequenceItem("".join(s)) if isinstance(x, SequenceItem) else x for x in base.items))
            for s in (seq_top, seq_rand)
        ]
        a_top, a_rand = llm.answer(mutated)
        drops_top.append(e.probability - a_top.labels["True"])
        drops_random.append(e.probability - a_rand.labels["True"])
    n = len(drops_top)
    mean_top = float(np.mean(drops_top)) if n else float("nan")
    mean_rand = float(np.mean(drops_random)) if n else float("nan")
    return {
        "n": n,
        "top": top,
        "drop_top": mean_top,
        "drop_random": mean_rand,
        "ratio": mean_top / mean_rand if n and mean_rand > 0 else float("nan"),
    }
