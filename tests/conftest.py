"""Shared fixtures: a small corpus built by the real data command, and a tiny model trained on it.

Both are built once per test session into a temporary folder (downloads are cached in
``~/.cache/genomicllm/data`` or ``$GENOMICLLM_DATA_CACHE``), so the tests exercise the same code
paths as a user's ``genomicllm data build`` and ``genomicllm train``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests check correctness, not speed: CI shares 2 cores with a Galaxy server and a browser.
settings.register_profile("shared-cores", deadline=None)
settings.load_profile("shared-cores")

ROOT = Path(__file__).resolve().parent.parent


def data_cache() -> Path:
    return Path(os.environ.get("GENOMICLLM_DATA_CACHE", Path.home() / ".cache" / "genomicllm" / "data"))


@pytest.fixture(scope="session")
def random_model(tmp_path_factory) -> Path:
    """A random tiny model (genomicllm_kernel.testing): no corpus, no download, built in milliseconds
    once torch is imported. Constrained decoding keeps its answers valid, so format, CLI, front-end
    and robustness tests run on it in the fast layer."""
    from genomicllm_kernel.testing import build_random_model

    return build_random_model(tmp_path_factory.mktemp("random") / "tiny_random_model")


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    from genomicllm_kernel.data.build import build

    out = tmp_path_factory.mktemp("corpus") / "small"
    build(out, small=True, seed=0, cache=data_cache(), progress=lambda m: None)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, small_corpus) -> Path:
    from genomicllm_kernel.training import TrainConfig, train

    cfg = TrainConfig.load(ROOT / "configs" / "tiny.toml")
    cfg.data = str(small_corpus)
    cfg.out = str(tmp_path_factory.mktemp("run") / "tiny")
    return train(cfg, progress=False)


@pytest.fixture(scope="session")
def shipped_or_tiny_model(tiny_model) -> Path:
    """The shipped default model when it is in the checkout (front-end tests run on it), else the tiny one."""
    shipped = ROOT / "models" / "default"
    return shipped if (shipped / "model.safetensors").exists() else tiny_model
