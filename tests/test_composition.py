"""The k-mer composition input (composition.py, composition_model.py) and the other answer-side
checks of this round: GC content with S / W, the gene table's database check, held-out item names.
Fast layer: random tiny models, no corpus."""

from __future__ import annotations

import gzip
import random

import numpy as np
import pytest

from genomicllm_kernel.composition import Layout, as_layout, composition, kmer_counts, positional
from genomicllm_kernel.grammar import parse_prompt


def test_kmer_counts_skip_n_and_item_boundaries():
    assert kmer_counts(["ACGTA"], 4).sum() == 2
    assert kmer_counts(["ACGNTACG"], 4).sum() == 1  # only TACG has no N
    # two items are counted apart: no k-mer spans the boundary
    assert kmer_counts(["ACG", "TAC"], 4).sum() == 0
    f = composition(["ACGTACGTAC"])
    assert f.shape == (256 + 1024,) and f.dtype == np.float32
    assert f[:256].sum() == pytest.approx(256 / 16) and f[256:].sum() == pytest.approx(1024 / 16)


def test_positional_layout_holds_each_third_after_the_whole_sequence():
    seq = "AAAAAACCCCCCGGGGGG"
    layout = Layout((4,), 3, (3,))
    v = layout.vector([seq])
    assert layout.whole_size == 256 and layout.size == 256 + 3 * 64 and v.shape == (layout.size,)
    assert np.array_equal(v[:256], composition([seq], (4,)))
    thirds = [composition([part], (3,)) for part in ("AAAAAA", "CCCCCC", "GGGGGG")]
    assert np.array_equal(v[256:], np.concatenate(thirds))
    # two items: third b of each item is summed into part b (no k-mer spans an item or a cut)
    assert np.array_equal(
        positional(["AAAAAA", "CCCCCC"], 2, (3,)), np.concatenate([composition(["AAA", "CCC"], (3,)), composition(["AAA", "CCC"], (3,))])
    )
    assert Layout((4,)).vector([seq]).shape == (256,) and as_layout((4, 5)) == Layout((4, 5))
    assert as_layout({"composition_ks": [3], "composition_bins": 2, "composition_bin_ks": [3]}) == Layout((3,), 2, (3,))
    # only the listed blocks fill their positional part
    some = Layout((4,), 3, (3,), ("core promoter",))
    assert np.array_equal(some.vector([seq], "core promoter"), v) and not some.vector([seq], "splice site")[256:].any()


def test_reading_frame_part_counts_each_frames_codons_in_its_blocks_only():
    """composition.phased_rows: phase r holds the k-mers starting at r, r + 3, ... of each item (the
    codons of frame r), placed between the whole sequence's part and the thirds, filled only in
    the layout's phase blocks; as_layout reads it back from a model config."""
    from genomicllm_kernel.composition import phased_rows

    seq = "ATGAAATAGC"
    frames = phased_rows([[seq]], (3,))[0].reshape(3, 64) / (64 / 16)
    code = lambda c: 16 * "ACGT".index(c[0]) + 4 * "ACGT".index(c[1]) + "ACGT".index(c[2])  # noqa: E731
    assert {code(c) for c in ("ATG", "AAA", "TAG")} == set(np.nonzero(frames[0])[0])
    assert {code(c) for c in ("TGA", "AAT", "AGC")} == set(np.nonzero(frames[1])[0])
    assert {code(c) for c in ("GAA", "ATA")} == set(np.nonzero(frames[2])[0])
    assert np.allclose(frames.sum(1), 1.0)
    # two items: frames are counted from each item's own start, then summed
    two = phased_rows([["ATGAAA", "CATG"]], (3,))[0].reshape(3, 64)
    assert two[0, code("CAT")] > 0 and two[1, code("ATG")] > 0
    layout = Layout((4,), 3, (3,), (), (3,), ("open reading frame",))
    assert (layout.whole_size, layout.phase_size, layout.bins_start, layout.size) == (256, 192, 448, 448 + 192)
    orf, other = layout.vectors([[seq], [seq]], ["open reading frame", "core promoter"])
    assert np.array_equal(orf[256:448], phased_rows([[seq]], (3,))[0]) and not other[256:448].any()
    assert np.array_equal(orf[448:], other[448:]) and np.array_equal(orf[:256], composition([seq], (4,)))
    cfg = {"composition_ks": [4], "composition_bins": 3, "composition_bin_ks": [3]}
    cfg.update(composition_phase_ks=[3], composition_phase_blocks=["open reading frame"])
    assert as_layout(cfg) == layout


def test_batched_layout_vectors_equal_the_per_row_vectors():
    """Layout.vectors (one numpy pass over many prompts: the speed path of explain, variants and
    scan) gives bit-identical numbers to Layout.vector row by row: items of every length, N and
    other non-bases, empty items, rows without sequence, and blocks with and without the thirds."""
    rng = np.random.default_rng(5)
    rows = []
    for _ in range(60):
        items = [
            "".join(rng.choice(list("ACGTNRS"), p=[0.23, 0.23, 0.23, 0.23, 0.04, 0.02, 0.02], size=rng.integers(0, 40)))
            for _ in range(rng.integers(0, 4))
        ]
        rows.append(items)
    layout = Layout((3, 4, 5, 6), 3, (3, 4, 5), ("core promoter",))
    keys = [rng.choice(["core promoter", "splice site", None]) for _ in rows]
    batch = layout.vectors(rows, keys)
    assert batch.dtype == np.float32 and batch.shape == (len(rows), layout.size)
    for row, key, got in zip(rows, keys, batch):
        assert np.array_equal(got, layout.vector(row, key))
    assert np.array_equal(Layout((4, 5)).vectors(rows), np.stack([Layout((4, 5)).vector(r) for r in rows]))
    assert Layout((4,)).vectors([]).shape == (0, 256)


