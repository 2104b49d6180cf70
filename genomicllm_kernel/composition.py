"""k-mer composition of a prompt's DNA: the extra model input that lets a small LM read motifs.

Why this exists (``docs/experiments.md`` has the measurements): a causal LM over non-overlapping
3-mer tokens sees a 6-10 nt motif as a different token string in each of its three phases, and at
the sizes trained here it did not learn to pool motif counts on its own. The 4-mer and 5-mer
frequencies of the sequence, projected by one linear layer and added to the embedding of the
prompt's final ``<ans>`` token (the position every answer is read from), gave +0.03 to +0.18 MCC on
every GUE TF set and +0.04 on core promoters in equal-compute proxy runs. The grammar is unchanged:
the features are computed from the sequence items by this module, identically for training (from
token ids) and for inference (PyTorch and ONNX Runtime).

Counts are per sequence item and summed (no k-mer spans an item boundary); a k-mer containing N is
not counted. Each k's counts are normalised to frequencies and scaled by 4**k / 16, so every block
has the same mean (1/16) whatever the sequence length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASE_CODE = {"A": 0, "C": 1, "G": 2, "T": 3}
#: the k-mer sizes of the default model (1,280 features)
DEFAULT_KS = (4, 5)


def feature_size(ks=DEFAULT_KS) -> int:
    return sum(4**k for k in ks)


#: byte -> base code (0-3 for A/C/G/T in either case, 4 for anything else), built once: this runs per prompt
_CODE_TABLE = np.full(256, 4, dtype=np.int64)
for _base, _code in BASE_CODE.items():
    _CODE_TABLE[ord(_base)] = _CODE_TABLE[ord(_base.lower())] = _code


def _codes(sequence: str) -> np.ndarray:
    """Bases as 0-3, anything else (N, other IUPAC codes) as 4."""
    return _CODE_TABLE[np.frombuffer(sequence.encode("ascii", "replace"), dtype=np.uint8)]


def kmer_counts(sequences, k: int) -> np.ndarray:
    """Summed k-mer counts (length 4**k) over ``sequences`` (k-mers with a non-ACGT base skipped)."""
    return kmer_counts_rows([sequences], k)[0]


#: the code that joins two items in :func:`kmer_counts_rows`: not a base, so no k-mer spans it
_SEPARATOR = np.array([4], dtype=np.int64)


def kmer_counts_rows(rows, k: int) -> np.ndarray:
    """[len(rows), 4**k] float64: the summed k-mer counts of each row's sequences, in one pass of numpy.

    Why: a forward pass of in-silico mutagenesis or a scan feeds hundreds of prompts, and counting
    them one by one in Python was a visible share of an explanation (bench/ANALYSIS.md, fourth run:
    3.86 -> 3.44 s per 300 nt once batched). The rows'
    items are joined with a non-base code between them, so no counted k-mer spans two items or two
    rows: each row's counts are its own (tested against the rows counted one at a time)."""
    size = 4**k
    pieces, owners = [], []
    for r, seqs in enumerate(rows):
        for seq in seqs:
            if seq:
                c = _codes(seq)
                pieces += [c, _SEPARATOR]
                owners.append(np.full(len(c) + 1, r, dtype=np.int64))
    out = np.zeros((len(rows), size), dtype=np.float64)
    if not pieces:
        return out
    c, owner = np.concatenate(pieces), np.concatenate(owners)
    n = len(c) - k + 1
    if n <= 0:
        return out
    code = np.zeros(n, dtype=np.int64)
    bad = np.zeros(n, dtype=bool)
    for j in range(k):
        col = c[j : j + n]
        code = code * 4 + np.minimum(col, 3)
        bad |= col >= 4
    good = ~bad
    out += np.bincount(owner[:n][good] * size + code[good], minlength=len(rows) * size).reshape(len(rows), size)
    return out


def composition_rows(rows, ks=DEFAULT_KS) -> np.ndarray:
    """[len(rows), features] float32: :func:`composition` of each row's sequence items (the same
    numbers, computed for all rows at once)."""
    blocks = []
    for k in ks:
        f = kmer_counts_rows(rows, k)
        total = f.sum(axis=1, keepdims=True)
        blocks.append(f / np.maximum(total, 1.0) * (4**k / 16))
    return np.concatenate(blocks, axis=1).astype(np.float32) if blocks else np.zeros((len(rows), 0), dtype=np.float32)


