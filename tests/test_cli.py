"""The real console script, as a pipeline author runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXE = (
    [str(Path(sys.executable).with_name("genomicllm"))]
    if Path(sys.executable).with_name("genomicllm").exists()
    else [sys.executable, "-m", "genomicllm_kernel.cli"]
)
NO_MODEL = {**os.environ, "GENOMICLLM_MODEL": "/nonexistent-model"}


def run(*args, env=None, stdin=None):
    return subprocess.run(EXE + list(args), capture_output=True, text=True, env=env or os.environ, input=stdin, timeout=300)


def test_exact_answer_without_a_model():
    r = run("ask", "ACGTTGCA, GC content =", "--format", "jsonl", env=NO_MODEL)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["check"]["expected"] == "0.500" and rec["answer"] is None and "no trained model" in rec["note"]


@pytest.mark.parametrize(
    "prompt, words",
    [
        ("ACGT, GC contnt =", "unknown question key 'GC contnt'"),
        ("ACXGT, GC content =", "character 'X' at position 3"),
        ("ACGT GC content", "must end with"),
    ],
)
def test_bad_prompt_is_one_line_and_exit_2(prompt, words):
    r = run("ask", prompt)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and words in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_model_question_without_model_is_refused_clearly():
    r = run("ask", "ACGT, core promoter =", env=NO_MODEL)
    assert r.returncode == 2 and "no trained GenomicLLM model" in r.stderr


def test_ask_and_predict_with_a_model(random_model, tmp_path):
    r = run("ask", "ACGTTGCAAT, splice site =", "--model", str(random_model), "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    for key in ("index", "task", "answer", "probability", "labels", "check", "model"):
        assert key in rec
    assert rec["answer"] in rec["labels"] and abs(sum(rec["labels"].values()) - 1) < 1e-6

    batch = tmp_path / "prompts.txt"
    batch.write_text("ACGTTGCA, GC content =\n# comment\nATGGCCTAA, protein sequence =\n")
    r = run("ask", "--batch", str(batch), "--model", str(random_model), "--format", "tsv")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().split("\n")
    assert lines[0].startswith("index\tid\tstart\tend\ttask") and len(lines) == 3

    fa = tmp_path / "in.fa"
    fa.write_text(">a\nACGTACGTAC\n>b\nTTGACA\n")
    out = tmp_path / "out.tsv"
    r = run("predict", "--task", "promoter", "--fasta", str(fa), "--model", str(random_model), "--format", "tsv", "--output", str(out))
    assert r.returncode == 0, r.stderr
    rows = out.read_text().strip().split("\n")
    assert rows[0].split("\t")[:8] == ["index", "id", "start", "end", "task", "question", "answer", "probability"]
    assert [row.split("\t")[1] for row in rows[1:]] == ["a", "b"]

    r = run("ask", "--model", str(random_model), stdin="ACGT, GC content =\n")
    assert r.returncode == 0 and "gc_content" in r.stdout


def test_bad_fasta_leaves_nothing_written(random_model, tmp_path):
    fa = tmp_path / "bad.fa"
    fa.write_text(">a\nACGT\n>b\nAC-GT\n")
    out = tmp_path / "out.tsv"
    r = run("predict", "--task", "promoter", "--fasta", str(fa), "--model", str(random_model), "--output", str(out))
    assert r.returncode == 2 and "line 4, column 3" in r.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [fa]


def test_unknown_task_and_item_errors(random_model, tmp_path):
    fa = tmp_path / "a.fa"
    fa.write_text(">a\nACGT\n")
    r = run("predict", "--task", "promotor", "--fasta", str(fa), "--model", str(random_model))
    assert r.returncode == 2 and "did you mean promoter" in r.stderr
    r = run("predict", "--task", "tf_binding", "--fasta", str(fa), "--item", "transcription factor", "--model", str(random_model))
    assert r.returncode == 2 and "--item expects name=value" in r.stderr


def test_tasks_lists_the_registry():
    from genomicllm_kernel.registry import TASKS

    r = run("tasks")
    lines = r.stdout.strip().split("\n")
    assert r.returncode == 0 and [line.split()[0] for line in lines if line[:1].isalpha()] == list(TASKS)
    # the shipped model's dev figure per question, with the k-mer baseline beside the GUE ones
    per_question = [line.strip() for line in lines if line.startswith(" ") and "dev " in line]
    assert any(
        line.startswith("dev GUE:tf_0 (transcription factor = GUE tf_0, transcription factor binding site =)")
        and "k-mer + logistic regression on the same rows" in line
        and "whole dev split, leaked rows included (data README) 0.553" in line
        for line in per_question
    )
    # the same-rows baseline reaches questions the README has no figure for
    assert any(line.startswith("dev annotation:") and "on the same rows" in line for line in per_question)


def test_tasks_without_an_evaluation_lists_only_the_registry(random_model):
    r = run("tasks", "--model", str(random_model))
    assert r.returncode == 0 and len(r.stdout.strip().split("\n")) == 14


def test_card_finds_the_run_from_the_model_folder(tmp_path):
    """Without --run, card reads the run folder from the model's train_config.json; a folder that
    does not name one is a one-line error, not a traceback."""
    model = tmp_path / "model"
    model.mkdir()
    r = run("card", "--model", str(model), "--data", str(tmp_path))
    assert r.returncode != 0 and "pass --run" in r.stderr and "Traceback" not in r.stderr
    (model / "train_config.json").write_text(json.dumps({"out": str(tmp_path / "gone")}))
    r = run("card", "--model", str(model), "--data", str(tmp_path))
    assert r.returncode != 0 and "gone" in r.stderr and "Traceback" not in r.stderr