def test_codec_reads_the_same_bases_from_ids_as_from_text(random_model):
    from genomicllm_kernel.codec import HybridCodec, model_view

    codec = HybridCodec.from_pretrained(random_model)
    p = parse_prompt("ACGTTGCARYGGCTTAGCCNNACGTAC, symbol = BRCA1, core promoter =")
    runs = codec.dna_runs(codec.encode_prompt(p))
    assert runs == [model_view(s) for s in p.sequences]
    a = codec.composition_features([codec.encode_prompt(p)], (4, 5))[0]
    assert np.array_equal(a, composition(p.sequences))


def test_only_classification_questions_get_the_features(random_model):
    """Generation questions get zeros: large short-sequence features at <ans> cost exact answers."""
    from genomicllm_kernel.codec import HybridCodec

    codec = HybridCodec.from_pretrained(random_model)
    seq = "ACGTTGCAAGGCTTAGCCGATTACGGA"
    prompts = [f"{seq}, {q} =" for q in ("core promoter", "splice site", "reverse complementary sequence", "protein sequence", "GC content")]
    prompts.append(f"{seq}, symbol = BRCA1, reading comprehension: symbol =")
    f = codec.composition_features([codec.encode_prompt(t) for t in prompts], (4, 5))
    assert [bool(row.any()) for row in f] == [True, True, False, False, False, False]
    assert np.array_equal(f[0], composition([seq]))


@pytest.fixture(scope="module")
def composition_model(tmp_path_factory):
    """A random composition model whose composition layer is large enough to move answers, exported."""
    import torch

    from genomicllm_export import export_model
    from genomicllm_kernel.model import load_torch_model
    from genomicllm_kernel.testing import build_random_model

    folder = build_random_model(tmp_path_factory.mktemp("comp") / "composition_model", composition_ks=(4, 5))
    net, _ = load_torch_model(folder)
    with torch.no_grad():
        net.composition.weight.normal_(0, 2.0)
    net.save_pretrained(folder, safe_serialization=True)
    export_model(folder, quantize="int8", progress=lambda m: None)
    return folder


PROMPTS = ["ACGTTGCAAGGCTTAGCCGATTACGGA, core promoter =", "TTTTTTTTTTTTAAAAAAAAAAAACC, core promoter =", "GGGCCCGGGCCCGGGCCCGGGCCC, core promoter ="]


def test_features_reach_the_answer_and_onnx_matches_torch(composition_model):

    from genomicllm_kernel.codec import HybridCodec
    from genomicllm_kernel.decoding import TorchDecoder
    from genomicllm_kernel.model import load_torch_model
    from genomicllm_kernel.ort_backend import ORTDecoder

    net, tok = load_torch_model(composition_model)
    torch_dec = TorchDecoder(net, tok, threads=1)
    ort_dec = ORTDecoder(composition_model / "onnx", HybridCodec.from_pretrained(composition_model / "onnx"), threads=1)
    assert torch_dec.composition == ort_dec.composition == Layout((4, 5))
    prompts = [parse_prompt(t) for t in PROMPTS]
    with_features = torch_dec.answer_batch(prompts)
    onnx = ort_dec.answer_batch(prompts)
    for a, b in zip(with_features, onnx):
        assert max(abs(a.labels[k] - b.labels[k]) for k in a.labels) < 1e-4
    torch_dec.composition = None  # the same model without its composition input answers differently
    without = torch_dec.answer_batch(prompts)
    assert max(abs(a.labels["True"] - b.labels["True"]) for a, b in zip(with_features, without)) > 1e-3
    # generation with the KV cache: the features act at <ans> only, and ONNX decodes the same text
    gen = [parse_prompt("ACGTTGCAAGGCTTAGC, reverse complementary sequence ="), parse_prompt("ATGGCGGCTTCAGAGTAA, protein sequence =")]
    torch_dec.composition = Layout((4, 5))
    assert [r.text for r in torch_dec.answer_batch(gen)] == [r.text for r in ort_dec.answer_batch(gen)]


def test_stock_model_with_zero_composition_answers_as_before(random_model):
    import torch

    from genomicllm_kernel.composition_model import with_composition
    from genomicllm_kernel.decoding import TorchDecoder
    from genomicllm_kernel.model import load_torch_model

    net, tok = load_torch_model(random_model)
    before = TorchDecoder(net, tok, threads=1).answer_batch([parse_prompt(t) for t in PROMPTS])
    upgraded = with_composition(net, tok.codec.vocab["<ans>"])
    assert torch.count_nonzero(upgraded.composition.weight) == 0
    after = TorchDecoder(upgraded.eval(), tok, threads=1).answer_batch([parse_prompt(t) for t in PROMPTS])
    for a, b in zip(before, after):
        assert a.labels == pytest.approx(b.labels, abs=1e-6)


