"""The CLI's contract under hostile input, kills and concurrency (issue: hostile input and kills).

Every case ends in the documented contract: exit 0 success, 2 bad input with one line on stderr
naming the problem, 1 internal error; nothing half-written. Runs on the random tiny model (fast
layer): what is tested is the plumbing, not the answers.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from genomicllm_kernel import cli
from genomicllm_kernel.errors import TrainingDivergedError

EXE = [sys.executable, "-m", "genomicllm_kernel.cli"]


def main(capsys, *argv) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc: int, err: str, words: str) -> None:
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("genomicllm: error: ") and "Traceback" not in err, err
    assert words in err, err


@pytest.fixture()
def fasta(tmp_path) -> Path:
    f = tmp_path / "in.fa"
    f.write_text(">a\nACGTACGTAC\n>b\nTTGACAGGCC\n")
    return f


def _only(folder: Path, *names: str) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


# ---- outputs -----------------------------------------------------------------------------------
def test_output_in_a_missing_folder_or_a_directory_is_bad_input(capsys, random_model, fasta, tmp_path):
    rc, out, err = main(capsys, "predict", "--task", "promoter", "--fasta", fasta, "--model", random_model, "--output", tmp_path / "nope" / "out.tsv")
    one_line_error(rc, err, "does not exist")
    assert ".out.tsv." not in err  # no temporary name leaks
    rc, out, err = main(capsys, "predict", "--task", "promoter", "--fasta", fasta, "--model", random_model, "--output", tmp_path)
    one_line_error(rc, err, "is a directory")
    _only(tmp_path, "in.fa")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_finished_output_honours_the_umask(capsys, random_model, fasta, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        rc, _, err = main(capsys, "predict", "--task", "gc_content", "--fasta", fasta, "--model", random_model, "--output", tmp_path / "out.tsv")
    finally:
        os.umask(old)
    assert rc == 0, err
    assert (tmp_path / "out.tsv").stat().st_mode & 0o777 == mode


def test_window_coordinates_in_every_format(capsys, random_model, tmp_path):
    f = tmp_path / "long.fa"
    f.write_text(">r\n" + "ACGT" * 30 + "\n")
    rc, out, err = main(
        capsys,
        "predict",
        "--task",
        "promoter",
        "--fasta",
        f,
        "--model",
        random_model,
        "--format",
        "tsv",
        "--window-size",
        "50",
        "--window-step",
        "50",
    )
    rows = [r.split("\t") for r in out.strip().split("\n")]
    assert rows[0][:4] == ["index", "id", "start", "end"]
    assert [r[1:4] for r in rows[1:]] == [["r", "1", "50"], ["r", "51", "100"], ["r", "71", "120"]]
    rc, out, err = main(capsys, "predict", "--task", "promoter", "--fasta", f, "--model", random_model, "--format", "table", "--window-size", "50")
    lines = out.strip().split("\n")
    assert lines[0].split()[:4] == ["index", "id", "start", "end"] and lines[1].split()[1:4] == ["r", "1", "50"]
    rc, out, err = main(capsys, "predict", "--task", "promoter", "--fasta", f, "--model", random_model, "--format", "jsonl", "--window-size", "50")
    assert json.loads(out.split("\n")[0])["window"] == [1, 50]


# ---- input files -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, words",
    [
        (gzip.compress(b">a\nACGTACGT\n" * 50)[:30], "compressed input is truncated"),
        (b"\x1f\x8b" + b"junk" * 10, "not a valid gzip file"),
        ("\ufeff>a\nACGT\n".encode("utf-16"), "UTF-16"),
        (b"", "the file is empty"),
        (b"\x00" * 5000, "binary file"),
        (b"hello world\n", "neither FASTA"),
    ],
)
def test_bad_files_are_named(capsys, random_model, tmp_path, content, words):
    f = tmp_path / "in.fa"
    f.write_bytes(content)
    rc, out, err = main(capsys, "predict", "--task", "promoter", "--fasta", f, "--model", random_model, "--output", tmp_path / "o.tsv")
    one_line_error(rc, err, words)
    _only(tmp_path, "in.fa")


def test_a_directory_and_a_byte_order_mark(capsys, random_model, tmp_path):
    rc, out, err = main(capsys, "predict", "--task", "promoter", "--fasta", tmp_path, "--model", random_model)
    one_line_error(rc, err, "is a directory")
    f = tmp_path / "bom.fa"
    f.write_bytes(b"\xef\xbb\xbf>a\nACGT\n")
    rc, out, err = main(capsys, "predict", "--task", "gc_content", "--fasta", f, "--model", random_model, "--format", "tsv")
    assert rc == 0, err
    assert out.split("\n")[1].split("\t")[1] == "a"


def test_unicode_lookalikes_are_not_nucleotides(capsys):
    rc, out, err = main(capsys, "ask", "\u017fACGT, GC content =")
    one_line_error(rc, err, "character 'ſ' at position 1")


def test_process_substitution_and_a_fifo_are_read_once(tmp_path, random_model):
    r = subprocess.run(
        ["bash", "-c", f"{' '.join(EXE)} predict --task gc_content --model {random_model} --format tsv --fasta <(printf '>a\\nACGT\\n>b\\nGGGC\\n')"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert [row.split("\t")[1] for row in r.stdout.strip().split("\n")[1:]] == ["a", "b"]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def writer():
        with open(fifo, "w") as fh:
            fh.write(">x\nACGTTT\n")

    t = threading.Thread(target=writer)
    t.start()
    r = subprocess.run(
        EXE + ["predict", "--task", "gc_content", "--model", str(random_model), "--format", "tsv", "--fasta", str(fifo)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    t.join(10)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().split("\n")[1].split("\t")[1] == "x"


def test_dev_zero_fails_at_once():
    t0 = time.time()
    r = subprocess.run(EXE + ["predict", "--task", "promoter", "--fasta", "/dev/zero"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "binary file" in r.stderr and time.time() - t0 < 30


def test_record_items_from_headers_and_columns(tmp_path):
    from genomicllm_kernel.fasta import read_sequences

    f = tmp_path / "a.fa"
    f.write_text(">r1 symbol=BRCA1; map location=17q21.31\nACGT\n>r2 symbol=TP53 id=7157\nACGT\n>r3 plain description\nAC\n")
    assert [r.items for r in read_sequences(f, record_items=True)] == [
        (("symbol", "BRCA1"), ("map location", "17q21.31")),
        (("symbol", "TP53"), ("id", "7157")),
        (),
    ]
    assert all(r.items == () for r in read_sequences(f))
    t = tmp_path / "a.tabular"
    t.write_text("#id\tsequence\tsymbol\tmap location\nr1\tACGT\tBRCA1\t17q21.31\nr2\tACGT\t\t17p13.1\n")
    assert [r.items for r in read_sequences(t, record_items=True)] == [
        (("symbol", "BRCA1"), ("map location", "17q21.31")),
        (("map location", "17p13.1"),),
    ]


def test_record_items_reach_the_prompt(capsys, random_model, tmp_path):
    f = tmp_path / "a.fa"
    f.write_text(">r1 symbol=BRCA1; map location=17q21.31\nACGT\n>r2 symbol=TP53; map location=17p13.1\nACGT\n")
    rc, out, err = main(
        capsys,
        "predict",
        "--task",
        "reading_comprehension",
        "--question",
        "reading comprehension: map location",
        "--record-items",
        "--fasta",
        f,
        "--model",
        random_model,
        "--format",
        "jsonl",
    )
    assert rc == 0, err
    assert [json.loads(x)["check"]["expected"] for x in out.strip().split("\n")] == ["17q21.31", "17p13.1"]


# ---- numbers and messages ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, words",
    [
        (["--batch-size", "0"], "--batch-size must be a positive"),
        (["--batch-size", "-1"], "--batch-size must be a positive"),
        (["--window-size", "0"], "--window-size must be a positive"),
        (["--window-size", "10", "--window-step", "0"], "--window-step must be a positive"),
        (["--window-size", "10", "--window-step", "11"], "larger than --window-size"),
        (["--window-step", "5"], "--window-step needs --window-size"),
    ],
)
def test_odd_numbers_are_refused(capsys, random_model, fasta, args, words):
    rc, out, err = main(capsys, "predict", "--task", "promoter", "--fasta", fasta, "--model", random_model, *args)
    one_line_error(rc, err, words)


def test_stated_limits_are_exact(capsys, random_model):
    from genomicllm_kernel.engine import GenomicLLM
    from genomicllm_kernel.grammar import make_prompt

    llm = GenomicLLM.from_pretrained(random_model)
    for question in ("protein sequence", "GC content", "reverse sequence", "core promoter"):
        limit = llm.sequence_limit(make_prompt(question, "A"))
        rc, out, err = main(capsys, "ask", f"{'A' * limit}, {question} =", "--model", random_model, "--format", "jsonl")
        assert rc == 0, (question, limit, err)
        rc, out, err = main(capsys, "ask", f"{'A' * (limit + 1)}, {question} =", "--model", random_model)
        one_line_error(rc, err, f"at most {limit} nt")


def test_long_items_are_blamed_on_the_items_and_batch_errors_name_the_line(capsys, random_model, tmp_path, fasta):
    rc, out, err = main(capsys, "ask", "name" * 2000 + " = v, ACGTACGTAC, regulatory =", "--model", random_model)
    one_line_error(rc, err, "shorten the annotation items")
    batch = tmp_path / "p.txt"
    batch.write_text("# comment\n\nACGT, GC content =\n# another\n" + "A" * 5000 + ", GC content =\n")
    rc, out, err = main(capsys, "ask", "--batch", batch, "--model", random_model)
    one_line_error(rc, err, "line 5: sequence of 5000 nt")
    batch.write_text("# comment\nACGT, GC contnt =\n")
    rc, out, err = main(capsys, "ask", "--batch", batch, "--model", random_model)
    one_line_error(rc, err, "line 2: unknown question key")
    rc, out, err = main(capsys, "predict", "--task", "gc_content", "--fasta", fasta, "--model", random_model, "--window-size", "2000")
    assert rc == 0  # short records are answered whole
    long = tmp_path / "long.fa"
    long.write_text(">r\n" + "A" * 3000 + "\n")
    rc, out, err = main(capsys, "predict", "--task", "gc_content", "--fasta", long, "--model", random_model, "--window-size", "2000")
    one_line_error(rc, err, "record 'r' window 1-2000: a window of 2000 nt is too long")


def test_error_classes_map_to_exit_codes(capsys, monkeypatch):
    def diverged(args):
        raise TrainingDivergedError("the loss stayed non-finite for 20 steps")

    monkeypatch.setattr(cli, "cmd_tasks", diverged)
    rc, out, err = main(capsys, "tasks")
    assert rc == 1 and err.strip() == "genomicllm: error: the loss stayed non-finite for 20 steps"


# ---- damaged and zipped models -----------------------------------------------------------------
@pytest.mark.parametrize(
    "name, damage",
    [
        ("vocab.json", lambda p: p.write_text("{not json")),
        ("config.json", lambda p: p.write_bytes(b"\xff\xfe garbage")),
        ("model.safetensors", lambda p: p.write_bytes(p.read_bytes()[:-100])),
    ],
)
def test_a_damaged_model_file_is_named(capsys, random_model, tmp_path, name, damage):
    import shutil

    model = tmp_path / "m"
    shutil.copytree(random_model, model)
    damage(model / name)
    rc, out, err = main(capsys, "ask", "ACGTACGT, core promoter =", "--model", model, "--backend", "torch")
    one_line_error(rc, err, f"{model / name}: the model file is damaged")


def test_a_zipped_model_is_unpacked(capsys, random_model, tmp_path):
    from genomicllm_kernel.testing import zip_model

    archive = zip_model(random_model, tmp_path / "model.zip")
    rc, out, err = main(capsys, "ask", "ACGTTGCA, GC content =", "--model", archive, "--format", "jsonl")
    assert rc == 0, err
    rec = json.loads(out)
    assert rec["model"].startswith("tiny_random_model@") and rec["check"]["expected"] == "0.500"


@pytest.mark.parametrize("member, words", [("../evil.txt", "unsafe path"), ("/abs/evil.txt", "unsafe path"), ("link", "holds a link")])
def test_hostile_model_archives_are_refused(capsys, tmp_path, member, words):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo(member)
        if member == "link":
            info.external_attr = 0o120777 << 16
        zf.writestr(info, "x")
        zf.writestr("m/config.json", "{}")
    rc, out, err = main(capsys, "ask", "ACGTACGT, core promoter =", "--model", archive)
    one_line_error(rc, err, words)
    assert not (tmp_path.parent / "evil.txt").exists()


# ---- kills and concurrency ---------------------------------------------------------------------
def test_sigterm_mid_run_leaves_nothing(random_model, tmp_path):
    big = tmp_path / "big.fa"
    with open(big, "w") as fh:
        for i in range(20000):
            fh.write(f">r{i}\nACGTACGTTAGCATCGATCGGGCTA\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    p = subprocess.Popen(
        EXE
        + [
            "predict",
            "--task",
            "promoter",
            "--fasta",
            str(big),
            "--model",
            str(random_model),
            "--output",
            str(out_dir / "out.tsv"),
            "--format",
            "tsv",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not any(out_dir.iterdir()):
        time.sleep(0.05)
    assert any(out_dir.iterdir()), "the run never opened its temporary output"
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and "terminated" in err
    assert list(out_dir.iterdir()) == []


def test_eight_concurrent_runs_give_identical_outputs(random_model, tmp_path):
    fa = tmp_path / "in.fa"
    fa.write_text("".join(f">r{i}\n{'ACGT' * (5 + i % 7)}TTG\n" for i in range(60)))
    procs = [
        subprocess.Popen(
            EXE
            + [
                "predict",
                "--task",
                "splice_site",
                "--fasta",
                str(fa),
                "--model",
                str(random_model),
                "--output",
                str(tmp_path / f"out{k}.tsv"),
                "--format",
                "tsv",
            ],
            stderr=subprocess.PIPE,
        )
        for k in range(8)
    ]
    for p in procs:
        p.wait(timeout=300)
        assert p.returncode == 0, p.stderr.read()
    outputs = {(tmp_path / f"out{k}.tsv").read_bytes() for k in range(8)}
    assert len(outputs) == 1 and len(next(iter(outputs)).splitlines()) == 61
