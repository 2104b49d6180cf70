"""Genomes as sets of contiguous pieces: a FASTA slice, a chromosome from a MAF alignment.

A piece knows its 0-based offset on the chromosome, so annotation coordinates can be used
directly; ``fetch`` returns None when a window leaves the sequenced part or is mostly N, so
builders never emit a window of unknown sequence.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

from ..checks import reverse_complement
from ..errors import FastaError


@dataclass
class Contig:
    chrom: str
    offset: int  # 0-based chromosome position of seq[0]
    seq: str
    assembly: str = "hg19"

    @property
    def end(self) -> int:
        return self.offset + len(self.seq)


@dataclass
class Genome:
    name: str
    contigs: dict[str, list[Contig]] = field(default_factory=dict)

    def add(self, contig: Contig) -> None:
        self.contigs.setdefault(contig.chrom, []).append(contig)

    def spans(self) -> list[tuple[str, int, int]]:
        return [(c.chrom, c.offset, c.end) for cs in self.contigs.values() for c in cs]

    def fetch(self, chrom: str, start: int, end: int, strand: str = "+", max_n: float = 0.05) -> str | None:
        for contig in self.contigs.get(chrom, ()):
            if contig.offset <= start and end <= contig.end and start < end:
                seq = contig.seq[start - contig.offset : end - contig.offset]
                if seq.count("N") > max_n * len(seq):
                    return None
                return reverse_complement(seq) if strand == "-" else seq
        return None


def _open_text(path: Path):
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt") if gz else open(path)


def read_fasta_contigs(
    path: Path, offsets: dict[str, int] | None = None, rename: dict[str, str] | None = None, assembly: str = "hg19"
) -> list[Contig]:
    """Read a (possibly gzipped) FASTA into contigs; ``offsets`` gives 0-based starts of slices."""
    contigs: list[Contig] = []
    name, parts = None, []

    def flush():
        if name is not None:
            chrom = (rename or {}).get(name, name)
            contigs.append(Contig(chrom, (offsets or {}).get(name, 0), "".join(parts).upper(), assembly))

    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.startswith(">"):
                flush()
                name, parts = line[1:].split()[0], []
            elif name is None and line.strip():
                raise FastaError(f"{path}, line {lineno}: sequence before the first '>' header")
            else:
                parts.append(line.strip())
    flush()
    if not contigs:
        raise FastaError(f"{path}: no FASTA records")
    return contigs


def read_maf_reference(path: Path, species_prefix: str = "Hsap.", chrom: str = "chr22") -> Contig:
    """Rebuild the reference rows of an Ensembl Compara MAF as one N-filled contig."""
    blocks: list[tuple[int, str]] = []
    with _open_text(path) as fh:
        for line in fh:
            if line.startswith("s ") and line.split(None, 2)[1].startswith(species_prefix):
                _, _, start, size, strand, _src_size, text = line.split()
                if strand != "+":
                    continue
                seq = text.replace("-", "").upper()
                blocks.append((int(start), seq))
    if not blocks:
        raise FastaError(f"{path}: no '{species_prefix}' rows in the MAF")
    lo = min(s for s, _ in blocks)
    hi = max(s + len(q) for s, q in blocks)
    buf = bytearray(b"N" * (hi - lo))
    for s, q in blocks:
        buf[s - lo : s - lo + len(q)] = q.encode()
    return Contig(chrom, lo, buf.decode())
