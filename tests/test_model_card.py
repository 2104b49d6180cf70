"""The model card counts every training stage: a run continued with ``init_from`` includes the run
it started from (compute, loss curve, dev metrics along training) and names each stage's hardware."""

import json

from genomicllm_kernel.model_card import write_card


BASE = {
    "hidden": 8,
    "layers": 1,
    "heads": 1,
    "ffn": 16,
    "context": 64,
    "batch_size": 4,
    "lr": 1e-3,
    "max_steps": 100,
    "log_every": 10,
    "weight_decay": 0.1,
}


def _run(folder, cfg, steps, tokens, minutes, summary=None, curve=None):
    (folder / "checkpoint").mkdir(parents=True)
    (folder / "checkpoint" / "train_config.json").write_text(json.dumps(cfg))
    log = [
        {
            "step": s,
            "loss": 2.0 / s,
            "tokens_seen": tokens * s // steps,
            "tokens_per_s": 1000.0,
            "minutes": minutes * s / steps,
            "max_len": 160,
            "world": 1,
            "bf16": True,
        }
        for s in range(10, steps + 1, 10)
    ]
    (folder / "train_log.jsonl").write_text("\n".join(json.dumps(r) for r in log) + "\n")
    if summary:
        (folder / "checkpoint" / "run_summary.json").write_text(json.dumps(summary))
    if curve:
        (folder / "snapshot_curve.json").write_text(json.dumps(curve))


def test_card_joins_continued_training_stages(tmp_path):
    a, b, model = tmp_path / "a", tmp_path / "b", tmp_path / "model"
    _run(
        a,
        {**BASE, "out": str(a)},
        100,
        5_000_000,
        5.0,
        summary={"step": 100, "tokens_seen": 5_000_000, "elapsed": 300.0, "device": "NVIDIA H200"},
        curve={"limit": 60, "points": [{"step": 50, "tokens_seen": 2_500_000, "metrics": {"orf mcc": 0.4}}]},
    )
    _run(
        b,
        {**BASE, "out": str(b), "init_from": str(a / "checkpoint"), "max_steps": 40},
        40,
        2_000_000,
        2.0,
        summary={"step": 40, "tokens_seen": 2_000_000, "elapsed": 120.0, "device": "NVIDIA H200"},
        curve={"limit": 60, "points": [{"step": 40, "tokens_seen": 2_000_000, "metrics": {"orf mcc": 0.7}}]},
    )
    model.mkdir()
    (model / "train_config.json").write_text((b / "checkpoint" / "train_config.json").read_text())
    card = write_card(model, b, tmp_path / "no-data").read_text()
    assert "- Stage 1 (" in card and "- Stage 2 (" in card and "from the previous stage's weights" in card
    assert "one NVIDIA H200 GPU with bf16 autocast" in card
    assert "- In all: 140 steps, 7.0 M tokens, 7.0 minutes of training." in card
    assert "| orf mcc | 0.400 | 0.700 |" in card
    assert "step 140 (7.0M tok)" in card  # stage 2's snapshot on the joined axis
    assert (model / "learning_curve.svg").exists()


