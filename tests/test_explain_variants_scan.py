"""Explanations (ISM), variant effects from a VCF and genome scans (issue #18), on the random tiny
model of the fast layer: the tools work with any model, so what is tested here is that they read
the model faithfully, read real VCF / FASTA files, stream, and refuse bad input with one line."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

from genomicllm_kernel.engine import GenomicLLM

SEQ = "TTGACAATTAATCATCGGCTCGTATAATGTGTGGAATTGTGAGCGGATAACAATTTCACACAGGAAACAG"


@pytest.fixture(scope="module")
def llm(random_model):
    return GenomicLLM.from_pretrained(random_model, backend="onnx")


def cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "genomicllm_kernel.cli", *args], capture_output=True, text=True, input=stdin, timeout=300)


def test_explanation_is_the_models_own_probabilities(llm):
    e = llm.explain(f"{SEQ}, core promoter =")
    assert e.probs.shape == (len(SEQ), 4, 2) and e.labels == ("True", "False")
    ref = llm.ask(f"{SEQ}, core promoter =")
    assert e.label == ref.answer and e.probability == pytest.approx(ref.probability, abs=1e-6)
    # every substitution's probability is the model's answer to that variant sequence
    for i, b in [(0, 1), (17, 3), (len(SEQ) - 1, 0)]:
        mutated = SEQ[:i] + "ACGT"[b] + SEQ[i + 1 :]
        a = llm.ask(f"{mutated}, core promoter =")
        assert e.probs[i, b, 0] == pytest.approx(a.labels["True"], abs=1e-5)
    own = np.array([[SEQ[i] == base for base in "ACGT"] for i in range(len(SEQ))])
    assert np.allclose(e.delta()[own], 0.0)
    expected = -(e.delta().sum(axis=1) / 3)
    assert np.allclose(e.importance, expected)
    assert "<span" in e._repr_html_() and e.to_dict()["answer"] == e.label


def test_ism_reuses_the_reference_cache_and_answers_exactly_as_full_passes(tmp_path, monkeypatch):
    """ONNX Runtime continues each substitution from the reference's KV cache where its tokens first
    differ (half the work); the probabilities are those of full passes, also with the composition
    input (features of every variant at its own <ans>), and agree with PyTorch."""
    from genomicllm_export import export_model
    from genomicllm_kernel.ort_backend import ORTDecoder
    from genomicllm_kernel.testing import build_random_model

    model = build_random_model(tmp_path / "m", seed=3, composition_ks=(4, 5))
    export_model(model, progress=lambda m: None)
    ort = GenomicLLM.from_pretrained(model, backend="onnx")
    prompt = f"{SEQ}, core promoter ="
    calls = []
    extend = ORTDecoder.extend
    monkeypatch.setattr(ORTDecoder, "extend", lambda self, state, length, *rest: calls.append(length) or extend(self, state, length, *rest))
    shared = ort.explain(prompt)
    assert calls and max(calls) > len(SEQ) // 3 - 3  # late substitutions ran from a long shared prefix
    monkeypatch.setattr(ORTDecoder, "reuses_prefix", False)
    full = ort.explain(prompt)
    assert np.abs(shared.probs - full.probs).max() < 1e-6
    torch_llm = GenomicLLM.from_pretrained(model, backend="torch")
    assert type(torch_llm.decoder).reuses_prefix
    assert np.abs(torch_llm.explain(prompt).probs - full.probs).max() < 1e-4


def test_explain_refuses_generation_questions(llm):
    from genomicllm_kernel.errors import InputError

    with pytest.raises(InputError, match="classification question"):
        llm.explain(f"{SEQ}, reverse complementary sequence =")
    r = cli("explain", f"{SEQ}, GC content =")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "classification question" in r.stderr


def test_explain_cli_formats(random_model, tmp_path):
    fa = tmp_path / "in.fa"
    fa.write_text(f">a\n{SEQ}\n>b\n{SEQ[:30]}\n")
    out = tmp_path / "out.tsv"
    r = cli("explain", "--task", "promoter", "--fasta", str(fa), "--model", str(random_model), "--output", str(out))
    assert r.returncode == 0, r.stderr
    rows = out.read_text().splitlines()
    assert rows[0].split("\t") == ["id", "position", "base", "importance", "delta_A", "delta_C", "delta_G", "delta_T"]
    assert len(rows) == 1 + len(SEQ) + 30 and rows[1].startswith("a\t1\tT\t")
    r = cli("explain", "--task", "promoter", "--fasta", str(fa), "--model", str(random_model), "--format", "bedgraph", "--window-size", "40")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("track type=bedGraph") and lines[1].split("\t")[:3] == ["a", "0", "1"]
    assert [ln.split("\t")[1] for ln in lines[1:] if ln.startswith("a\t")] == [str(i) for i in range(len(SEQ))]
    r = cli("explain", f"{SEQ}, core promoter =", "--model", str(random_model), "--format", "jsonl")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1


def _reference(tmp_path):
    rng = np.random.default_rng(0)
    chr1 = "".join(rng.choice(list("ACGT"), 2000))
    chr2 = "".join(rng.choice(list("ACGT"), 500))
    ref = tmp_path / "ref.fa"
    ref.write_text(">chr1\n" + "\n".join(chr1[i : i + 60] for i in range(0, 2000, 60)) + "\n>chr2\n" + chr2 + "\n")
    return ref, chr1, chr2


def _vcf(tmp_path, chr1, chr2):
    other = {"A": "G", "C": "T", "G": "A", "T": "C"}
    lines = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=chr1,length=2000>",
        "##contig=<ID=chr2,length=500>",
        "##contig=<ID=chr9,length=100>",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
        f"chr1\t1001\tsnv1\t{chr1[1000]}\t{other[chr1[1000]]}\t.\tPASS\t.",
        f"chr1\t5\tnear_start\t{chr1[4]}\t{other[chr1[4]]},{other[other[chr1[4]]]}\t.\tPASS\t.",
        f"chr1\t1500\tdel\t{chr1[1499:1502]}\t{chr1[1499]}\t.\tPASS\t.",
        f"chr1\t1600\tmismatch\t{other[chr1[1599]]}\t{chr1[1599]}\t.\tPASS\t.",
        "chr9\t10\tnocontig\tA\tG\t.\tPASS\t.",
        f"chr2\t100\tsym\t{chr2[99]}\t<DEL>\t.\tPASS\t.",
        f"chr2\t200\tlong\t{chr2[199]}\t{chr2[199]}{'A' * 200}\t.\tPASS\t.",
    ]
    vcf = tmp_path / "in.vcf"
    vcf.write_text("\n".join(lines) + "\n")
    return vcf


def test_variants_score_ref_and_alt_and_count_every_skip(random_model, tmp_path):
    import pysam

    ref, chr1, chr2 = _reference(tmp_path)
    vcf = _vcf(tmp_path, chr1, chr2)
    cds = tmp_path / "cds.bed"
    cds.write_text("chr1\t999\t1029\tgene1\t0\t+\n")
    out = tmp_path / "out.vcf"
    r = cli(
        "variants",
        "--vcf",
        str(vcf),
        "--reference",
        str(ref),
        "--task",
        "promoter",
        "--window",
        "120",
        "--cds",
        str(cds),
        "--model",
        str(random_model),
        "--output",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "variants: 4 scored, 1 ref mismatch, 1 contig missing, 1 symbolic allele, 1 too long for window" in r.stderr
    recs = {rec.id: rec for rec in pysam.VariantFile(str(out))}
    assert set(recs) == {"snv1", "near_start", "del", "mismatch", "nocontig", "sym", "long"}
    snv = recs["snv1"]
    assert snv.info["GLLM_STATUS"] == ("scored",) and snv.info["GLLM_LABEL"] in ("True", "False")
    # the figures are the model's answers to the two windows, centred on the variant
    llm = GenomicLLM.from_pretrained(random_model, backend="onnx")
    s = 1000 - 60
    ref_w = chr1[s : s + 120]
    alt_w = ref_w[:60] + snv.alts[0] + ref_w[61:]
    a_ref, a_alt = llm.ask([f"{ref_w}, promoter =", f"{alt_w}, promoter ="])  # the task's default question
    label = snv.info["GLLM_LABEL"]
    assert snv.info["GLLM_P_REF"][0] == pytest.approx(a_ref.labels[label], abs=1e-5)
    assert snv.info["GLLM_P_ALT"][0] == pytest.approx(a_alt.labels[label], abs=1e-5)
    codon = chr1[999:1002]
    from genomicllm_kernel.checks import translate

    assert snv.info["GLLM_PROTEIN"][0] == f"{translate(codon)}1{translate(codon[0] + snv.alts[0] + codon[2])}"  # 2nd base of codon 1
    assert len(recs["near_start"].info["GLLM_P_ALT"]) == 2
    assert recs["mismatch"].info["GLLM_STATUS"] == ("ref_mismatch",) and "GLLM_P_REF" not in recs["mismatch"].info
    # tabular, and bgzip input
    gz = tmp_path / "in.vcf.gz"
    pysam.tabix_compress(str(vcf), str(gz))
    r = cli(
        "variants",
        "--vcf",
        str(gz),
        "--reference",
        str(ref),
        "--task",
        "promoter",
        "--window",
        "120",
        "--format",
        "tabular",
        "--model",
        str(random_model),
    )
    assert r.returncode == 0, r.stderr
    rows = r.stdout.splitlines()
    assert rows[0].startswith("chrom\tpos\tid\tref\talt\tstatus") and len(rows) == 1 + 8


@pytest.mark.parametrize(
    "content, message",
    [("chr1\t10\t.\tA\tG\t.\t.\t.\n", "not a readable VCF"), ("", "not a readable VCF"), ("\x00\x01garbage", "not")],
)
def test_variants_bad_vcf_is_one_line(random_model, tmp_path, content, message):
    ref, _, _ = _reference(tmp_path)
    vcf = tmp_path / "bad.vcf"
    vcf.write_text(content)
    out = tmp_path / "out.vcf"
    r = cli("variants", "--vcf", str(vcf), "--reference", str(ref), "--task", "promoter", "--model", str(random_model), "--output", str(out))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.vcf*"))


def test_variants_refuse_a_generation_task(random_model, tmp_path):
    ref, chr1, chr2 = _reference(tmp_path)
    r = cli("variants", "--vcf", str(_vcf(tmp_path, chr1, chr2)), "--reference", str(ref), "--task", "nt2aa", "--model", str(random_model))
    assert r.returncode == 2 and "classification task" in r.stderr


def test_scan_streams_windows_as_bed_and_bedgraph(random_model, tmp_path):
    from genomicllm_kernel.scan import scan

    ref, chr1, chr2 = _reference(tmp_path)
    llm = GenomicLLM.from_pretrained(random_model, backend="onnx")
    hits = list(scan(llm, str(ref), "promoter", window_size=200, window_step=100))
    assert [(h[0], h[1], h[2]) for h in hits[:3]] == [("chr1", 0, 200), ("chr1", 100, 300), ("chr1", 200, 400)]
    assert hits[-1][:3] == ("chr2", 300, 500) and len(hits) == 19 + 4
    a = llm.ask(f"{chr1[100:300]}, promoter =")
    assert hits[1][3] == pytest.approx(a.labels["True"], abs=1e-5)
    out = tmp_path / "hits.bed"
    r = cli(
        "scan",
        "--fasta",
        str(ref),
        "--task",
        "promoter",
        "--window-size",
        "200",
        "--window-step",
        "100",
        "--threshold",
        "0",
        "--model",
        str(random_model),
        "--output",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    bed = [ln.split("\t") for ln in out.read_text().splitlines()]
    assert len(bed) == len(hits) and bed[0][:4] == ["chr1", "0", "200", "True"] and "scan: 23 windows" in r.stderr
    r = cli(
        "scan",
        "--fasta",
        str(ref),
        "--task",
        "promoter",
        "--window-size",
        "200",
        "--window-step",
        "100",
        "--format",
        "bedgraph",
        "--model",
        str(random_model),
    )
    graph = [ln.split("\t") for ln in r.stdout.splitlines()[1:]]
    # non-overlapping intervals that tile each record
    for rid, size in (("chr1", 2000), ("chr2", 500)):
        spans = [(int(g[1]), int(g[2])) for g in graph if g[0] == rid]
        assert spans[0][0] == 0 and spans[-1][1] == size and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_scan_bad_input(random_model, tmp_path):
    bad = tmp_path / "bad.fa"
    bad.write_text(">r\nACGTXACGT\n")
    r = cli("scan", "--fasta", str(bad), "--task", "promoter", "--window-size", "4", "--model", str(random_model))
    assert r.returncode == 2 and "line 2" in r.stderr and "'X'" in r.stderr
    r = cli("scan", "--fasta", str(bad), "--task", "gc_content", "--window-size", "4", "--model", str(random_model))
    assert r.returncode == 2 and "classification task" in r.stderr
    r = cli("scan", "--fasta", str(bad), "--task", "promoter", "--window-size", "4", "--window-step", "5", "--model", str(random_model))
    assert r.returncode == 2 and "larger than --window-size" in r.stderr


def test_fasta_windows_match_predict_windows():
    import random

    from genomicllm_kernel.engine import windows_of
    from genomicllm_kernel.scan import fasta_windows

    rnd = random.Random(1)
    for _ in range(200):
        recs, text = [], ""
        for r in range(rnd.randint(1, 3)):
            seq = "".join(rnd.choice("ACGT") for _ in range(rnd.randint(1, 300)))
            recs.append((f"r{r}", seq))
            w = rnd.randint(5, 80)
            text += f">r{r} x\n" + "\n".join(seq[i : i + w] for i in range(0, len(seq), w)) + "\n"
        size = rnd.randint(1, 120)
        step = rnd.randint(1, size)
        expected = [(rid, s, seq[s:e]) for rid, seq in recs for s, e in windows_of(len(seq), size, step)]
        assert list(fasta_windows(io.StringIO(text), size, step)) == expected


def test_split_fasta_chunks_scan_like_the_whole_file(tmp_path):
    import random

    from genomicllm_kernel.scan import fasta_windows, split_fasta

    rnd = random.Random(3)
    for trial in range(40):
        text = "".join(f">r{r}\n" + "".join(rnd.choice("ACGT") for _ in range(rnd.randint(1, 900))) + "\n" for r in range(rnd.randint(1, 4)))
        fa = tmp_path / f"g{trial}.fa"
        fa.write_text(text)
        size = rnd.randint(5, 120)
        step = rnd.randint(1, size)
        chunks = split_fasta(fa, tmp_path / f"chunks{trial}", size, step, rnd.randint(50, 400))
        whole = list(fasta_windows(fa, size, step))
        pieces = [w for c in chunks for w in fasta_windows(c, size, step)]
        assert pieces == whole, (trial, size, step)


def test_split_fasta_cli_then_scan_each_chunk_equals_one_scan(random_model, tmp_path):
    ref, _, _ = _reference(tmp_path)
    r = cli(
        "split-fasta",
        "--fasta",
        str(ref),
        "--window-size",
        "200",
        "--window-step",
        "100",
        "--chunk-size",
        "700",
        "--out-dir",
        str(tmp_path / "chunks"),
    )
    assert r.returncode == 0, r.stderr
    chunks = sorted((tmp_path / "chunks").glob("chunk_*.fa"))
    assert len(chunks) == 4 and not list(tmp_path.glob(".chunks.*"))
    args = ["--task", "promoter", "--window-size", "200", "--window-step", "100", "--threshold", "0", "--model", str(random_model)]
    whole = cli("scan", "--fasta", str(ref), *args).stdout
    assert "".join(cli("scan", "--fasta", str(c), *args).stdout for c in chunks) == whole
    r = cli("split-fasta", "--fasta", str(ref), "--window-size", "200", "--out-dir", str(tmp_path / "chunks"))
    assert r.returncode == 2 and "not an empty folder" in r.stderr


class _CountingModel:
    """A stand-in model whose p(True) is the share of A bases: its explanation is known exactly."""

    def answer(self, prompts, batch_size=32, where=None, **kw):
        from genomicllm_kernel.answer import Answer

        for n, p in enumerate(prompts):
            share = p.sequence.count("A") / len(p.sequence)
            label = "True" if share >= 0.15 else "False"
            yield Answer(n, p.text(), p.task.id, p.question, label, max(share, 1 - share), {"True": share, "False": 1 - share}, None, "m", "r")

    def label_probabilities_of_variants(self, reference, variants, batch_size=64):
        return [a.labels for a in self.answer(variants)]


def test_ism_and_the_deletion_test_on_a_known_model():
    from genomicllm_kernel.mutagenesis import explain_prompt, explanation_faithfulness

    llm = _CountingModel()
    seq = "A" * 12 + "CGT" * 16
    e = explain_prompt(llm, f"{seq}, core promoter =")
    assert e.label == "True"
    # an A supports the answer by exactly 1/L; a C, G or T works against it by 1/(3L)
    assert np.allclose(e.importance[:12], 1 / len(seq)) and np.allclose(e.importance[12:], -1 / (3 * len(seq)))
    assert e.least_favoured_bases()[:12] != "A" * 12
    f = explanation_faithfulness([e] * 5, llm, top=10)
    assert f["n"] == 5 and f["drop_top"] == pytest.approx(10 / len(seq)) and f["drop_top"] > 3 * abs(f["drop_random"])


def test_variant_pairs_continue_from_their_own_reference_and_answer_as_full_passes(llm, monkeypatch):
    """Variant effects run each (ref, alt) window pair as one reference pass and a continuation of
    the alt from its own reference's cache (ORTDecoder.extend_rows); every label probability is that
    of a full pass on each window, for SNVs anywhere in the window (first and last base included),
    an insertion and a deletion (other lengths: their own group), and on PyTorch too."""
    from genomicllm_kernel.grammar import parse_prompt
    from genomicllm_kernel.ort_backend import ORTDecoder

    rng = np.random.default_rng(5)
    windows = ["".join(rng.choice(list("ACGT"), 90)) for _ in range(6)]
    pairs = []
    for w, k in zip(windows, [0, 44, 45, 89, 30, 60]):
        alt = "ACGT"[("ACGT".index(w[k]) + 1) % 4]
        pairs.append((w, w[:k] + alt + w[k + 1 :]))
    pairs.append((windows[0], windows[0][:40] + "GA" + windows[0][41:]))  # insertion
    pairs.append((windows[1], windows[1][:40] + windows[1][42:]))  # deletion
    prompts = [(parse_prompt(f"{r}, core promoter ="), parse_prompt(f"{a}, core promoter =")) for r, a in pairs]
    rows = []
    extend_rows = ORTDecoder.extend_rows
    monkeypatch.setattr(
        ORTDecoder,
        "extend_rows",
        lambda self, state, length, ids, *rest: rows.append((length, ids.shape)) or extend_rows(self, state, length, ids, *rest),
    )
    paired = llm.label_probabilities_of_pairs(prompts, batch_size=4)
    assert rows and max(length for length, _ in rows) > 0 and len(rows) >= 3  # two batches of SNVs, the indels on their own
    full = llm.ask([t for r, a in pairs for t in (f"{r}, core promoter =", f"{a}, core promoter =")])
    torch_llm = GenomicLLM.from_pretrained(llm.path, backend="torch")
    for n, ((label, p_ref, p_alt), (t_label, t_ref, t_alt)) in enumerate(zip(paired, torch_llm.label_probabilities_of_pairs(prompts))):
        a_ref, a_alt = full[2 * n], full[2 * n + 1]
        assert label == a_ref.answer == t_label
        for k in p_ref:
            assert p_ref[k] == pytest.approx(a_ref.labels[k], abs=1e-6) and p_alt[k] == pytest.approx(a_alt.labels[k], abs=1e-6)
            assert t_ref[k] == pytest.approx(p_ref[k], abs=1e-4) and t_alt[k] == pytest.approx(p_alt[k], abs=1e-4)