def positional_rows(rows, bins: int, ks) -> np.ndarray:
    """[len(rows), bins * features]: :func:`positional` of each row, for all rows at once."""
    if not bins:
        return np.zeros((len(rows), 0), dtype=np.float32)
    parts = []
    for seqs in rows:
        cut = [np.linspace(0, len(seq), bins + 1).round().astype(int) for seq in seqs]
        parts += [[seq[c[b] : c[b + 1]] for seq, c in zip(seqs, cut)] for b in range(bins)]
    return composition_rows(parts, ks).reshape(len(rows), -1)


def phased_rows(rows, ks) -> np.ndarray:
    """[len(rows), 3 * features]: for each phase r = 0, 1, 2, the ``ks``-mer frequencies (as
    :func:`composition`) of the k-mers that start at positions r, r + 3, r + 6, ... of each sequence
    item, summed over the items: the codons of each reading frame. Why: whether a window is coding,
    and in which frame, is a property of its codons in one phase (no stop codon, codon usage), and a
    bag of the whole sequence's k-mers mixes the three frames into one (docs/experiments.md, stage 12)."""
    if not ks:
        return np.zeros((len(rows), 0), dtype=np.float32)
    blocks = []
    for k in ks:
        # one phase's k-mers joined by a non-base, so that exactly those k-mers are counted
        parts = [["N".join(seq[i : i + k] for i in range(r, len(seq) - k + 1, 3)) for seq in seqs] for seqs in rows for r in range(3)]
        blocks.append(composition_rows(parts, (k,)).reshape(len(rows), 3, 4**k))
    return np.concatenate(blocks, axis=2).reshape(len(rows), -1).astype(np.float32)


def composition(sequences, ks=DEFAULT_KS) -> np.ndarray:
    """The feature vector (float32) of one prompt's sequence items."""
    return composition_rows([sequences], ks)[0]


def positional(sequences, bins: int, ks) -> np.ndarray:
    """k-mer frequencies (as :func:`composition`) of each of ``bins`` equal parts of every sequence
    item, part ``b`` summed over the items: where a k-mer sits in an aligned window (a TSS, a peak
    centre) carries signal one bag of the whole sequence cannot see (docs/experiments.md, stage 8e)."""
    return positional_rows([sequences], bins, ks)[0]


