"""Per-task example builders. Each yields :class:`Example` rows in the prompt grammar.

Every builder takes a :class:`Context` (genomes, annotation, peaks, gene records, split rule and
random generator) and draws windows in transcript orientation. Negatives come from matched
background: same chromosome pieces, GC content matched to the positives in 0.05-wide bins, same
length. Labels that are derived rather than annotated (enhancer, regulatory) say so in ``source``.
"""

from __future__ import annotations

import bisect
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from .. import checks
from ..grammar import make_prompt
from .annotation import Annotation, spliced
from .genome import Genome

TATA = ("TATAAA", "TATAAT", "TATATA", "TATATT", "TATAAG")


@dataclass
class Example:
    task: str
    question: str
    prompt: str
    answer: str
    source: str
    region: str
    split: str
    leak: bool = False

    def as_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class Context:
    genome: Genome
    annotation: Annotation
    split_of: callable  # (chrom, start, end) -> "train" | "dev" | "test" | None
    rng: random.Random
    scale: float = 1.0
    peaks: list[tuple[str, int, int, str]] = field(default_factory=list)  # chrom, start, end, source
    tf_sites: list[tuple[str, int, str, str]] = field(default_factory=list)  # chrom, pos, strand, TF
    cpg: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    gene_records: dict[str, dict] = field(default_factory=dict)  # symbol -> orgdb record
    extra_tss: list[tuple[str, int, str, str]] = field(default_factory=list)  # chrom, pos, strand, gene
    exon_rows: list[tuple] = field(default_factory=list)  # gene, gene type, chrom, strand, start, end
    chip_peaks: list[tuple[str, str, int, int, str, str]] = field(default_factory=list)  # ChIP-seq peaks (tf_peaks)

    def n(self, count: int) -> int:
        return max(4, int(count * self.scale))

    # -------------------------------------------------------------------------------------
    def tss_list(self) -> list[tuple[str, int, str, str]]:
        seen = set()
        out = []
        for t in self.annotation.transcripts:
            key = (t.chrom, t.tss, t.strand)
            if key not in seen:
                seen.add(key)
                out.append((t.chrom, t.tss, t.strand, t.gene))
        for row in self.extra_tss:
            if (row[0], row[1], row[2]) not in seen and row[0] in self.genome.contigs:
                seen.add((row[0], row[1], row[2]))
                out.append(row)
        return out

    def tss_index(self) -> dict[str, list[int]]:
        if not hasattr(self, "_tss_index"):
            idx: dict[str, list[int]] = defaultdict(list)
            for chrom, pos, _s, _g in self.tss_list():
                idx[chrom].append(pos)
            self._tss_index = {c: sorted(v) for c, v in idx.items()}
        return self._tss_index

    def distance_to_tss(self, chrom: str, pos: int) -> int:
        arr = self.tss_index().get(chrom, [])
        if not arr:
            return 10**9
        i = bisect.bisect_left(arr, pos)
        return min(abs(arr[j] - pos) for j in (i - 1, i) if 0 <= j < len(arr))

    def in_cpg(self, chrom: str, s: int, e: int) -> bool:
        arr = self.cpg.get(chrom, [])
        i = bisect.bisect_left(arr, (e, e))
        return any(a < e and b > s for a, b in arr[max(0, i - 2) : i + 1])

    def near_peak(self, chrom: str, s: int, e: int, pad: int = 500) -> bool:
        if not hasattr(self, "_peak_index"):
            idx: dict[str, list] = defaultdict(list)
            for c, ps, pe, _ in self.peaks:
                idx[c].append((ps, pe))
            self._peak_index = {c: sorted(v) for c, v in idx.items()}
        arr = self._peak_index.get(chrom, [])
        i = bisect.bisect_left(arr, (e + pad, 0))
        return any(a < e + pad and b > s - pad for a, b in arr[max(0, i - 50) : i])

    def random_window(self, length: int, split: str | None = None, tries: int = 50):
        spans = self.genome.spans()
        weights = [e - s for _, s, e in spans]
        for _ in range(tries):
            chrom, s, e = self.rng.choices(spans, weights)[0]
            if e - s <= length:
                continue
            start = self.rng.randrange(s, e - length)
            sp = self.split_of(chrom, start, start + length)
            if sp is None or (split is not None and sp != split):
                continue
            seq = self.genome.fetch(chrom, start, start + length, max_n=0.0)
            if seq:
                return chrom, start, seq, sp
        return None

    def background(self, length: int, gc_target: float, split: str, avoid, tries: int = 200):
        """A random window of the same length and GC bin, in the same split, passing ``avoid``."""
        best = None
        for _ in range(tries):
            w = self.random_window(length, split)
            if w is None:
                continue
            chrom, start, seq, _ = w
            if avoid(chrom, start, start + length):
                continue
            gc = float(checks.gc_content(seq))
            if abs(gc - gc_target) < 0.05:
                return w
            if best is None or abs(gc - gc_target) < best[0]:
                best = (abs(gc - gc_target), w)
        return best[1] if best and best[0] < 0.15 else None


