"""Per-task example builders. Each yields :class:`Example` rows in the prompt grammar.

Every builder takes a :class:`Context` (genomes, annotation, peaks, gene records, split rule and
random generator) and draws windows in transcript orientation. Negatives come from matched
background: same chromosome pieces, GC content matched to the positives in 0.05-wide bins, same
length. Labels that are derived rather than annotated (enhancer, regulatory) say so in ``source``.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter, defaultdict
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
    gb_records: list = field(default_factory=list)  # genomic_benchmarks.Record, lifted to GRCh37

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
            length = min(len(cds), exact_length(ctx, ctx.rng.randint(12, min(150, len(cds)))))
            o = 3 * ctx.rng.randrange(0, (len(cds) - length) // 3 + 1)
            seq = cds[o : o + length]
            out.append(_ex("nt2aa", "protein sequence", seq, checks.translate(seq), "GENCODE CDS", t.chrom, t.start, t.end, split))
    for _ in range(ctx.n(3000)):
        w = ctx.random_window(exact_length(ctx, ctx.rng.randint(12, 150)))
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


def training_transcripts(ctx: Context) -> tuple[list[str], list[str]]:
    """(coding sequences, spliced mRNAs) of the training split's transcripts, each once: what the
    coding and mRNA Markov chains are counted on (likelihoods.py). Dev, test and evaluation-only
    regions never enter (split_of says "train" only for training loci). Reads no random draw."""
    cds = list(dict.fromkeys(seq for _, seq, split in _cds_seqs(ctx) if split == "train"))
    mrna = []
    for t in ctx.annotation.transcripts:
        if ctx.split_of(t.chrom, t.start, t.end) == "train":
            seq = spliced(ctx.genome, t, t.exons)
            if seq:
                mrna.append(seq)
    return cds, list(dict.fromkeys(mrna))


#: tasks whose dev and test rows are tiles (:func:`transcript_tiles`), not the builder's random draws
TILED_TASKS = ("orf", "sequence_direction")
#: at most this many tiles per transcript, so that a few long genes do not make the whole set
TILES_PER_TRANSCRIPT = 40
#: a tile that shares any 24-mer with an earlier tile of its task (another isoform's exon) is skipped
TILE_KMER = 24


def _kmers(seq: str) -> set[str]:
    """Every TILE_KMER-mer of ``seq``: what two tiles must not share."""
    return {seq[i : i + TILE_KMER] for i in range(len(seq) - TILE_KMER + 1)}


def _tiles(seq: str, shortest: int, longest: int, rng: random.Random, used: set[str]):
    """(offset, window) pairs that cut ``seq`` into non-overlapping windows of random length, each
    sharing no 24-mer with ``used`` (which they join)."""
    o, out = rng.randint(0, 30), []
    while o + shortest <= len(seq) and len(out) < TILES_PER_TRANSCRIPT:
        length = rng.randint(shortest, min(longest, len(seq) - o))
        window = seq[o : o + length]
        kmers = _kmers(window)
        if not kmers & used:
            used |= kmers
            out.append((o, window))
        o += length + rng.randint(0, 30)
    return out


def transcript_tiles(ctx: Context, rng: random.Random, used: dict[str, set] | None = None, splits=("dev", "test"), as_split=None) -> list[Example]:
    """Dev and test rows of ORF and sequence direction: every dev/test transcript cut into
    non-overlapping windows (issue #20 asks for sets whose 95% interval is narrower than +-0.1; the
    random draws of :func:`orf` and :func:`sequence_direction`, six and three per transcript, gave
    90 and 57 dev rows). Windows of other isoforms that repeat an exon are skipped, so no two rows
    share a 24-mer. ``rng`` is the tiles' own, so the training rows, drawn from ``ctx.rng``, do
    not change. ``used`` (task -> 24-mers) carries over between the calls of one corpus, so no two
    rows of a task share a 24-mer across genomes either. Rows of one transcript are not independent:
    the evaluator resamples them by transcript for its intervals (evaluation.mcc_interval).

    With ``splits=("train",)`` and ``as_split="headfit"`` (:data:`HEAD_FIT_SPLIT`) the same tiles
    of training transcripts are the head-fit rows: ``used`` then starts with every 24-mer of the
    task's training rows, so no head-fit row repeats a window the language model was taught."""
    out: list[Example] = []
    used = {} if used is None else used
    used_cds = used.setdefault("orf", set())
    for t, cds, split in _cds_seqs(ctx):
        if split not in splits:
            continue
        for o, window in _tiles(cds, 60, 150, rng, used_cds):
            frame = {0: "1", 1: "3", 2: "2"}[o % 3]
            out.append(_ex("orf", "open reading frame", window, frame, "GENCODE CDS", t.chrom, t.start, t.end, as_split or split))
    used_mrna = used.setdefault("sequence_direction", set())
    for t in ctx.annotation.transcripts:
        split = ctx.split_of(t.chrom, t.start, t.end)
        if split not in splits:
            continue
        mrna = spliced(ctx.genome, t, t.exons)
        if not mrna:
            continue
        for _, window in _tiles(mrna, 50, 200, rng, used_mrna):
            direction = rng.choice(["forward", "reverse"])
            seq = window if direction == "forward" else window[::-1]
            out.append(
                _ex("sequence_direction", "sequence direction", seq, direction, "GENCODE transcripts", t.chrom, t.start, t.end, as_split or split)
            )
    return out


