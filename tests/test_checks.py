import pytest
from Bio.Seq import Seq
from hypothesis import given
from hypothesis import strategies as st

from genomicllm_kernel import checks

dna = st.text(alphabet="ACGT", min_size=1, max_size=200)


def test_hand_made_cases():
    assert checks.gc_content("ACGTTGCA") == "0.500"
    assert checks.gc_content("GGGC") == "1.000"
    assert checks.gc_content("ATNNNN") == "0.000"
    assert checks.gc_content("GCNN") == "1.000"  # N left out of numerator and denominator
    assert checks.gc_content("GCSW") == "0.750"  # S counts as GC, W as not
    assert checks.reverse("ACGTT") == "TTGCA"
    assert checks.complement("ACGTRYN") == "TGCAYRN"
    assert checks.reverse_complement("AACG") == "CGTT"
    assert checks.translate("ATGGCCTAA") == "MA*"
    assert checks.translate("ATGGC") == "M"  # trailing partial codon ignored
    assert checks.translate("AT") == ""
    assert checks.translate("GCN") == "A"  # ambiguous codon with one reading
    assert checks.reading_comprehension({"Dbxref:MIM": "300586"}, "dbxref:mim") == "300586"


def test_reading_comprehension_names_the_missing_item():
    with pytest.raises(ValueError, match="no such item"):
        checks.reading_comprehension({"symbol": "X"}, "id")


@given(dna)
def test_against_biopython(seq):
    assert checks.reverse_complement(seq) == str(Seq(seq).reverse_complement())
    assert checks.complement(checks.complement(seq)) == seq
    n = len(seq) - len(seq) % 3
    assert checks.translate(seq) == (str(Seq(seq[:n]).translate()) if n else "")
    gc = (seq.count("G") + seq.count("C")) / len(seq)
    assert abs(float(checks.gc_content(seq)) - gc) <= 0.0005 + 1e-12
