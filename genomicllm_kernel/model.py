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

import json
import math
import os
import struct
from pathlib import Path

from .errors import InputError, ModelFileError, ModelUnavailableError

#: the shipped model in a source checkout
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "default"
#: where an installed wheel puts the shipped model (pyproject's data-files), relative to the install prefix
INSTALLED_MODEL_SUBDIR = Path("share") / "genomicllm" / "models" / "default"


def default_model_dir() -> Path:
    """$GENOMICLLM_MODEL, else the checkout's models/default, else the model installed with the wheel."""
    if os.environ.get("GENOMICLLM_MODEL"):
        return Path(os.environ["GENOMICLLM_MODEL"])
    if (DEFAULT_MODEL_DIR / "config.json").exists():
        return DEFAULT_MODEL_DIR
    installed = _installed_model_dir()
    return installed if installed is not None else DEFAULT_MODEL_DIR


def _installed_model_dir() -> Path | None:
    """The data-files copy of the model, found through the installed distribution's file list, so a
    venv, ``--user`` and ``--prefix`` install all work."""
    import sys
    from importlib import metadata

    candidates = [Path(sys.prefix) / INSTALLED_MODEL_SUBDIR]
    try:
        for f in metadata.files("genomicllm") or []:
            if f.name == "config.json" and f.parent.as_posix().endswith(INSTALLED_MODEL_SUBDIR.as_posix()):
                candidates.insert(0, Path(f.locate()).parent)
                break
    except metadata.PackageNotFoundError:
        pass
    return next((c.resolve() for c in candidates if (c / "config.json").exists()), None)