def _ex(task, question, seq, answer, source, chrom, start, end, split, **items) -> Example:
    prompt = make_prompt(question, seq, items).text()
    return Example(task, question, prompt, answer, source, f"{chrom}:{start}-{end}", split)


def _window(ctx: Context, chrom: str, center: int, left: int, right: int, strand: str):
    """Window with ``left`` bases before and ``right`` from ``center`` in transcript orientation."""
    if strand == "+":
        s, e = center - left, center + right
    else:
        s, e = center - right + 1, center + left + 1
    split = ctx.split_of(chrom, s, e)
    if split is None:
        return None
    seq = ctx.genome.fetch(chrom, s, e, strand)
    return (seq, s, e, split) if seq else None


# ---- splice sites ------------------------------------------------------------------------
def splice_site(ctx: Context):
    half = 200
    out = []
    positives = []
    for t in ctx.annotation.transcripts:
        for (s1, e1), (s2, e2) in zip(t.exons, t.exons[1:]):
            for p, kind in ((e1, "donor" if t.strand == "+" else "acceptor"), (s2, "acceptor" if t.strand == "+" else "donor")):
                positives.append((t, p, kind))
    ctx.rng.shuffle(positives)
    boundaries = defaultdict(set)
    for t, p, _ in positives:
        boundaries[t.chrom].add(p)
    limit = ctx.n(6000)
    for t, p, kind in positives[:limit]:
        split = ctx.split_of(t.chrom, p - half, p + half)
        seq = ctx.genome.fetch(t.chrom, p - half, p + half, t.strand) if split else None
        if not seq:
            continue
        out.append(_ex("splice_site", "splice site", seq, f"{kind} site", "GENCODE exon boundaries", t.chrom, p - half, p + half, split))
        # matched negative: a position inside the same gene, not a boundary, same centre dinucleotide half of the time
        for _ in range(30):
            q = ctx.rng.randrange(t.start + half, max(t.start + half + 1, t.end - half))
            if any(abs(q - b) < 50 for b in boundaries[t.chrom] if abs(q - b) < 50):
                continue
            sp = ctx.split_of(t.chrom, q - half, q + half)
            neg = ctx.genome.fetch(t.chrom, q - half, q + half, t.strand) if sp else None
            if not neg:
                continue
            decoy = neg[200:202] == "GT" or neg[198:200] == "AG"
            if ctx.rng.random() < 0.6 and not decoy:
                continue
            out.append(_ex("splice_site", "splice site", neg, "non-splice site", "GENCODE gene bodies (matched)", t.chrom, q - half, q + half, sp))
            break
    return out


# ---- promoters ---------------------------------------------------------------------------
PROMOTER_SHAPES = {"core": (34, 36), "proximal": (249, 51)}


