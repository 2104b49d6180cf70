"""ONNX Runtime backend: the exported model answers every question, CUDA where usable, CPU elsewhere.

The folder layout is Optimum's (``model.onnx`` from ``text-generation-with-past`` beside
``config.json``), so ``optimum.onnxruntime.ORTModelForCausalLM.from_pretrained(folder)`` loads the
same files; this module drives the session directly with numpy, because importing torch and
transformers alone would cost more than the 2-second cold-start budget.

The provider is reported as ONNX Runtime actually resolved it: onnxruntime-gpu silently falls back
to CPU when CUDA libraries are missing, so ``session.get_providers()`` is read after creation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .decoding import Decoder
from .errors import ModelUnavailableError

ONNX_SUBDIR = "onnx"


def onnx_dir(model_dir: Path) -> Path | None:
    """Where the model's ONNX export lives (``<model>/onnx`` or the folder itself), if any."""
    for cand in (model_dir / ONNX_SUBDIR, model_dir):
        if (cand / "model.onnx").exists():
            return cand
    return None


def make_session(path: Path, threads: int = 1, device: str = "auto"):
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelUnavailableError("onnxruntime is not installed: pip install 'genomicllm[cpu]' (or [gpu]), or use --backend torch") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    return session, session.get_providers()[0]


#: prompt tokens per forward pass for int8 on CPU: 64 x 105-token prompts run at 69 prompts/s on one
#: thread, 4-8 at a time at 89-93/s (the [batch, length, 1024] MLP activations stay in cache);
#: 300-1,300 tokens were best at every prompt length measured (20-250 tokens, bench/ANALYSIS.md)
INT8_CPU_TOKENS_PER_PASS = 768


def quantized(session) -> bool:
    """Whether the session's graph came out of ONNX Runtime's quantizer (integer matmuls)."""
    return session.get_modelmeta().producer_name == "onnx.quantize"


class ORTDecoder(Decoder):
    name = "onnxruntime"

    def __init__(self, folder: Path, codec, threads: int | None = None, filename: str = "model.onnx"):
        cfg = json.loads((folder / "config.json").read_text())
        threads = threads or int(os.environ.get("GENOMICLLM_THREADS", "1"))
        self.session, self.provider = make_session(folder / filename, threads)
        self.layers = cfg["num_hidden_layers"]
        self.kv_heads = cfg.get("num_key_value_heads", cfg["num_attention_heads"])
        self.head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]
        layout = cfg if cfg.get("composition_ks") and "dna_features" in self.inputs else None
        blocks = cfg.get("composition_blocks") or ()
        super().__init__(codec, cfg["max_position_embeddings"], layout, blocks)
        self.feature_size = self.composition.size * max(1, len(blocks)) if self.composition else 0
        if self.provider == "CPUExecutionProvider" and quantized(self.session):
            self.tokens_per_pass = INT8_CPU_TOKENS_PER_PASS

    def _run(self, ids, mask, pos, past, features=None):
        feed = {"input_ids": ids, "attention_mask": mask}
        if self.composition:
            # decoding steps feed zeros: the features act only at the prompt's <ans> token
            feed["dna_features"] = features if features is not None else np.zeros((ids.shape[0], self.feature_size), dtype=np.float32)
        if "position_ids" in self.inputs:
            feed["position_ids"] = pos
        for i in range(self.layers):
            feed[f"past_key_values.{i}.key"], feed[f"past_key_values.{i}.value"] = past[i]
        out = self.session.run(self.outputs, feed)
        named = dict(zip(self.outputs, out))
        present = [(named[f"present.{i}.key"], named[f"present.{i}.value"]) for i in range(self.layers)]
        return named["logits"][:, -1], present

    def start(self, ids, mask, pos, features=None):
        b = ids.shape[0]
        empty = np.zeros((b, self.kv_heads, 0, self.head_dim), dtype=np.float32)
        logits, present = self._run(ids, mask, pos, [(empty, empty)] * self.layers, features)
        return logits, (present, mask, pos[:, -1])

    reuses_prefix = True

    def extend(self, state, length, ids, pos, features=None):
        present = state[0]
        b = ids.shape[0]
        past = [(np.repeat(k[:, :, :length], b, axis=0), np.repeat(v[:, :, :length], b, axis=0)) for k, v in present]
        mask = np.ones((b, length + ids.shape[1]), dtype=np.int64)
        logits, _ = self._run(ids, mask, pos, past, features)
        return logits

    def extend_rows(self, state, length, ids, pos, features=None):
        past = [(np.ascontiguousarray(k[:, :, :length]), np.ascontiguousarray(v[:, :, :length])) for k, v in state[0]]
        mask = np.ones((ids.shape[0], length + ids.shape[1]), dtype=np.int64)
        logits, _ = self._run(ids, mask, pos, past, features)
        return logits

    def step(self, state, next_ids):
        past, mask, last = state
        mask = np.concatenate([mask, np.ones((mask.shape[0], 1), dtype=mask.dtype)], axis=1)
        pos = (last + 1)[:, None].astype(np.int64)
        logits, present = self._run(next_ids[:, None].astype(np.int64), mask, pos, past)
        return logits, (present, mask, pos[:, 0])
