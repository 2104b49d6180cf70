"""``genomicllm data build``: obtain sources, build every task's examples, split honestly, write.

Splits
------
* test: the augustus-doc hg19 slices of chr3/chr4/chr5 and the hg38 alpha-globin locus, and nothing
  else from the genome. These regions never reach train or dev.
* train / dev: chrX (1-70 Mb) and chr22 are cut into 1 Mb loci; a seeded draw sends 10% of loci to
  dev. A window that crosses into a locus of the other split is dropped, and after building, any dev
  window that overlaps a train window is removed (overlapping windows leak).
* GUE: train splits are training data; dev splits are kept for evaluation, and each GUE dev
  sequence whose middle 24-mer occurs in any training sequence is flagged ``leak`` so evaluation
  can drop it. prom_300 dev sequences that contain a prom_core train sequence are flagged too
  (the data README measured 80% of them). splice_reconstructed has only a dev split: a seeded
  80/20 cut gives GUE-style training and evaluation halves.
* ORF and sequence direction: their dev and test rows are tiles of every dev/test transcript
  (``builders.transcript_tiles``), built with their own seed and kept out of the shuffle, so the
  training rows and the order of every split are what they were before tiles existed.

Output: ``train.jsonl``, ``dev.jsonl``, ``test.jsonl`` (one example per line: task, question,
prompt, answer, source, region, split, leak) and ``DATA_CARD.md``, written to a temporary folder
and renamed into place, so an interrupted build never looks complete.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import random
import shutil
import sqlite3
import time
from collections import Counter, defaultdict
from pathlib import Path

from ..errors import InputError
from . import builders, genomic_benchmarks
from .annotation import read_annotation, read_gencode_parquet
from .builders import Context, Example
from .genome import Genome, read_fasta_contigs, read_maf_reference
from .sources import fetch_all, source_record

LOCUS = 1_000_000
GUE_DIR_DEFAULT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gue"
TEST_SLICES = {"chr3": 41_999_999, "chr4": 102_999_999, "chr5": 123_999_999}
GUE_TASKS = {
    "prom_core_all": ("promoter", "core promoter"),
    "prom_core_notata": ("promoter", "core notata promoter"),
    "prom_core_tata": ("promoter", "core tata promoter"),
    "prom_300_tata": ("promoter", "proximal tata promoter"),
    "prom_300_all": ("promoter", "proximal promoter"),
    "prom_300_notata": ("promoter", "proximal notata promoter"),
    "splice_reconstructed": ("splice_site", "splice site"),
    **{f"tf_{i}": ("tf_binding", "transcription factor binding site") for i in range(5)},
}
GUE_LABELS = {"splice_site": {"0": "acceptor site", "1": "donor site", "2": "non-splice site"}}


def find_shared_data(name: str) -> Path | None:
    """``../shared/data/<name>`` beside the working directory or beside this checkout, if present."""
    beside_checkout = GUE_DIR_DEFAULT.parent / name
    for cand in (Path.cwd().parent / "shared" / "data" / name, Path.cwd() / "shared" / "data" / name, beside_checkout):
        if cand.is_dir():
            return cand
    return None


def find_gue_dir() -> Path | None:
    return find_shared_data("gue")


class Splitter:
    """Locus-level split rule: test contigs are test; other loci are train/dev by a seeded draw."""

    def __init__(self, seed: int, test_spans: list[tuple[str, int, int]], dev_fraction: float = 0.12):
        self.seed, self.test_spans, self.dev_fraction = seed, test_spans, dev_fraction

    def locus_split(self, chrom: str, locus: int) -> str:
        h = hashlib.sha256(f"{self.seed}:{chrom}:{locus}".encode()).digest()
        return "dev" if h[0] / 256 < self.dev_fraction else "train"

    def __call__(self, chrom: str, start: int, end: int) -> str | None:
        for c, s, e in self.test_spans:
            if c == chrom and s <= start and end <= e:
                return "test"
            if c == chrom and start < e and end > s:
                return None
        a, b = self.locus_split(chrom, start // LOCUS), self.locus_split(chrom, (end - 1) // LOCUS)
        return a if a == b else None


def _load_gene_records(sqlite_path: Path) -> dict[str, dict]:
    con = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    q = """select g._id, g.gene_id, i.symbol, i.gene_name, c.chromosome, l.cytogenetic_location, t.gene_type
           from genes g join gene_info i using(_id) left join chromosomes c using(_id)
           left join cytogenetic_locations l using(_id) left join genetype t using(_id)"""
    recs: dict[str, dict] = {}
    by_id: dict[int, dict] = {}
    for _id, gid, sym, name, chrom, band, gtype in con.execute(q):
        rec = {"id": gid, "symbol": sym, "name": name, "chromosome": chrom or "", "map location": band or "", "gene type": gtype or ""}
        recs.setdefault(sym, rec)
        by_id[_id] = rec
    for _id, mim in con.execute("select _id, omim_id from omim"):
        by_id[_id].setdefault("Dbxref:MIM", mim)
    for _id, ens in con.execute("select _id, ensembl_id from ensembl"):
        by_id[_id].setdefault("Ensembl", ens)
    alias_count = Counter(a for (a,) in con.execute("select alias_symbol from alias"))
    for _id, alias in con.execute("select _id, alias_symbol from alias"):
        if alias_count[alias] == 1 and alias not in recs:
            recs[alias] = by_id[_id]
    con.close()
    return recs


def _orgdb_date(paths) -> str:
    con = sqlite3.connect(f"file:{paths['orgdb']['sqlite']}?mode=ro", uri=True)
    try:
        row = con.execute("select value from metadata where name = 'EGSOURCEDATE'").fetchone()
    finally:
        con.close()
    return row[0] if row else "unknown date"


def _read_peaks(paths: dict[str, Path], genome: Genome) -> list[tuple[str, int, int, str]]:
    peaks = []
    for key in ("peaks1", "peaks2", "peaks3"):
        with gzip.open(paths["atac"][key], "rt") as fh:
            for lineno, line in enumerate(fh, start=1):
                cols = line.split("\t")
                if len(cols) < 3:
                    raise InputError(f"{paths['atac'][key]}, line {lineno}: a BED line needs at least 3 columns")
                if cols[0] in genome.contigs:
                    peaks.append((cols[0], int(cols[1]), int(cols[2]), "ATAC CD4+ T cells (ataqv)"))
    with open(paths["gimme"]["blood_atac"]) as fh:
        next(fh)
        for line in fh:
            loc = line.split("\t", 1)[0]
            chrom, rng = loc.split(":")
            s, e = map(int, rng.split("-"))
            if chrom in genome.contigs:
                peaks.append((chrom, s, e, "ATAC blood (gimmemotifs)"))
    # merge duplicates across files: keep one peak per 200 bp bin
    seen, out = set(), []
    for p in sorted(peaks):
        key = (p[0], (p[1] + p[2]) // 400)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _read_chip_peaks(paths, splitter: "Splitter", seed: int, small: bool):
    """Oct4 / Mafk (janggu) and CTCF (gimmemotifs) peak sequences with their hg19 coordinates."""
    out = []
    for tf, path, source in (
        ("POU5F1", paths["janggu"]["oct4"], "ChIP-seq Oct4 peaks (janggu)"),
        ("MAFK", paths["janggu"]["mafk"], "ChIP-seq Mafk peaks (janggu)"),
        ("CTCF", paths["gimme"]["ctcf"], "ChIP-seq GM12878 CTCF peaks (gimmemotifs)"),
    ):
        for rec in read_fasta_contigs(path):
            chrom, _, span = rec.chrom.partition(":")
            try:
                start, end = (int(x) for x in span.split("-"))
            except ValueError:
                raise InputError(f"{path}: header {rec.chrom!r} is not chrom:start-end") from None
            out.append((tf, chrom, start, end, rec.seq, source))
    if small:
        random.Random(seed).shuffle(out)
        out = out[:120]
    return out


def read_bed_regions(path: Path) -> list[tuple[str, int, int, str]]:
    out = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            cols = line.split()
            try:
                out.append((cols[0], int(cols[1]), int(cols[2]), f"user enhancers ({path.name})"))
            except (IndexError, ValueError):
                raise InputError(f"{path}, line {lineno}: expected 'chrom start end' (BED)") from None
    return out


#: GUE's five TF ChIP-seq sets are different experiments (their factors are not published): the item
#: ``transcription factor = GUE tf_K`` tells the model which one a question is about. A share of each
#: set is also asked without the item, so the bare question keeps a pooled answer.
GUE_TF_ITEM = "transcription factor"
GUE_TF_BARE_SHARE = 0.25
#: GUE has no train split for prom_300_all / prom_300_notata: their dev sequences are cut 80/20 by a
#: hash of the sequence (one rule for both sets, so a sequence in both lands on the same side).
#: splice_reconstructed keeps the seeded 80/20 cut of its row order that the shipped models trained on.
GUE_DEV_ONLY = ("prom_300_all", "prom_300_notata")


def gue_tf_value(name: str) -> str:
    return f"GUE {name}"


def gue_tf_item(name: str) -> str:
    """The item a GUE TF set's rows carry, as written in a prompt: ``transcription factor = GUE tf_0``."""
    return f"{GUE_TF_ITEM} = {gue_tf_value(name)}"