#: rows for fitting the per-question head of the tiled tasks (head_fit.py, ``head_fit_split_tasks``):
#: windows of training transcripts, written to ``headfit.jsonl``, which no language-model stage reads
HEAD_FIT_SPLIT = "headfit"


def tile_kmers(examples, task: str) -> set[str]:
    """Every 24-mer of ``task``'s rows among ``examples`` (direction rows read forwards)."""
    from ..grammar import parse_prompt

    out: set[str] = set()
    for ex in examples:
        if ex.task == task:
            seq = parse_prompt(ex.prompt).sequence
            out |= _kmers(seq[::-1] if ex.answer == "reverse" else seq)
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


#: gene-biotype head-fit rows: at most this many windows per gene, so that a few long genes do not make the set
BIOTYPE_TILES_PER_GENE = 20


def gene_biotype_tiles(ctx: Context, rng: random.Random, used: set[str]) -> list[Example]:
    """Head-fit rows of gene biotype (``headfit.jsonl``): non-overlapping 60-200 nt windows of
    training-split exons, on the gene's strand, that share no 24-mer with ``used`` (start it with
    every 24-mer of the question's training rows: the language model was never taught these windows)
    nor with each other; at most :data:`BIOTYPE_TILES_PER_GENE` per gene; both labels in equal
    numbers. Each row's region is its gene's span, so a head fit's held-out tenth, drawn by region,
    holds out whole genes. Why (docs/experiments.md, stage 19): the question's 987 training rows
    are too few for its k-mer head (held-out loss 0.680, chance 0.693), and the language model's
    offset on rows it was taught says nothing about exons it never saw."""
    spans: dict[str, tuple] = {}
    for gene, _, chrom, _, s, e in ctx.exon_rows:
        c, a, b = spans.get(gene, (chrom, s, e))
        spans[gene] = (c, min(a, s), max(b, e)) if c == chrom else (c, a, b)
    found = []
    for gene, gtype, chrom, strand, s, e in ctx.exon_rows:
        if e - s < 60 or chrom not in ctx.genome.contigs or ctx.split_of(chrom, s, e) != "train" or spans[gene][0] != chrom:
            continue
        seq = ctx.genome.fetch(chrom, s, e, strand)
        if not seq:
            continue
        label = "protein coding gene" if gtype == "protein_coding" else "other"
        found += [(gene, label, window) for _, window in _tiles(seq, 60, 200, rng, used)]
    rng.shuffle(found)
    per_gene: Counter = Counter()
    by_label: dict[str, list] = {"protein coding gene": [], "other": []}
    for gene, label, window in found:
        if per_gene[gene] < BIOTYPE_TILES_PER_GENE:
            per_gene[gene] += 1
            by_label[label].append((gene, window))
    n = min(min(len(v) for v in by_label.values()), ctx.n(5000))
    return [
        _ex("gene_biotype", "gene biotype", window, label, "GENCODE exons", *spans[gene], HEAD_FIT_SPLIT)
        for label, rows in by_label.items()
        for gene, window in rows[:n]
    ]


