"""Real ONNX Runtime sessions against the PyTorch reference, on the random tiny model (fast layer)."""

import json

import pytest

from genomicllm_export import export_model
from genomicllm_export.onnx_export import PARITY_PROMPTS
from genomicllm_kernel import api
from genomicllm_kernel.registry import TASKS


@pytest.fixture(scope="session")
def exported(random_model):
    """The random tiny model, which the fixture exports with export_model (fp32 + int8)."""
    assert (random_model / "onnx" / "model_int8.onnx").exists()
    return random_model


def test_export_passes_checker_and_parity(exported):
    report = json.loads((exported / "onnx" / "export_report.json").read_text())
    fp32 = report["fp32"]
    assert fp32["n"] == len(PARITY_PROMPTS) and fp32["identical_answers"] == fp32["n"]
    assert fp32["max_probability_diff"] < 1e-4
    assert "int8" in report and (exported / "onnx" / "model_int8.onnx").exists()
    assert {t for t in TASKS} == {api.parse_prompt(p).task.id for p in PARITY_PROMPTS}


def test_auto_backend_is_onnx_and_matches_torch_in_batches(exported):
    prompts = PARITY_PROMPTS * 2
    onnx = api.ask(prompts, model=exported, backend="auto", batch_size=7)
    torch = api.ask(prompts, model=exported, backend="torch", batch_size=7)
    assert onnx[0].runtime.startswith("onnxruntime-") and torch[0].runtime == "torch-cpu"
    for a, b in zip(onnx, torch):
        assert a.answer == b.answer
        if a.labels:
            assert max(abs(a.labels[k] - b.labels[k]) for k in a.labels) < 1e-4
    # padding in a batch must not change answers: compare with one-by-one
    single = [api.ask(p, model=exported, backend="onnx") for p in PARITY_PROMPTS]
    for a, b in zip(onnx, single):
        assert a.answer == b.answer and abs(a.probability - b.probability) < 1e-4


def test_int8_backend_answers(exported):
    a = api.ask(PARITY_PROMPTS[0], model=exported, backend="onnx-int8")
    assert a.runtime.endswith("-int8") and a.answer in TASKS["splice_site"].labels


def test_missing_export_is_a_clear_error(random_model, tmp_path):
    import shutil

    copy = tmp_path / "m"
    shutil.copytree(random_model, copy, ignore=shutil.ignore_patterns("onnx"))
    with pytest.raises(api.ModelUnavailableError, match="genomicllm export"):
        api.ask(PARITY_PROMPTS[0], model=copy, backend="onnx")


def test_qwen3_architecture_trains_exports_and_matches_torch(small_corpus, tmp_path):
    """The q/k-norm architecture (model.py says why) goes through the same train -> Optimum export ->
    parity path; config.json names the class, so every loader picks it up without a setting."""
    from pathlib import Path

    from genomicllm_kernel.training import TrainConfig, train

    cfg = TrainConfig.load(Path(__file__).resolve().parent.parent / "configs" / "tiny.toml")
    cfg.data, cfg.out, cfg.architecture, cfg.max_steps = str(small_corpus), str(tmp_path / "q"), "qwen3", 2
    ckpt = train(cfg, progress=False)
    assert json.loads((ckpt / "config.json").read_text())["architectures"] == ["Qwen3ForCausalLM"]
    export_model(ckpt, progress=lambda m: None)  # raises if ONNX Runtime and PyTorch disagree
    fp32 = json.loads((ckpt / "onnx" / "export_report.json").read_text())["fp32"]
    assert fp32["identical_answers"] == fp32["n"] == len(PARITY_PROMPTS) and fp32["max_probability_diff"] < 1e-4
    assert api.ask(PARITY_PROMPTS[:3], model=ckpt, backend="onnx")[0].runtime.startswith("onnxruntime-")
