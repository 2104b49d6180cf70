"""The same-rows k-mer baseline (scripts/kmer_baseline.py) and how its verdicts reach users."""

import json
import subprocess
import sys
from pathlib import Path

from genomicllm_kernel.baselines import format_figure, load_same_rows_baseline, question_figures

ROOT = Path(__file__).resolve().parents[1]


def test_question_figures_compare_with_the_same_rows_baseline():
    evaluation = {"groups": {"tf_binding | GUE:tf_0": {"n": 300, "mcc": 0.43}, "tf_binding | annotation": {"n": 192, "mcc": 0.40}}}
    same = {"tf_binding | GUE:tf_0": {"mcc": 0.47}, "tf_binding | annotation": {"mcc": 0.35}}
    rows = {r["group"]: r for r in question_figures("tf_binding", evaluation, same)}
    assert rows["GUE:tf_0"]["same_rows_verdict"] == "NOT above" and rows["GUE:tf_0"]["verdict"] == "NOT above"  # README 0.553
    assert rows["annotation"]["same_rows_verdict"] == "above" and rows["annotation"]["baseline"] is None
    text = format_figure(rows["GUE:tf_0"])
    assert "on the same rows 0.470: NOT above" in text and "whole dev split, leaked rows included (data README) 0.553: NOT above" in text
    # the question as the dev rows ask it: a TF set's figure is for its item, not the pooled question
    assert text.startswith("GUE:tf_0 (transcription factor = GUE tf_0, transcription factor binding site =): mcc 0.430")
    promoter = question_figures("promoter", {"groups": {"promoter | GUE:prom_core_all": {"n": 300, "mcc": 0.57}}})
    assert format_figure(promoter[0]).startswith("GUE:prom_core_all (benchmark = GUE, core promoter =): mcc 0.570")
    # without a baseline file the figures are the model's alone
    assert question_figures("tf_binding", evaluation)[0]["same_rows_baseline"] is None


def test_kmer_baseline_scores_exactly_the_evaluated_rows(small_corpus, tmp_path):
    """The baseline's n per group is the evaluator's sample for that group (same rows), its C comes
    from the cross-validation grid (training rows only), and the file is read back per split."""
    from genomicllm_kernel.evaluation import _sample

    out = tmp_path / "baseline_kmer_lr.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "kmer_baseline.py"), "--data", str(small_corpus), "--out", str(out), "--limit", "40"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    groups, _ = _sample(small_corpus, "dev", None, 40)
    dev = result["groups"]["dev"]
    assert dev, "no classification group was scored"
    for key, m in dev.items():
        task, group = key.split(" | ", 1)
        assert m["n"] == len(groups[(task, group)]) and m["C"] in result["cs"] and -1 <= m["mcc"] <= 1
    assert load_same_rows_baseline(tmp_path) == dev == load_same_rows_baseline(tmp_path, "dev", {"limit_per_group": 40})
    assert load_same_rows_baseline(tmp_path, "dev", {"limit_per_group": 300}) == {}  # another sample: not the same rows
    assert result["limit_per_label_group"] == 40
    # the classification cap decides (the baseline scores classification groups only)
    assert load_same_rows_baseline(tmp_path, "dev", {"limit_per_group": 300, "limit_per_label_group": 40}) == dev
    assert load_same_rows_baseline(tmp_path, "dev", {"limit_per_group": 40, "limit_per_label_group": 60}) == {}
