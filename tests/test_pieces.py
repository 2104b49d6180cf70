"""Long reverse / complement questions are read in pieces (pieces.py): the cut keeps the input's own
3 nt chunks, the join order follows the question, and the engine's answer is exactly the model's
answers on the pieces, joined, with their probabilities multiplied and a note saying so."""

from __future__ import annotations

import random

import pytest

from genomicllm_kernel import pieces
from genomicllm_kernel.grammar import parse_prompt

SEQ = "".join(random.Random(4).choices("ACGT", k=700))


@pytest.mark.parametrize("length", [510, 511, 700, 1021, 1531])
def test_pieces_cover_the_sequence_in_whole_chunks(length):
    """At most PIECE_NT nt each, the fewest pieces, every piece but the last a multiple of 3 nt."""
    seq = (SEQ * 3)[:length]
    got = pieces.pieces_of(parse_prompt(f"gene = X, {seq}, reverse sequence ="))
    if length <= pieces.PIECE_NT:
        assert got is None
        return
    parts = [p.sequence for p in got]
    assert "".join(parts) == seq and len(parts) == -(-length // pieces.PIECE_NT)
    assert all(len(p) <= pieces.PIECE_NT for p in parts) and all(len(p) % 3 == 0 for p in parts[:-1])
    assert all(p.annotations == {"gene": "X"} and p.question == "reverse sequence" for p in got)


def test_joins_follow_the_question():
    parts = ["AAAC", "GGGT"]
    assert pieces.join(parse_prompt("ACGT, complementary sequence ="), parts) == "AAACGGGT"
    for q in ("reverse sequence", "reverse complementary sequence"):
        assert pieces.join(parse_prompt(f"ACGT, {q} ="), parts) == "GGGTAAAC"
    assert pieces.pieces_of(parse_prompt(f"{SEQ}, protein sequence =")) is None  # not a local answer


@pytest.mark.parametrize("question", sorted(pieces.JOINS))
def test_the_engine_answers_a_long_input_from_the_models_answers_on_its_pieces(random_model, question):
    """The answer equals the pieces' own answers joined (probability: their product), carries the
    note, and with read_in_pieces off the model reads the input whole (no note). It fails if the
    engine reorders pieces, mixes answers between prompts of one batch, or cuts inside a chunk."""
    from genomicllm_kernel.engine import GenomicLLM

    llm = GenomicLLM.from_pretrained(random_model, "onnx")
    long, short = f"{SEQ}, {question} =", f"{SEQ[:90]}, {question} ="
    got = llm.ask([short, long, short])
    parts = llm.ask([p.text() for p in pieces.pieces_of(parse_prompt(long))])
    assert got[1].answer == pieces.join(parse_prompt(long), [a.answer for a in parts])
    assert got[1].probability == pytest.approx(parts[0].probability * parts[1].probability, rel=1e-6)
    assert got[1].note.startswith("read in 2 pieces") and got[0].note is None and got[0].answer == got[2].answer
    assert got[1].check.expected is not None and len(got[1].answer) == len(SEQ)
    llm.read_in_pieces = False
    try:
        whole = llm.ask(long)
    finally:
        llm.read_in_pieces = True
    assert whole.note is None and len(whole.answer) == len(SEQ)


def test_the_evaluator_reports_long_inputs_read_whole_beside_the_pieces(random_model, tmp_path):
    """evaluate's length curve comes from the engine (pieces), and the rows it read in pieces are
    answered again whole: the model-alone figure sits beside it in the JSON and the markdown."""
    import json

    from genomicllm_kernel.checks import reverse_complement
    from genomicllm_kernel.evaluation import evaluate

    rows = []
    for n, length in enumerate((40, 300, 600, 700)):
        seq = SEQ[n : n + length]
        rows.append({"task": "reverse_complement", "source": "annotation", "prompt": f"{seq}, reverse complementary sequence =",
                     "answer": reverse_complement(seq), "region": f"r{n}", "split": "dev", "leak": False})  # fmt: skip
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = evaluate(random_model, tmp_path, "dev", limit=10, backend="onnx")
    task = result["tasks"]["reverse_complement"]
    assert task["exact_by_length"]["513-max"]["n"] == 2 and task["exact_by_length_whole"] == {"513-max": task["exact_by_length_whole"]["513-max"]}
    assert task["exact_by_length_whole"]["513-max"]["n"] == 2
    from genomicllm_kernel.evaluation import to_markdown

    assert "| reverse_complement | 513-max | 2 |" in to_markdown(result) and "read whole" in to_markdown(result)
