"""Label symmetries: a question whose labels are one reading of the sequence under different views
(a reading frame, a reading direction) gets one scoring function shared over its labels.

Why (docs/experiments.md, stage 13): the per-question head is a free multinomial regression, so the
open-reading-frame head learnt 3 x 3 x 64 weights (each label over the codons of every frame) from
2,564 rows. But label "k" says the codons start at base k: its logit should be the *same* function
of frame k's codons for every k, as a convolution shares its filter over positions. Likewise the
"reverse" answer for a sequence is the "forward" answer for it read backwards. Shared, the head
has a third (a half) of the weights, each fitted on every row: the held-out loss fell from 0.249
to 0.193 (ORF) and 0.183 to 0.177 (direction) (``scripts/head_fit_shared.py``). A question whose
label ignores the strand (:class:`StrandInvariance`) gets one weight per k-mer and reverse
complement pair; the held-out loss fell on every such block (``scripts/head_fit_strand.py``).

A symmetry is exact in the model's linear head: :meth:`LabelSymmetry.place` turns the shared
weights into one column per label over the block's features (``X @ place(v) == views(X) @ v``), so
the model class, its ONNX graph and every other block stay what they were. Both are column maps
(``columns``): a label's view is a selection of the block's own columns, so any part of the layout
(the thirds of the sequence, the reading frames, each label's log-likelihood: likelihoods.py) can be
shared without new features.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from .composition import Layout, feature_size


class LabelSymmetry:
    """How each label of a question views a row's features (composition.Layout's block vector): for
    each label, the block's columns its logit reads, the same number for every label."""

    name = ""

    def parts(self, layout: Layout, block: str | None = None) -> tuple[str, ...]:
        """The feature parts the shared fit of ``block`` may read (tried in turn, as fit_block tries
        its parts); a part ``P+likelihood`` is P plus each label's log-likelihood (likelihoods.py),
        offered where the block's likelihood columns are filled."""
        raise NotImplementedError

    #: which of the layout's likelihood columns (likelihoods.COLUMNS) each label reads
    likelihood_columns: tuple = ()

    @staticmethod
    def reads_likelihoods(layout: Layout, block: str | None) -> bool:
        return layout.likelihoods is not None and block in layout.likelihood_blocks

    def _with_likelihood(self, layout: Layout, part: str, base) -> np.ndarray:
        """[labels, F']: the views of ``part``, whose ``+likelihood`` suffix adds each label's column."""
        name, _, extra = part.partition("+")
        own = np.array([[layout.likelihood_start + i] for i in self.likelihood_columns], dtype=np.int64)
        if name == "likelihood":
            return own
        cols = base(name)
        return np.concatenate([cols, own], axis=1) if extra == "likelihood" else cols

    def columns(self, layout: Layout, part: str) -> np.ndarray:
        """[labels, F'] int: label ``j``'s view of a row is ``X[:, columns[j]]``."""
        raise NotImplementedError

    def views(self, X: np.ndarray, layout: Layout, part: str) -> np.ndarray:
        """[rows, labels, F']: the features that each label's logit reads."""
        return np.stack([np.asarray(X[:, cols]) for cols in self.columns(layout, part)], axis=1)

    def place(self, v: np.ndarray, layout: Layout, n_labels: int, part: str) -> np.ndarray:
        """[layout.size, labels]: the block's weights with ``X @ W == views(X) @ v`` for every row."""
        W = np.zeros((layout.size, n_labels))
        for j, cols in enumerate(self.columns(layout, part)[:n_labels]):
            W[cols, j] = v  # within one label no column repeats
        return W

    def usable(self, layout: Layout, block: str) -> bool:
        """Whether the block's features hold what the views read."""
        return True


class ReadingFrames(LabelSymmetry):
    """Label ``i`` (frame i + 1, counted from the first base) reads the phased k-mers of reading
    frame ``i`` (composition.phased_rows: the k-mers starting at i, i + 3, ...)."""

    name = "reading frame"
    #: label i reads the window read with its codons starting at base i + 1
    likelihood_columns = (0, 1, 2)

    def _frames(self, layout, block) -> bool:
        return bool(layout.phase_ks) and (block is None or block in layout.phase_blocks)

    def parts(self, layout, block=None):
        frames = ("frames",) if self._frames(layout, block) else ()
        if not self.reads_likelihoods(layout, block):
            return frames
        return frames + ("likelihood",) + tuple(f"{p}+likelihood" for p in frames)

    def columns(self, layout, part):
        def frames(_):
            size = feature_size(layout.phase_ks)
            return np.stack([layout.whole_size + frame * size + np.arange(size) for frame in range(3)])

        return self._with_likelihood(layout, part, frames)

    def usable(self, layout, block):
        return self._frames(layout, block) or self.reads_likelihoods(layout, block)