#: GUE's prom_300 sets ask "promoter or not" against DeePromoter's negatives (a promoter with most of
#: its sequence replaced), a different question from "promoter or genome background" (the EPDnew and
#: GENCODE TSS rows): what tells the one apart points the wrong way on the other (docs/experiments.md,
#: "A proxy: why EPDnew non-TATA promoters fail"). Their rows carry ``benchmark = GUE``; the bare
#: proximal question is answered from genome-background rows. prom_300_tata is the only source of its
#: question, so its train rows are also asked bare (a copy), and the bare question keeps an answer.
#: GUE's prom_core sets (the same negatives, 70 bp) followed in stage 22: a regression fitted on them
#: scores MCC 0.04 / 0.02 on the GENCODE TSS core / core notata rows, one fitted on those rows alone
#: 0.34 / 0.21 (out of fold; docs/experiments.md, stage 22). prom_core_tata is copied bare as prom_300_tata is.
GUE_PROMOTER_ITEM = "benchmark"
GUE_PROMOTER_VALUE = "GUE"
GUE_PROMOTER_SETS = ("prom_300_all", "prom_300_notata", "prom_300_tata", "prom_core_all", "prom_core_notata", "prom_core_tata")
GUE_PROMOTER_BARE_COPY = ("prom_300_tata", "prom_core_tata")