def test_gc_content_counts_s_and_w_like_its_check(random_model):
    from genomicllm_kernel.codec import HybridCodec
    from genomicllm_kernel import checks

    codec = HybridCodec.from_pretrained(random_model)
    p = parse_prompt("SSWWACGTNN, GC content =")
    fmt = codec.answer_format(p.task)
    # the model reads S / W as C / A (CCA AAC GTN N): its per-chunk counts are the exact ones
    assert codec.prompt_tokens(p)[:4] == ["<dna:CCA>", "<dna:AAC>", "<dna:GTN>", "<dna:N>"]
    tokens = [codec.ids_to_tokens[i] for i in codec.encode_answer(p, checks.gc_content("SSWWACGTNN"))[:-1]]
    assert tokens[:2] == ["<gc:2/3>", "<gc:1/3>"]
    assert fmt.decode(p, tokens) == checks.gc_content("SSWWACGTNN") == "0.500"
    # other questions still read S / W as N
    assert codec.prompt_tokens(parse_prompt("SSWWACGTNN, reverse complementary sequence ="))[0] == "<dna:NNN>"


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_gc_content_known_bases_come_from_the_input(random_model, backend):
    """The scratchpad's denominator is the input's: even a random model answers GC content as
    (some count of G/C) / (the sequence's A/C/G/T/S/W bases), so its answer can only be wrong in
    the G/C count it makes, never in which bases it counted (issue #17, item 3)."""
    import random

    from genomicllm_kernel import checks
    from genomicllm_kernel.engine import GenomicLLM

    llm = GenomicLLM.from_pretrained(random_model, backend=backend)
    rng = random.Random(7)
    seqs = ["".join(rng.choice("ACGTNSWRY") for _ in range(rng.randint(1, 40))) for _ in range(30)]
    answers = list(llm.answer([parse_prompt(f"{s}, GC content =") for s in seqs]))
    for s, a in zip(seqs, answers):
        known = sum(c in "ACGTSW" for c in s)
        if not known:
            assert a.answer == "0.000"
            continue
        # the answer is one of the fractions k / known, k = 0..known
        assert any(f"{k / known:.3f}" == a.answer for k in range(known + 1)), (s, a.answer)
        exact = checks.gc_content(s)
        assert any(f"{k / known:.3f}" == exact for k in range(known + 1))


def _table(tmp_path):
    from genomicllm_kernel.gene_table import GeneTable, write_gene_table

    recs = {
        "BRCA1": {"symbol": "BRCA1", "id": "672", "name": "BRCA1 DNA repair associated"},
        "RNF53": {"symbol": "BRCA1", "id": "672", "name": "BRCA1 DNA repair associated"},  # an alias: not a row
        "TP53": {"symbol": "TP53", "id": "7157", "name": "tumor protein p53"},
    }
    path = tmp_path / "gene_table.tsv.gz"
    assert write_gene_table(path, recs, "org.Hs.eg.db test") == 2
    return GeneTable(path), path


def test_gene_table_lookup(tmp_path):
    table, path = _table(tmp_path)
    assert table.release == "org.Hs.eg.db test" and len(table) == 2
    assert table.lookup({"symbol": "TP53"})[2] == "tumor protein p53"
    assert table.lookup({"symbol": "tp53"})[0] == "TP53"
    assert table.lookup({"id": "672"})[2] == "BRCA1 DNA repair associated"
    assert table.lookup({"symbol": "NOPE"}) is None and table.lookup({}) is None
    assert gzip.open(path, "rt").read().count("\n") == 4


def test_description_answers_carry_the_database_check(random_model, tmp_path):
    import shutil

    from genomicllm_kernel.engine import GenomicLLM

    folder = tmp_path / "model"
    shutil.copytree(random_model, folder)
    _, path = _table(tmp_path)
    shutil.copy(path, folder / "gene_table.tsv.gz")
    llm = GenomicLLM.from_pretrained(folder, backend="onnx")
    a = llm.ask("symbol = TP53, description =")
    assert a.check is not None and a.check.expected == "tumor protein p53" and a.check.agree == (a.answer == "tumor protein p53")
    assert llm.ask("symbol = NOTAGENE, description =").check is None


def test_held_out_item_names_are_stable_and_disjoint():
    from genomicllm_kernel.data.builders import RC_FIELDS, rc_name_split, synthetic_name

    rng = random.Random(0)
    names = {synthetic_name(rng) for _ in range(3000)}
    splits = {n: rc_name_split(n) for n in names}
    share = {s: sum(v == s for v in splits.values()) / len(names) for s in ("train", "dev", "test")}
    assert 0.05 < share["dev"] < 0.15 and 0.05 < share["test"] < 0.15
    assert all(rc_name_split(n.upper()) == splits[n] for n in list(names)[:100])  # by name, case-insensitive
    assert {rc_name_split(f) for f in RC_FIELDS} == {"train"}  # the old corpus's names are never "unseen"


def test_per_question_blocks_route_each_question_and_tf_set(random_model):
    """With per-question blocks, a prompt's k-mers fill only its question's block (a named GUE TF
    set its own, an unknown factor the pooled TF block); generation questions stay zeros."""
    from genomicllm_kernel.codec import HybridCodec
    from genomicllm_kernel.composition_model import per_question_blocks

    codec = HybridCodec.from_pretrained(random_model)
    blocks = tuple(per_question_blocks())
    seq = "ACGTTGCAGGCTTAGCCTTACGTAC"

    def filled(prompt):
        row = codec.composition_features([codec.encode_prompt(prompt)], (4, 5), blocks)[0].reshape(len(blocks), -1)
        return [blocks[i] for i in np.flatnonzero(row.any(axis=1))], row

    tf = "transcription factor binding site"
    assert filled(f"{seq}, core promoter =")[0] == ["core promoter"]
    # GUE's promoter question (shuffled-promoter negatives) has its own block; the bare one is the genome's
    assert filled(f"{seq}, benchmark = GUE, core promoter =")[0] == ["core promoter | GUE"]
    assert filled(f"{seq}, benchmark = GUE, proximal tata promoter =")[0] == ["proximal tata promoter | GUE"]
    # each group of named blocks is appended after the earlier ones, so an older model's blocks stay a prefix
    assert blocks[-6:] == tuple(f"{q} promoter | GUE" for q in ("proximal", "proximal tata", "proximal notata", "core", "core tata", "core notata"))
    assert filled(f"{seq}, transcription factor = GUE tf_2, {tf} =")[0] == [f"{tf} | GUE tf_2"]
    assert filled(f"{seq}, transcription factor = CTCF, {tf} =")[0] == [tf]
    assert filled(f"{seq}, {tf} =")[0] == [tf]
    assert filled(f"{seq}, reverse complementary sequence =")[0] == []
    names, row = filled(f"{seq}, splice site =")
    assert names == ["splice site"] and np.array_equal(row[blocks.index("splice site")], composition([seq]))