def promoter(ctx: Context):
    out = []
    tss = ctx.tss_list()
    ctx.rng.shuffle(tss)
    for chrom, pos, strand, gene in tss[: ctx.n(5000)]:
        core = _window(ctx, chrom, pos, 34, 36, strand)
        if not core:
            continue
        tata = any(m in core[0][:20] for m in TATA)
        variant = "tata" if tata else "notata"
        shape = ctx.rng.choice(["core", "core", "proximal"])
        w = core if shape == "core" else _window(ctx, chrom, pos, 249, 51, strand)
        if not w:
            continue
        seq, s, e, split = w
        question = ctx.rng.choice([f"{shape} promoter", f"{shape} {variant} promoter", "promoter"])
        out.append(_ex("promoter", question, seq, "True", "GENCODE TSS", chrom, s, e, split))
        gc = float(checks.gc_content(seq))
        bg = ctx.background(len(seq), gc, split, lambda c, a, b: ctx.distance_to_tss(c, (a + b) // 2) < 2000)
        if bg:
            c, a, bseq, sp = bg
            out.append(_ex("promoter", question, bseq, "False", "background (GC-matched, >2 kb from TSS)", c, a, a + len(bseq), sp))
    return out


# ---- coding sequence tasks ---------------------------------------------------------------
def _cds_seqs(ctx: Context):
    for t in ctx.annotation.protein_coding():
        split = ctx.split_of(t.chrom, t.start, t.end)
        if split is None:
            continue
        seq = spliced(ctx.genome, t, t.cds)
        if seq and len(seq) % 3 == 0 and len(seq) >= 90:
            yield t, seq, split


def orf(ctx: Context):
    out = []
    for t, cds, split in _cds_seqs(ctx):
        for _ in range(max(1, int(6 * ctx.scale))):
            length = ctx.rng.randint(60, min(150, len(cds)))
            o = ctx.rng.randrange(0, len(cds) - length + 1)
            frame = {0: "1", 1: "3", 2: "2"}[o % 3]
            out.append(_ex("orf", "open reading frame", cds[o : o + length], frame, "GENCODE CDS", t.chrom, t.start, t.end, split))
    return out


def nt2aa(ctx: Context):
    out = []
    for t, cds, split in _cds_seqs(ctx):
        for _ in range(max(1, int(6 * ctx.scale))):
            length = ctx.rng.randint(12, min(150, len(cds)))
            o = 3 * ctx.rng.randrange(0, (len(cds) - length) // 3 + 1)
            seq = cds[o : o + length]
            out.append(_ex("nt2aa", "protein sequence", seq, checks.translate(seq), "GENCODE CDS", t.chrom, t.start, t.end, split))
    for _ in range(ctx.n(3000)):
        w = ctx.random_window(ctx.rng.randint(12, 150))
        if w:
            chrom, s, seq, split = w
            out.append(_ex("nt2aa", "protein sequence", seq, checks.translate(seq), "genomic windows", chrom, s, s + len(seq), split))
    return out


def sequence_direction(ctx: Context):
    out = []
    for t in ctx.annotation.transcripts:
        split = ctx.split_of(t.chrom, t.start, t.end)
        mrna = spliced(ctx.genome, t, t.exons) if split else None
        if not mrna or len(mrna) < 60:
            continue
        for _ in range(max(1, int(3 * ctx.scale))):
            length = ctx.rng.randint(50, min(200, len(mrna)))
            o = ctx.rng.randrange(0, len(mrna) - length + 1)
            seq = mrna[o : o + length]
            direction = ctx.rng.choice(["forward", "reverse"])
            seq = seq if direction == "forward" else seq[::-1]
            out.append(_ex("sequence_direction", "sequence direction", seq, direction, "GENCODE transcripts", t.chrom, t.start, t.end, split))
    return out


def gene_biotype(ctx: Context):
    exon_rows = ctx.exon_rows
    """Exonic windows of genes, protein-coding vs any other biotype (balanced)."""
    by_class = {"protein coding gene": [], "other": []}
    for gene, gtype, chrom, strand, s, e in exon_rows:
        if e - s < 60 or chrom not in ctx.genome.contigs:
            continue
        by_class["protein coding gene" if gtype == "protein_coding" else "other"].append((gene, chrom, strand, s, e))
    out = []
    n = min(len(v) for v in by_class.values())
    n = min(n, ctx.n(4000))
    for label, rows in by_class.items():
        ctx.rng.shuffle(rows)
        for gene, chrom, strand, s, e in rows[:n]:
            length = ctx.rng.randint(60, min(200, e - s))
            a = ctx.rng.randrange(s, e - length + 1)
            split = ctx.split_of(chrom, a, a + length)
            seq = ctx.genome.fetch(chrom, a, a + length, strand) if split else None
            if seq:
                out.append(_ex("gene_biotype", "gene biotype", seq, label, "GENCODE exons", chrom, a, a + length, split))
    return out


# ---- exact tasks on genomic windows ------------------------------------------------------
def gc_content(ctx: Context):
    out = []
    for _ in range(ctx.n(8000)):
        w = ctx.random_window(ctx.rng.randint(10, 200))
        if w:
            chrom, s, seq, split = w
            out.append(_ex("gc_content", "GC content", seq, checks.gc_content(seq), "genomic windows", chrom, s, s + len(seq), split))
    return out


def reverse_complement(ctx: Context):
    out = []
    questions = {
        "reverse sequence": checks.reverse,
        "complementary sequence": checks.complement,
        "reverse complementary sequence": checks.reverse_complement,
    }
    for _ in range(ctx.n(12000)):
        length = int(min(200, max(8, ctx.rng.expovariate(1 / 60))))
        w = ctx.random_window(length)
        if w:
            chrom, s, seq, split = w
            q = ctx.rng.choice(list(questions))
            out.append(_ex("reverse_complement", q, seq, questions[q](seq), "genomic windows", chrom, s, s + len(seq), split))
    return out


# ---- regulatory tasks from ATAC peaks (derived labels) -----------------------------------
def _peak_class(ctx: Context, chrom: str, s: int, e: int) -> str:
    d = ctx.distance_to_tss(chrom, (s + e) // 2)
    if d <= 1000:
        return "promoter"
    if d >= 5000 and not ctx.in_cpg(chrom, s, e):
        return "enhancer"
    return "open chromatin region"


def regulatory_family(ctx: Context):
    """open chromatin, enhancer (derived) and regulatory (derived) from ATAC peaks."""
    out = []
    width = 200
    per_peak = max(1, int(4 * ctx.scale))
    for chrom, ps, pe, source in ctx.peaks:
        centre = (ps + pe) // 2
        for k in range(per_peak):
            shift = 0 if k == 0 else ctx.rng.randint(-(pe - ps) // 4, (pe - ps) // 4)
            s = centre + shift - width // 2
            split = ctx.split_of(chrom, s, s + width)
            seq = ctx.genome.fetch(chrom, s, s + width) if split else None
            if not seq:
                continue
            if split != "train" and k:
                break
            cls = _peak_class(ctx, chrom, s, s + width)
            out.append(_ex("open_chromatin", "open chromatin region", seq, "True", source, chrom, s, s + width, split))
            gc = float(checks.gc_content(seq))
            bg = ctx.background(width, gc, split, lambda c, a, b: ctx.near_peak(c, a, b))
            if bg:
                c, a, bseq, sp = bg
                out.append(
                    _ex(
                        "open_chromatin",
                        "open chromatin region",
                        bseq,
                        "False",
                        "background (GC-matched, no peak within 500 bp)",
                        c,
                        a,
                        a + width,
                        sp,
                    )
                )
                if cls == "enhancer" or ctx.rng.random() < 0.5:
                    out.append(_ex("enhancer", "enhancer", bseq, "False", "derived: background (GC-matched)", c, a, a + width, sp))
            if cls == "enhancer":
                out.append(_ex("enhancer", "enhancer", seq, "True", f"derived: distal ATAC peak ({source})", chrom, s, s + width, split))
            elif cls == "promoter" and ctx.rng.random() < 0.5:
                out.append(_ex("enhancer", "enhancer", seq, "False", f"derived: TSS-proximal ATAC peak ({source})", chrom, s, s + width, split))
            items = {"chromosome": "chromosome" + chrom.removeprefix("chr")} if ctx.rng.random() < 0.5 else {}
            out.append(_ex("regulatory", "regulatory", seq, cls, f"derived: ATAC peak class ({source})", chrom, s, s + width, split, **items))
    return out


def tf_binding(ctx: Context):
    out = []
    sites = list(ctx.tf_sites)
    ctx.rng.shuffle(sites)
    for chrom, pos, strand, tf in sites[: ctx.n(6000)]:
        w = _window(ctx, chrom, pos, 50, 51, strand)
        if not w:
            continue
        seq, s, e, split = w
        items = {"transcription factor": tf}
        out.append(_ex("tf_binding", "transcription factor binding site", seq, "True", "GENCODE Top1000sites_TF", chrom, s, e, split, **items))
        bg = ctx.background(len(seq), float(checks.gc_content(seq)), split, lambda c, a, b: ctx.distance_to_tss(c, (a + b) // 2) < 0)
        if bg:
            c, a, bseq, sp = bg
            out.append(
                _ex("tf_binding", "transcription factor binding site", bseq, "False", "background (GC-matched)", c, a, a + len(bseq), sp, **items)
            )
    return out


def tf_peaks(ctx: Context):
    peaks = ctx.chip_peaks
    """ChIP-seq peak sequences (tf, chrom, start, end, sequence, source): the central 101 bp with
    the ``transcription factor`` item, against GC-matched genomic windows of the same length and
    split that carry the same item. The peaks lie on chromosomes this machine has no sequence for,
    so their negatives cannot come from the same chromosome; GC and length are matched."""
    out = []
    for tf, chrom, start, end, seq, source in peaks:
        split = ctx.split_of(chrom, start, end)
        if split is None:
            continue
        mid = len(seq) // 2
        core = seq[mid - 50 : mid + 51].upper()
        if len(core) != 101 or core.count("N") > 5:
            continue
        items = {"transcription factor": tf}
        out.append(
            _ex("tf_binding", "transcription factor binding site", core, "True", source, chrom, start + mid - 50, start + mid + 51, split, **items)
        )
        bg = ctx.background(101, float(checks.gc_content(core)), split, lambda c, a, b: False)
        if bg:
            c, a, bseq, sp = bg
            out.append(_ex("tf_binding", "transcription factor binding site", bseq, "False", "background (GC-matched)", c, a, a + 101, sp, **items))
    return out


# ---- gene records: description and reading comprehension --------------------------------
def gene_description(ctx: Context):
    out = []
    seen = set()
    for t in ctx.annotation.transcripts:
        rec = ctx.gene_records.get(t.gene)
        if not rec or t.gene in seen:
            continue
        seen.add(t.gene)
        split = ctx.split_of(t.chrom, t.start, t.end)
        mrna = spliced(ctx.genome, t, t.exons) if split else None
        if not mrna or len(mrna) < 30:
            continue
        for _ in range(max(1, int(3 * ctx.scale))):
            length = ctx.rng.randint(24, min(60, len(mrna)))
            o = ctx.rng.randrange(0, len(mrna) - length + 1)
            items = {"symbol": t.gene}
            if ctx.rng.random() < 0.5:
                items["id"] = rec["id"]
            out.append(
                _ex(
                    "gene_description",
                    "description",
                    mrna[o : o + length],
                    rec["name"],
                    "org.Hs.eg.db + GENCODE",
                    t.chrom,
                    t.start,
                    t.end,
                    split,
                    **items,
                )
            )
    return out


RC_FIELDS = ("symbol", "id", "chromosome", "map location", "Dbxref:MIM", "Ensembl", "gene type")


def reading_comprehension(ctx: Context):
    out = []
    for t in ctx.annotation.transcripts:
        if len(out) >= ctx.n(8000):
            break
        rec = ctx.gene_records.get(t.gene)
        split = ctx.split_of(t.chrom, t.start, t.end)
        if not rec or not split:
            continue
        for _ in range(max(1, int(2 * ctx.scale))):
            fields = [f for f in RC_FIELDS if rec.get(f)]
            chosen = ctx.rng.sample(fields, k=min(len(fields), ctx.rng.randint(1, 4)))
            items = {f: rec[f] for f in chosen}
            target = ctx.rng.choice(chosen)
            seq = None
            if ctx.rng.random() < 0.5:
                w = ctx.genome.fetch(t.chrom, t.start, t.start + ctx.rng.randint(12, 48))
                seq = w or None
            out.append(
                _ex(
                    "reading_comprehension",
                    f"reading comprehension: {target}",
                    seq,
                    items[target],
                    "org.Hs.eg.db records",
                    t.chrom,
                    t.start,
                    t.end,
                    split,
                    **items,
                )
            )
    return out


@dataclass(frozen=True)
class Builder:
    """One corpus builder: ``build(ctx) -> examples``. ``genome_only`` builders need nothing but a
    genome and its annotation, so they also run on a second genome (the hg38 test locus, or the
    user's ``--fasta/--gtf``)."""

    name: str
    build: Callable[[Context], list]
    genome_only: bool = False


#: every builder, in the order the corpus is built (the order fixes the random draws, so a seed
#: gives the same bytes): adding a task is one registry entry plus its builder here
BUILDERS: tuple[Builder, ...] = (
    Builder("splice_site", splice_site, genome_only=True),
    Builder("promoter", promoter, genome_only=True),
    Builder("orf", orf, genome_only=True),
    Builder("nt2aa", nt2aa, genome_only=True),
    Builder("sequence_direction", sequence_direction, genome_only=True),
    Builder("gene_biotype", gene_biotype),
    Builder("gc_content", gc_content, genome_only=True),
    Builder("reverse_complement", reverse_complement, genome_only=True),
    Builder("open_chromatin / enhancer / regulatory", regulatory_family),
    Builder("tf_binding", tf_binding),
    Builder("tf_binding (ChIP-seq peaks)", tf_peaks),
    Builder("gene_description", gene_description),
    Builder("reading_comprehension", reading_comprehension),
)