def gue_item(name: str) -> str:
    """The item a GUE set's dev rows carry (``transcription factor = GUE tf_0``, ``benchmark = GUE``), "" for none."""
    if name.startswith("tf_"):
        return gue_tf_item(name)
    if name in GUE_PROMOTER_SETS:
        return f"{GUE_PROMOTER_ITEM} = {GUE_PROMOTER_VALUE}"
    return ""


def _dev_half(name: str, seq: str) -> str:
    """train (80%) or dev (20%) for a sequence of a dev-only GUE set."""
    h = hashlib.sha256(f"gue80:{'prom_300' if name.startswith('prom_300') else name}:{seq}".encode()).digest()
    return "dev" if h[0] < 0.2 * 256 else "train"


def _gue_examples(gue_dir: Path, rng: random.Random, small: bool) -> list[Example]:
    out = []
    for name, (task, question) in GUE_TASKS.items():
        for split in ("train", "dev"):
            path = gue_dir / name / f"{split}.csv.gz"
            if not path.exists():
                continue
            with gzip.open(path, "rt") as fh:
                rows = list(csv.DictReader(fh))
            if small:
                rows = rows[:40]
            labels = GUE_LABELS.get(task, {"1": "True", "0": "False"})
            if name == "splice_reconstructed":
                rng2 = random.Random(f"splice80:{len(rows)}")
                order = list(range(len(rows)))
                rng2.shuffle(order)
                train_idx = set(order[: int(0.8 * len(rows))])
            for i, row in enumerate(rows):
                seq = row["sequence"].upper()
                target = _dev_half(name, seq) if name in GUE_DEV_ONLY else split
                if name == "splice_reconstructed":
                    target = "train" if i in train_idx else "dev"
                items = ""
                if name.startswith("tf_") and not (target == "train" and rng.random() < GUE_TF_BARE_SHARE):
                    items = f", {gue_item(name)}"
                elif name in GUE_PROMOTER_SETS:
                    items = f", {gue_item(name)}"
                    if name in GUE_PROMOTER_BARE_COPY and target == "train":
                        bare = f"{seq}, {question} ="
                        out.append(Example(task, question, bare, labels[row["label"]], f"GUE:{name}", f"GUE:{name}:{split}:{i}:bare", target))
                prompt = f"{seq}{items}, {question} ="
                out.append(Example(task, question, prompt, labels[row["label"]], f"GUE:{name}", f"GUE:{name}:{split}:{i}", target))
    return out