def test_per_question_head_starts_silent_then_exports_with_parity(tmp_path):
    """The head's second layer starts at zero (the model answers as before); moved, it changes only
    classification answers, and the ONNX export (Optimum, with the wider dna_features input)
    answers as PyTorch does."""
    import torch

    from genomicllm_export import export_model
    from genomicllm_kernel.composition_model import per_question_blocks, with_composition
    from genomicllm_kernel.engine import GenomicLLM
    from genomicllm_kernel.model import load_torch_model
    from genomicllm_kernel.testing import build_random_model

    plain = build_random_model(tmp_path / "plain", seed=5)
    model, tok = load_torch_model(plain)
    headed = with_composition(model, tok.codec.vocab["<ans>"], (4, 5), per_question_blocks(), head_rank=4)
    headed.save_pretrained(tmp_path / "headed", safe_serialization=True)
    tok.save_pretrained(tmp_path / "headed")
    prompts = [
        "ACGTTGCAGGCTTAGCCTTACGTACTTGACA, core promoter =",
        "GGCATCGATCGGATTACA, transcription factor = GUE tf_1, transcription factor binding site =",
        "ACGTTGCAGGCTTAGC, reverse complementary sequence =",
    ]
    before = [a.labels or a.answer for a in GenomicLLM.from_pretrained(plain, "torch").ask(prompts)]
    assert [a.labels or a.answer for a in GenomicLLM.from_pretrained(tmp_path / "headed", "torch").ask(prompts)] == before
    with torch.no_grad():
        torch.nn.init.normal_(headed.composition_head[1].weight, std=2.0)
    headed.save_pretrained(tmp_path / "moved", safe_serialization=True)
    tok.save_pretrained(tmp_path / "moved")
    export_model(tmp_path / "moved", progress=lambda m: None)
    ref = GenomicLLM.from_pretrained(tmp_path / "moved", "torch").ask(prompts)
    ort = GenomicLLM.from_pretrained(tmp_path / "moved", "onnx").ask(prompts)
    assert ref[0].labels != before[0] and ref[2].answer == before[2]
    for a, b in zip(ref[:2], ort[:2]):
        assert max(abs(a.labels[k] - b.labels[k]) for k in a.labels) < 1e-4
    assert ort[2].answer == ref[2].answer


def _headed_random_model(tmp_path, seed=7):
    import torch

    from genomicllm_kernel.composition_model import per_question_blocks, with_composition
    from genomicllm_kernel.model import load_torch_model
    from genomicllm_kernel.testing import build_random_model

    model, tok = load_torch_model(build_random_model(tmp_path / "plain", seed=seed))
    headed = with_composition(model, tok.codec.vocab["<ans>"], (4, 5), per_question_blocks(), head_rank=4)
    with torch.no_grad():
        torch.nn.init.normal_(headed.composition.weight, std=0.05)
    return headed.eval(), tok