# ---- exact tasks on genomic windows ------------------------------------------------------
#: exact tasks are trained up to the context limit: most windows short (cheap), LONG_SHARE of them
#: long (200-760 nt; 760 nt is about the longest whose aligned answer fits 512 tokens), because a
#: model trained to 200 nt agreed with the exact GC value in 2 of 9 windows of 600 nt
LONG_SHARE = 0.15
LONGEST = 760


def exact_length(ctx: Context, short: int) -> int:
    """A window length for an exact task: up to ``short`` nt usually, 200-760 nt LONG_SHARE of the time."""
    if ctx.rng.random() < LONG_SHARE:
        return ctx.rng.randint(200, LONGEST)
    return short


def gc_content(ctx: Context):
    out = []
    for _ in range(ctx.n(8000)):
        w = ctx.random_window(exact_length(ctx, ctx.rng.randint(10, 200)))
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
        length = exact_length(ctx, int(min(200, max(8, ctx.rng.expovariate(1 / 60)))))
        w = ctx.random_window(length)
        if w:
            chrom, s, seq, split = w
            q = ctx.rng.choice(list(questions))
            out.append(_ex("reverse_complement", q, seq, questions[q](seq), "genomic windows", chrom, s, s + len(seq), split))
    return out


# ---- open chromatin from ATAC peaks; curated regulatory labels from Genomic Benchmarks ------
def open_chromatin_atac(ctx: Context):
    """ATAC-seq peak centres (open chromatin) against GC-matched windows with no peak within 500 bp.

    Earlier corpora also derived enhancer and regulatory-class labels from these peaks (by distance
    to a TSS); they did not transfer to curated annotations (the shipped model scored enhancer MCC
    0.00 on Ensembl enhancers), so those labels now come from Genomic Benchmarks only."""
    out = []
    width = 200
    per_peak = max(1, int(2 * ctx.scale))
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
            out.append(_ex("open_chromatin", "open chromatin region", seq, "True", source, chrom, s, s + width, split))
            bg = ctx.background(width, float(checks.gc_content(seq)), split, lambda c, a, b: ctx.near_peak(c, a, b))
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
    return out


GB_QUESTIONS = {"regulatory": "regulatory", "enhancer": "enhancer", "open_chromatin": "open chromatin region"}