def test_card_keeps_stages_whose_run_folders_are_gone(tmp_path):
    """The model folder records its stages (training_history.json), so a later stage's card still
    shows the earlier ones after their run folders (never committed) are gone."""
    import shutil

    import pytest

    from genomicllm_kernel.errors import InputError

    a, b, c, model = tmp_path / "a", tmp_path / "b", tmp_path / "c", tmp_path / "model"
    _run(
        a,
        {**BASE, "out": str(a)},
        100,
        5_000_000,
        5.0,
        curve={"limit": 60, "points": [{"step": 50, "tokens_seen": 2_500_000, "metrics": {"orf mcc": 0.4}}]},
    )
    model.mkdir()
    write_card(model, a, tmp_path / "no-data")
    assert json.loads((model / "training_history.json").read_text())["stages"][0]["state"]["step"] == 100
    shutil.rmtree(a)
    _run(
        c,
        {**BASE, "out": str(c), "init_from": str(a / "checkpoint"), "max_steps": 40},
        40,
        2_000_000,
        2.0,
        curve={"limit": 60, "points": [{"step": 40, "tokens_seen": 2_000_000, "metrics": {"orf mcc": 0.7}}]},
    )
    card = write_card(model, c, tmp_path / "no-data").read_text()
    assert "- Stage 1 (" in card and "- In all: 140 steps, 7.0 M tokens, 7.0 minutes of training." in card
    assert "| orf mcc | 0.400 | 0.700 |" in card
    (model / "training_history.json").unlink()
    _run(b, {**BASE, "out": str(b), "init_from": str(tmp_path / "lost" / "checkpoint")}, 10, 10_000, 1.0)
    with pytest.raises(InputError, match="lost/train_log.jsonl not found and no earlier card recorded"):
        write_card(model, b, tmp_path / "no-data")


def _curve(series: dict[str, list[float]], steps: list[int] | None = None) -> dict:
    n = len(next(iter(series.values())))
    steps = steps or [100 * (i + 1) for i in range(n)]
    return {
        "limit": 100,
        "points": [{"step": s, "tokens_seen": 1000 * s, "metrics": {k: v[i] for k, v in series.items()}} for i, s in enumerate(steps)],
    }


def test_curve_trend_tells_a_rising_miss_from_a_plateau():
    from genomicllm_kernel.model_card import curve_trend

    curve = _curve(
        {
            "reading_comprehension exact_match": [0.5, 0.6, 0.62, 0.7, 0.8, 0.85, 0.9, 0.97],
            "GUE:tf_0 mcc": [0.40, 0.35, 0.45, 0.38, 0.44, 0.36, 0.41, 0.39],
            "gc_content mae": [0.05, 0.04, 0.03, 0.03, 0.02, 0.01, 0.008, 0.005],
            "orf mcc": [0.7] * 8,
        }
    )
    assert curve_trend(curve, "reading_comprehension exact_match").startswith("improving (Spearman +1.00, p < 0.001; 8 snapshots")
    assert curve_trend(curve, "GUE:tf_0 mcc").startswith("no trend")
    assert curve_trend(curve, "gc_content mae").startswith("improving (Spearman -")  # a falling error improves
    assert curve_trend(curve, "orf mcc").startswith("constant")
    assert curve_trend(curve, "reading_comprehension exact_match", last=5).endswith("5 snapshots, 0 M tokens)")
    assert curve_trend(curve, "reading_comprehension exact_match", last=4) == ""  # too few points to judge
    assert curve_trend(curve, "not in the curve") == "" and curve_trend(None, "orf mcc") == ""


def test_curve_drops_a_snapshot_taken_just_before_the_checkpoint():
    from genomicllm_kernel.model_card import distinct_points

    pts = _curve({"orf mcc": [0.1, 0.2, 0.3, 0.3]}, steps=[870, 1740, 5220, 5224])["points"]
    assert [p["step"] for p in distinct_points(pts)] == [870, 1740, 5224]


def test_headline_metrics_name_the_annotation_part_of_a_mixed_task():
    from genomicllm_kernel.model_card import headline_metrics

    res = {
        "tasks": {"promoter": {"mcc": 0.4}, "orf": {"mcc": 0.7}},
        "groups": {"promoter | annotation": {"mcc": 0.2}, "promoter | GUE:prom_core_all": {"mcc": 0.5}, "orf | annotation": {"mcc": 0.7}},
    }
    assert headline_metrics(res) == {"promoter mcc": 0.4, "orf mcc": 0.7, "promoter (annotation) mcc": 0.2, "GUE:prom_core_all mcc": 0.5}