@pytest.mark.parametrize(
    "layout",
    [Layout((3, 4, 5, 6)), Layout((3, 4, 5, 6), 3, (3, 4, 5)), Layout((3, 4, 5, 6), 3, (3, 4, 5), ("core promoter",))],
    ids=["whole", "thirds", "thirds_for_one_block"],
)
def test_cached_head_fit_is_the_model_it_writes(tmp_path, layout):
    """head_fit's cached problem reads the label logits the model computes: a head fitted on cached
    <ans> states, placed into the widened model (3- to 6-mers, with or without the 3- to 5-mers of
    each third), gives the model's own label logits; widening keeps the states; the fit learns a
    label the k-mers decide; and the ONNX export of the positional model answers as PyTorch does."""
    import torch

    from genomicllm_kernel import head_fit
    from genomicllm_kernel.registry import TASKS

    model, tok = _headed_random_model(tmp_path)
    codec = tok.codec
    rng = np.random.default_rng(0)
    rows, texts = [], []
    for i in range(240):
        gc_rich = i % 2 == 0  # the label: GC-rich or AT-rich sequence (a k-mer signal)
        seq = "".join(rng.choice(list("GCGCGCAT" if gc_rich else "ATATATGC"), size=int(rng.integers(30, 60))))
        question = ["core promoter", "splice site", "transcription factor = GUE tf_3, transcription factor binding site"][i % 3]
        task = {"core promoter": "promoter", "splice site": "splice_site"}.get(question, "tf_binding")
        texts.append(f"{seq}, {question} =")
        ids = codec.encode_prompt(texts[-1])
        rows.append((ids, task, 0 if gc_rich else 1, codec.composition_block(ids)))
    states = head_fit.answer_states(model, codec, [r[0] for r in rows], progress=False)
    wide = head_fit.widened(model, layout, rank=4)
    assert as_layout(wide.config) == layout
    assert np.allclose(head_fit.answer_states(wide, codec, [r[0] for r in rows[:20]], progress=False), states[:20], atol=1e-5)
    problem = head_fit.build_problem(model, codec, rows, states, layout)
    assert problem.feats.shape[1] == layout.size
    a, b, records, best = head_fit.fit_head(problem, len(model.config.composition_blocks), 4, model.config.hidden_size, 30, 0.02, 0.0, 0)
    assert best > 0 and records[best]["held_out_loss"] < records[0]["held_out_loss"] / 2
    with torch.no_grad():
        wide.composition_head[0].weight.copy_(a.permute(2, 0, 1).reshape(4, -1))
        wide.composition_head[1].weight.copy_(b)
        cached = problem.logits(torch.arange(12), a, b)
        for i in range(12):
            ids, task = rows[i][0], rows[i][1]
            feats = torch.from_numpy(codec.composition_features([ids], layout, wide.config.composition_blocks))
            logits = wide(input_ids=torch.tensor([ids]), dna_features=feats).logits[0, -1, codec.label_ids(TASKS[task])]
            # the cache holds features in float16 (half the memory of 140 k rows x 5,440): 1e-3 relative
            assert torch.allclose(logits, cached[i, : len(logits)], rtol=1e-3, atol=1e-3), i
        truth = problem.labels
        assert (problem.logits(torch.arange(len(rows)), a, b).argmax(-1) == truth).float().mean() > 0.9
    if layout.bins:
        from genomicllm_export import export_model
        from genomicllm_kernel.engine import GenomicLLM

        wide.save_pretrained(tmp_path / "wide", safe_serialization=True)
        tok.save_pretrained(tmp_path / "wide")
        export_model(tmp_path / "wide", progress=lambda m: None)
        prompts = texts[:9]
        on_torch = GenomicLLM.from_pretrained(tmp_path / "wide", "torch").ask(prompts)
        on_onnx = GenomicLLM.from_pretrained(tmp_path / "wide", "onnx").ask(prompts)
        for x, y in zip(on_torch, on_onnx):
            assert x.answer == y.answer and max(abs(x.labels[k] - y.labels[k]) for k in x.labels) < 1e-4


def test_widening_needs_the_model_s_own_k(tmp_path):
    from genomicllm_kernel import head_fit
    from genomicllm_kernel.errors import InputError

    model, _ = _headed_random_model(tmp_path)
    with pytest.raises(InputError, match="must keep the k-mer sizes"):
        head_fit.widened(model, (3, 4), rank=4)


def test_convex_head_is_exact_in_the_model_and_reads_the_thirds_only_where_they_help(tmp_path):
    """head_convex: each block's convex fit, written into the rank-16 head, gives the model's own
    label logits (offset + f W + c, bias folded into the 3-mer columns); the held-out choice gives
    the thirds to the block whose label only the position of a motif decides; both blocks are learnt."""
    import dataclasses

    import torch

    from genomicllm_kernel import head_convex, head_fit
    from genomicllm_kernel.registry import TASKS

    model, tok = _headed_random_model(tmp_path)
    codec = tok.codec
    rng = np.random.default_rng(1)
    rows = []
    for i in range(480):
        label = int(rng.integers(2))
        background = lambda n: "".join(rng.choice(list("ACGT"), size=n))  # noqa: E731
        if i % 2 == 0:  # core promoter: a GC- or AT-leaning sequence (the whole bag decides, noisily)
            question, task = "core promoter", "promoter"
            seq = "".join(rng.choice(list("GCGCGAT" if label == 0 else "ATATACG"), size=60))
        else:  # splice site: the same motif, at the start or at the end (only its position decides)
            question, task = "splice site", "splice_site"
            motif = "GGGGGGCCCCCC"
            seq = motif + background(48) if label == 0 else background(48) + motif
        ids = codec.encode_prompt(f"{seq}, {question} =")
        rows.append((ids, task, label, codec.composition_block(ids)))
    states = head_fit.answer_states(model, codec, [r[0] for r in rows], progress=False)
    layout = Layout((3, 4, 5, 6), 3, (3, 4, 5))
    problem = head_fit.build_problem(model, codec, rows, states, layout)
    blocks = list(model.config.composition_blocks)
    a, b, choices, positional = head_convex.fit_convex_head(problem, len(blocks), 16, layout, seed=0, log=None, workers=2)
    splice = blocks.index("splice site")
    assert splice in positional and choices[splice]["tried"]["positional 0.03"] < choices[splice]["tried"]["whole 0.03"] / 2
    chosen = dataclasses.replace(layout, bin_blocks=tuple(blocks[k] for k in positional))
    wide = head_fit.widened(model, chosen, rank=16)
    head_fit.place_head(wide, a, b)
    assert all(torch.equal(x, y) for x, y in zip(head_fit.read_head(wide), (a, b)))
    with torch.no_grad():
        fitted = problem.logits(torch.arange(len(rows)), a, b)
        assert (fitted.argmax(-1) == problem.labels).float().mean() > 0.95
        for i in range(8):
            ids, task = rows[i][0], rows[i][1]
            feats = torch.from_numpy(codec.composition_features([ids], chosen, wide.config.composition_blocks))
            logits = wide(input_ids=torch.tensor([ids]), dna_features=feats).logits[0, -1, codec.label_ids(TASKS[task])]
            logits = logits - logits.mean()
            expected = fitted[i, : len(logits)] - fitted[i, : len(logits)].mean()
            assert torch.allclose(logits, expected, rtol=1e-3, atol=2e-3), i
    # int8 keeps the head fp32 (its weights span orders of magnitude): same answers as PyTorch
    import onnx

    from genomicllm_export import export_model
    from genomicllm_export.onnx_export import HEAD_NODES
    from genomicllm_kernel.engine import GenomicLLM

    wide.save_pretrained(tmp_path / "convex", safe_serialization=True)
    tok.save_pretrained(tmp_path / "convex")
    export_model(tmp_path / "convex", quantize="int8", progress=lambda m: None)
    graph = onnx.load(str(tmp_path / "convex" / "onnx" / "model_int8.onnx"), load_external_data=False).graph
    head = [n for n in graph.node if n.name.startswith(HEAD_NODES)]
    assert len(head) == 2 and {n.op_type for n in head} == {"MatMul"}
    texts = [
        f"{'GGGGGGCCCCCC' + 'ACGT' * 12}, splice site =",
        f"{'ACGT' * 12 + 'GGGGGGCCCCCC'}, splice site =",
        "GCGCGCGCGAGCGCGCGCGCATGCGC, core promoter =",
    ]
    on_torch = GenomicLLM.from_pretrained(tmp_path / "convex", "torch").ask(texts)
    on_int8 = GenomicLLM.from_pretrained(tmp_path / "convex", "onnx-int8").ask(texts)
    assert on_torch[0].answer != on_torch[1].answer  # the thirds decide
    for x, y in zip(on_torch, on_int8):
        assert x.answer == y.answer and max(abs(x.labels[k] - y.labels[k]) for k in x.labels) < 0.05


