import pytest
from hypothesis import given
from hypothesis import strategies as st

from genomicllm_kernel.errors import InputError, SequenceError, UnknownQuestionError
from genomicllm_kernel.grammar import AnnotationItem, format_prompt, make_prompt, parse_prompt
from genomicllm_kernel.registry import all_question_keys


def test_examples_from_the_contract():
    p = parse_prompt("TGGCTGAAGACAACCACA, symbol=LOC107985634, GC content =")
    assert p.task.id == "gc_content" and p.sequence == "TGGCTGAAGACAACCACA"
    assert p.annotations == {"symbol": "LOC107985634"}
    p = parse_prompt("Dbxref:MIM=300586, GGATCAATAC, reading comprehension: Dbxref:MIM =")
    assert p.task.id == "reading_comprehension" and p.reading_target == "Dbxref:MIM"
    p = parse_prompt("ACTGGGGGAGGG, chromosome = chromosome11, regulatory =")
    assert p.items[1] == AnnotationItem("chromosome", "chromosome11")


def test_normalisation():
    p = parse_prompt("  acguu ,  gc   CONTENT=")
    assert p.sequence == "ACGTT" and p.question == "GC content"
    assert format_prompt(p) == "ACGTT, GC content ="


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty prompt"),
        ("ACGT, GC content", "must end with"),
        ("ACGT, =", "no question key"),
        ("ACGT,, GC content =", "item 2 is empty"),
        ("ACGTXA, GC content =", "'X' at position 5"),
        ("GC content =", "needs a nucleotide sequence"),
        ("ACGT, ACGT, GC content =", "2 sequence items"),
        ("ACGT, symbol=, GC content =", "no value"),
        ("ACGT, =x, GC content =", "no name"),
        ("ACGT, core promotr =", "did you mean 'core promoter'"),
        ("ACGT, reading comprehension: =", "needs the name"),
    ],
)
def test_errors_name_the_problem(text, match):
    with pytest.raises(InputError, match=match):
        parse_prompt(text)


def test_error_types():
    with pytest.raises(UnknownQuestionError):
        parse_prompt("ACGT, what is this =")
    with pytest.raises(SequenceError):
        parse_prompt("AC GT, GC content =")


@given(st.text(max_size=80))
def test_arbitrary_text_raises_only_input_errors(text):
    try:
        parse_prompt(text)
    except InputError:
        pass


seq = st.text(alphabet="ACGTNacgtnRY", min_size=1, max_size=60)
name = st.from_regex(r"[A-Za-z][A-Za-z0-9:_ ]{0,12}[A-Za-z0-9]", fullmatch=True)
value = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,15}[A-Za-z0-9.]", fullmatch=True)


@given(seq, st.dictionaries(name, value, max_size=3), st.sampled_from([k for k in all_question_keys() if not k.endswith(":")]))
def test_round_trip(sequence, items, question):
    prompt = make_prompt(question, sequence, items)
    again = parse_prompt(format_prompt(prompt))
    assert again == prompt
    assert parse_prompt(format_prompt(again)) == again
