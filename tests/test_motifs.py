"""motifs.MotifSet.best_matches against a direct loop over windows and strands (fast, synthetic matrices)."""

import numpy as np
import pytest

from genomicllm_kernel.motifs import MotifSet

COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def _direct(matrix, seq):
    """The best log-odds score of ``matrix`` over the windows of ``seq`` and of its reverse complement."""
    idx = {b: i for i, b in enumerate("ACGT")}
    best, width = -np.inf, matrix.shape[0]
    for strand in (seq, seq.translate(COMPLEMENT)[::-1]):
        for i in range(len(strand) - width + 1):
            window = strand[i : i + width]
            if all(c in idx for c in window):
                best = max(best, sum(matrix[j, idx[c]] for j, c in enumerate(window)))
    return best


def _random_set(rng, widths):
    mats = tuple(rng.normal(size=(w, 4)).astype(np.float32) for w in widths)
    return MotifSet(tuple(f"M{i}" for i in range(len(mats))), tuple(f"m{i}" for i in range(len(mats))), mats)


def test_best_matches_equal_a_direct_scan_of_both_strands():
    rng = np.random.default_rng(0)
    motifs = _random_set(rng, [3, 5, 5, 8, 12])
    seqs = ["".join(rng.choice(list("ACGT"), size=n)) for n in (12, 30, 101)] + ["ACGTNNACGTTGCAacgtRYACG", "ACG"]
    scores, centres = motifs.best_matches(seqs, chunk=2)
    for i, s in enumerate(seqs):
        for j, m in enumerate(motifs.matrices):
            want = _direct(m, s.upper())
            if np.isfinite(want):
                assert scores[i, j] == pytest.approx(want, abs=1e-4)
                assert 0 <= centres[i, j] < len(s)
            else:  # shorter than the motif, or no window of A/C/G/T only
                assert scores[i, j] == -np.inf and centres[i, j] == -1


def test_a_sequence_and_its_reverse_complement_score_alike():
    rng = np.random.default_rng(1)
    motifs = _random_set(rng, [6, 10])
    seq = "".join(rng.choice(list("ACGT"), size=80))
    scores, _ = motifs.best_matches([seq, seq.translate(COMPLEMENT)[::-1]])
    assert np.allclose(scores[0], scores[1], atol=1e-5)


def test_a_planted_site_is_found_at_its_position():
    consensus = "TGACTCA"
    m = np.full((7, 4), -2.0, dtype=np.float32)
    for j, c in enumerate(consensus):
        m[j, "ACGT".index(c)] = 2.0
    motifs = MotifSet(("AP1",), ("AP-1",), (m,))
    seq = "C" * 40 + consensus + "C" * 40
    scores, centres = motifs.best_matches([seq, "C" * 87])
    assert scores[0, 0] == pytest.approx(14.0) and centres[0, 0] == 40 + 3
    assert scores[1, 0] < 0


def test_features_take_the_best_item_and_floor_what_has_no_window():
    rng = np.random.default_rng(2)
    motifs = _random_set(rng, [4, 9])
    a, b = "".join(rng.choice(list("ACGT"), size=30)), "".join(rng.choice(list("ACGT"), size=20))
    scores, _ = motifs.best_matches([a, b])
    feats = motifs.features([[a, b], a, "ACG", []])
    assert np.allclose(feats[0], scores.max(axis=0)) and np.allclose(feats[1], scores[0])
    lowest = [m.min(axis=1).sum() for m in motifs.matrices]
    assert np.allclose(feats[2], lowest) and np.allclose(feats[3], lowest) and np.isfinite(feats).all()


def test_jaspar_release_loads_as_log_odds_that_round_trip_through_a_config():
    """load_jaspar reads pyjaspar's bundled release (no network): one latest version per matrix id,
    each row log-odds against a uniform background (so 0.25 * 2**row sums to 1), and the set a
    model carries in its config (to_config / from_config) is the set that was loaded."""
    from genomicllm_kernel.motifs import MotifSet, load_jaspar

    motifs = load_jaspar()
    assert len(motifs) > 800 and len(set(motifs.ids)) == len(motifs)
    assert len({i.split(".")[0] for i in motifs.ids}) == len(motifs)  # latest versions only
    for m in motifs.matrices[:50]:
        assert m.shape[1] == 4 and np.allclose((0.25 * 2.0**m).sum(axis=1), 1.0, atol=2e-3)
    again = MotifSet.from_config(motifs.to_config())
    assert again.ids == motifs.ids and all(np.array_equal(a, b) for a, b in zip(again.matrices, motifs.matrices))
    ap1 = motifs.ids.index(next(i for i, n in zip(motifs.ids, motifs.names) if n == "FOS::JUN"))
    seq = "ACGT" * 10 + "ATGACTCAT" + "ACGT" * 10
    assert motifs.features([seq])[0, ap1] > motifs.features(["ACGT" * 22])[0, ap1] + 5  # an AP-1 site scores as one


