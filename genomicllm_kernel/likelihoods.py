"""Coding and strand likelihoods: two Markov chains of the training transcripts, read as features.

Why (docs/experiments.md, stage 18): the open-reading-frame and sequence-direction heads read the
codons of each frame and the k-mers of the sequence, fitted on a few thousand head-fit windows, and
missed issue #20's targets (dev ORF accuracy 0.899, direction MCC 0.863). The classic statistics of
gene finders answer exactly these questions from far more sequence: a three-periodic Markov chain of
coding sequence (GeneMark's) gives each reading frame the log-likelihood of the window read in it, and
a Markov chain of mRNA gives the window read forwards and read backwards theirs. Both are counted
once, by ``genomicllm data build``, on the training transcripts only (never a dev, test or
evaluation-only region), and carried in the model's config like the JASPAR matrices, so inference
needs nothing else. Their order was chosen by five-fold cross-validation over training transcripts
(``scripts/likelihood_order.py``).

A row's log-likelihoods are five sums over its sequence items (natural log, in nats): ``frame 1``,
``frame 2``, ``frame 3`` (the window read with its codons starting at base 1, 2, 3), ``forwards``
and ``backwards`` (the window and its reversal under the mRNA chain); positions whose context or
base is not A/C/G/T add nothing. Its features are each of them minus the mean of its question's
readings (:meth:`SequenceLikelihoods.features`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .composition import _codes

#: the corpus file ``genomicllm data build`` writes them to
FILENAME = "sequence_likelihoods.json"
#: the Markov order of both chains (scripts/likelihood_order.py: 5-fold CV over training transcripts)
DEFAULT_ORDER = 4
#: the features, in column order
COLUMNS = ("frame 1", "frame 2", "frame 3", "forwards", "backwards")
#: added to every count (a base never seen after a context keeps a finite log-probability)
PSEUDOCOUNT = 0.5


def _contexts(codes: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """(context index of each position >= order, whether it and its base are A/C/G/T)."""
    n = len(codes) - order
    if n <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    ctx = np.zeros(n, dtype=np.int64)
    ok = np.ones(n, dtype=bool)
    for j in range(order + 1):
        col = codes[j : j + n]
        ok &= col < 4
        if j < order:
            ctx = ctx * 4 + np.minimum(col, 3)
    return ctx, ok


@dataclass(frozen=True, eq=False)
class SequenceLikelihoods:
    """``coding`` [3, 4**order, 4]: log P(base | previous ``order`` bases, the base's codon position);
    ``mrna`` [4**order, 4]: log P(base | previous bases) of spliced transcripts, 5' to 3'."""

    order: int
    coding: np.ndarray
    mrna: np.ndarray
    source: str = ""

    @classmethod
    def count(cls, cds, mrna, order: int = DEFAULT_ORDER, source: str = "") -> SequenceLikelihoods:
        """Counted from whole coding sequences (each starting at a codon's first base) and mRNAs."""
        size = 4**order
        coding = np.full((3, size, 4), PSEUDOCOUNT)
        for seq in cds:
            c = _codes(seq)
            ctx, ok = _contexts(c, order)
            pos = np.arange(order, len(c))[ok]
            np.add.at(coding, (pos % 3, ctx[ok], c[order:][ok]), 1)
        chain = np.full((size, 4), PSEUDOCOUNT)
        for seq in mrna:
            c = _codes(seq)
            ctx, ok = _contexts(c, order)
            np.add.at(chain, (ctx[ok], c[order:][ok]), 1)
        normal = lambda a: np.log(a / a.sum(-1, keepdims=True))  # noqa: E731
        return cls(order, normal(coding).astype(np.float32), normal(chain).astype(np.float32), source)

    def __len__(self) -> int:
        return len(COLUMNS)

    def to_config(self) -> dict:
        """JSON-able (5 decimals), carried in a model's config.json as ``composition_likelihoods``."""
        r = lambda a: np.round(a.astype(np.float64), 5).tolist()  # noqa: E731
        return {"source": self.source, "order": self.order, "coding": r(self.coding), "mrna": r(self.mrna)}

    @classmethod
    def from_config(cls, spec: dict) -> SequenceLikelihoods:
        order = int(spec["order"])
        coding = np.asarray(spec["coding"], dtype=np.float32).reshape(3, 4**order, 4)
        mrna = np.asarray(spec["mrna"], dtype=np.float32).reshape(4**order, 4)
        return cls(order, coding, mrna, spec.get("source", ""))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_config()))

    @classmethod
    def load(cls, path: str | Path) -> SequenceLikelihoods:
        return cls.from_config(json.loads(Path(path).read_text()))

    def _one(self, seq: str) -> np.ndarray:
        out = np.zeros(len(COLUMNS), dtype=np.float64)
        c = _codes(seq)
        ctx, ok = _contexts(c, self.order)
        if ok.any():
            pos = np.arange(self.order, len(c))[ok]
            ctx, base = ctx[ok], c[self.order :][ok]
            for i in range(3):  # codons start at base i + 1: base p sits at codon position (p - i) mod 3
                out[i] = self.coding[(pos - i) % 3, ctx, base].sum()
            out[3] = self.mrna[ctx, base].sum()
        r = c[::-1]  # the reversed sequence's codes, without encoding it again
        ctx, ok = _contexts(r, self.order)
        if ok.any():
            out[4] = self.mrna[ctx[ok], r[self.order :][ok]].sum()
        return out

    def log_likelihoods(self, rows) -> np.ndarray:
        """[len(rows), 5] float64: each row's five log-likelihoods, summed over its sequence items."""
        out = np.zeros((len(rows), len(COLUMNS)), dtype=np.float64)
        for i, seqs in enumerate(rows):
            for seq in seqs:
                if seq:
                    out[i] += self._one(seq)
        return out

    def features(self, rows) -> np.ndarray:
        """[len(rows), 5] float32: :meth:`log_likelihoods`, each reading against the mean of its
        question's readings (the three frames; forwards and backwards): a log-likelihood ratio.
        Why: a shared head's softmax over the readings is blind to what all of them add, but the
        fit standardises each column over rows, and the raw sums (hundreds of nats, growing with
        the window) would make the few nats that tell the readings apart a sliver of one standard
        deviation, which the ridge then shrinks away (docs/experiments.md, stage 18)."""
        out = self.log_likelihoods(rows)
        out[:, :3] -= out[:, :3].mean(axis=1, keepdims=True)
        out[:, 3:] -= out[:, 3:].mean(axis=1, keepdims=True)
        return out.astype(np.float32)

    def predict_frame(self, seq: str) -> int:
        """0-based start of the codons (the frame label minus one) that the coding chain prefers."""
        return int(np.argmax(self._one(seq)[:3]))
