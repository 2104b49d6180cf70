"""The real data command on its --small setting: every task present, honest splits, determinism."""

import json
from collections import Counter

from genomicllm_kernel.data.build import TEST_SLICES, _coords, build
from genomicllm_kernel.grammar import parse_prompt
from genomicllm_kernel.registry import TASKS

from .conftest import data_cache


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_task_in_train_and_test(small_corpus):
    train = Counter(r["task"] for r in _rows(small_corpus / "train.jsonl"))
    test = Counter(r["task"] for r in _rows(small_corpus / "test.jsonl"))
    for task in TASKS:
        assert train[task] > 0, task
        assert test[task] > 0, task
    card = (small_corpus / "DATA_CARD.md").read_text()
    assert "Genomic Benchmarks" in card and "sha256" in card


def test_every_example_parses_and_answers_in_format(small_corpus):
    for split in ("train", "dev", "test"):
        for r in _rows(small_corpus / f"{split}.jsonl"):
            p = parse_prompt(r["prompt"])
            assert p.task.id == r["task"]
            if p.task.labels:
                assert r["answer"] in p.task.labels
            if p.task.checker:
                assert p.task.checker(p.sequence, p.question, p.annotations) == r["answer"]


def test_no_test_region_base_in_train_or_dev(small_corpus):
    test_spans = [(c, s, s + 2_000_001) for c, s in TEST_SLICES.items()]
    for split in ("train", "dev"):
        for r in _rows(small_corpus / f"{split}.jsonl"):
            assert "alpha-globin" not in r["region"] and "hg38" not in r["source"]
            where = _coords(r["region"])
            if where is None:  # GUE rows, gene records, generated item names: no genome coordinates
                assert r["region"].startswith(("GUE", "gene:", "rc-names:")), r["region"]
                continue
            chrom, s, e = where
            for c, ts, te in test_spans:
                assert not (chrom == c and s < te and e > ts), r["region"]


def test_held_out_names_and_genes_never_reach_training(small_corpus):
    """Reading comprehension's dev / test item names are never asked in train; unseen genes are never
    trained; Genomic Benchmarks records and GUE TF items are in the corpus."""
    asked = {split: set() for split in ("train", "dev", "test")}
    genes = {split: set() for split in ("train", "dev", "test")}
    sources, gue_prom = set(), {}
    for split in asked:
        for r in _rows(small_corpus / f"{split}.jsonl"):
            sources.add(r["source"].split(":")[0])
            if r["source"].startswith("generated item names"):
                asked[split].add(r["question"].split(":", 1)[1].strip().lower())
            if r["source"].startswith("org.Hs.eg.db ("):
                genes[split if "unseen" in r["source"] else "train"].add(r["region"])
            if r["source"].startswith("GUE:tf_") and split == "dev":
                assert "transcription factor = GUE tf_" in r["prompt"]
            if r["source"].startswith("GUE:prom_"):  # GUE's promoter-vs-shuffled question, apart from genome background
                gue_prom.setdefault(r["source"], []).append((split, "benchmark = GUE" in r["prompt"]))
    assert asked["dev"] and asked["test"] and not (asked["dev"] | asked["test"]) & asked["train"]
    assert genes["dev"] | genes["test"] and not (genes["dev"] | genes["test"]) & genes["train"]
    assert any(s.startswith("Genomic Benchmarks") for s in sources)
    # every prom_300 / prom_core row asks with the item; the tata sets' train rows are also asked bare (their questions' only source)
    assert set(gue_prom) == {f"GUE:prom_{w}_{s}" for w in ("300", "core") for s in ("all", "notata", "tata")}
    for source, rows in gue_prom.items():
        asked, bare = [split for split, item in rows if item], [split for split, item in rows if not item]
        assert asked and bare == (["train"] * asked.count("train") if source.endswith("_tata") else []), source
    assert (small_corpus / "gene_table.tsv.gz").exists()


def test_markov_chains_are_counted_on_training_transcripts_only(small_corpus):
    """sequence_likelihoods.json: the coding chain reads a training coding window in its own frame,
    and it is counted on training transcripts only (the source says how many; the dev and test
    transcripts' sequences would give a different table)."""
    from genomicllm_kernel.likelihoods import FILENAME, SequenceLikelihoods

    chains = SequenceLikelihoods.load(small_corpus / FILENAME)
    assert "training transcripts" in chains.source and chains.coding.shape == (3, 4**chains.order, 4)
    rows = [r for r in _rows(small_corpus / "train.jsonl") if r["task"] == "orf"]
    right = [chains.predict_frame(parse_prompt(r["prompt"]).sequence) + 1 == int(r["answer"]) for r in rows]
    assert len(rows) >= 20 and sum(right) / len(right) > 0.6  # chance is 1/3