def test_card_reads_the_shape_from_the_weights_and_the_sampling_from_the_task_weights(tmp_path):
    """A head refit's train config need not repeat the model's shape (the card once printed the
    defaults, 4 layers, for a 6-layer model), and a stage that freezes part of the model but samples
    every task is not one that sampled classification only."""
    a, b, model = tmp_path / "a", tmp_path / "b", tmp_path / "model"
    _run(a, {**BASE, "out": str(a), "trainable": ["model."]}, 20, 100_000, 1.0)
    frozen = {"trainable": ["composition"], "task_weights": {"gc_content": 0.0, "nt2aa": 0.0, "reverse_complement": 0.0}}
    frozen["task_weights"].update(gene_description=0.0, reading_comprehension=0.0)
    _run(b, {**BASE, "out": str(b), "init_from": str(a / "checkpoint"), **frozen}, 20, 100_000, 1.0)
    model.mkdir()
    (model / "train_config.json").write_text((b / "checkpoint" / "train_config.json").read_text())
    (model / "config.json").write_text(
        json.dumps({"hidden_size": 32, "num_hidden_layers": 6, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 128})
    )
    card = write_card(model, b, tmp_path / "no-data").read_text()
    assert "- Shape: hidden 32, 6 layers, 2 heads, FFN 64, context 128 tokens" in card
    stage1 = next(line for line in card.splitlines() if line.startswith("- Stage 1 ("))
    stage2 = next(line for line in card.splitlines() if line.startswith("- Stage 2 ("))
    assert "bit for bit." in stage1 and "only classification" not in stage1
    assert "only classification questions were sampled" in stage2


def test_card_says_how_many_rows_each_question_read():
    from genomicllm_kernel.model_card import _rows_sentence

    assert _rows_sentence({}) == ""
    plain = _rows_sentence({"head_fit_examples": 12000})
    assert plain == "Each question read at most 12,000 of its training examples (a seeded draw). "
    both = _rows_sentence({"head_fit_examples": 12000, "head_fit_examples_by_block": {"a | GUE tf_0": 100000, "b": 100000}})
    assert "at most 100,000 (all it has, where fewer) for `a | GUE tf_0`, `b`" in both
    mixed = _rows_sentence({"head_fit_examples": 12000, "head_fit_examples_by_block": {"a": 500, "b": 900}})
    assert "`a` at most 500, `b` at most 900" in mixed


def test_a_partial_refit_says_which_questions_it_fitted_and_where_the_rest_came_from():
    from genomicllm_kernel.model_card import _kept_sentence

    blocks = {"a": {"rows": 10}, "b | GUE": {"rows": 5}, "c": {"rows": 7, "kept_from": "runs/x/checkpoint"}, "d": {"kept_from": "runs/x/checkpoint"}}
    cfg = {"head_fit_blocks": ["a", "b | GUE"], "head_fit_keep": "runs/x/checkpoint"}
    text = _kept_sentence(cfg, blocks)
    assert text.startswith("Only `a`, `b | GUE` were fitted") and "the other 2 questions' heads" in text and "`runs/x/checkpoint`" in text
    assert _kept_sentence({"head_fit_blocks": []}, blocks) == ""


def test_a_partial_refit_continues_the_run_it_kept_blocks_from(tmp_path):
    """run_stages follows head_fit_keep before init_from: a stage-16-like refit (init_from the
    language model's run, head_fit_keep a stage-15-like run) lists the kept run between them."""
    import json

    from genomicllm_kernel.model_card import run_stages

    def run(name, **cfg):
        folder = tmp_path / name
        (folder / "checkpoint").mkdir(parents=True)
        (folder / "checkpoint" / "train_config.json").write_text(json.dumps(dict(out=str(folder), **cfg)))
        (folder / "train_log.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0, "tokens_seen": 10, "minutes": 1.0}) + "\n")
        return folder

    lm = run("lm")
    full = run("full", init_from=str(lm / "checkpoint"))
    part = run("part", init_from=str(lm / "checkpoint"), head_fit_keep=str(full / "checkpoint"))
    assert [st["out"] for st in run_stages(part)] == [str(lm), str(full), str(part)]
    assert [st["out"] for st in run_stages(full)] == [str(lm), str(full)]
