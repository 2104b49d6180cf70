"""A random tiny model, built in well under a second without any data: the fast test layer.

As transformers' ``LlamaModelTester`` does, tests of format, CLI, front ends and export parity do
not need a trained model: constrained decoding keeps every answer valid whatever the weights, so a
model with random weights answers every task in the right format. Built from the registry's fixed
vocabulary alone (no learned text pieces), it needs no corpus and no download.

    python -m genomicllm_kernel.testing OUT [--zip]     # a model folder (or a zip of one)
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

TINY_SHAPE = dict(hidden=32, layers=2, heads=2, ffn=64, context=512)


def build_random_model(out: str | Path, seed: int = 0, architecture: str = "llama", composition_ks=None) -> Path:
    """Write a random model folder (config.json, model.safetensors, tokenizer files) to ``out``."""
    from .model import build_model
    from .tokenizer import GenomicLLMTokenizer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = GenomicLLMTokenizer(text_pieces=None, item_pointers=True, item_marker="after_name")
    model = build_model(tokenizer, seed=seed, architecture=architecture, composition_ks=composition_ks, **TINY_SHAPE)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def zip_model(folder: str | Path, archive: str | Path) -> Path:
    """A zip of a model folder as a Galaxy user would upload it (files under the folder's name)."""
    folder, archive = Path(folder), Path(archive)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                info = zipfile.ZipInfo(str(Path(folder.name) / f.relative_to(folder)), date_time=(2026, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, f.read_bytes())
    return archive


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--zip", action="store_true", help="write OUT as a zip of the model folder")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.zip:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            zip_model(build_random_model(Path(tmp) / "tiny_random_model", args.seed), args.out)
    else:
        build_random_model(args.out, args.seed)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
