"""Property-based fuzzing of the CLI's argument and file surface (not only the grammar).

Random and mutated FASTA / tabular files, odd file kinds and odd numbers for every numeric option
go through ``genomicllm predict`` / ``ask`` in-process on the random tiny model. Whatever comes in,
the run ends in the contract: exit 0, 1 or 2; exit 2 prints exactly one line; no traceback; and a
failed run leaves neither its output nor a temporary file behind.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genomicllm_kernel import cli

FRAGMENTS = [
    ">",
    ">r1",
    ">r2 symbol=BRCA1",
    "\n",
    "\r\n",
    "ACGT",
    "acgu",
    "NNRYSW",
    "\t",
    "ACGT\tACGT",
    "#id\tsequence\tsymbol",
    ";",
    " ",
    "-",
    "X",
    "\x00",
    "\ufeff",
    "ſ",
    "é",
    "=",
    "ACGTACGTACGTACGTACGTACGTACGT" * 3,
    ">>",
    "\t\t",
]

file_text = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)
odd_int = st.one_of(st.none(), st.integers(min_value=-3, max_value=3), st.integers(min_value=-(10**6), max_value=10**6))


def _encode(text: str, kind: str) -> bytes:
    raw = text.encode("utf-8")
    if kind == "gzip":
        return gzip.compress(raw)
    if kind == "gzip-truncated":
        return gzip.compress(raw)[: max(2, len(raw) // 3)]
    if kind == "utf-16":
        return text.encode("utf-16")
    if kind == "bom":
        return b"\xef\xbb\xbf" + raw
    return raw


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _contract(rc: int, err: str, folder: Path, output: Path) -> None:
    assert rc in (0, 1, 2), (rc, err)
    assert "Traceback" not in err
    if rc == 2:
        assert err.count("\n") == 1 and err.startswith("genomicllm: error: "), err
    if rc != 0:
        assert not output.exists(), "a failed run left its output"
    assert not [p for p in folder.iterdir() if p.name.startswith(f".{output.name}.")], "a temporary file was left"


FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(
    text=file_text,
    kind=st.sampled_from(["plain", "gzip", "gzip-truncated", "utf-16", "bom"]),
    fmt=st.sampled_from(["auto", "fasta", "tabular"]),
    task=st.sampled_from(["promoter", "gc_content", "reverse_complement"]),
    batch=odd_int,
    size=odd_int,
    step=odd_int,
    record_items=st.booleans(),
)
def test_predict_on_random_files_and_numbers(capsys, random_model, text, kind, fmt, task, batch, size, step, record_items):
    folder = Path(tempfile.mkdtemp())
    try:
        f = folder / "in.fa"
        f.write_bytes(_encode(text, kind))
        output = folder / "out.tsv"
        argv = [
            "predict",
            "--task",
            task,
            "--fasta",
            str(f),
            "--model",
            str(random_model),
            "--input-format",
            fmt,
            "--output",
            str(output),
            "--format",
            "tsv",
        ]
        for name, value in (("--batch-size", batch), ("--window-size", size), ("--window-step", step)):
            if value is not None:
                argv += [name, str(value)]
        if record_items:
            argv.append("--record-items")
        rc, out, err = _run(capsys, argv)
        _contract(rc, err, folder, output)
    finally:
        shutil.rmtree(folder)


@FUZZ
@given(
    lines=st.lists(
        st.one_of(
            file_text,
            st.sampled_from(
                [
                    "ACGT, GC content =",
                    "ACGT, core promoter =",
                    "x = y, description =",
                    "ACGT, reading comprehension: x =",
                    "=",
                    ", =",
                    "ACGT,, GC content =",
                ]
            ),
        ),
        max_size=6,
    ),
    batch=odd_int,
)
def test_ask_batch_on_random_lines(capsys, random_model, lines, batch):
    folder = Path(tempfile.mkdtemp())
    try:
        f = folder / "prompts.txt"
        f.write_text("\n".join(lines), encoding="utf-8")
        output = folder / "out.jsonl"
        argv = ["ask", "--batch", str(f), "--model", str(random_model), "--output", str(output), "--format", "jsonl"]
        if batch is not None:
            argv += ["--batch-size", str(batch)]
        rc, out, err = _run(capsys, argv)
        _contract(rc, err, folder, output)
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize("kind", ["directory", "fifo-less-missing", "dev-null"])
def test_odd_file_kinds(capsys, random_model, tmp_path, kind):
    target = {"directory": tmp_path, "fifo-less-missing": tmp_path / "missing.fa", "dev-null": Path("/dev/null")}[kind]
    output = tmp_path / "out.tsv"
    rc, out, err = _run(capsys, ["predict", "--task", "promoter", "--fasta", str(target), "--model", str(random_model), "--output", str(output)])
    assert rc == 2
    _contract(rc, err, tmp_path, output)