def test_sequences_near_a_scored_one_are_rescored_only_where_they_changed_and_score_the_same():
    """features() of substitutions (explain), a few nearby changes, an N, a change at either end and
    the reference itself again equal a fresh set's direct scoring; a far change and another length
    take the full path. It fails if the untouched windows' maxima or the recomputed windows are off."""
    rng = np.random.default_rng(3)
    motifs = _random_set(rng, [3, 5, 5, 8, 12, 40])  # 40: longer than the 30 nt sequences below
    ref = "".join(rng.choice(list("ACGT"), size=30))
    near = [ref[:p] + b + ref[p + 1 :] for p in (0, 7, 29) for b in "ACGT" if b != ref[p]]
    near += [ref[:10] + "N" + ref[11:], ref[:4] + "TT" + ref[6:12] + "G" + ref[13:], ref, ref.lower()]
    far = [("A" if ref[0] != "A" else "C") + ref[1:29] + ("A" if ref[29] != "A" else "C"), ref[:20]]
    fresh = MotifSet(motifs.ids, motifs.names, motifs.matrices)
    want = fresh.features([ref] + near + far)
    assert np.allclose(motifs.features([ref]), want[:1])
    calls = []
    best_matches = motifs.best_matches
    object.__setattr__(motifs, "best_matches", lambda seqs, **kw: calls.append(list(seqs)) or best_matches(seqs, **kw))
    got = motifs.features(near + far)
    assert np.allclose(got, want[1:], atol=1e-5)
    assert calls == [far]  # the near ones never went through the full product
    direct = np.array([[max(_direct(m, s.upper()), m.min(axis=1).sum()) for m in motifs.matrices] for s in near])
    assert np.allclose(got[: len(near)], direct, atol=1e-4)
    # a lone alt window beside its ref (genomicllm variants): cheaper in the full product than maxima
    ref2 = "".join(rng.choice(list("ACGT"), size=30))
    pair = [ref2, ref2[:15] + ("A" if ref2[15] != "A" else "G") + ref2[16:]]
    assert np.allclose(motifs.features(pair), fresh.features(pair), atol=1e-5)
    assert calls == [far, pair]
    # ... and once SHARED sequences of a call are near a new reference, they are rescored
    alts = [ref2[:p] + ("A" if ref2[p] != "A" else "G") + ref2[p + 1 :] for p in range(motifs._nearby.SHARED)]
    assert np.allclose(motifs.features(alts), fresh.features(alts), atol=1e-5)
    assert calls == [far, pair]


def test_a_substitution_that_completes_a_site_at_either_edge_of_its_windows_is_seen():
    """The change is the first base of the new site, or its last: the windows that start or end at the
    changed base are the ones recomputed at the edges (a window too few misses one of them)."""
    site = "GATTAC"
    matrix = np.full((len(site), 4), -2.0, dtype=np.float32)
    for j, b in enumerate(site):
        matrix[j, "ACGT".index(b)] = 2.0
    motifs = MotifSet(("S",), ("site",), (matrix,))
    motifs._nearby.SHARED = 1  # two sequences near the reference: rescored, not scored in full
    ref = "CCCC" + "CATTAC" + "CCCC" + "GATTAG" + "CCCC"  # one base short of the site: first base, last base
    starts_at, ends_at = ref[:4] + "G" + ref[5:], ref[:19] + "C" + ref[20:]
    motifs.features([ref])
    got = motifs.features([starts_at, ends_at])
    assert np.allclose(got[:, 0], 12.0), got
    assert np.allclose(motifs.features([ref])[0, 0], 8.0)


def test_a_set_that_rescored_nearby_sequences_still_pickles():
    """A head fit sends its layout, motif set included, to worker processes: the set's caches and lock
    must not stop it (they start empty in the copy, which scores the same)."""
    import pickle

    rng = np.random.default_rng(5)
    motifs = _random_set(rng, [4, 6])
    ref = "".join(rng.choice(list("ACGT"), size=40))
    motifs.features([ref])
    near = [ref[:p] + ("A" if ref[p] != "A" else "C") + ref[p + 1 :] for p in range(10)]
    want = motifs.features(near)
    copy = pickle.loads(pickle.dumps(motifs))
    assert np.allclose(copy.features(near), want, atol=1e-5)


def test_every_single_substitution_scores_as_the_changed_sequence_scored_afresh():
    """In-silico mutagenesis and SNVs take the one-base path (the reference's window scores plus the
    matrix's difference at the changed offset): every position x every base of a reference that
    holds an N, the N itself replaced, and a base replaced by N, equal a fresh set's full scoring.
    It fails if a window over the change is missed at either end, an offset is read from the wrong
    end of its window, or an -inf window (one holding the N) becomes finite."""
    rng = np.random.default_rng(11)
    motifs = _random_set(rng, [3, 6, 6, 9, 15, 40])
    ref = "".join(rng.choice(list("ACGT"), size=34))
    ref = ref[:17] + "N" + ref[18:]
    subs = [ref[:p] + b + ref[p + 1 :] for p in range(len(ref)) for b in "ACGTN" if b != ref[p]]
    fresh = MotifSet(motifs.ids, motifs.names, motifs.matrices)
    motifs.features([ref])
    calls = []
    best_matches = motifs.best_matches
    object.__setattr__(motifs, "best_matches", lambda seqs, **kw: calls.append(list(seqs)) or best_matches(seqs, **kw))
    got = motifs.features(subs)
    assert calls == []  # every one rescored near the reference
    assert np.allclose(got, fresh.features(subs), atol=1e-4)
    direct = np.array([[max(_direct(m, s), m.min(axis=1).sum()) for m in motifs.matrices] for s in subs[:40]])
    assert np.allclose(got[:40], direct, atol=1e-4)