def test_convex_block_fit_leaves_out_a_part_that_only_adds_noise():
    """fit_block keeps the whole-sequence part alone when the positional columns carry nothing
    (held-out loss decides, the simpler part winning ties), and refits on every row."""
    from genomicllm_kernel import head_convex

    rng = np.random.default_rng(0)
    n, whole, noise = 600, 8, 200
    y = rng.integers(2, size=n)
    X = np.hstack([rng.normal(size=(n, whole)) + y[:, None] * 0.8, rng.normal(size=(n, noise))])
    held = np.zeros(n, dtype=bool)
    held[rng.permutation(n)[:120]] = True
    W, c, choice = head_convex.fit_block(X, np.zeros((n, 2)), y, held, 2, (0.03, 1.0), whole)
    assert choice["part"] == "whole" and W.shape == (whole + noise, 2) and not W[whole:].any()
    assert ((X @ W + c).argmax(1) == y).mean() > 0.8  # the Bayes rate is about 0.87


def test_convex_block_fit_reads_the_reading_frames_where_they_carry_the_label():
    """With ``phase_end``, fit_block also tries the whole part plus the reading frames alone, and
    takes it when the frames carry the label and the positional part after them is noise."""
    from genomicllm_kernel import head_convex

    rng = np.random.default_rng(0)
    n, whole, frames, noise = 600, 8, 12, 100
    y = rng.integers(3, size=n)
    F = rng.normal(size=(n, frames))
    F[np.arange(n), y] += 2.0
    X = np.hstack([rng.normal(size=(n, whole)), F, rng.normal(size=(n, noise))])
    held = np.zeros(n, dtype=bool)
    held[rng.permutation(n)[:120]] = True
    W, c, choice = head_convex.fit_block(X, np.zeros((n, 3)), y, held, 3, (0.03, 1.0), whole, phase_end=whole + frames)
    assert set(choice["tried"]) == {f"{p} {r:g}" for p in ("whole", "phase", "positional") for r in (0.03, 1.0)}
    assert choice["part"] == "phase" and not W[whole + frames :].any() and W[whole : whole + frames].any()
    assert ((X @ W + c).argmax(1) == y).mean() > 0.8