#: the JSON files a model folder (and its onnx/ export) may hold; each must parse
MODEL_JSON_FILES = ("config.json", "vocab.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "train_config.json")


def verify_model_files(path: Path, onnx_folder: Path | None = None) -> None:
    """Name a damaged file instead of failing deep inside a loader: every JSON file must parse, and
    ``model.safetensors`` must be as long as its header says (a truncated copy otherwise still
    hashes to a model id while the ONNX export answers)."""
    for folder in [path] + ([onnx_folder] if onnx_folder is not None and onnx_folder != path else []):
        for name in MODEL_JSON_FILES:
            f = folder / name
            if f.exists():
                try:
                    json.loads(f.read_bytes().decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise ModelFileError(f"{f}: the model file is damaged (not valid JSON: {exc}); reinstall or re-export the model") from None
    weights = path / "model.safetensors"
    if weights.exists():
        _verify_safetensors(weights)


def _verify_safetensors(path: Path) -> None:
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > size - 8:
                raise ValueError("header longer than the file")
            header = json.loads(fh.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (struct.error, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelFileError(f"{path}: the model file is damaged (unreadable safetensors header: {exc})") from None
    if 8 + n + end != size:
        raise ModelFileError(
            f"{path}: the model file is damaged (truncated or padded: {size:,} bytes, its header describes {8 + n + end:,}); reinstall the model"
        )


#: limits for a model archive (a zip of a model folder, e.g. from a Galaxy history)
MAX_ARCHIVE_BYTES = 4 << 30
MAX_ARCHIVE_MEMBERS = 200
_UNPACKED: dict[tuple[str, int, int], Path] = {}


def unpack_model_archive(archive: Path) -> Path:
    """Unpack a zipped model folder into a private temporary folder (removed at exit) and return the
    folder that holds its config.json. Refuses absolute paths, '..', links, too many members and
    more than MAX_ARCHIVE_BYTES unpacked, so a hostile archive cannot write outside that folder."""
    import atexit
    import shutil
    import stat
    import tempfile
    import zipfile

    st = archive.stat()
    key = (str(archive.resolve()), st.st_size, int(st.st_mtime_ns))
    if key in _UNPACKED and _UNPACKED[key].exists():
        return _UNPACKED[key]
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFileError(f"{archive}: not a model folder or a readable zip of one ({exc})") from None
    with zf:
        members = zf.infolist()
        if len(members) > MAX_ARCHIVE_MEMBERS:
            raise ModelFileError(f"{archive}: {len(members)} files; a model archive holds at most {MAX_ARCHIVE_MEMBERS}")
        total = 0
        for m in members:
            parts = Path(m.filename).parts
            if m.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise ModelFileError(f"{archive}: unsafe path {m.filename!r} in the archive")
            if stat.S_ISLNK(m.external_attr >> 16):
                raise ModelFileError(f"{archive}: the archive holds a link ({m.filename!r}); links are not unpacked")
            total += m.file_size
        if total > MAX_ARCHIVE_BYTES:
            raise ModelFileError(f"{archive}: unpacks to {total:,} bytes, more than the {MAX_ARCHIVE_BYTES:,} allowed")
        target = Path(tempfile.mkdtemp(prefix="genomicllm-model-"))
        atexit.register(shutil.rmtree, target, True)
        try:
            for m in members:
                dest = target.joinpath(*Path(m.filename).parts)
                if m.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                with zf.open(m) as src, open(dest, "wb") as out:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        written += len(block)
                        if written > m.file_size:  # a member that inflates past its declared size
                            raise ModelFileError(f"{archive}: {m.filename!r} unpacks past its declared size")
                        out.write(block)
        except zipfile.BadZipFile as exc:
            raise ModelFileError(f"{archive}: the archive is damaged ({exc})") from None
    configs = sorted(target.rglob("config.json"), key=lambda p: len(p.parts))
    configs = [
        c
        for c in configs
        if (c.parent / "model.safetensors").exists() or (c.parent / "model.onnx").exists() or (c.parent / "onnx" / "model.onnx").exists()
    ]
    if not configs:
        raise ModelUnavailableError(f"{archive}: the archive holds no model folder (config.json beside model.safetensors or onnx/model.onnx)")
    _UNPACKED[key] = configs[0].parent
    return configs[0].parent


def resolve_model_path(model: str | Path | None) -> Path:
    """A model folder from --model (a folder, or a zip of one) or the default."""
    path = Path(model) if model else default_model_dir()
    if path.is_file():
        return unpack_model_archive(path)
    return path


ARCHITECTURES = ("llama", "qwen3")


def build_model(
    tokenizer,
    hidden: int = 256,
    layers: int = 4,
    heads: int = 4,
    ffn: int = 768,
    context: int = 512,
    seed: int = 0,
    architecture: str = "llama",
    composition_ks=None,
):
    """A new model; with ``composition_ks`` a Llama with the k-mer composition input (composition_model.py)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

    if architecture not in ARCHITECTURES:
        raise InputError(f"architecture must be one of {', '.join(ARCHITECTURES)}, not {architecture!r}")
    torch.manual_seed(seed)
    shape = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        intermediate_size=ffn,
        max_position_embeddings=context,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        rope_theta=10000.0,
        attention_dropout=0.0,
    )
    if architecture == "qwen3":
        if composition_ks:
            raise InputError("composition features are implemented for the llama architecture only")
        return Qwen3ForCausalLM(Qwen3Config(head_dim=hidden // heads, **shape))
    if composition_ks:
        from .composition_model import GenomicLlamaConfig, GenomicLlamaForCausalLM

        config = GenomicLlamaConfig(composition_ks=tuple(composition_ks), composition_token_id=tokenizer.codec.vocab["<ans>"], **shape)
        config.architectures = ["GenomicLlamaForCausalLM"]
        return GenomicLlamaForCausalLM(config)
    return LlamaForCausalLM(LlamaConfig(**shape))


def load_causal_lm(path: str | Path):
    """The model class that the folder's config.json names (Llama or Qwen3), in fp32, from safetensors."""
    import torch
    from transformers import AutoModelForCausalLM

    from . import composition_model  # noqa: F401 (registers GenomicLlamaForCausalLM with the Auto classes)

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
