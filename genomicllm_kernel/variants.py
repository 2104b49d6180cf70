"""What a variant does to a classification: ref and alt windows from a reference, scored by the engine.

For each SNV or short indel of a VCF (plain or bgzip, read by pysam), the window of ``window`` nt
centred on it is cut from the reference FASTA (pysam's indexed reader: a ``.fai`` is made beside the
file or, where that folder is read-only, beside a link to it in a temporary folder), the same
window carrying the alt allele is built, and both are asked the same question (the alt window
continues from its own ref window's key/value cache up to the variant, where the backend can:
``Decoder.answer_pairs_sharing_prefix``; the answers are those of two full passes). A record whose REF
does not match the reference, whose contig the reference lacks, whose allele is symbolic
(``<DEL>``, ``*``) or longer than the window is never scored: it gets a status instead, and the
summary counts every status.

With ``cds`` (a BED of coding segments, strand in column 6), an SNV inside a segment gets its
protein change from the exact translation (``checks.translate``): each BED line is read as one
in-frame segment that starts with a full codon (a CDS exon of a single-exon gene, an ORF).
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .checks import translate
from .errors import InputError
from .grammar import make_prompt

#: the INFO fields written into the output VCF (declared in its header)
INFO_FIELDS = (
    ("GLLM_LABEL", "1", "String", "GenomicLLM: label whose probability is reported (the answer on the reference window)"),
    ("GLLM_P_REF", "A", "Float", "GenomicLLM: probability of GLLM_LABEL on the reference window"),
    ("GLLM_P_ALT", "A", "Float", "GenomicLLM: probability of GLLM_LABEL on the window carrying the alt allele"),
    ("GLLM_DELTA", "A", "Float", "GenomicLLM: GLLM_P_ALT - GLLM_P_REF"),
    ("GLLM_STATUS", "A", "String", "GenomicLLM: scored, ref_mismatch, contig_missing, symbolic_allele or too_long_for_window"),
    ("GLLM_PROTEIN", "A", "String", "GenomicLLM: protein change from the exact translation of the CDS segment (e.g. K12E), '.' outside one"),
)
STATUSES = ("scored", "ref_mismatch", "contig_missing", "symbolic_allele", "too_long_for_window")


def open_vcf(path: str | Path):
    """A pysam VariantFile; a file that is not VCF (no header, binary junk) is a one-line error."""
    import pysam

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such VCF file")
    pysam.set_verbosity(0)  # htslib's own messages would add lines to our one-line error
    try:
        vcf = pysam.VariantFile(str(p))
    except (ValueError, OSError):
        raise InputError(f"{path}: not a readable VCF (plain or bgzip text starting with '##fileformat=VCF' and a '#CHROM' header line)") from None
    if vcf.format not in ("VCF", "BCF"):
        raise InputError(f"{path}: not a VCF file (pysam reads it as {vcf.format})")
    return vcf


def open_reference(path: str | Path):
    """An indexed pysam FastaFile; a plain FASTA is indexed beside itself or in a temporary folder."""
    import pysam

    pysam.set_verbosity(0)
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such reference FASTA")
    if Path(str(p) + ".fai").exists() or os.access(p.parent, os.W_OK):
        target = p
    else:  # a read-only folder (a Galaxy dataset): index a link to it elsewhere
        link_dir = Path(tempfile.mkdtemp(prefix="genomicllm-ref-"))
        target = link_dir / p.name
        target.symlink_to(p.resolve())
    try:
        return pysam.FastaFile(str(target))
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable reference FASTA ({' '.join(str(exc).split())}); give a plain or bgzip FASTA") from None


def read_cds(path: str | Path | None) -> dict[str, list[tuple[int, int, str]]]:
    """BED coding segments per contig: (start0, end, strand)."""
    if not path:
        return {}
    out: dict[str, list[tuple[int, int, str]]] = {}
    with open(path) as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            cols = line.rstrip("\n").split("\t")
            try:
                start, end = int(cols[1]), int(cols[2])
            except (IndexError, ValueError):
                raise InputError(f"{path}, line {n}: a BED line needs chrom, start and end (tab-separated whole numbers)") from None
            strand = cols[5] if len(cols) > 5 and cols[5] in "+-" else "+"
            out.setdefault(cols[0], []).append((start, end, strand))
    return out


def protein_change(segments, pos0: int, ref: str, alt: str, fetch) -> str:
    """'K12E'-style change of an SNV inside a coding segment, '.' outside one (or for an indel)."""
    if len(ref) != 1 or len(alt) != 1:
        return "frameshift" if any(s <= pos0 < e for s, e, _ in segments) and (len(ref) - len(alt)) % 3 else "."
    for start, end, strand in segments:
        if not start <= pos0 < end:
            continue
        seq = fetch(start, end)
        mutated = seq[: pos0 - start] + alt + seq[pos0 - start + 1 :]
        if strand == "-":
            seq, mutated = _revcomp(seq), _revcomp(mutated)
            index = (end - 1 - pos0) // 3
        else:
            index = (pos0 - start) // 3
        a, b = translate(seq[3 * index : 3 * index + 3]), translate(mutated[3 * index : 3 * index + 3])
        return f"{a}{index + 1}{b}" if a and b else "."
    return "."


def _revcomp(s: str) -> str:
    return s.translate(str.maketrans("ACGTNacgtn", "TGCANtgcan"))[::-1]


@dataclass
class VariantCall:
    chrom: str
    pos: int  # 1-based, as in the VCF
    id: str
    ref: str
    alt: str
    status: str
    label: str | None = None
    p_ref: float | None = None
    p_alt: float | None = None
    protein: str = "."
    window: tuple[int, int] | None = None  # 1-based inclusive reference window

    @property
    def delta(self) -> float | None:
        return None if self.p_ref is None or self.p_alt is None else self.p_alt - self.p_ref


@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)

    def line(self) -> str:
        return "variants: " + ", ".join(f"{self.counts.get(s, 0)} {s.replace('_', ' ')}" for s in STATUSES)


def windows_for(ref_seq_len: int, pos0: int, ref: str, alt: str, window: int) -> tuple[int, int] | None:
    """The reference window (start0, end) centred on the variant, clipped to the contig; None when
    an allele does not fit inside it."""
    span = max(len(ref), len(alt))
    if span > window // 2:
        return None
    start = max(0, pos0 + len(ref) // 2 - window // 2)
    end = min(ref_seq_len, start + window)
    start = max(0, end - window)
    return start, end


def score_variants(
    llm,
    vcf,
    fasta,
    task,
    question: str | None = None,
    items=None,
    window: int = 300,
    cds=None,
    batch_size: int = 32,
    summary: Summary | None = None,
    progress=None,
) -> Iterator[tuple[object, list[VariantCall]]]:
    """(pysam record, one VariantCall per ALT) for every record, in file order, scored in batches."""
    from .engine import task_and_question

    t, q = task_and_question(task, question, classification_for="variant effects")
    if window < 10:
        raise InputError(f"--window must be at least 10 nt, not {window}")
    summary = summary if summary is not None else Summary()
    cds = cds or {}
    contigs = set(fasta.references)
    lengths = dict(zip(fasta.references, fasta.lengths))
    pending: list[tuple[object, list[VariantCall], list]] = []

    def flush():
        pairs, slots = [], []
        for _, calls, jobs in pending:
            for call, (ref_w, alt_w) in zip(calls, jobs):
                if ref_w is not None:
                    slots.append(call)
                    pairs.append((make_prompt(q, ref_w, items), make_prompt(q, alt_w, items)))
        # the alt window continues from its own ref window's cache up to the variant (one pass and a half)
        for call, (label, p_ref, p_alt) in zip(slots, llm.label_probabilities_of_pairs(pairs, batch_size)):
            call.label = label
            call.p_ref, call.p_alt = p_ref[label], p_alt[label]
        out = [(rec, calls) for rec, calls, _ in pending]
        if progress:
            progress(len(pending))
        pending.clear()
        return out

    for rec in vcf:
        calls, jobs = [], []
        for alt in rec.alts or ():
            call = VariantCall(rec.chrom, rec.pos, rec.id or ".", rec.ref, alt, "scored")
            job = (None, None)
            if rec.chrom not in contigs:
                call.status = "contig_missing"
            elif alt.startswith("<") or alt in ("*", ".") or not alt.isalpha() or not rec.ref.isalpha():
                call.status = "symbolic_allele"
            else:
                pos0 = rec.pos - 1
                span = windows_for(lengths[rec.chrom], pos0, rec.ref, alt, window)
                ref_here = fasta.fetch(rec.chrom, pos0, pos0 + len(rec.ref)).upper()
                if ref_here != rec.ref.upper():
                    call.status = "ref_mismatch"
                elif span is None:
                    call.status = "too_long_for_window"
                else:
                    s, e = span
                    ref_w = fasta.fetch(rec.chrom, s, e).upper()
                    k = pos0 - s
                    alt_w = ref_w[:k] + alt.upper() + ref_w[k + len(rec.ref) :]
                    job = (ref_w, alt_w)
                    call.window = (s + 1, e)
                    segs = cds.get(rec.chrom, [])
                    if segs:
                        call.protein = protein_change(
                            segs, pos0, rec.ref.upper(), alt.upper(), lambda a, b, c=rec.chrom: fasta.fetch(c, a, b).upper()
                        )
            summary.counts[call.status] += 1
            calls.append(call)
            jobs.append(job)
        pending.append((rec, calls, jobs))
        if sum(j[0] is not None for _, _, js in pending for j in js) >= batch_size * 4:
            yield from flush()
    if pending:
        yield from flush()


def _f(x) -> str:
    return "." if x is None else f"{x:.4f}"


def write_vcf(results, vcf, stream) -> None:
    """The input VCF with the GLLM_* INFO fields added (and declared in the header)."""
    header = vcf.header.copy()
    for name, number, kind, desc in INFO_FIELDS:
        if name not in header.info:
            header.info.add(name, number, kind, desc)
    stream.write(str(header))
    for rec, calls in results:
        new = rec.copy()
        new.translate(header)
        scored = [c for c in calls if c.status == "scored"]
        if scored:
            new.info["GLLM_LABEL"] = scored[0].label
            new.info["GLLM_P_REF"] = tuple(c.p_ref if c.p_ref is not None else None for c in calls)
            new.info["GLLM_P_ALT"] = tuple(c.p_alt for c in calls)
            new.info["GLLM_DELTA"] = tuple(c.delta for c in calls)
        if calls:
            new.info["GLLM_STATUS"] = tuple(c.status for c in calls)
            new.info["GLLM_PROTEIN"] = tuple(c.protein for c in calls)
        stream.write(str(new))


@dataclass
class VariantEffects:
    """Every ALT of a VCF scored (or skipped, with its status) for one question: what
    :func:`genomicllm_kernel.api.variant_effects` returns to a notebook or a script."""

    task: str
    question: str
    calls: list[VariantCall]
    summary: Summary
    model: str | None = None

    def __len__(self) -> int:
        return len(self.calls)

    def __getitem__(self, i) -> VariantCall:
        return self.calls[i]

    def to_records(self) -> list[dict]:
        """One dict per ALT with the tabular output's columns (None where a figure is missing)."""
        rows = []
        for c in self.calls:
            w = c.window or (None, None)
            values = (c.chrom, c.pos, c.id, c.ref, c.alt, c.status, c.label, c.p_ref, c.p_alt, c.delta, c.protein, w[0], w[1])
            rows.append(dict(zip(TABULAR_HEADER, values)))
        return rows

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame(self.to_records(), columns=list(TABULAR_HEADER))

    def __repr__(self) -> str:
        lines = [f"{self.question}: {self.summary.line()}"]
        for c in self.calls:
            what = f"{c.label} {_f(c.p_ref)} -> {_f(c.p_alt)} (delta {_f(c.delta)})" if c.status == "scored" else c.status.replace("_", " ")
            lines.append(f"{c.chrom}:{c.pos} {c.ref}>{c.alt} {c.id}: {what}")
        return "\n".join(lines)


TABULAR_HEADER = ("chrom", "pos", "id", "ref", "alt", "status", "label", "p_ref", "p_alt", "delta", "protein", "window_start", "window_end")


def write_tabular(results, stream) -> None:
    stream.write("\t".join(TABULAR_HEADER) + "\n")
    for _, calls in results:
        for c in calls:
            w = c.window or ("", "")
            row = (
                c.chrom,
                str(c.pos),
                c.id,
                c.ref,
                c.alt,
                c.status,
                c.label or "",
                _f(c.p_ref),
                _f(c.p_alt),
                _f(c.delta),
                c.protein,
                str(w[0]),
                str(w[1]),
            )
            stream.write("\t".join(row) + "\n")