def test_offset_scale_multiplies_the_models_own_label_logits_per_question(tmp_path):
    """The offset-scale layer (composition_offset_scale) written by head_convex.offset_scale_weights
    makes block b's label logits exactly ``scale_b * (the model's logits) + head``: here ORF's at 0.25
    and direction's at 0, every other question's untouched; fit_block picks a scale below 1 when
    the frozen logits are confidently wrong and the features carry the label; ONNX agrees."""
    import torch

    from genomicllm_kernel import head_convex, head_fit
    from genomicllm_kernel.registry import TASKS

    model, tok = _headed_random_model(tmp_path)
    codec = tok.codec
    layout = Layout((3, 4, 5), 0, (), (), (3,), ("open reading frame",))
    names = list(model.config.composition_blocks)
    orf, direction = names.index("open reading frame"), names.index("sequence direction")
    rng = np.random.default_rng(3)
    head_a = torch.from_numpy(rng.normal(scale=0.02, size=(len(names), layout.size, 16)).astype(np.float32))
    head_b = torch.from_numpy(rng.normal(size=(model.config.hidden_size, 16)).astype(np.float32))
    scales = head_convex.offset_scale_weights({orf: {"offset_scale": 0.25}, direction: {"offset_scale": 0.0}}, len(names), layout)
    plain, scaled = head_fit.widened(model, layout, 16), head_fit.widened(model, layout, 16, offset_scale=True)
    head_fit.place_head(plain, head_a, head_b)
    head_fit.place_head(scaled, head_a, head_b, scales)
    bare = head_fit.widened(model, layout, 16)  # the head at zero: the model's own logits
    texts = {"orf": "ATGGCCAAGTTTGGGCCCAAATAA, open reading frame =", "sequence_direction": "ACGTTGCAAGGCTTAAC, sequence direction =",
             "promoter": "TATAAAAGGCGCGCCGGA, core promoter ="}  # fmt: skip
    for task, text in texts.items():
        ids = codec.encode_prompt(text)
        feats = torch.from_numpy(codec.composition_features([ids], layout, names))
        labels = codec.label_ids(TASKS[task])
        with torch.no_grad():
            own, with_head, out = (m(input_ids=torch.tensor([ids]), dna_features=feats).logits[0, -1, labels].double() for m in (bare, plain, scaled))
        factor = {"orf": 0.25, "sequence_direction": 0.0}.get(task, 1.0)
        expected = factor * own + (with_head - own)
        assert torch.allclose(out - out.mean(), expected - expected.mean(), atol=1e-4), task
    # the fit: the offset points at the wrong label, the features at the right one
    n = 600
    y = rng.integers(3, size=n)
    offset = np.eye(3)[(y + 1) % 3] * 4.0
    X = rng.normal(size=(n, 10))
    X[np.arange(n), y] += 2.5
    held = np.zeros(n, dtype=bool)
    held[rng.permutation(n)[:120]] = True
    *_, choice = head_convex.fit_block(X, offset, y, held, 3, (0.1, 1.0), None, offset_scales=(0.0, 0.5, 1.0))
    assert choice["offset_scale"] < 1.0 and "whole 1 offset 0" in choice["tried"]
    # ONNX Runtime reads the same graph (the scale's MatMul stays fp32 with the head's)
    from genomicllm_export import export_model
    from genomicllm_kernel.engine import GenomicLLM

    scaled.save_pretrained(tmp_path / "scaled", safe_serialization=True)
    tok.save_pretrained(tmp_path / "scaled")
    export_model(tmp_path / "scaled", progress=lambda m: None)
    on_torch = GenomicLLM.from_pretrained(tmp_path / "scaled", "torch").ask(list(texts.values()))
    on_onnx = GenomicLLM.from_pretrained(tmp_path / "scaled", "onnx").ask(list(texts.values()))
    for x, y_ in zip(on_torch, on_onnx):
        assert x.answer == y_.answer and max(abs(x.labels[k] - y_.labels[k]) for k in x.labels) < 1e-4


def _toy_motifs():
    from genomicllm_kernel.motifs import MotifSet

    site = np.full((6, 4), -1.0, dtype=np.float32)
    for j, base in enumerate("TGACTC"):
        site[j, "ACGT".index(base)] = 1.5
    other = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)
    return MotifSet(("MA0001.1", "MA0002.1"), ("SITE", "OTHER"), (site, other), "toy")


def test_motif_part_sits_after_the_positional_part_and_only_in_its_blocks():
    """Layout's motif part: each motif's best score (motifs.MotifSet.features) at the end of the
    block, filled for ``motif_blocks`` only; as_layout reads it back from a model config, whose
    matrices are the set's to_config (what a saved model carries)."""
    motifs = _toy_motifs()
    layout = Layout((3,), 2, (3,), (), motifs=motifs, motif_blocks=("transcription factor binding site",))
    assert layout.motif_start == 64 + 2 * 64 and layout.size == layout.motif_start + 2
    rows = [["ACGTTGACTCAAGT", "GGG"], ["ACGTTGACTCAAGT", "GGG"]]
    X = layout.vectors(rows, ["transcription factor binding site", "core promoter"])
    assert np.allclose(X[0, layout.motif_start :], motifs.features([rows[0]])[0]) and not X[1, layout.motif_start :].any()
    assert np.array_equal(X[0, : layout.motif_start], X[1, : layout.motif_start])  # the k-mer parts are unchanged
    assert np.array_equal(X[:, : layout.motif_start], Layout((3,), 2, (3,)).vectors(rows, [None, None]))
    config = {"composition_ks": [3], "composition_bins": 2, "composition_bin_ks": [3], "composition_motifs": motifs.to_config()}
    config["composition_motif_blocks"] = ["transcription factor binding site"]
    again = as_layout(config)
    assert again.size == layout.size and again.motif_blocks == layout.motif_blocks and again.motifs.ids == motifs.ids
    assert as_layout(config).motifs is again.motifs  # one set per config value, not one per forward pass
    assert np.allclose(again.vectors(rows, ["transcription factor binding site", None]), X, atol=1e-3)  # 4 decimals in a config


def test_convex_block_fit_reads_motif_scores_where_they_carry_the_label():
    """With ``motif_start``, fit_block also tries each part plus the motif columns, and takes them
    when they carry the label; with_motifs=False never reads them."""
    from genomicllm_kernel import head_convex

    rng = np.random.default_rng(0)
    n, whole, noise, motifs = 600, 8, 40, 5
    y = rng.integers(2, size=n)
    M = rng.normal(size=(n, motifs))
    M[:, 2] += 2.0 * y
    X = np.hstack([rng.normal(size=(n, whole)), rng.normal(size=(n, noise)), M])
    held = np.zeros(n, dtype=bool)
    held[rng.permutation(n)[:120]] = True
    start = whole + noise
    W, c, choice = head_convex.fit_block(X, np.zeros((n, 2)), y, held, 2, (0.03, 1.0), whole, motif_start=start)
    assert set(choice["tried"]) == {f"{p} {r:g}" for p in ("whole", "positional", "whole+motifs", "positional+motifs") for r in (0.03, 1.0)}
    assert choice["part"] == "whole+motifs" and not W[whole:start].any() and W[start:].any()
    assert ((X @ W + c).argmax(1) == y).mean() > 0.8
    W, c, choice = head_convex.fit_block(X, np.zeros((n, 2)), y, held, 2, (0.03, 1.0), whole, motif_start=start, with_motifs=False)
    assert "motifs" not in choice["part"] and not W[start:].any()