def test_same_seed_same_bytes(tmp_path, small_corpus):
    again = build(tmp_path / "again", small=True, seed=0, cache=data_cache(), progress=lambda m: None)
    for name in ("train.jsonl", "dev.jsonl", "test.jsonl", "DATA_CARD.md", "gene_table.tsv.gz", "sequence_likelihoods.json"):
        assert (again / name).read_bytes() == (small_corpus / name).read_bytes(), name
    assert not (tmp_path / "again.partial").exists()


def test_user_genome_and_annotation(tmp_path):
    """--fasta/--gtf: the hg38 globin slice and its GTF, as a user with their own genome would pass them."""
    from genomicllm_kernel.data.sources import fetch_all

    paths = fetch_all(data_cache(), ["augustus"])["augustus"]
    out = build(tmp_path / "user", small=True, seed=1, cache=data_cache(), fasta=paths["hg38"], gtf=paths["hg38_gtf"], progress=lambda m: None)
    rows = _rows(out / "train.jsonl") + _rows(out / "dev.jsonl")
    user = [r for r in rows if "user genome" in r["source"]]
    assert {r["task"] for r in user} >= {"splice_site", "promoter", "orf", "nt2aa"}


def test_gue_dev_leaks_are_flagged(small_corpus):
    dev = _rows(small_corpus / "dev.jsonl")
    assert any(r["source"].startswith("GUE:") for r in dev)
    assert all(isinstance(r["leak"], bool) for r in dev)


def test_gff3_and_gtf_give_the_same_transcripts(tmp_path):
    from genomicllm_kernel.data.annotation import read_annotation

    gff = tmp_path / "a.gff3"
    gff.write_text(
        "##gff-version 3\n"
        "chr1\tsrc\tgene\t101\t400\t.\t+\t.\tID=g1;Name=GENE1;gene_biotype=protein_coding\n"
        "chr1\tsrc\tmRNA\t101\t400\t.\t+\t.\tID=t1;Parent=g1\n"
        "chr1\tsrc\texon\t101\t200\t.\t+\t.\tParent=t1\n"
        "chr1\tsrc\texon\t301\t400\t.\t+\t.\tParent=t1\n"
        "chr1\tsrc\tCDS\t151\t200\t.\t+\t0\tParent=t1\n"
        "chr1\tsrc\tCDS\t301\t350\t.\t+\t1\tParent=t1\n"
    )
    gtf = tmp_path / "a.gtf"
    gtf.write_text(
        'chr1\tsrc\texon\t101\t200\t.\t+\t.\tgene_id "g1"; transcript_id "t1"; gene_name "GENE1"; gene_type "protein_coding";\n'
        'chr1\tsrc\texon\t301\t400\t.\t+\t.\tgene_id "g1"; transcript_id "t1"; gene_name "GENE1"; gene_type "protein_coding";\n'
        'chr1\tsrc\tCDS\t151\t200\t.\t+\t0\tgene_id "g1"; transcript_id "t1"; gene_name "GENE1";\n'
        'chr1\tsrc\tCDS\t301\t350\t.\t+\t1\tgene_id "g1"; transcript_id "t1"; gene_name "GENE1";\n'
    )
    (a,), (b,) = read_annotation(gff).transcripts, read_annotation(gtf).transcripts
    for t in (a, b):
        assert (t.gene, t.gene_type, t.chrom, t.strand) == ("GENE1", "protein_coding", "chr1", "+")
        assert t.exons == [(100, 200), (300, 400)] and t.cds == [(150, 200), (300, 350)] and t.tss == 100


def test_malformed_annotation_names_file_and_line(tmp_path):
    import pytest

    from genomicllm_kernel.data.annotation import read_annotation
    from genomicllm_kernel.errors import InputError

    bad = tmp_path / "bad.gtf"
    bad.write_text('chr1\tsrc\texon\t101\t200\t.\t+\t.\ttranscript_id "t1";\nchr1\tsrc\texon\tx\t200\t.\t+\t.\ttranscript_id "t1";\n')
    with pytest.raises(InputError, match="bad.gtf, line 2: start/end are not integers"):
        read_annotation(bad)


