"""Label symmetries of the per-question head (head_symmetry.py), their shared fit (head_convex) and
the held-out tenth drawn by region (head_fit.held_out_split). Fast layer: no model, no corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genomicllm_kernel.composition import Layout, composition_rows
from genomicllm_kernel.head_symmetry import SYMMETRIES, Reversal

ROOT = Path(__file__).resolve().parent.parent
ORF, DIRECTION = "open reading frame", "sequence direction"
LAYOUT = Layout((3, 4), 2, (3,), (), (3,), (ORF, DIRECTION))


def _random_dna(rng, n):
    return "".join(rng.choice(list("ACGT"), size=n))


@pytest.mark.parametrize("name,part", [("reading frame", "frames"), ("reversal", "whole"), ("reversal", "positional")])
def test_shared_weights_are_exact_in_the_block_s_columns(name, part):
    """place(v) is the free head's weights that score every row exactly as the shared views do."""
    symmetry = SYMMETRIES[name]
    assert part in symmetry.parts(LAYOUT)
    rng = np.random.default_rng(0)
    X = LAYOUT.vectors([[_random_dna(rng, int(rng.integers(30, 90)))] for _ in range(20)], [ORF] * 20).astype(np.float64)
    views = symmetry.views(X, LAYOUT, part)
    labels = views.shape[1]
    v = rng.normal(size=views.shape[-1])
    W = symmetry.place(v, LAYOUT, labels, part)
    assert W.shape == (LAYOUT.size, labels)
    assert np.allclose(X @ W, views @ v)


def test_reversal_views_are_the_sequence_read_backwards():
    """Whole and parts: exactly the backwards sequence's features when the length splits evenly."""
    rng = np.random.default_rng(1)
    seqs = [_random_dna(rng, 60) for _ in range(6)]
    X, backwards = LAYOUT.vectors([[s] for s in seqs]), LAYOUT.vectors([[s[::-1]] for s in seqs])
    assert np.allclose(backwards[:, : LAYOUT.whole_size], composition_rows([[s[::-1]] for s in seqs], LAYOUT.ks))
    views = Reversal().views(X, LAYOUT, "positional")
    forward_cols = np.r_[: LAYOUT.whole_size, LAYOUT.bins_start : LAYOUT.size]
    assert np.allclose(views[:, 0], X[:, forward_cols]) and np.allclose(views[:, 1], backwards[:, forward_cols])
    assert Reversal().parts(Layout((3, 4))) == ("whole",)


def test_reading_frame_views_move_with_the_first_base():
    """Label k reads the codons that start at base k: dropping the first base turns frame 2 into frame 1."""
    rng = np.random.default_rng(2)
    seq = _random_dna(rng, 90)
    frames = SYMMETRIES["reading frame"]
    a = frames.views(LAYOUT.vectors([[seq]], [ORF]), LAYOUT, "frames")[0]
    b = frames.views(LAYOUT.vectors([[seq[1:]]], [ORF]), LAYOUT, "frames")[0]
    assert np.allclose(b[0], a[1]) and np.allclose(b[1], a[2])
    assert not frames.usable(LAYOUT, "core promoter") and frames.usable(LAYOUT, ORF)


