import gzip

import pytest

from genomicllm_kernel.errors import FastaError
from genomicllm_kernel.fasta import read_fasta, read_sequences, read_tabular


def test_multi_record_wrapped_lowercase(tmp_path):
    f = tmp_path / "a.fa"
    f.write_text(">one desc\nacgt\nACGU\n\n>two\nNNAC\n")
    assert [(r.id, r.sequence) for r in read_fasta(f)] == [("one", "ACGTACGT"), ("two", "NNAC")]


def test_gzip_and_auto(tmp_path):
    f = tmp_path / "a.fa.gz"
    with gzip.open(f, "wt") as fh:
        fh.write(">x\nACGT\n")
    assert [r.sequence for r in read_sequences(f)] == ["ACGT"]
    t = tmp_path / "a.tsv"
    t.write_text("id\tsequence\nr1\tacgt\n")
    assert [(r.id, r.sequence) for r in read_sequences(t)] == [("r1", "ACGT")]


@pytest.mark.parametrize(
    "text, match",
    [
        ("ACGT\n", "line 1: sequence data before the first '>'"),
        (">a\nACGT\nACXT\n", "line 3, column 3: character 'X'"),
        (">a\n>b\nACGT\n", "line 1: record 'a' has an empty sequence"),
        ("", "no FASTA records"),
        (">\nACGT\n", "line 1: a '>' header line with no sequence name"),
    ],
)
def test_errors_name_file_and_line(tmp_path, text, match):
    f = tmp_path / "bad.fa"
    f.write_text(text)
    with pytest.raises(FastaError, match=match):
        list(read_fasta(f))


def test_tabular_errors(tmp_path):
    f = tmp_path / "bad.tsv"
    f.write_text("r1 ACGT\n")
    with pytest.raises(FastaError, match="line 1: expected two tab-separated columns"):
        list(read_tabular(f))


def test_missing_file():
    with pytest.raises(FastaError, match="no such file"):
        list(read_fasta("/nonexistent.fa"))