def _seq_of(ex: Example) -> str:
    first = ex.prompt.split(",", 1)[0].strip()
    return first if first and "=" not in first else ""


def _flag_leaks(examples: list[Example]) -> dict[str, int]:
    train_kmers: set[int] = set()
    core_train: set[str] = set()
    for ex in examples:
        if ex.split != "train":
            continue
        s = _seq_of(ex)
        for i in range(0, max(0, len(s) - 23)):
            train_kmers.add(hash(s[i : i + 24]))
        if ex.source.startswith("GUE:prom_core"):
            core_train.add(s)
    core_lengths = {len(s) for s in core_train}
    counts: Counter[str] = Counter()
    for ex in examples:
        if ex.split == "train":
            continue
        s = _seq_of(ex)
        if len(s) >= 24:
            mid = (len(s) - 24) // 2
            if hash(s[mid : mid + 24]) in train_kmers:
                ex.leak = True
        if ex.source.startswith("GUE:prom_300") and core_train:
            if any(s[i : i + L] in core_train for L in core_lengths for i in range(len(s) - L + 1)):
                ex.leak = True
        if ex.leak:
            counts[f"{ex.split}:{ex.source}"] += 1
    return dict(counts)


def _coords(region: str) -> tuple[str, int, int] | None:
    """(chrom, start, end) of a genomic ``region``; None for GUE rows, gene records and generated items."""
    if region.startswith("GUE"):
        return None
    c, _, rng = region.rpartition(":")
    s, _, e = rng.partition("-")
    if not c or not s.isdigit() or not e.isdigit():
        return None
    return c, int(s), int(e)


def _labelled(part: list[Example], label: str) -> list[Example]:
    """``part``'s rows with the genome's label on their source and region (a second genome's rows)."""
    for ex in part:
        ex.source = f"{ex.source} [{label}]"
        ex.region = f"{label}|{ex.region}"
    return part


def _drop_overlaps(examples: list[Example]) -> int:
    """Remove dev windows that overlap any train window (coordinates from ``region``)."""
    import bisect

    train = defaultdict(list)
    for ex in examples:
        where = _coords(ex.region) if ex.split == "train" else None
        if where:
            train[where[0]].append((where[1], where[2]))
    merged = {}
    for c, iv in train.items():
        iv.sort()
        out = []
        for s, e in iv:
            if out and s <= out[-1][1]:
                out[-1][1] = max(out[-1][1], e)
            else:
                out.append([s, e])
        merged[c] = out
    keep, dropped = [], 0
    for ex in examples:
        where = _coords(ex.region) if ex.split == "dev" else None
        if where:
            c, s, e = where
            arr = merged.get(c, [])
            i = bisect.bisect_right(arr, [e, e])
            if any(a < e and b > s for a, b in arr[max(0, i - 2) : i]):
                dropped += 1
                continue
        keep.append(ex)
    examples[:] = keep
    return dropped


