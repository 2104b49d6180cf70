"""Coding and mRNA Markov chains (likelihoods.py): counting, the five features, the layout part that
carries them, the shared heads that read them and the free fits that must not. Fast layer: no model."""

from __future__ import annotations

import numpy as np
import pytest

from genomicllm_kernel.composition import Layout, as_layout
from genomicllm_kernel.head_symmetry import SYMMETRIES
from genomicllm_kernel.likelihoods import COLUMNS, SequenceLikelihoods

ORF, DIRECTION = "open reading frame", "sequence direction"
SENSE = [a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT" if a + b + c not in ("TAA", "TAG", "TGA")]


def _cds(rng, codons=300):
    """A 'coding sequence': codon usage skewed to G/C third positions, no stop codon."""
    w = np.array([4.0 if c[2] in "GC" else 1.0 for c in SENSE])
    return "".join(rng.choice(SENSE, size=codons, p=w / w.sum()))


def _mrna(rng, n=600):
    """An 'mRNA' with a direction: A-rich runs are followed by G, never preceded by it."""
    return "".join(rng.choice(["AAG", "CAG", "TAG", "AC", "TTC"], size=n // 3))[:n]


@pytest.fixture(scope="module")
def chains():
    rng = np.random.default_rng(0)
    return SequenceLikelihoods.count([_cds(rng) for _ in range(40)], [_mrna(rng) for _ in range(40)], order=2, source="toy")


def test_features_are_the_chains_log_likelihoods_summed_over_items(chains):
    """Each column is the sum the docstring names, counted by hand; a non-ACGT base adds nothing
    where it is the base or in the context; items add."""
    seq = "ATGGCCAAGCTTTGG"
    f = chains.log_likelihoods([[seq]])[0]
    codes = {b: i for i, b in enumerate("ACGT")}
    for frame in range(3):
        by_hand = sum(chains.coding[(p - frame) % 3, codes[seq[p - 2]] * 4 + codes[seq[p - 1]], codes[seq[p]]] for p in range(2, len(seq)))
        assert f[frame] == pytest.approx(by_hand, rel=1e-5)
    back = seq[::-1]
    assert f[3] == pytest.approx(sum(chains.mrna[codes[seq[p - 2]] * 4 + codes[seq[p - 1]], codes[seq[p]]] for p in range(2, len(seq))), rel=1e-5)
    assert f[4] == pytest.approx(sum(chains.mrna[codes[back[p - 2]] * 4 + codes[back[p - 1]], codes[back[p]]] for p in range(2, len(back))), rel=1e-5)
    masked = chains.log_likelihoods([[seq[:7] + "N" + seq[8:]]])[0]
    assert np.all(masked > f)  # three fewer (negative) terms in each column
    two = chains.log_likelihoods([[seq, seq]])[0]
    assert np.allclose(two, 2 * f, rtol=1e-5) and len(COLUMNS) == len(f) == 5
    assert not chains.log_likelihoods([[""], ["NNNN"], ["AC"]]).any()
    # the features: each reading against the mean of its question's readings
    g = chains.features([[seq]])[0]
    assert np.allclose(g[:3], f[:3] - f[:3].mean(), atol=1e-4) and np.allclose(g[3:], [(f[3] - f[4]) / 2, (f[4] - f[3]) / 2], atol=1e-4)


def test_chains_find_the_frame_and_the_direction_on_new_sequences(chains):
    rng = np.random.default_rng(1)
    right = []
    for _ in range(60):
        cds, o = _cds(rng, 40), int(rng.integers(3))
        right.append(chains.predict_frame(cds[o : o + 90]) == (3 - o) % 3)
    assert np.mean(right) > 0.9
    X = chains.features([[m] for m in (_mrna(rng, 120) for _ in range(30))])
    Y = chains.features([[m[::-1]] for m in (_mrna(rng, 120) for _ in range(30))])
    assert (X[:, 3] > X[:, 4]).mean() > 0.9 and (Y[:, 4] > Y[:, 3]).mean() > 0.9


def test_config_round_trip_and_layout_part(chains, tmp_path):
    """The chains travel in a model config (5 decimals) and fill the layout's last five columns of
    the named blocks only; every other column is the layout's without them."""
    again = SequenceLikelihoods.from_config(chains.to_config())
    assert again.order == 2 and np.allclose(again.coding, chains.coding, atol=1e-5) and again.source == "toy"
    chains.save(tmp_path / "c.json")
    assert np.allclose(SequenceLikelihoods.load(tmp_path / "c.json").mrna, chains.mrna, atol=1e-5)
    plain = Layout((3,), 0, (), (), (3,), (ORF,))
    layout = Layout((3,), 0, (), (), (3,), (ORF,), likelihoods=chains, likelihood_blocks=(ORF, DIRECTION))
    assert layout.likelihood_start == plain.size and layout.size == plain.size + 5
    rng = np.random.default_rng(2)
    rows = [[_cds(rng, 30)] for _ in range(3)]
    X = layout.vectors(rows, [ORF, DIRECTION, "core promoter"])
    assert np.allclose(X[:2, layout.likelihood_start :], chains.features(rows[:2]), rtol=1e-5) and not X[2, layout.likelihood_start :].any()
    assert np.array_equal(X[:, : plain.size], plain.vectors(rows, [ORF, DIRECTION, "core promoter"]))
    config = dict(composition_ks=[3], composition_phase_ks=[3], composition_phase_blocks=[ORF])
    config.update(composition_likelihoods=chains.to_config(), composition_likelihood_blocks=[ORF, DIRECTION])
    read = as_layout(config)
    assert read.size == layout.size and read.likelihood_blocks == (ORF, DIRECTION) and read.likelihoods.order == 2


@pytest.mark.parametrize(
    "name,block,part",
    [("reading frame", ORF, "likelihood"), ("reading frame", ORF, "frames+likelihood"), ("reversal", DIRECTION, "whole+likelihood")],
)
def test_shared_views_read_each_label_s_likelihood_exactly(chains, name, block, part):
    symmetry = SYMMETRIES[name]
    layout = Layout((3,), 0, (), (), (3,), (ORF,), likelihoods=chains, likelihood_blocks=(ORF, DIRECTION))
    assert part in symmetry.parts(layout, block) and symmetry.usable(layout, block)
    assert not any("likelihood" in p for p in symmetry.parts(layout, "core promoter"))
    rng = np.random.default_rng(3)
    X = layout.vectors([[_cds(rng, 30)] for _ in range(10)], [block] * 10).astype(np.float64)
    views = symmetry.views(X, layout, part)
    mine = {"reading frame": [0, 1, 2], "reversal": [3, 4]}[name]
    assert np.allclose(views[:, :, -1], X[:, [layout.likelihood_start + i for i in mine]])
    v = rng.normal(size=views.shape[-1])
    assert np.allclose(X @ symmetry.place(v, layout, views.shape[1], part), views @ v)


def _frame_problem(chains, rng, n=240):
    """A layout reading the chains in the ORF block, and n ORF windows of 60 nt: (layout, X, labels,
    held-out mask of a fifth)."""
    import scipy.sparse as sp

    layout = Layout((3,), 0, (), (), (3,), (ORF,), likelihoods=chains, likelihood_blocks=(ORF,))
    rows, y = [], []
    for _ in range(n):
        cds, o = _cds(rng, 40), int(rng.integers(3))
        rows.append([cds[o : o + 60]])
        y.append((3 - o) % 3)
    X = sp.csr_matrix(layout.vectors(rows, [ORF] * len(rows)).astype(np.float64))
    held = np.zeros(n, dtype=bool)
    held[rng.permutation(n)[: n // 5]] = True
    return layout, X, np.array(y), held


def test_free_fit_never_reads_the_likelihoods_and_the_shared_fit_takes_them(chains):
    """On windows where the likelihoods decide the frame, the shared fit chooses them; the free fit
    (its weights on those columns) stays zero: one label's likelihood means something only against
    another's."""
    from genomicllm_kernel import head_convex

    rng = np.random.default_rng(4)
    layout, X, y, held = _frame_problem(chains, rng)
    shared = [("labels", SYMMETRIES["reading frame"], layout, (0.001, 0.1))]
    job = (
        0,
        X,
        np.zeros((len(y), 3)),
        y,
        held,
        3,
        (0.3,),
        layout.whole_size,
        None,
        ORF,
        layout.bins_start,
        (1.0,),
        shared,
        None,
        False,
        layout.likelihood_start,
    )
    _, (W, c, choice) = head_convex._fit_job(job)
    assert "likelihood" in choice["part"] and choice["sharing"] == "reading frame"
    free_job = job[:12] + ((),) + job[13:]
    _, (Wf, _, free) = head_convex._fit_job(free_job)
    assert Wf.shape == (layout.size, 3) and not Wf[layout.likelihood_start :].any()
    assert choice["held_out_loss"] < free["held_out_loss"]


def test_likelihood_weight_lets_one_column_escape_the_part_s_ridge(chains):
    """With a ridge that the k-mer columns need, the likelihood column of ``frames+likelihood`` is
    shrunk; a 10x weight (its ridge / 100) is tried, chosen by held-out loss, recorded, and the placed
    weights score every row exactly as the fit did (train loss recomputed from X @ W + c)."""
    from genomicllm_kernel import head_convex

    rng = np.random.default_rng(5)
    layout, X, y, held = _frame_problem(chains, rng)
    args = (X, np.zeros((len(y), 3)), y, held, 3, (30.0,), SYMMETRIES["reading frame"], layout, None, ORF, (1.0,))
    W1, c1, plain = head_convex.fit_shared_block(*args)
    W, c, choice = head_convex.fit_shared_block(*args, (1.0, 10.0))
    assert any(" x10 " in k for k in choice["tried"]) and "likelihood_weight" not in plain
    assert choice["part"] == "frames+likelihood" and choice["likelihood_weight"] == 10.0
    assert choice["held_out_loss"] <= plain["held_out_loss"]
    assert choice["train_loss"] == pytest.approx(head_convex.cross_entropy(X @ W + c, y), abs=1e-5)
    assert plain["train_loss"] == pytest.approx(head_convex.cross_entropy(X @ W1 + c1, y), abs=1e-5)