def genomic_benchmarks(ctx: Context):
    """Genomic Benchmarks records lifted to GRCh37 (data/genomic_benchmarks.py), each as its set's
    task, on the strand the record names; the locus split decides train or dev. Non-TATA promoters
    (251 bp, -200..+50) are widened to GUE's proximal shape (-249..+50, 300 bp); their negatives here
    come from GC-matched genomic windows >2 kb from any TSS (the set's own negatives on chrX lie
    beyond the 70 Mb this machine has)."""
    out = []
    for r in ctx.gb_records:
        source = f"Genomic Benchmarks {r.dataset}"
        if r.task == "promoter":
            if r.label != "True":
                continue
            s, e = (r.start - 49, r.end) if r.strand == "+" else (r.start, r.end + 49)
            split = ctx.split_of(r.chrom, s, e)
            seq = ctx.genome.fetch(r.chrom, s, e, r.strand) if split else None
            if not seq:
                continue
            question = ctx.rng.choice(["proximal promoter", "proximal notata promoter"])
            out.append(_ex("promoter", question, seq, "True", source, r.chrom, s, e, split))
            bg = ctx.background(len(seq), float(checks.gc_content(seq)), split, lambda c, a, b: ctx.distance_to_tss(c, (a + b) // 2) < 2000)
            if bg:
                c, a, bseq, sp = bg
                out.append(_ex("promoter", question, bseq, "False", f"{source}: background (GC-matched, >2 kb from TSS)", c, a, a + len(bseq), sp))
            continue
        split = ctx.split_of(r.chrom, r.start, r.end)
        seq = ctx.genome.fetch(r.chrom, r.start, r.end, r.strand) if split else None
        if not seq:
            continue
        out.append(_ex(r.task, GB_QUESTIONS[r.task], seq, r.label, source, r.chrom, r.start, r.end, split))
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


# ---- reading comprehension over item names a user would write ----------------------------
#: item names from annotation formats (GTF / GFF3 attributes, GenBank qualifiers) and from sample
#: sheets; with RC_FIELDS and synthetic names they make the name pool of reading_comprehension_names
ANNOTATION_NAMES = (
    "gene_id", "transcript_id", "gene_name", "gene_type", "gene_biotype", "transcript_type", "transcript_name",
    "exon_number", "exon_id", "level", "havana_gene", "tag", "ccdsid", "protein_id", "Parent", "ID", "Name",
    "Dbxref", "biotype", "description", "product", "Note", "gene_synonym", "locus_tag", "db_xref",
    "transcript_support_level", "score", "phase", "source", "feature", "strand", "start", "end", "frame",
    "tissue", "cell type", "donor", "sample", "condition", "treatment", "species", "assay", "replicate", "batch",
    "gene", "protein", "transcript", "strain", "age", "sex", "organism", "library", "lane", "barcode", "run",
    "platform", "time point", "dose", "genotype", "phenotype", "disease", "individual", "cohort", "study",
    "accession", "project", "experiment", "antibody", "target", "family", "clade", "motif", "enzyme", "pathway",
    "region", "locus", "allele", "variant", "haplotype", "marker", "probe", "primer", "guide", "vector",
    "plasmid", "clone", "well", "plate", "chromosome name", "position", "reference", "alternate", "quality",
    "depth", "coverage", "read count", "fold change", "p value", "cluster", "cell line", "passage", "operator",
)  # fmt: skip
_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["th", "sh", "ch", "qu", "x", "y"]
#: hold-out rule by name (lower case, hashed): 10% of names only ever appear as dev targets, 10% as test
RC_HOLDOUT = {"dev": (0, 26), "test": (26, 52)}


def rc_name_split(name: str) -> str:
    """train, dev or test: the split whose questions may ask for this item name."""
    import hashlib

    if name.strip().lower() in {f.lower() for f in RC_FIELDS}:
        return "train"  # the record builder (and every earlier model) trained on these
    h = hashlib.sha256(f"rc-name:{name.strip().lower()}".encode()).digest()[0]
    for split, (lo, hi) in RC_HOLDOUT.items():
        if lo <= h < hi:
            return split
    return "train"


def _word(rng: random.Random, syllables: tuple[int, int] = (1, 4)) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(*syllables)))


def synthetic_name(rng: random.Random) -> str:
    """An item name of varied shape: word, words, snake/kebab/dotted/colon forms, digits, capitals."""
    words = [_word(rng) for _ in range(rng.choice([1, 1, 1, 2, 2, 3]))]
    shape = rng.random()
    if shape < 0.35:
        name = " ".join(words)
    else:
        name = rng.choice(["_", "-", ".", ":", ""]).join(words)
    if rng.random() < 0.25:
        name += rng.choice(["", "_", " ", "-"]) + str(rng.randint(1, 99))
    if rng.random() < 0.2:
        name = name.capitalize() if rng.random() < 0.5 else name.upper()
    return name