@dataclass(frozen=True)
class Layout:
    """What one block of the composition input holds: the whole sequence's ``ks``-mer frequencies
    (what the input-side projection reads), then, with ``bins``, the ``bin_ks``-mer frequencies of
    each of ``bins`` equal parts (read by the per-question head only)."""

    ks: tuple = DEFAULT_KS
    bins: int = 0
    bin_ks: tuple = ()
    #: the composition blocks (question keys, codec.composition_block) whose positional part is
    #: filled; empty: every block. Other blocks keep it at zero (the head's columns there read nothing)
    bin_blocks: tuple = ()
    #: the ``phase_ks``-mers of each reading frame (:func:`phased_rows`), placed between the whole
    #: sequence's part and the positional part, and filled only in ``phase_blocks`` (never empty
    #: when ``phase_ks`` is set: a frame is a question of coding windows, not of every block)
    phase_ks: tuple = ()
    phase_blocks: tuple = ()
    #: the best log-odds score of each motif (a motifs.MotifSet: JASPAR matrices) over the sequence
    #: items, placed after the positional part and filled only in ``motif_blocks``: a binding site is
    #: one pattern with tolerated mismatches, which a bag of k-mers spreads over hundreds of words
    #: (docs/experiments.md, stage 14); None: no motif part
    motifs: object = None
    motif_blocks: tuple = ()
    #: the five log-likelihoods of a likelihoods.SequenceLikelihoods (each reading frame under a coding
    #: chain, the sequence forwards and backwards under an mRNA chain), placed last and filled only in
    #: ``likelihood_blocks``; read by the heads shared over a question's labels (head_symmetry) only
    #: (docs/experiments.md, stage 18); None: no likelihood part
    likelihoods: object = None
    likelihood_blocks: tuple = ()

    @property
    def whole_size(self) -> int:
        return feature_size(self.ks)

    @property
    def phase_size(self) -> int:
        return 3 * feature_size(self.phase_ks) if self.phase_ks else 0

    @property
    def bins_start(self) -> int:
        return self.whole_size + self.phase_size

    @property
    def motif_start(self) -> int:
        return self.bins_start + self.bins * feature_size(self.bin_ks)

    @property
    def likelihood_start(self) -> int:
        return self.motif_start + (len(self.motifs) if self.motifs is not None else 0)

    @property
    def size(self) -> int:
        return self.likelihood_start + (len(self.likelihoods) if self.likelihoods is not None else 0)

    def vector(self, sequences, block: str | None = None) -> np.ndarray:
        """One block's features; ``block`` (its key) decides whether the positional part is filled."""
        return self.vectors([sequences], [block])[0]

    def vectors(self, rows, blocks=None) -> np.ndarray:
        """[len(rows), size]: :meth:`vector` of each row's sequence items (``blocks``: each row's
        block key, or None), computed for all rows at once."""
        out = np.zeros((len(rows), self.size), dtype=np.float32)
        if not rows:
            return out
        out[:, : self.whole_size] = composition_rows(rows, self.ks)
        keys = blocks if blocks is not None else [None] * len(rows)
        if self.phase_ks:
            phased = [i for i, key in enumerate(keys) if key in self.phase_blocks]
            if phased:
                out[phased, self.whole_size : self.bins_start] = phased_rows([rows[i] for i in phased], self.phase_ks)
        if self.bins:
            filled = [i for i, key in enumerate(keys) if not self.bin_blocks or key in self.bin_blocks]
            if filled:
                out[filled, self.bins_start : self.motif_start] = positional_rows([rows[i] for i in filled], self.bins, self.bin_ks)
        if self.motifs is not None:
            scored = [i for i, key in enumerate(keys) if key in self.motif_blocks]
            if scored:
                out[scored, self.motif_start : self.likelihood_start] = self.motifs.features([rows[i] for i in scored])
        if self.likelihoods is not None:
            read = [i for i, key in enumerate(keys) if key in self.likelihood_blocks]
            if read:
                out[read, self.likelihood_start :] = self.likelihoods.features([rows[i] for i in read])
        return out


#: (kind, id of a config's value) -> (that value, the object built from it): a model's forward pass
#: reads its layout each call, and building 1,000 motif matrices (or the Markov chains) from a
#: config's lists each time would dominate it
_BUILT: dict[tuple[str, int], tuple] = {}


def _built(kind: str, spec, build):
    """``build(spec)``, once per config value (None for an empty one)."""
    if not spec:
        return None
    cached = _BUILT.get((kind, id(spec)))
    if cached is None or cached[0] is not spec:
        cached = _BUILT[(kind, id(spec))] = (spec, build(spec))  # the value kept: its id stays its own
    return cached[1]


def _motif_set(spec):
    from .motifs import MotifSet

    return _built("motifs", spec, MotifSet.from_config)


def _likelihoods(spec):
    from .likelihoods import SequenceLikelihoods

    return _built("likelihoods", spec, SequenceLikelihoods.from_config)


def as_layout(spec) -> Layout:
    """A :class:`Layout` from a layout, a tuple of k-mer sizes, or a model config (object or dict)."""
    if isinstance(spec, Layout):
        return spec
    if isinstance(spec, (list, tuple)):
        return Layout(tuple(spec))
    get = spec.get if isinstance(spec, dict) else lambda key, default=None: getattr(spec, key, default)
    bins = int(get("composition_bins", 0) or 0)
    phases = dict(phase_ks=tuple(get("composition_phase_ks", ()) or ()), phase_blocks=tuple(get("composition_phase_blocks", ()) or ()))
    motifs = _motif_set(get("composition_motifs", None))
    if motifs is not None:
        phases.update(motifs=motifs, motif_blocks=tuple(get("composition_motif_blocks", ()) or ()))
    likelihoods = _likelihoods(get("composition_likelihoods", None))
    if likelihoods is not None:
        phases.update(likelihoods=likelihoods, likelihood_blocks=tuple(get("composition_likelihood_blocks", ()) or ()))
    if not bins:
        return Layout(tuple(get("composition_ks")), **phases)
    return Layout(
        tuple(get("composition_ks")), bins, tuple(get("composition_bin_ks", ()) or ()), tuple(get("composition_bin_blocks", ()) or ()), **phases
    )
