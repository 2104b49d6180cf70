"""The real data command on its --small setting: every task present, honest splits, determinism."""
import json
from collections import Counter

from genomicllm_kernel.data.build import TEST_SLICES, build
from genomicllm_kernel.grammar import parse_prompt
from genomicllm_kernel.registry import TASKS

from .conftest import data_cache


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_task_in_train_and_test(small_corpus):
    train = Counter(r["task"] for r in _rows(small_corpus / "train.jsonl"))
    test = Counter(r["task"] for r in _rows(small_corpus / "test.jsonl"))
    for task in TASKS:
        assert train[task] > 0, task
        assert test[task] > 0, task
    card = (small_corpus / "DATA_CARD.md").read_text()
    assert "derived" in card and "sha256" in card


def test_every_example_parses_and_answers_in_format(small_corpus):
    for split in ("train", "dev", "test"):
        for r in _rows(small_corpus / f"{split}.jsonl"):
            p = parse_prompt(r["prompt"])
            assert p.task.id == r["task"]
            if p.task.labels:
                assert r["answer"] in p.task.labels
            if p.task.checker:
                assert p.task.checker(p.sequence, p.question, p.annotations) == r["answer"]


def test_no_test_region_base_in_train_or_dev(small_corpus):
    test_spans = [(c, s, s + 2_000_001) for c, s in TEST_SLICES.items()]
    for split in ("train", "dev"):
        for r in _rows(small_corpus / f"{split}.jsonl"):
            assert "alpha-globin" not in r["region"] and "hg38" not in r["source"]
            if r["region"].startswith("GUE"):
                continue
            chrom, span = r["region"].rsplit(":", 1)
            s, e = map(int, span.split("-"))
            for c, ts, te in test_spans:
                assert not (chrom == c and s < te and e > ts), r["region"]


def test_same_seed_same_bytes(tmp_path, small_corpus):
    again = build(tmp_path / "again", small=True, seed=0, cache=data_cache(), progress=lambda m: None)
    for name in ("train.jsonl", "dev.jsonl", "test.jsonl", "DATA_CARD.md"):
        assert (again / name).read_bytes() == (small_corpus / name).read_bytes(), name
    assert not (tmp_path / "again.partial").exists()


def test_user_genome_and_annotation(tmp_path):
    """--fasta/--gtf: the hg38 globin slice and its GTF, as a user with their own genome would pass them."""
    from genomicllm_kernel.data.sources import fetch_all

    paths = fetch_all(data_cache(), ["augustus"])["augustus"]
    out = build(tmp_path / "user", small=True, seed=1, cache=data_cache(), fasta=paths["hg38"], gtf=paths["hg38_gtf"],
                progress=lambda m: None)
    rows = _rows(out / "train.jsonl") + _rows(out / "dev.jsonl")
    user = [r for r in rows if "user genome" in r["source"]]
    assert {r["task"] for r in user} >= {"splice_site", "promoter", "orf", "nt2aa"}


def test_gue_dev_leaks_are_flagged(small_corpus):
    dev = _rows(small_corpus / "dev.jsonl")
    assert any(r["source"].startswith("GUE:") for r in dev)
    assert all(isinstance(r["leak"], bool) for r in dev)