def synthetic_value(rng: random.Random) -> str:
    """A value of varied shape: words, numbers, identifiers, coordinates, symbols."""
    kind = rng.randrange(9)
    if kind == 0:
        return _word(rng)
    if kind == 1:
        return " ".join(_word(rng) for _ in range(rng.randint(2, 4)))
    if kind == 2:
        return str(rng.randint(0, 10 ** rng.randint(1, 7)))
    if kind == 3:
        return f"{rng.uniform(0, 100):.{rng.randint(1, 4)}f}"
    if kind == 4:
        prefix = rng.choice(["ENSG", "ENST", "ENSP", "NM_", "NR_", "XM_", "rs", "GO:", "HGNC:", "MIM:", "UniProt:", "SRR", "GSM"])
        return prefix + str(rng.randint(0, 10**9)).zfill(rng.choice([5, 6, 8, 11]))
    if kind == 5:
        return f"chr{rng.choice([str(rng.randint(1, 22)), 'X', 'Y'])}:{rng.randint(1, 10**8)}-{rng.randint(1, 10**8)}"
    if kind == 6:
        return _word(rng, (1, 2)).upper() + str(rng.randint(1, 30))
    if kind == 7:
        return rng.choice(["yes", "no", "true", "false", "NA", "+", "-", "male", "female", "unknown", "liver", "brain", "blood", "HeLa"])
    return f"{_word(rng)}{rng.choice(['-', '_', '.', '/'])}{rng.randint(1, 999)}"


def _near_names(rng: random.Random, name: str) -> list[str]:
    """Distractor names that share a prefix or a suffix with ``name`` (the model must match all of it)."""
    return [
        f"{name} {rng.choice(['id', 'name', 'type', 'source', '2'])}",
        f"{name}{rng.choice(['_id', '_name', 's', '2', '.1'])}",
        f"{rng.choice(['old', 'new', 'alt', 'raw'])} {name}",
    ]


def _valid_name(name: str) -> bool:
    from ..registry import all_question_keys

    return bool(name.strip()) and "," not in name and "=" not in name and name.strip().lower() not in {k.lower() for k in all_question_keys()}


def reading_comprehension_names(ctx: Context):
    """Reading comprehension over names a user would write (the record builder only knows RC_FIELDS):
    2-6 items per prompt, names drawn from ANNOTATION_NAMES, RC_FIELDS and synthetic shapes, values of
    varied shape, near-miss distractor names, and sequence items before or between the items. A name
    is asked only in the split rc_name_split gives it, so dev and test ask for names never asked in
    training (their distractors may be any names)."""
    out = []
    pool = list(ANNOTATION_NAMES) + list(RC_FIELDS)
    targets = {"train": ctx.n(30000), "dev": ctx.n(1500) if ctx.scale >= 1 else 12, "test": ctx.n(1500) if ctx.scale >= 1 else 12}
    made = Counter()
    tries = 0
    while any(made[k] < v for k, v in targets.items()) and tries < 40 * sum(targets.values()):
        tries += 1
        target = rng_name = ctx.rng.choice(pool) if ctx.rng.random() < 0.4 else synthetic_name(ctx.rng)
        split = rc_name_split(target)
        if made[split] >= targets[split] or not _valid_name(rng_name):
            continue
        names = [target]
        if ctx.rng.random() < 0.4:
            names += ctx.rng.sample(_near_names(ctx.rng, target), ctx.rng.randint(1, 2))
        while len(names) < ctx.rng.randint(2, 6):
            names.append(ctx.rng.choice(pool) if ctx.rng.random() < 0.5 else synthetic_name(ctx.rng))
        lowered, unique = set(), []
        for n in names:
            if _valid_name(n) and n.strip().lower() not in lowered:
                lowered.add(n.strip().lower())
                unique.append(n.strip())
        ctx.rng.shuffle(unique)
        parts = [f"{n} = {synthetic_value(ctx.rng)}" for n in unique]
        answer = parts[unique.index(target.strip())].split(" = ", 1)[1]
        if ctx.rng.random() < 0.5:  # the grammar allows one sequence item; it may sit before, between or after the items
            w = ctx.random_window(ctx.rng.randint(9, 60))
            if w:
                parts.insert(ctx.rng.randint(0, len(parts)), w[2])
        prompt = ", ".join(parts) + f", reading comprehension: {target.strip()} ="
        out.append(
            Example(
                "reading_comprehension",
                f"reading comprehension: {target.strip()}",
                prompt,
                answer,
                f"generated item names ({split} names)",
                f"rc-names:{split}",
                split,
            )
        )
        made[split] += 1
    return out


