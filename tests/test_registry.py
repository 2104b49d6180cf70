import re
from pathlib import Path

import pytest

from genomicllm_kernel import registry
from genomicllm_kernel.errors import UnknownQuestionError

TASKS_MD = Path(__file__).resolve().parents[2] / "shared" / "TASKS.md"


def test_fourteen_tasks_with_complete_entries():
    assert len(registry.TASKS) == 14
    for task in registry.TASKS.values():
        assert task.question_keys and task.metrics and task.help
        if task.answer_kind == registry.LABEL:
            assert len(task.labels) >= 2
        else:
            assert not task.labels


@pytest.mark.skipif(not TASKS_MD.exists(), reason="../shared/TASKS.md not beside the checkout")
def test_registry_matches_the_contract():
    table = [line for line in TASKS_MD.read_text().splitlines() if line.startswith("| ") and "`" in line]
    assert len(table) == 14
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        task = registry.get_task(cells[0])
        keys = [k for k in re.findall(r"`([^`]+)`", cells[1]) if "=" not in k]  # skip optional items
        assert keys
        for key in keys:
            assert registry.task_for_question(key.replace("<name>", "symbol")).id == task.id
        item = re.search(r"item `([^`=]+?) =", cells[1])
        if item:
            assert item.group(1) in [i.name for i in task.items]
        for label in re.findall(r"`([^`]+)`", cells[2]):
            if task.labels:
                assert label in task.labels


def test_every_key_resolves_case_insensitively():
    for key in registry.all_question_keys():
        probe = key + " x" if key.endswith(":") else key
        assert registry.task_for_question(probe.upper()).question_keys


def test_unknown_key_suggests_the_registry_spelling():
    with pytest.raises(UnknownQuestionError, match="did you mean 'GC content'"):
        registry.canonical_question("GC contnt")


def test_promoter_variants_are_all_there():
    keys = set(registry.TASKS["promoter"].question_keys)
    for size in ("core", "proximal"):
        for variant in ("", "tata ", "notata "):
            assert f"{size} {variant}promoter" in keys
