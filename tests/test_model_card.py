"""The model card counts every training stage: a run continued with ``init_from`` includes the run
it started from (compute, loss curve, dev metrics along training) and names each stage's hardware."""
import json

from genomicllm_kernel.model_card import write_card


BASE = {"hidden": 8, "layers": 1, "heads": 1, "ffn": 16, "context": 64, "batch_size": 4, "lr": 1e-3,
        "max_steps": 100, "log_every": 10, "weight_decay": 0.1}


def _run(folder, cfg, steps, tokens, minutes, summary=None, curve=None):
    (folder / "checkpoint").mkdir(parents=True)
    (folder / "checkpoint" / "train_config.json").write_text(json.dumps(cfg))
    log = [{"step": s, "loss": 2.0 / s, "tokens_seen": tokens * s // steps, "tokens_per_s": 1000.0,
            "minutes": minutes * s / steps, "max_len": 160, "world": 1, "bf16": True} for s in range(10, steps + 1, 10)]
    (folder / "train_log.jsonl").write_text("\n".join(json.dumps(r) for r in log) + "\n")
    if summary:
        (folder / "checkpoint" / "run_summary.json").write_text(json.dumps(summary))
    if curve:
        (folder / "snapshot_curve.json").write_text(json.dumps(curve))


def test_card_joins_continued_training_stages(tmp_path):
    a, b, model = tmp_path / "a", tmp_path / "b", tmp_path / "model"
    _run(a, {**BASE, "out": str(a)}, 100, 5_000_000, 5.0,
         summary={"step": 100, "tokens_seen": 5_000_000, "elapsed": 300.0, "device": "NVIDIA H200"},
         curve={"limit": 60, "points": [{"step": 50, "tokens_seen": 2_500_000, "metrics": {"orf mcc": 0.4}}]})
    _run(b, {**BASE, "out": str(b), "init_from": str(a / "checkpoint"), "max_steps": 40}, 40, 2_000_000, 2.0,
         summary={"step": 40, "tokens_seen": 2_000_000, "elapsed": 120.0, "device": "NVIDIA H200"},
         curve={"limit": 60, "points": [{"step": 40, "tokens_seen": 2_000_000, "metrics": {"orf mcc": 0.7}}]})
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
    _run(a, {**BASE, "out": str(a)}, 100, 5_000_000, 5.0,
         curve={"limit": 60, "points": [{"step": 50, "tokens_seen": 2_500_000, "metrics": {"orf mcc": 0.4}}]})
    model.mkdir()
    write_card(model, a, tmp_path / "no-data")
    assert json.loads((model / "training_history.json").read_text())["stages"][0]["state"]["step"] == 100
    shutil.rmtree(a)
    _run(c, {**BASE, "out": str(c), "init_from": str(a / "checkpoint"), "max_steps": 40}, 40, 2_000_000, 2.0,
         curve={"limit": 60, "points": [{"step": 40, "tokens_seen": 2_000_000, "metrics": {"orf mcc": 0.7}}]})
    card = write_card(model, c, tmp_path / "no-data").read_text()
    assert "- Stage 1 (" in card and "- In all: 140 steps, 7.0 M tokens, 7.0 minutes of training." in card
    assert "| orf mcc | 0.400 | 0.700 |" in card
    (model / "training_history.json").unlink()
    _run(b, {**BASE, "out": str(b), "init_from": str(tmp_path / "lost" / "checkpoint")}, 10, 10_000, 1.0)
    with pytest.raises(InputError, match="lost/train_log.jsonl not found and no earlier card recorded"):
        write_card(model, b, tmp_path / "no-data")