# ---- gene descriptions for every human gene record -----------------------------------------
#: 1 in UNSEEN_EVERY gene records (by Entrez id hash) never reaches training: the "unseen genes" rows.
#: Genes of the annotated chromosomes (chrX 1-70 Mb, chr22) are never unseen: earlier models trained on them.
UNSEEN_EVERY = 20


def gene_split(gene_id: str) -> str:
    import hashlib

    h = int.from_bytes(hashlib.sha256(f"gene:{gene_id}".encode()).digest()[:4], "big")
    return ("dev" if (h // UNSEEN_EVERY) % 2 else "test") if h % UNSEEN_EVERY == 0 else "train"


def gene_record_description(ctx: Context):
    """``symbol = X, description =`` (and ``id = N`` forms) for every org.Hs.eg.db gene with a full
    name. Protein-coding genes get three prompts (symbol, id, both), others one. Dev also asks a
    sample of trained genes ("known genes": the knowledge base is public, so this is the common use)
    with prompts shaped as in training; held-out genes ("unseen genes") are in dev and test only."""
    out = []
    annotated = {t.gene for t in ctx.annotation.transcripts}
    seen = set()
    records = sorted({rec["id"]: rec for rec in ctx.gene_records.values()}.values(), key=lambda r: int(r["id"]) if str(r["id"]).isdigit() else 0)
    for rec in records:
        if not rec.get("name") or rec["id"] in seen or "," in rec["name"] or "=" in rec["name"]:
            continue
        seen.add(rec["id"])
        split = "train" if rec["symbol"] in annotated else gene_split(str(rec["id"]))
        coding = rec.get("gene type") == "protein-coding"
        forms = [{"symbol": rec["symbol"]}, {"id": rec["id"]}, {"symbol": rec["symbol"], "id": rec["id"]}] if coding else [{"symbol": rec["symbol"]}]
        if ctx.scale < 1 and ctx.rng.random() > ctx.scale:
            continue
        if split != "train":
            forms = [ctx.rng.choice(forms)]
        for items in forms:
            if any("," in str(v) or "=" in str(v) for v in items.values()):
                continue
            ex = _ex(
                "gene_description",
                "description",
                None,
                rec["name"],
                f"org.Hs.eg.db ({'unseen' if split != 'train' else 'known'} genes)",
                "gene",
                0,
                0,
                split,
                **items,
            )
            ex.region = f"gene:{rec['id']}"
            out.append(ex)
        if split == "train" and ctx.rng.random() < 0.02:
            ex = _ex("gene_description", "description", None, rec["name"], "org.Hs.eg.db (known genes)", "gene", 0, 0, "dev", **forms[0])
            ex.region = f"gene:{rec['id']}"
            out.append(ex)
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
    Builder("open_chromatin (ATAC peaks)", open_chromatin_atac),
    Builder("enhancer / open_chromatin / regulatory / promoter (Genomic Benchmarks)", genomic_benchmarks),
    Builder("tf_binding", tf_binding),
    Builder("tf_binding (ChIP-seq peaks)", tf_peaks),
    Builder("gene_description", gene_description),
    Builder("reading_comprehension", reading_comprehension),
    Builder("reading_comprehension (generated item names)", reading_comprehension_names),
    Builder("gene_description (every org.Hs.eg.db gene)", gene_record_description),
)
