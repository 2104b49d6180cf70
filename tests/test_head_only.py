"""Label answers of questions fitted at offset x0 come from the head alone (head_only.py): the same
answers as the model's forward pass, without running it, on every decoder path (a batch, explain's
shared prefix, variant pairs), and only for the rows whose factor is zero."""

from __future__ import annotations

import numpy as np
import pytest

from genomicllm_kernel.composition import Layout

DIRECTION = ["ACGTTGCAAGGCTTAACGGATC, sequence direction =", "TTTGCAAGGCTAGCTAGGACCA, sequence direction ="]
ORF = ["ATGGCCAAGTTTGGGCCCAAATAA, open reading frame ="]


@pytest.fixture(scope="module")
def scaled_model(tmp_path_factory):
    """A random model with the per-question head, direction's block fitted at x0 and ORF's at x0.25."""
    import torch

    from genomicllm_kernel import head_convex, head_fit
    from genomicllm_kernel.composition_model import per_question_blocks, with_composition
    from genomicllm_kernel.model import load_torch_model
    from genomicllm_kernel.testing import build_random_model

    tmp = tmp_path_factory.mktemp("head_only")
    model, tok = load_torch_model(build_random_model(tmp / "plain", seed=7))
    model = with_composition(model, tok.codec.vocab["<ans>"], (4, 5), per_question_blocks(), head_rank=4).eval()
    layout = Layout((3, 4, 5), 0, (), (), (3,), ("open reading frame",))
    names = list(model.config.composition_blocks)
    rng = np.random.default_rng(3)
    head_a = torch.from_numpy(rng.normal(scale=0.05, size=(len(names), layout.size, 16)).astype(np.float32))
    head_b = torch.from_numpy(rng.normal(size=(model.config.hidden_size, 16)).astype(np.float32))
    choices = {names.index("open reading frame"): {"offset_scale": 0.25}, names.index("sequence direction"): {"offset_scale": 0.0}}
    scaled = head_fit.widened(model, layout, 16, offset_scale=True)
    head_fit.place_head(scaled, head_a, head_b, head_convex.offset_scale_weights(choices, len(names), layout))
    scaled.save_pretrained(tmp / "scaled", safe_serialization=True)
    tok.save_pretrained(tmp / "scaled")
    return tmp / "scaled"


def _both(llm, run, ran=None):
    """``run(llm)`` with the head-only path, and again with every answer from the model; with
    ``ran`` (the forward passes seen so far), the first must add none."""
    kept = llm.decoder.head_only
    try:
        before = None if ran is None else len(ran)
        fast = run(llm)
        assert ran is None or len(ran) == before, "the head-only path ran the model"
        llm.decoder.head_only = None
        return fast, run(llm)
    finally:
        llm.decoder.head_only = kept


def test_a_question_fitted_at_x0_answers_from_the_head_alone_with_the_models_probabilities(scaled_model, monkeypatch):
    """Direction (x0) rows never reach the model's forward pass yet get its answer and label
    probabilities to float rounding; ORF (x0.25) rows, a generation question and a mixed batch still
    run the model where they must. It fails if the shortcut reads the wrong block, drops the bias
    of a label, or answers a row whose language-model term is not multiplied by zero."""
    from genomicllm_kernel.engine import GenomicLLM
    from genomicllm_kernel.grammar import parse_prompt

    llm = GenomicLLM.from_pretrained(scaled_model, "torch")
    assert llm.decoder.head_only is not None
    codec = llm.codec
    covered = llm.decoder.head_only.covers(*llm.decoder.compact_features([codec.encode_prompt(t) for t in DIRECTION + ORF]))
    assert covered.tolist() == [True, True, False]
    fast, slow = _both(llm, lambda m: m.ask(DIRECTION + ORF + ["ACGTAC, reverse sequence ="]))
    for a, b in zip(fast, slow):
        assert a.answer == b.answer
        if b.labels:
            assert max(abs(a.labels[k] - b.labels[k]) for k in b.labels) < 1e-5
    # the direction rows alone: no forward pass at all
    ran = []
    start = llm.decoder.start
    monkeypatch.setattr(llm.decoder, "start", lambda *a, **k: ran.append(len(a[0])) or start(*a, **k))
    llm.ask(DIRECTION)
    assert ran == []
    llm.ask(DIRECTION + ORF)
    assert ran == [1]  # the ORF row only
    # explain (shared prefix) and variant pairs take the same shortcut and give the model's numbers
    prompt = parse_prompt(DIRECTION[0])
    exp_fast, exp_slow = _both(llm, lambda m: m.explain(DIRECTION[0]), ran)
    assert np.allclose(exp_fast.probs, exp_slow.probs, atol=1e-5) and exp_fast.label == exp_slow.label
    alt = parse_prompt(DIRECTION[0].replace("ACGTT", "ACGAT", 1))
    pairs_fast, pairs_slow = _both(llm, lambda m: m.label_probabilities_of_pairs([(prompt, alt)]), ran)
    for x, y in zip(pairs_fast[0][1:], pairs_slow[0][1:]):
        assert max(abs(x[k] - y[k]) for k in y) < 1e-5


def test_rows_without_a_valid_kmer_keep_the_model_path(scaled_model):
    """A sequence with no A/C/G/T 3-mer has no frequencies, so its factor is 1, not 0: the model answers."""
    from genomicllm_kernel.engine import GenomicLLM

    llm = GenomicLLM.from_pretrained(scaled_model, "torch")
    at, vectors = llm.decoder.compact_features([llm.codec.encode_prompt("NNNNNNNNN, sequence direction =")])
    assert at[0] >= 0 and not llm.decoder.head_only.covers(at, vectors)[0]