def test_orf_and_direction_evaluation_rows_are_tiles_sharing_no_24mer(small_corpus):
    """Dev and test rows of the tiled tasks are cut from their transcripts without overlap (no two
    share a 24-mer, so isoforms add no copies), and outnumber the random draws they replace."""
    from genomicllm_kernel.data.builders import TILE_KMER, TILED_TASKS

    for split in ("dev", "test"):
        rows = [r for r in _rows(small_corpus / f"{split}.jsonl") if r["task"] in TILED_TASKS]
        for task in TILED_TASKS:
            seqs = [parse_prompt(r["prompt"]).sequence for r in rows if r["task"] == task]
            if task == "sequence_direction":  # reverse rows are read backwards: compare them forwards
                seqs = [s if r["answer"] == "forward" else s[::-1] for s, r in zip(seqs, [r for r in rows if r["task"] == task])]
            seen: set[str] = set()
            for s in seqs:
                kmers = {s[i : i + TILE_KMER] for i in range(len(s) - TILE_KMER + 1)}
                assert not kmers & seen
                seen |= kmers


def test_tiles_cover_a_sequence_without_overlap():
    import random

    from genomicllm_kernel.data.builders import _tiles

    draw = random.Random(0)
    seq = "".join(draw.choice("ACGT") for _ in range(3000))
    tiles = _tiles(seq, 60, 150, random.Random(1), set())
    assert len(tiles) >= 15
    ends = [o + len(w) for o, w in tiles]
    assert all(60 <= len(w) <= 150 and seq[o : o + len(w)] == w for o, w in tiles)
    assert all(start >= end for (start, _), end in zip(tiles[1:], ends))
    used = set()
    for _, w in tiles:
        used |= {w[i : i + 24] for i in range(len(w) - 23)}
    assert _tiles(seq, 60, 150, random.Random(1), used) == []


def test_gene_biotype_head_fit_tiles_are_new_training_windows_balanced_per_gene():
    """builders.gene_biotype_tiles: windows of training-split exons only, on the gene's strand, none
    repeating a 24-mer of the rows it is given (the question's training rows) or of each other, at
    most BIOTYPE_TILES_PER_GENE a gene, both labels in equal numbers, each row's region its gene's span."""
    import random

    from genomicllm_kernel.checks import reverse_complement
    from genomicllm_kernel.data import builders
    from genomicllm_kernel.data.annotation import Annotation
    from genomicllm_kernel.data.genome import Contig, Genome

    draw = random.Random(3)
    chrom = "".join(draw.choice("ACGT") for _ in range(60_000))
    genome = Genome("toy")
    genome.add(Contig("chr1", 0, chrom))
    exons = [("BIG", "protein_coding", "chr1", "+", 1000, 9000), ("BIG", "protein_coding", "chr1", "+", 9500, 9900)]
    exons += [("NC1", "lincRNA", "chr1", "-", 20_000, 21_000), ("NC2", "pseudogene", "chr1", "+", 22_000, 22_500)]
    exons += [("DEV", "lincRNA", "chr1", "+", 40_000, 45_000)]  # a dev-split exon: never read
    split = lambda c, s, e: "dev" if s >= 40_000 else "train"  # noqa: E731
    ctx = builders.Context(genome, Annotation(), split, random.Random(0), exon_rows=exons)
    taught = builders._kmers(chrom[20_100:20_300][::-1].translate(str.maketrans("ACGT", "TGCA")))
    used = set(taught)
    rows = builders.gene_biotype_tiles(ctx, random.Random(1), used)
    labels = Counter(r.answer for r in rows)
    assert labels["protein coding gene"] == labels["other"] > 0
    assert all(r.split == builders.HEAD_FIT_SPLIT and r.task == "gene_biotype" for r in rows)
    seen: set[str] = set()
    for r in rows:
        seq = parse_prompt(r.prompt).sequence
        assert 60 <= len(seq) <= 200
        kmers = builders._kmers(seq)
        assert not kmers & taught and not kmers & seen
        seen |= kmers
        if r.answer == "protein coding gene":
            assert r.region == "chr1:1000-9900" and seq in chrom[1000:9900]
        else:
            assert r.region in ("chr1:20000-21000", "chr1:22000-22500")
            strand_seq = reverse_complement(chrom[20_000:21_000]) if r.region.startswith("chr1:20000") else chrom[22_000:22_500]
            assert seq in strand_seq
    assert Counter(r.region for r in rows)["chr1:1000-9900"] <= builders.BIOTYPE_TILES_PER_GENE
