"""Transcription-factor motifs (JASPAR position weight matrices) and each sequence's best match.

Why: a ChIP-seq peak is defined by one factor's binding site, a 6-20 nt pattern that tolerates
mismatches at some positions and not at others. A bag of k-mers (composition.py) spreads that
pattern over hundreds of exact words, each with a weight of its own; a position weight matrix scores
the whole pattern at once, and the best score over a window says whether the site is there. On the
GUE TF sets the best log-odds score of each of 1,019 JASPAR vertebrate matrices, in a logistic
regression, scored above the k-mer (3-6) regression on the same rows (``scripts/motif_proxy.py``,
docs/experiments.md, stage 14). The same scores, ranked per set, say which factor family each
unnamed GUE set is (``scripts/tf_motif_scan.py``).

The matrices come from the ``pyjaspar`` package (the JASPAR SQLite release inside its wheel; no
network), read by Biopython's ``Bio.motifs``; scoring is numpy: one matrix product per motif width
over every window of every sequence, both strands.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .errors import InputError

#: the JASPAR release and subset the proxies and the scan read (pyjaspar==4.0.0 ships it)
RELEASE = "JASPAR2026"
COLLECTION = "CORE"
TAX_GROUP = "vertebrates"
#: added to each count before the matrix is normalised (Biopython's pseudocounts)
PSEUDOCOUNT = 0.5

_ONE_HOT = np.zeros((256, 4), dtype=np.float32)
for _i, _base in enumerate("ACGT"):
    _ONE_HOT[ord(_base), _i] = _ONE_HOT[ord(_base.lower()), _i] = 1.0


@dataclass(frozen=True, eq=False)
class MotifSet:
    """Log-odds matrices ([width, 4] over A, C, G, T, uniform background) with their JASPAR ids and
    names. A model that reads motif scores carries its set in its config (:meth:`to_config`), so
    inference needs neither pyjaspar nor the release: the numbers it was fitted on travel with it."""

    ids: tuple[str, ...]
    names: tuple[str, ...]
    matrices: tuple[np.ndarray, ...]
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    def to_config(self) -> dict:
        """JSON-able: {"source", "ids", "names", "matrices" (rows of A, C, G, T, 4 decimals)}."""
        mats = [[[round(float(x), 4) for x in row] for row in m] for m in self.matrices]
        return {"source": self.source, "ids": list(self.ids), "names": list(self.names), "matrices": mats}

    @classmethod
    def from_config(cls, spec: dict) -> MotifSet:
        mats = tuple(np.asarray(m, dtype=np.float32).reshape(-1, 4) for m in spec["matrices"])
        return cls(tuple(spec["ids"]), tuple(spec["names"]), mats, spec.get("source", ""))

    @cached_property
    def _by_width(self) -> list[tuple[int, list[int], np.ndarray]]:
        """(width, motif indices, [width * 4, 2 * motifs] scores of a one-hot window: each matrix,
        then each reverse complement, rows reversed and A<->T, C<->G swapped), built once per set."""
        groups: dict[int, list[int]] = {}
        for j, m in enumerate(self.matrices):
            groups.setdefault(m.shape[0], []).append(j)
        out = []
        for width, js in sorted(groups.items()):
            W = np.concatenate([np.stack([self.matrices[j] for j in js], 2), np.stack([self.matrices[j][::-1, ::-1] for j in js], 2)], 2)
            out.append((width, js, np.ascontiguousarray(W.reshape(width * 4, -1))))
        return out

    @cached_property
    def lowest(self) -> np.ndarray:
        """[motifs] each matrix's lowest possible score (the floor of :meth:`features`)."""
        return np.array([m.min(axis=1).sum() for m in self.matrices], dtype=np.float32)

    #: windows per matrix product in :meth:`best_matches`: the [windows, 2 * motifs] scores of a
    #: width group then stay in cache; 2,048 rows of 300 nt at once ran 4.5x slower on 400
    #: sequences (70 nt: 7x) than 2,048 windows at a time (bench/ANALYSIS.md)
    WINDOWS_PER_PRODUCT = 2048

    def best_matches(self, sequences, chunk: int | None = None, centres: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """([n, motifs] float32 best log-odds score, [n, motifs] int32 its window's centre, 0-based)
        over every window of each sequence on either strand. A window holding a base other than
        A/C/G/T (N, an IUPAC code) scores -inf for every motif, and a sequence shorter than a motif
        has no window for it (-inf, centre -1): an unknown base is never read as a match.
        ``centres=False`` skips the positions (None): the features need the scores only.
        ``chunk``: sequences per product (default: :data:`WINDOWS_PER_PRODUCT` windows' worth).

        Why one matrix product per width: every window of every sequence of one width is a row of
        ``width * 4`` one-hot numbers, and every matrix of that width, with its reverse complement,
        is a column; the product is every score at once (the scan of a GUE set takes seconds)."""
        seqs = [str(s) for s in sequences]
        n = len(seqs)
        scores = np.full((n, len(self)), -np.inf, dtype=np.float32)
        where = np.full((n, len(self)), -1, dtype=np.int32) if centres else None
        if not n or not len(self):
            return scores, where
        X, known = _one_hot([_codes(s) for s in seqs])
        length = X.shape[1]
        chunk = chunk or max(1, self.WINDOWS_PER_PRODUCT // max(1, length))
        for width, js, W in self._by_width:
            if width > length:
                continue
            positions = length - width + 1
            for s in range(0, n, chunk):
                sc = _window_scores(X[s : s + chunk], known[s : s + chunk], width, W)  # [chunk, positions, 2m]
                if not centres:  # the best window first (a contiguous reduction), then the better strand
                    scores[s : s + chunk, js] = sc.max(axis=1).reshape(-1, 2, len(js)).max(axis=1)
                    continue
                sc = sc.reshape(-1, positions, 2, len(js)).max(axis=2)
                best = sc.argmax(axis=1)
                scores[s : s + chunk, js] = np.take_along_axis(sc, best[:, None, :], axis=1)[:, 0]
                where[s : s + chunk, js] = np.where(np.isfinite(scores[s : s + chunk, js]), best + width // 2, -1)
        return scores, where

    @cached_property
    def _nearby(self) -> _NearbyRescorer:
        return _NearbyRescorer(self)

    def features(self, sequences) -> np.ndarray:
        """[n, motifs] float32: each sequence's best score per motif (sequences: one string, or a list of
        a prompt's sequence items, whose best is the best over its items), a motif with no window
        (a short or unknown sequence) at its lowest possible score: a regression's input, finite.

        A sequence a few bases away from one scored shortly before (in-silico mutagenesis, a
        variant's alt window beside its ref) is rescored only where its windows changed
        (:class:`_NearbyRescorer`): the same scores to float rounding, a fraction of the work."""
        rows = [[s] if isinstance(s, str) else list(s) for s in sequences]
        flat = [str(s) for r in rows for s in r]
        scores = self._nearby.best(flat)
        lowest = self.lowest
        out = np.tile(lowest, (len(rows), 1))
        at = 0
        for i, r in enumerate(rows):
            if r:
                out[i] = np.maximum(lowest, scores[at : at + len(r)].max(axis=0))
            at += len(r)
        return out


class _NearbyRescorer:
    """Best scores of sequences that differ from a recently scored one at a few nearby bases.

    Why: ``genomicllm explain`` scores 900 sequences one substitution away from one reference, and
    ``genomicllm variants`` each alt window one base (or a few) away from its ref window; the full
    product re-reads every window of every sequence, but a substitution at position p changes only
    the windows that cover p. For a reference, each width's prefix and suffix maxima of its window
    scores give the best over the untouched windows in one lookup; the windows around the changes
    are recomputed from the sequence itself (so an N or any base is handled as the full path does).
    Equal to :meth:`MotifSet.best_matches` to float rounding (tested).

    Sequences scored in full are remembered by their bytes only (the last ``RECENT`` per length);
    a reference's maxima are built the first time SHARED sequences of a call are near it (about
    the cost of a few full scorings) and kept for the last ``PREPARED`` references. A scan, whose
    windows are never near each other, pays a byte comparison per window and nothing else."""

    RECENT = 64
    PREPARED = 32
    #: a reference's maxima are built once this many sequences of one call are near it
    SHARED = 8
    #: at most this many bases between the first and the last change (else: a full scoring)
    SPAN = 16

    def __init__(self, motifs: MotifSet):
        self.motifs = motifs
        self._recent: dict[int, OrderedDict] = {}
        self._prepared: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self):  # a copy (a head fit's worker process) starts with empty caches and its own lock
        return {"motifs": self.motifs}

    def __setstate__(self, state):
        self.__init__(state["motifs"])

    def best(self, seqs: list[str]) -> np.ndarray:
        """[n, motifs] best scores (-inf where a motif has no valid window), as ``best_matches``.

        A sequence near a remembered one (earlier in this call included) is rescored when that
        reference's maxima exist or at least SHARED sequences of the call are near it: building the
        maxima costs a few full scorings (a running maximum has no vector kernel), so a lone alt
        window beside its ref is cheaper in the batched full product. Any other sequence is scored
        in full and remembered."""
        n = len(seqs)
        scores = np.full((n, len(self.motifs)), -np.inf, dtype=np.float32)
        codes = [_codes(s.upper()) for s in seqs]  # soft-masked (lower-case) bases score as upper-case ones
        near: dict[bytes, list[tuple[int, int, int]]] = {}  # reference -> [(row, first change, last change)]
        plain: list[int] = []
        with self._lock:
            for i, c in enumerate(codes):
                hit = self._nearest(c) if len(c) else None
                if hit is None:
                    plain.append(i)
                    self._remember(c)
                else:
                    near.setdefault(hit[0], []).append((i, hit[1], hit[2]))
            for ref in [r for r, members in near.items() if r not in self._prepared and len(members) < self.SHARED]:
                plain += [i for i, _, _ in near.pop(ref)]
            if plain:
                plain.sort()
                scores[plain] = self.motifs.best_matches([seqs[i] for i in plain], centres=False)[0]
            for ref, members in near.items():
                rows = [i for i, _, _ in members]
                first = np.array([f for _, f, _ in members])
                scores[rows] = self._rescore(ref, [codes[i] for i in rows], first, max(last - f for _, f, last in members))
        return scores

    def _remember(self, c: np.ndarray) -> None:
        recent = self._recent.setdefault(len(c), OrderedDict())
        recent[c.tobytes()] = c
        recent.move_to_end(c.tobytes())
        while len(recent) > self.RECENT:
            recent.popitem(last=False)

    def _nearest(self, c: np.ndarray):
        """(reference bytes, first change, last change) of the remembered sequence of the same length
        nearest to ``c`` when its changes span at most SPAN bases; else None."""
        recent = self._recent.get(len(c))
        if not recent:
            return None
        keys = list(recent)
        differ = np.stack([recent[k] for k in keys]) != c
        j = int(differ.sum(1).argmin())
        changed = np.flatnonzero(differ[j])
        if changed.size and changed[-1] - changed[0] > self.SPAN:
            return None
        if not changed.size:  # the same sequence again: its windows are all "untouched"
            return keys[j], 0, -1
        return keys[j], int(changed[0]), int(changed[-1])

    def _maxima(self, ref: bytes) -> list:
        """Per width group: ([P + 1, 2m] prefix maxima led by -inf, [P + 1, 2m] suffix maxima closed
        by -inf) of the reference's window scores, built once per reference."""
        got = self._prepared.get(ref)
        if got is None:
            X, known = _one_hot([np.frombuffer(ref, dtype=np.uint8)])
            got = []
            for width, js, W in self.motifs._by_width:
                positions = X.shape[1] - width + 1
                if positions < 1:
                    got.append(None)
                    continue
                sc = _window_scores(X, known, width, W)[0]  # [P, 2m]
                pad = np.full((1, sc.shape[1]), -np.inf, dtype=np.float32)
                got.append(
                    (
                        np.concatenate([pad, np.maximum.accumulate(sc, axis=0)]),
                        np.concatenate([np.maximum.accumulate(sc[::-1], axis=0)[::-1], pad]),
                        sc,
                    )
                )
            self._prepared[ref] = got
            while len(self._prepared) > self.PREPARED:
                self._prepared.popitem(last=False)
        self._prepared.move_to_end(ref)
        return got

    def _rescore(self, ref: bytes, codes: list[np.ndarray], first: np.ndarray, span: int) -> np.ndarray:
        if span == 0:
            return self._substituted(ref, codes, first)
        return self._rescore_windows(ref, codes, first, span)

    def _substituted(self, ref: bytes, codes: list[np.ndarray], at: np.ndarray) -> np.ndarray:
        """:meth:`_rescore` of sequences that differ from ``ref`` at one base each (``at``): a window
        over the change scores the reference's window plus the matrix's difference between the new
        base and the old one at that offset, so no window is re-read (in-silico mutagenesis: three
        substitutions per position; a SNV's alt window). Rows whose old or new base is not A/C/G/T
        (the window's score changes between finite and -inf) are rescored in full windows."""
        base = _BASE_INDEX[np.frombuffer(ref, dtype=np.uint8)[at]]
        new = _BASE_INDEX[np.array([c[p] for c, p in zip(codes, at)], dtype=np.uint8)]
        simple = np.flatnonzero((base >= 0) & (new >= 0))
        out = np.full((len(codes), len(self.motifs)), -np.inf, dtype=np.float32)
        other = np.setdiff1d(np.arange(len(codes)), simple)
        if other.size:
            out[other] = self._rescore_windows(ref, [codes[i] for i in other], at[other], 0)
        if not simple.size:
            return out
        at, base, new = at[simple], base[simple], new[simple]
        maxima = self._maxima(ref)
        for (width, js, W), m in zip(self.motifs._by_width, maxima):
            if m is None:
                continue
            pre, suf, sc = m
            positions = sc.shape[0]
            offsets = np.arange(width)
            starts = at[:, None] - offsets[::-1]  # [n, width]: the windows over the change, first to last
            inside = (starts >= 0) & (starts < positions)
            clipped = np.clip(starts, 0, positions - 1)
            o = at[:, None] - clipped  # the change's offset in each window
            Wr = W.reshape(width, 4, -1)
            delta = Wr[np.clip(o, 0, width - 1), new[:, None]] - Wr[np.clip(o, 0, width - 1), base[:, None]]  # [n, width, 2m]
            rescored = np.where(inside[:, :, None], sc[clipped] + delta, -np.inf)
            lo = np.clip(at - width + 1, 0, positions)  # the windows before lo and after hi are untouched
            hi = np.clip(at, -1, positions - 1)
            best = np.maximum(rescored.max(axis=1), np.maximum(pre[lo], suf[hi + 1]))
            out[simple[:, None], js] = best.reshape(len(at), 2, len(js)).max(axis=1)
        return out

    def _rescore_windows(self, ref: bytes, codes: list[np.ndarray], first: np.ndarray, span: int) -> np.ndarray:
        maxima = self._maxima(ref)
        X, known = _one_hot(codes)
        n, length = known.shape
        out = np.full((n, len(self.motifs)), -np.inf, dtype=np.float32)
        rows = np.arange(n)[:, None, None]
        for (width, js, W), m in zip(self.motifs._by_width, maxima):
            if m is None:
                continue
            pre, suf, _ = m
            positions = length - width + 1
            # the windows that cover a change, clipped to the sequence (a clipped window is one more
            # untouched window recomputed: still its right score)
            starts = np.clip(first[:, None] - width + 1 + np.arange(width + max(span, 0)), 0, positions - 1)  # [n, k]
            at = starts[:, :, None] + np.arange(width)  # [n, k, width]
            sc = (X[rows, at].reshape(-1, width * 4) @ W).reshape(n, starts.shape[1], -1)
            sc[~known[rows, at].all(-1)] = -np.inf
            best = np.maximum(sc.max(axis=1), np.maximum(pre[starts[:, 0]], suf[starts[:, -1] + 1]))
            out[:, js] = best.reshape(n, 2, len(js)).max(axis=1)
        return out


#: byte -> 0-3 for A/C/G/T (either case), -1 for anything else
_BASE_INDEX = np.full(256, -1, dtype=np.int64)
for _i, _base in enumerate("ACGT"):
    _BASE_INDEX[ord(_base)] = _BASE_INDEX[ord(_base.lower())] = _i


def _codes(s: str) -> np.ndarray:
    return np.frombuffer(s.encode("ascii", "replace"), dtype=np.uint8)


def _one_hot(codes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """([n, L, 4] one-hot of A/C/G/T (either case), zeros elsewhere and past a sequence's end;
    [n, L] whether each base is known) of sequences as byte codes (:func:`_codes`)."""
    length = max((len(c) for c in codes), default=0)
    X = np.zeros((len(codes), length, 4), dtype=np.float32)
    for i, c in enumerate(codes):
        X[i, : len(c)] = _ONE_HOT[c]
    return X, X.sum(2) > 0


def _window_scores(X: np.ndarray, known: np.ndarray, width: int, W: np.ndarray) -> np.ndarray:
    """[n, L - width + 1, 2m] every window's score (-inf where a window holds an unknown base)."""
    windows = np.lib.stride_tricks.sliding_window_view(X, width, axis=1)  # [n, P, 4, w]
    positions = X.shape[1] - width + 1
    sc = (windows.transpose(0, 1, 3, 2).reshape(-1, width * 4) @ W).reshape(X.shape[0], positions, -1)
    valid = np.lib.stride_tricks.sliding_window_view(known, width, axis=1).all(-1)
    if not valid.all():
        sc[~valid] = -np.inf
    return sc


def load_jaspar(release: str = RELEASE, collection: str = COLLECTION, tax_group: str = TAX_GROUP) -> MotifSet:
    """The latest version of every matrix of ``collection`` / ``tax_group`` in ``release``, as
    log-odds against a uniform background (pyjaspar's bundled SQLite; Biopython's normalisation)."""
    try:
        from pyjaspar import jaspardb
    except ImportError as e:  # the 'motifs' extra
        raise InputError('JASPAR motifs need the pyjaspar package: pip install -e ".[motifs]"') from e
    motifs = jaspardb(release=release).fetch_motifs(collection=collection, tax_group=[tax_group], all_versions=False)
    motifs = sorted(motifs, key=lambda m: m.matrix_id)
    matrices = []
    for m in motifs:
        lo = m.counts.normalize(pseudocounts=PSEUDOCOUNT).log_odds()
        matrices.append(np.array([[lo[b][j] for b in "ACGT"] for j in range(len(m))], dtype=np.float32))
    source = f"{release} {collection} {tax_group} (pyjaspar), latest versions, log-odds with pseudocount {PSEUDOCOUNT}"
    # through the config form: the numbers a head is fitted on are the ones its model will carry
    return MotifSet.from_config(MotifSet(tuple(m.matrix_id for m in motifs), tuple(m.name for m in motifs), tuple(matrices), source).to_config())
