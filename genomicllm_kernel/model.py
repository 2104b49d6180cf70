"""The model: a stock transformers causal LM (Llama, or Qwen3) over the hybrid tokenizer.

A stock class keeps Optimum's ONNX export (with past key values) a one-liner; the architecture's
size lives in the training config. A model folder holds ``config.json``, ``model.safetensors``
(never pickle) and the tokenizer files, exactly as ``save_pretrained`` writes them; ``config.json``
names the architecture, so loading needs no setting.

Why Qwen3 as well: it is Llama plus an RMS norm on each head's queries and keys. The shipped Llama
model's attention ended nearly one-hot in every head at the answer position, and a saturated
softmax passes little gradient, so a new attention pattern such as
matching an item's name for reading comprehension learns slowly; q/k norms bound the attention
logits. Optimum exports both with past key values (``Qwen3OnnxConfig``).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from .errors import InputError, ModelUnavailableError

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "default"


def default_model_dir() -> Path:
    return Path(os.environ.get("GENOMICLLM_MODEL", DEFAULT_MODEL_DIR))


ARCHITECTURES = ("llama", "qwen3")


def build_model(tokenizer, hidden: int = 256, layers: int = 4, heads: int = 4, ffn: int = 768,
                context: int = 512, seed: int = 0, architecture: str = "llama"):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

    if architecture not in ARCHITECTURES:
        raise InputError(f"architecture must be one of {', '.join(ARCHITECTURES)}, not {architecture!r}")
    torch.manual_seed(seed)
    shape = dict(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=heads, intermediate_size=ffn, max_position_embeddings=context,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, rope_theta=10000.0, attention_dropout=0.0,
    )
    if architecture == "qwen3":
        return Qwen3ForCausalLM(Qwen3Config(head_dim=hidden // heads, **shape))
    return LlamaForCausalLM(LlamaConfig(**shape))


def load_causal_lm(path: str | Path):
    """The model class that the folder's config.json names (Llama or Qwen3), in fp32, from safetensors."""
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, dtype=torch.float32)


def count_parameters(path: str | Path) -> int | None:
    """Parameters stored in a model folder's safetensors (read from the header: no weights loaded)."""
    try:
        from safetensors import safe_open

        with safe_open(str(Path(path) / "model.safetensors"), "np") as f:
            return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    except Exception:  # noqa: BLE001 - a missing or unreadable file: callers print the rest without it
        return None


def check_model_dir(path: str | Path) -> Path:
    path = Path(path)
    if not (path / "config.json").exists() or not (path / "model.safetensors").exists():
        raise ModelUnavailableError(
            f"no trained GenomicLLM model at {path} (expected config.json and model.safetensors); "
            "train one with 'genomicllm train' or pass --model DIR"
        )
    return path


def load_torch_model(path: str | Path):
    from .tokenizer import GenomicLLMTokenizer

    path = check_model_dir(path)
    model = load_causal_lm(path)
    model.eval()
    tokenizer = GenomicLLMTokenizer.from_pretrained(path)
    return model, tokenizer