def read_genomes(paths: dict, small: bool) -> tuple[Genome, Genome]:
    """(the hg19 genome of every region the corpus reads, the evaluation-only test slices alone)."""
    train_genome = Genome("hg19 chrX + chr22")
    for c in read_fasta_contigs(paths["chrX"]["fasta"], rename={"X": "chrX"}):
        train_genome.add(c)
    if not small:
        train_genome.add(read_maf_reference(paths["chr22"]["maf"]))
    test_genome = Genome("hg19 chr3/chr4/chr5 slices")
    for key, chrom in (("chr3", "chr3"), ("chr4", "chr4"), ("chr5", "chr5")):
        for c in read_fasta_contigs(paths["augustus"][key], offsets={chrom: TEST_SLICES[chrom]}):
            test_genome.add(c)
    genome = Genome("hg19")
    for g in (train_genome, test_genome):
        for cs in g.contigs.values():
            for c in cs:
                genome.add(c)
    return genome, test_genome


def read_exon_rows(gdir: Path, genome: Genome) -> list[tuple]:
    """(gene, gene type, chrom, strand, 0-based start, end) of every distinct GENCODE exon on the
    genome's contigs: the gene-biotype rows' source (builders.gene_biotype)."""
    import pandas as pd

    exons = pd.read_parquet(Path(gdir) / "exons.parquet")
    exons = exons[exons._labels.isin(genome.contigs)].drop_duplicates(["_labels", "_starts", "_ends"])
    return [
        (g, t, c, st, int(s) - 1, int(e))
        for g, t, c, st, s, e in zip(exons.gene_name, exons.gene_type, exons._labels, exons.Strand, exons._starts, exons._ends)
    ]


def transcript_context(cache: Path | None = None, small: bool = False, seed: int = 0, progress=print) -> Context:
    """The genome, annotation and split rule of :func:`build` alone (no peaks, records or draws):
    what scripts that study the training transcripts read (scripts/likelihood_order.py)."""
    cache = Path(cache or Path.home() / ".cache" / "genomicllm" / "data")
    names = ["chrX", "augustus", "gencode", "spliceai"] + ([] if small else ["chr22"])
    paths = fetch_all(cache, names, progress=lambda m: progress(f"  {m}"))
    genome, test_genome = read_genomes(paths, small)
    ann = read_gencode_parquet(paths["gencode"]["dir"], paths["spliceai"]["grch37"], genome)
    exon_rows = read_exon_rows(paths["gencode"]["dir"], genome)
    return Context(genome, ann, Splitter(seed, test_genome.spans()), random.Random(seed), exon_rows=exon_rows)