def test_motif_scores_are_kept_where_a_site_decides_and_the_model_answers_as_fitted(tmp_path):
    """head_fit._convex with a motif part: the block whose label is whether a binding site occurs
    anywhere (the bag of k-mers sees it only as a few words among many) keeps the motif scores; a
    block not offered them never reads them; the layout keeps the part for that block alone, the
    model carries the matrices in its config, and PyTorch and ONNX Runtime answer as fitted."""
    import json

    import torch

    from genomicllm_export import export_model
    from genomicllm_kernel import head_fit
    from genomicllm_kernel.engine import GenomicLLM
    from genomicllm_kernel.registry import TASKS
    from genomicllm_kernel.training import TrainConfig

    model, tok = _headed_random_model(tmp_path)
    codec, motifs = tok.codec, _toy_motifs()
    rng = np.random.default_rng(3)
    background = lambda n: "".join(rng.choice(list("ACGT"), size=n))  # noqa: E731
    rows = []
    for i in range(800):
        label = int(rng.integers(2))
        if i % 2 == 0:
            question, task = "core promoter", "promoter"
            seq = "".join(rng.choice(list("GCGCGAT" if label == 0 else "ATATACG"), size=60))
        else:  # True: the site TGACTC (or its reverse complement) somewhere in the window
            question, task = "transcription factor binding site", "tf_binding"
            at, site = int(rng.integers(0, 54)), "TGACTC" if rng.integers(2) else "GAGTCA"
            seq = background(60)
            seq = (seq[:at] + site + seq[at + 6 :]) if label == 0 else seq.replace("TGACTC", "TGTCTC").replace("GAGTCA", "GAGACA")
        ids = codec.encode_prompt(f"{seq}, {question} =")
        rows.append((ids, task, label, codec.composition_block(ids)))
    states = head_fit.answer_states(model, codec, [r[0] for r in rows], progress=False)
    blocks = list(model.config.composition_blocks)
    layout = Layout((4, 5), 3, (3,), motifs=motifs, motif_blocks=("transcription factor binding site",))
    problem = head_fit.build_problem(model, codec, rows, states, layout)
    cfg = TrainConfig(
        data=str(tmp_path), out=str(tmp_path / "fit"), head_fit_solver="convex", composition_head_rank=16, head_fit_ridges=[1.0, 10.0, 30.0]
    )
    a, b, chosen, choices = head_fit._convex(cfg, model, problem, layout, lambda rec: None, False)
    assert choices["transcription factor binding site"]["part"].endswith("+motifs")
    assert "motifs" not in choices["core promoter"]["part"] and not a[blocks.index("core promoter"), chosen.motif_start :].any()
    assert chosen.motif_blocks == ("transcription factor binding site",) and chosen.motifs is motifs and a.shape[1] == chosen.size
    wide = head_fit.widened(model, chosen, rank=16)
    head_fit.place_head(wide, a, b)
    wide.save_pretrained(tmp_path / "motifs", safe_serialization=True)
    tok.save_pretrained(tmp_path / "motifs")
    config = json.loads((tmp_path / "motifs" / "config.json").read_text())
    assert config["composition_motif_blocks"] == ["transcription factor binding site"] and config["composition_motifs"]["ids"] == list(motifs.ids)
    # the fitted logits are the model's: rows re-featurised through the saved config's layout
    again = as_layout(config)
    problem = head_fit.build_problem(model, codec, rows, states, again)
    with torch.no_grad():
        fitted = problem.logits(torch.arange(len(rows)), a, b)
        assert (fitted.argmax(-1) == problem.labels).float().mean() > 0.95
        for i in range(1, 9):
            ids, task = rows[i][0], rows[i][1]
            feats = torch.from_numpy(codec.composition_features([ids], again, blocks))
            logits = wide(input_ids=torch.tensor([ids]), dna_features=feats).logits[0, -1, codec.label_ids(TASKS[task])]
            expected = fitted[i, : len(logits)]
            assert torch.allclose(logits - logits.mean(), expected - expected.mean(), rtol=1e-3, atol=2e-3), i
    export_model(tmp_path / "motifs", progress=lambda m: None)
    with_site = [f"{background(27)}TGACTC{background(27)}, transcription factor binding site =" for _ in range(6)]
    without = [f"{background(60).replace('TGACTC', 'TGTCTC').replace('GAGTCA', 'GAGACA')}, transcription factor binding site =" for _ in range(6)]
    texts = with_site + without + ["ACGTTGCAGGCTTAACG, reverse complementary sequence ="]
    on_torch = GenomicLLM.from_pretrained(tmp_path / "motifs", "torch").ask(texts)
    on_onnx = GenomicLLM.from_pretrained(tmp_path / "motifs", "onnx").ask(texts)
    p_true = [x.labels["True"] for x in on_torch[:12]]
    assert np.mean(p_true[:6]) > np.mean(p_true[6:]) + 0.1  # the site decides
    for x, y in zip(on_torch, on_onnx):
        assert x.answer == y.answer and all(abs(x.labels[k] - y.labels[k]) < 1e-3 for k in x.labels or {})
