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


def _graph_feeds(cfg, session):
    """Random inputs for an exported graph: a prompt pass with left padding, a decoding step and a
    pass that continues a cache (ISM)."""
    import numpy as np

    inputs = {i.name: i for i in session.get_inputs()}
    heads, dim = cfg.get("num_key_value_heads", cfg["num_attention_heads"]), cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    rng = np.random.default_rng(0)
    for b, t, past in [(3, 40, 0), (2, 1, 17), (4, 9, 25)]:
        feed = {"input_ids": rng.integers(6, 60, (b, t)), "attention_mask": np.ones((b, past + t), np.int64)}
        feed["attention_mask"][0, :2] = 0
        feed["position_ids"] = np.tile(np.arange(past, past + t), (b, 1))
        if "dna_features" in inputs:
            feed["dna_features"] = rng.random((b, inputs["dna_features"].shape[1]), dtype=np.float32)
        for i in range(cfg["num_hidden_layers"]):
            for kv in ("key", "value"):
                feed[f"past_key_values.{i}.{kv}"] = rng.standard_normal((b, heads, past, dim), dtype=np.float32)
        yield {k: v.astype(np.int64) if v.dtype.kind == "i" else v for k, v in feed.items()}


def test_last_layer_cut_keeps_every_output_bit_identical(exported, tmp_path):
    """The int8 graph runs the last layer's MLP on the last position only (last_layer_on_last_position):
    applied to the fp32 graph, logits and every present key/value (which come from the layer's
    input) are exactly those of the full graph, on a prompt pass, a decoding step and a pass that
    continues a cache (ISM), with left padding."""
    import shutil

    import numpy as np
    import onnx
    import onnxruntime as ort

    from genomicllm_export.onnx_export import LAST_LAYER_CUT, last_layer_on_last_position

    cfg = json.loads((exported / "onnx" / "config.json").read_text())
    shutil.copy(exported / "onnx" / "model.onnx", tmp_path / "cut.onnx")
    assert last_layer_on_last_position(tmp_path / "cut.onnx", cfg["num_hidden_layers"])
    int8 = onnx.load(str(exported / "onnx" / "model_int8.onnx"))
    assert sum(n.name.startswith(LAST_LAYER_CUT) for n in int8.graph.node) == 2
    cut, full = (ort.InferenceSession(str(p)) for p in (tmp_path / "cut.onnx", exported / "onnx" / "model.onnx"))
    for feed in _graph_feeds(cfg, cut):
        for x, y in zip(cut.run(None, feed), full.run(None, feed)):
            assert x.shape == y.shape and np.array_equal(x, y)


def test_int8_on_cpu_answers_in_cache_sized_passes_with_the_same_answers(exported):
    """int8 on CPU runs single-pass answers in passes of at most tokens_per_pass tokens (faster:
    bench/ANALYSIS.md); with the same budget on fp32 the answers equal one big batch's."""
    from genomicllm_kernel.engine import GenomicLLM
    from genomicllm_kernel.ort_backend import INT8_CPU_TOKENS_PER_PASS

    int8 = GenomicLLM.from_pretrained(exported, backend="onnx-int8").decoder
    assert int8.tokens_per_pass == (INT8_CPU_TOKENS_PER_PASS if int8.provider == "CPUExecutionProvider" else None)
    llm = GenomicLLM.from_pretrained(exported, backend="onnx")
    assert llm.decoder.tokens_per_pass is None
    prompts = [p for p in PARITY_PROMPTS if api.parse_prompt(p).task.labels] * 3
    whole = llm.ask(prompts, batch_size=64)
    runs = []
    start = type(llm.decoder).start
    llm.decoder.tokens_per_pass = 40
    llm.decoder.start = lambda ids, *rest: runs.append(ids.shape) or start(llm.decoder, ids, *rest)
    split = llm.ask(prompts, batch_size=64)
    assert runs and all(b == 1 or b * t <= 40 for b, t in runs)  # one prompt alone may exceed the budget
    assert any(b > 1 for b, _ in runs)
    assert len(runs) > len({api.parse_prompt(p).task.id for p in prompts})
    for a, b in zip(whole, split):
        assert a.answer == b.answer and max(abs(a.labels[k] - b.labels[k]) for k in a.labels) < 1e-5


def test_fused_attention_answers_as_the_graph_it_replaces(exported, tmp_path):
    """fuse_attention (the int8 graph's attention as ONNX Runtime's MultiHeadAttention), applied to
    the fp32 graph with the last layer cut: logits and every present key/value (padded positions
    included) equal the decomposed graph's to float rounding, on a prompt pass with left padding,
    a decoding step and a pass that continues a cache (ISM); the int8 file carries one fused node
    per layer; a graph whose attention is not the known pattern is left byte-for-byte alone."""
    import shutil

    import numpy as np
    import onnx
    import onnxruntime as ort

    from genomicllm_export.onnx_export import FUSED_ATTENTION, fuse_attention, last_layer_on_last_position

    cfg = json.loads((exported / "onnx" / "config.json").read_text())
    layers = cfg["num_hidden_layers"]
    shutil.copy(exported / "onnx" / "model.onnx", tmp_path / "fused.onnx")
    assert last_layer_on_last_position(tmp_path / "fused.onnx", layers)
    assert fuse_attention(tmp_path / "fused.onnx", layers, cfg["num_attention_heads"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "fused.onnx")).graph.node]
    assert ops.count("MultiHeadAttention") == layers and "Softmax" not in ops and "IsNaN" not in ops
    int8 = onnx.load(str(exported / "onnx" / "model_int8.onnx")).graph
    assert sum(n.op_type == "MultiHeadAttention" and n.name.startswith(FUSED_ATTENTION) for n in int8.node) == layers

    fused, full = (ort.InferenceSession(str(p)) for p in (tmp_path / "fused.onnx", exported / "onnx" / "model.onnx"))
    names = [o.name for o in full.get_outputs()]
    for feed in _graph_feeds(cfg, fused):
        for name, x, y in zip(names, fused.run(names, feed), full.run(names, feed)):
            assert x.shape == y.shape, name
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5, err_msg=name)

    # another attention pattern: not fused, file untouched
    graph = onnx.load(str(exported / "onnx" / "model.onnx"))
    next(n for n in graph.graph.node if n.op_type == "IsNaN").op_type = "IsInf"
    onnx.save(graph, str(tmp_path / "other.onnx"))
    before = (tmp_path / "other.onnx").read_bytes()
    assert not fuse_attention(tmp_path / "other.onnx", layers, cfg["num_attention_heads"])
    assert (tmp_path / "other.onnx").read_bytes() == before
