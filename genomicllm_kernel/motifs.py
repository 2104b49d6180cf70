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

    def best_matches(self, sequences, chunk: int = 2048, centres: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """([n, motifs] float32 best log-odds score, [n, motifs] int32 its window's centre, 0-based)
        over every window of each sequence on either strand. A window holding a base other than
        A/C/G/T (N, an IUPAC code) scores -inf for every motif, and a sequence shorter than a motif
        has no window for it (-inf, centre -1): an unknown base is never read as a match.
        ``centres=False`` skips the positions (None): the features need the scores only.

        Why one matrix product per width: every window of every sequence of one width is a row of
        ``width * 4`` one-hot numbers, and every matrix of that width, with its reverse complement,
        is a column; the product is every score at once (the scan of a GUE set takes seconds)."""
        seqs = [str(s) for s in sequences]
        n = len(seqs)
        scores = np.full((n, len(self)), -np.inf, dtype=np.float32)
        where = np.full((n, len(self)), -1, dtype=np.int32) if centres else None
        if not n or not len(self):
            return scores, where
        length = max(len(s) for s in seqs)
        X = np.zeros((n, length, 4), dtype=np.float32)
        known = np.zeros((n, length), dtype=bool)
        for i, s in enumerate(seqs):
            X[i, : len(s)] = _ONE_HOT[np.frombuffer(s.encode("ascii", "replace"), dtype=np.uint8)]
        known = X.sum(2) > 0
        for width, js, W in self._by_width:
            if width > length:
                continue
            windows = np.lib.stride_tricks.sliding_window_view(X, width, axis=1)  # [n, L-w+1, 4, w]
            valid = np.lib.stride_tricks.sliding_window_view(known, width, axis=1).all(-1)  # [n, L-w+1]
            positions = length - width + 1
            for s in range(0, n, chunk):
                part = windows[s : s + chunk].transpose(0, 1, 3, 2).reshape(-1, width * 4)
                sc = (part @ W).reshape(-1, positions, 2 * len(js))
                if not valid[s : s + chunk].all():
                    sc[~valid[s : s + chunk]] = -np.inf
                if not centres:  # the best window first (a contiguous reduction), then the better strand
                    scores[s : s + chunk, js] = sc.max(axis=1).reshape(-1, 2, len(js)).max(axis=1)
                    continue
                sc = sc.reshape(-1, positions, 2, len(js)).max(axis=2)
                best = sc.argmax(axis=1)
                scores[s : s + chunk, js] = np.take_along_axis(sc, best[:, None, :], axis=1)[:, 0]
                where[s : s + chunk, js] = np.where(np.isfinite(scores[s : s + chunk, js]), best + width // 2, -1)
        return scores, where

    def features(self, sequences) -> np.ndarray:
        """[n, motifs] float32: each sequence's best score per motif (sequences: one string, or a list of
        a prompt's sequence items, whose best is the best over its items), a motif with no window
        (a short or unknown sequence) at its lowest possible score: a regression's input, finite."""
        rows = [[s] if isinstance(s, str) else list(s) for s in sequences]
        flat = [s for r in rows for s in r]
        scores, _ = self.best_matches(flat, centres=False)
        lowest = self.lowest
        out = np.tile(lowest, (len(rows), 1))
        at = 0
        for i, r in enumerate(rows):
            if r:
                out[i] = np.maximum(lowest, scores[at : at + len(r)].max(axis=0))
            at += len(r)
        return out


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