def build(
    out: Path,
    small: bool = False,
    seed: int = 0,
    cache: Path | None = None,
    fasta: Path | None = None,
    gtf: Path | None = None,
    enhancers: Path | None = None,
    gue_dir: Path | None = None,
    progress=print,
) -> Path:
    t0 = time.time()
    out = Path(out).resolve()
    cache = Path(cache or Path.home() / ".cache" / "genomicllm" / "data")
    rng = random.Random(seed)
    scale = 0.03 if small else 1.0
    for p in (fasta, gtf, enhancers):
        if p is not None and not Path(p).exists():
            raise InputError(f"{p}: no such file")
    if (fasta is None) != (gtf is None):
        raise InputError("--fasta and --gtf go together: give a genome FASTA and its GTF/GFF3 annotation")

    names = ["chrX", "augustus", "atac", "orgdb", "gencode", "spliceai", "gimme", "janggu"] + ([] if small else ["chr22"])
    paths = fetch_all(cache, names, progress=lambda m: progress(f"  {m}"))
    progress("reading genomes")
    genome, test_genome = read_genomes(paths, small)
    splitter = Splitter(seed, test_genome.spans())

    ann_label = "GENCODE v19, SpliceAI canonical transcripts, hg19 chrX 1-70 Mb" + ("" if small else " + chr22")
    progress("reading annotation (GENCODE v19 + SpliceAI canonical transcripts)")
    gdir = paths["gencode"]["dir"]
    ann = read_gencode_parquet(gdir, paths["spliceai"]["grch37"], genome)
    import pandas as pd

    genes = pd.read_parquet(gdir / "genes.parquet")
    genes = genes[genes._labels.isin(genome.contigs)]
    extra_tss = [
        (c, int(s) - 1 if st == "+" else int(e) - 1, st, g)
        for g, st, c, s, e in zip(genes.gene_name, genes.Strand, genes._labels, genes._starts, genes._ends)
    ]
    exon_rows = read_exon_rows(gdir, genome)
    cpg_df = pd.read_parquet(gdir / "CpG_islands.parquet")
    cpg = defaultdict(list)
    for c, s, e in zip(cpg_df._labels, cpg_df._starts, cpg_df._ends):
        if c in genome.contigs:
            cpg[c].append((int(s), int(e)))
    tf_df = pd.read_parquet(gdir / "Top1000sites_TF.parquet")
    tf_df = tf_df[tf_df._labels.isin(genome.contigs)]
    tf_sites = [(c, int(s), st, g) for g, st, c, s in zip(tf_df.Gene, tf_df.Strand, tf_df._labels, tf_df._starts)]
    progress("reading gene records (org.Hs.eg.db)")
    records = _load_gene_records(paths["orgdb"]["sqlite"])
    peaks = _read_peaks(paths, genome)
    gb_dir = find_shared_data("genomic_benchmarks")
    gb_records, gb_counts = [], {}
    if gb_dir is not None:
        progress(f"lifting Genomic Benchmarks records from {gb_dir} to GRCh37")
        gb_records, gb_counts = genomic_benchmarks.read_records(gb_dir, set(genome.contigs), small)
    else:
        progress("Genomic Benchmarks not found (../shared/data/genomic_benchmarks); enhancer / regulatory labels skipped")
    if enhancers:
        peaks += [p for p in read_bed_regions(enhancers) if p[0] in genome.contigs]

    ctx = Context(
        genome,
        ann,
        splitter,
        rng,
        scale,
        peaks,
        tf_sites,
        {c: sorted(v) for c, v in cpg.items()},
        records,
        extra_tss,
        exon_rows=exon_rows,
        chip_peaks=_read_chip_peaks(paths, splitter, seed, small),
        gb_records=gb_records,
    )
    examples: list[Example] = []
    try:
        from tqdm import tqdm

        bar = tqdm(builders.BUILDERS, desc="building tasks", unit="task", disable=None)
    except ImportError:  # pragma: no cover
        bar = builders.BUILDERS
    for b in bar:
        examples += b.build(ctx)
    # dev/test rows of the tiled tasks: drawn with their own generator so no training row changes
    tile_rng = random.Random(f"{seed}:evaluation tiles")
    tile_kmers: dict[str, set] = {}
    tiles = builders.transcript_tiles(ctx, tile_rng, tile_kmers)
    # head-fit rows: tiles of training transcripts that repeat no window the language model is taught
    head_fit_used = {task: builders.tile_kmers(examples, task) for task in builders.TILED_TASKS}
    head_fit = builders.transcript_tiles(ctx, random.Random(f"{seed}:head-fit tiles"), head_fit_used, ("train",), builders.HEAD_FIT_SPLIT)
    # and windows of training exons for gene biotype, none of them a window its training rows hold
    biotype_used = builders.tile_kmers(examples, "gene_biotype")
    head_fit += builders.gene_biotype_tiles(ctx, random.Random(f"{seed}:gene biotype head-fit tiles"), biotype_used)

    # A second genome + annotation: the hg38 alpha-globin locus (test), or the user's own pair.
    extra = [(paths["augustus"]["hg38"], paths["augustus"]["hg38_gtf"], "hg38 alpha-globin locus", "test")]
    if fasta is not None:
        extra.append((Path(fasta), Path(gtf), f"user genome {Path(fasta).name}", None))
    for fa, an, label, forced in extra:
        progress(f"building annotation tasks on {label}")
        g = Genome(label)
        for c in read_fasta_contigs(fa, assembly=label):
            g.add(c)
        user_split = (lambda c, s, e: "test") if forced else Splitter(seed, [])
        sub = Context(g, read_annotation(an), user_split, random.Random(f"{seed}:{label}"), scale if forced else scale)
        for b in builders.BUILDERS:
            if not b.genome_only:
                continue
            examples += _labelled(b.build(sub), label)
        tiles += _labelled(builders.transcript_tiles(sub, tile_rng, tile_kmers), label)

    gue_dir = gue_dir or find_gue_dir()
    if gue_dir is not None:
        progress(f"reading GUE splits from {gue_dir}")
        examples += _gue_examples(gue_dir, rng, small)
    else:
        progress("GUE splits not found (../shared/data/gue); GUE examples skipped")

    # The tiles go through the same overlap, leak and duplicate filters, after every other row (so
    # they drop, never displace, one), and are held out of the shuffle: with the random dev/test
    # rows they replace removed only after it, the shuffle, and so every split's order, is unchanged.
    examples += tiles
    dropped = _drop_overlaps(examples)
    leaks = _flag_leaks(examples)
    # dedupe identical prompts within a split (keep first), deterministic order
    seen, unique = set(), []
    for ex in examples:
        key = (ex.split, ex.prompt)
        if key not in seen:
            seen.add(key)
            unique.append(ex)
    tile_ids = {id(ex) for ex in tiles}
    examples = [ex for ex in unique if id(ex) not in tile_ids]
    tiles = [ex for ex in unique if id(ex) in tile_ids]
    rng.shuffle(examples)
    examples = [ex for ex in examples if ex.split == "train" or ex.task not in builders.TILED_TASKS]
    tile_rng.shuffle(tiles)
    examples += tiles

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        with open(tmp / f"{split}.jsonl", "w") as fh:
            for ex in examples:
                if ex.split == split:
                    fh.write(json.dumps(ex.as_dict(), sort_keys=True) + "\n")
    with open(tmp / f"{builders.HEAD_FIT_SPLIT}.jsonl", "w") as fh:
        for ex in head_fit:
            fh.write(json.dumps(ex.as_dict(), sort_keys=True) + "\n")
    from ..gene_table import FILENAME as GENE_TABLE, write_gene_table
    from ..likelihoods import FILENAME as LIKELIHOODS, SequenceLikelihoods

    cds, mrna = builders.training_transcripts(ctx)
    chains = SequenceLikelihoods.count(cds, mrna, source=f"{len(cds)} coding sequences and {len(mrna)} mRNAs of training transcripts ({ann_label})")
    chains.save(tmp / LIKELIHOODS)
    progress(f"coding / mRNA Markov chains (order {chains.order}): {chains.source} ({LIKELIHOODS})")
    from .card import write_data_card

    orgdb = source_record(Path(cache).resolve()).get("orgdb", {})
    n_genes = write_gene_table(tmp / GENE_TABLE, records, f"org.Hs.eg.db {orgdb.get('archive', '?')} (Entrez Gene {_orgdb_date(paths)})")
    progress(f"gene table: {n_genes} genes ({GENE_TABLE})")

    write_data_card(
        tmp / "DATA_CARD.md",
        examples,
        source_record(Path(cache).resolve()),
        dropped,
        leaks,
        dict(
            small=small,
            seed=seed,
            fasta=str(fasta) if fasta else None,
            gtf=str(gtf) if gtf else None,
            enhancers=str(enhancers) if enhancers else None,
        ),
        test_genome.spans(),
        head_fit,
    )
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    progress(f"wrote {len(examples)} examples to {out} in {time.time() - t0:.0f} s")
    return out
