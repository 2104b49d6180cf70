"""Exact computations that every model answer is checked against.

These are the ground truth for the deterministic tasks (TASKS.md: "checked against the exact
computation, and the check is reported beside the model's answer"). Biopython does the biology so
that ambiguity codes behave as bioinformaticians expect.

Conventions (documented here because users see them in every check):

* GC content: ``Bio.SeqUtils.gc_fraction(seq, ambiguous="remove")``: G, C and S count as GC; A, T
  and W as not GC; N and the other ambiguity codes (R, Y, K, M, B, D, H, V) are left out of both
  numerator and denominator. A sequence with no unambiguous base has GC content 0.000. Three
  decimals, rounded half to even on the binary value (Python's ``format``).
* Complement is IUPAC-aware (R<->Y, K<->M, B<->V, D<->H; S, W and N map to themselves).
  "reverse sequence" is the same strand read 3'->5' (the string reversed, not complemented).
* Translation uses the standard genetic code (NCBI table 1), ``*`` for stop, read from the first
  base; trailing 1-2 bases that do not make a full codon are ignored. An ambiguous codon translates
  to the single amino acid all its readings agree on, otherwise ``X`` (Biopython's rule).
"""

from __future__ import annotations

from dataclasses import dataclass

from Bio.Seq import Seq
from Bio.SeqUtils import gc_fraction

from .errors import InputError


@dataclass(frozen=True)
class Check:
    """The exact value beside a model answer, and whether the two agree."""

    expected: str
    agree: bool | None  # None when no model answered

    def to_dict(self) -> dict:
        return {"expected": self.expected, "agree": self.agree}


def gc_content(sequence: str) -> str:
    return f"{gc_fraction(sequence, ambiguous='remove'):.3f}"


def reverse(sequence: str) -> str:
    return sequence[::-1]


def complement(sequence: str) -> str:
    return str(Seq(sequence).complement())


def reverse_complement(sequence: str) -> str:
    return complement(sequence)[::-1]


def translate(sequence: str) -> str:
    usable = len(sequence) - len(sequence) % 3
    if usable == 0:
        return ""
    return str(Seq(sequence[:usable]).translate(table=1))


def reading_comprehension(annotations: dict[str, str], name: str) -> str:
    for key, value in annotations.items():
        if key.strip().lower() == name.strip().lower():
            return value
    known = ", ".join(annotations) or "none"
    raise InputError(f"reading comprehension asks for item {name!r}, but the prompt has no such item (items: {known})")