class Reversal(LabelSymmetry):
    """Label 0 (forward) reads the whole sequence's k-mer frequencies, and with the ``positional``
    part its thirds' too; label 1 (reverse) the same of the sequence read backwards: each k-mer's
    column taken from its reversal's, and the thirds in reverse order (the cut points of a length
    that is not a multiple of three move by one base; the head stays exactly its views)."""

    name = "reversal"
    #: forward reads the sequence's log-likelihood under the mRNA chain, reverse its reversal's
    likelihood_columns = (3, 4)

    @staticmethod
    def permutation(ks) -> np.ndarray:
        """Column ``i`` of the backwards sequence's frequencies is column ``P[i]`` of its own."""
        return kmer_permutation(ks, lambda m: m[::-1])

    def parts(self, layout, block=None):
        own = ("whole", "positional") if layout.bins else ("whole",)
        if not self.reads_likelihoods(layout, block):
            return own
        return own + ("likelihood",) + tuple(f"{p}+likelihood" for p in own)

    def columns(self, layout, part):
        def kmers(name):
            forward, backward = [np.arange(layout.whole_size)], [self.permutation(layout.ks)]
            if name == "positional":
                size, P = feature_size(layout.bin_ks), self.permutation(layout.bin_ks)
                forward += [layout.bins_start + b * size + np.arange(size) for b in range(layout.bins)]
                backward += [layout.bins_start + (layout.bins - 1 - b) * size + P for b in range(layout.bins)]
            return np.stack([np.concatenate(forward), np.concatenate(backward)])

        return self._with_likelihood(layout, part, kmers)


class StrandInvariance:
    """The label does not depend on the strand read (registry.Task.strand_symmetric): the head reads
    each row's features averaged with its reverse complement's (each k-mer's column with its reverse
    complement's, the thirds in reverse order), so a k-mer and its reverse complement share one
    weight, fitted on the evidence of both. ``fold`` and ``place`` keep it exact in the free head:
    ``fold(X) @ W == X @ place(W)``."""

    name = "strand"

    def columns(self, layout: Layout) -> np.ndarray:
        """[layout.size] int: column ``i`` of the reverse complement's vector is column ``Q[i]`` of the
        row's own (the reading frames' columns, filled only for coding questions, map to themselves)."""
        Q = np.arange(layout.size)
        Q[: layout.whole_size] = kmer_permutation(layout.ks, reverse_complement)
        if layout.bins:
            size, P = feature_size(layout.bin_ks), kmer_permutation(layout.bin_ks, reverse_complement)
            for b in range(layout.bins):
                Q[layout.bins_start + b * size : layout.bins_start + (b + 1) * size] = layout.bins_start + (layout.bins - 1 - b) * size + P
        return Q

    def fold(self, X, layout: Layout):
        """The rows' features averaged with their reverse complement's (dense or scipy sparse)."""
        return (X + X[:, self.columns(layout)]) / 2

    def place(self, W: np.ndarray, layout: Layout) -> np.ndarray:
        """Weights fitted on folded features, as weights on the row's own (Q is an involution)."""
        return (W + W[self.columns(layout)]) / 2


def reverse_complement(kmer: str) -> str:
    return kmer[::-1].translate(str.maketrans("ACGT", "TGCA"))


def kmer_permutation(ks, transform) -> np.ndarray:
    """Index array over the concatenated ks-mer columns: entry ``i`` is the column of ``transform``
    of column ``i``'s k-mer (a reversal, a reverse complement)."""
    out, at = [], 0
    for k in ks:
        kmers = ["".join(p) for p in product("ACGT", repeat=k)]
        index = {m: i for i, m in enumerate(kmers)}
        out += [at + index[transform(m)] for m in kmers]
        at += 4**k
    return np.array(out, dtype=np.int64)


#: registry.Task.label_symmetry -> the object
SYMMETRIES = {s.name: s for s in (ReadingFrames(), Reversal())}