def _coding_windows(rng, n):
    """Windows of a 'coding' sequence (no stop codon in its frame, GC-rich third positions) cut at a
    random offset, and the frame label (builders.transcript_tiles: offset o -> label {0: 1, 1: 3, 2: 2})."""
    sense = [a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT" if a + b + c not in ("TAA", "TAG", "TGA")]
    weights = np.array([3.0 if c[2] in "GC" else 1.0 for c in sense])
    rows, y = [], []
    for _ in range(n):
        cds = "".join(rng.choice(sense, size=40, p=weights / weights.sum()))
        o = int(rng.integers(3))
        rows.append([cds[o : o + 75]])
        y.append({0: 0, 1: 2, 2: 1}[o])
    return rows, np.array(y)


def test_shared_fit_is_chosen_where_the_question_is_symmetric_and_answers_the_frame():
    import scipy.sparse as sp

    from genomicllm_kernel import head_convex

    rng = np.random.default_rng(3)
    rows, y = _coding_windows(rng, 150)
    X = sp.csr_matrix(LAYOUT.vectors(rows, [ORF] * len(rows)).astype(np.float64))
    held = np.zeros(len(y), dtype=bool)
    held[rng.permutation(len(y))[:30]] = True
    shared = [("labels", SYMMETRIES["reading frame"], LAYOUT, (0.001, 0.01, 0.1))]
    job = (0, X, np.zeros((len(y), 3)), y, held, 3, (0.03, 0.3), LAYOUT.whole_size, None, ORF, LAYOUT.bins_start, (0.0, 1.0), shared)
    _, (W, c, choice) = head_convex._fit_job(job)
    assert (choice["part"], choice["sharing"]) == ("frames", "reading frame")
    assert any(k.startswith("phase") for k in choice["tried"]) and any(k.startswith("shared") for k in choice["tried"])
    free = min(v for k, v in choice["tried"].items() if not k.startswith("shared"))
    assert choice["held_out_loss"] < free
    # only the frames' columns are read, and new windows get their frame
    assert not W[: LAYOUT.whole_size].any() and not W[LAYOUT.bins_start :].any()
    new_rows, new_y = _coding_windows(rng, 300)
    pred = (LAYOUT.vectors(new_rows, [ORF] * 300) @ W + c).argmax(1)
    assert (pred == new_y).mean() > 0.9


def test_strand_invariant_fit_is_exact_and_chosen_where_the_label_ignores_the_strand():
    """StrandInvariance: the reverse complement's vector is a column map of the row's own, folded
    features score as the placed weights do, and on peaks whose motif comes on either strand the
    folded fit has the lower held-out loss and calls a sequence and its reverse complement alike."""
    import scipy.sparse as sp

    from genomicllm_kernel import head_convex
    from genomicllm_kernel.head_symmetry import StrandInvariance, reverse_complement

    rng = np.random.default_rng(6)
    invariance = StrandInvariance()
    seqs = [_random_dna(rng, 60) for _ in range(8)]
    X, Xrc = LAYOUT.vectors([[s] for s in seqs]), LAYOUT.vectors([[reverse_complement(s)] for s in seqs])
    assert np.allclose(X[:, invariance.columns(LAYOUT)], Xrc)
    W = rng.normal(size=(LAYOUT.size, 2))
    assert np.allclose(invariance.fold(X, LAYOUT) @ W, X @ invariance.place(W, LAYOUT))
    rows, y = [], []
    for i in range(240):
        seq = _random_dna(rng, 60)
        if i % 2:  # bound: the motif on either strand
            motif = "GGTCACGTGACC"[:9] if rng.random() < 0.5 else reverse_complement("GGTCACGTGACC"[:9])
            at = int(rng.integers(0, 50))
            seq = seq[:at] + motif + seq[at + 9 :]
        rows.append([seq[:60]])
        y.append(i % 2)
    X = sp.csr_matrix(LAYOUT.vectors(rows).astype(np.float64))
    y = np.array(y)
    held = np.zeros(len(y), dtype=bool)
    held[rng.permutation(len(y))[:48]] = True
    job = (0, X, np.zeros((len(y), 2)), y, held, 2, (0.3, 3.0), LAYOUT.whole_size, None, "tf", None, (1.0,), [("strand", invariance, LAYOUT)])
    _, (W, c, choice) = head_convex._fit_job(job)
    assert choice["sharing"] == "strand" and choice["held_out_loss"] < min(v for k, v in choice["tried"].items() if not k.endswith("strand"))
    Xs = LAYOUT.vectors([[s] for s in seqs])
    Xr = LAYOUT.vectors([[reverse_complement(s)] for s in seqs])
    assert np.allclose(Xs @ W, Xr @ W)


def test_held_out_tenth_is_drawn_by_region_where_rows_name_one():
    """A block whose rows name a unit holds out whole units; a block without keeps its row draw."""
    import torch

    from genomicllm_kernel.head_fit import HeadProblem, held_out_split

    n = 400
    block = np.array([0] * 200 + [1] * 200)
    units = [f"chr1:{i // 5}" for i in range(200)] + [""] * 200
    args = (np.zeros((n, 4), np.float32), np.zeros((n, 3), np.float16), block, [[0, 1]] * n, [0] * n, torch.zeros(2, 4))
    by_unit = held_out_split(HeadProblem(*args, units=units), torch.Generator().manual_seed(5)).numpy()
    by_row = held_out_split(HeadProblem(*args), torch.Generator().manual_seed(5)).numpy()
    held_units = {units[i] for i in range(200) if by_unit[i]}
    assert len(held_units) == 4  # a tenth of the 40 units
    assert all(by_unit[i] == (units[i] in held_units) for i in range(200))
    assert np.array_equal(by_unit[200:], by_row[200:]) and by_row[200:].sum() == 20


def test_shared_heads_fitted_with_the_others_are_the_model_s_own_logits(tmp_path):
    """fit_convex_head with symmetries: ORF and direction get shared heads on symmetric data, a
    third question keeps its free fit, and the widened model with the realised head computes
    exactly the fitted logits (offset + the block's weights), the thirds filled where chosen."""
    import dataclasses

    import torch

    from genomicllm_kernel import head_convex, head_fit
    from genomicllm_kernel.composition_model import per_question_blocks, with_composition
    from genomicllm_kernel.model import load_torch_model
    from genomicllm_kernel.registry import TASKS
    from genomicllm_kernel.testing import build_random_model

    plain, tok = load_torch_model(build_random_model(tmp_path / "plain", seed=7))
    model = with_composition(plain, tok.codec.vocab["<ans>"], (4, 5), per_question_blocks(), head_rank=4).eval()
    codec = tok.codec
    rng = np.random.default_rng(4)
    windows, frames = _coding_windows(rng, 120)
    rows = []
    for (seq,), label in zip(windows, frames):
        ids = codec.encode_prompt(f"{seq}, open reading frame =")
        rows.append((ids, "orf", int(label), codec.composition_block(ids), f"chr1:{len(rows) // 3}"))
    for i in range(120):
        seq = "".join(rng.choice(["ATG", "GCC", "AAG", "CTT", "TGG"], size=20))
        label = i % 2  # forward, reverse (read backwards)
        ids = codec.encode_prompt(f"{seq if label == 0 else seq[::-1]}, sequence direction =")
        rows.append((ids, "sequence_direction", label, codec.composition_block(ids), f"chr2:{i // 3}"))
    for i in range(120):
        label = i % 2
        ids = codec.encode_prompt(f"{''.join(rng.choice(list('GCGCGAT' if label == 0 else 'ATATACG'), size=60))}, core promoter =")
        rows.append((ids, "promoter", label, codec.composition_block(ids), ""))
    layout = Layout((3, 4, 5, 6), 3, (3, 4, 5), (), (3,), (ORF, DIRECTION))
    states = head_fit.answer_states(model, codec, [r[0] for r in rows], progress=False)
    problem = head_fit.build_problem(model, codec, rows, states, layout, hold_out_units=True)
    names = list(model.config.composition_blocks)
    symmetries = {ORF: SYMMETRIES["reading frame"], DIRECTION: SYMMETRIES["reversal"]}
    a, b, choices, positional = head_convex.fit_convex_head(
        problem, len(names), 16, layout, 0, (0.03, 0.3), None, names, 1, None, symmetries, (0.001, 0.01, 0.1)
    )
    sharing = {names[k]: c.get("sharing", "") for k, c in choices.items()}
    assert sharing[ORF] == "reading frame" and sharing[DIRECTION] == "reversal" and not sharing["core promoter"]
    chosen = dataclasses.replace(layout, bin_blocks=tuple(names[k] for k in positional))
    wide = head_fit.widened(model, chosen, rank=16)
    head_fit.place_head(wide, a, b)
    with torch.no_grad():
        fitted = problem.logits(torch.arange(len(rows)), a, b)
        assert (fitted.argmax(-1) == problem.labels).float().mean() > 0.9
        for i in list(range(0, len(rows), 37)):
            ids, task = rows[i][0], rows[i][1]
            feats = torch.from_numpy(codec.composition_features([ids], chosen, wide.config.composition_blocks))
            logits = wide(input_ids=torch.tensor([ids]), dna_features=feats).logits[0, -1, codec.label_ids(TASKS[task])]
            expected = fitted[i, : len(logits)]
            assert torch.allclose(logits - logits.mean(), expected - expected.mean(), rtol=1e-3, atol=2e-3), (i, task)


def test_head_features_are_the_same_in_chunks():
    """head_fit.block_features counts k-mers a chunk of rows at a time (memory flat over 160 k
    rows): the same float16 matrix as all rows at once."""
    from genomicllm_kernel import head_fit
    from genomicllm_kernel.codec import HybridCodec

    codec = HybridCodec.from_pretrained(ROOT / "models" / "default")
    rng = np.random.default_rng(8)
    encoded = [codec.encode_prompt(f"{_random_dna(rng, int(rng.integers(20, 90)))}, {q} =") for q in (ORF, DIRECTION, "core promoter") * 4]
    keys = [codec.composition_block(ids) for ids in encoded]
    whole = head_fit.block_features(codec, encoded, LAYOUT, keys)
    assert whole.dtype == np.float16 and whole[:, LAYOUT.whole_size : LAYOUT.bins_start].any()
    assert np.array_equal(head_fit.block_features(codec, encoded, LAYOUT, keys, chunk=5), whole)
