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
    once torch is imported, and exported to ONNX (fp32 + int8, with the export's parity check) in
    about two seconds, so the CLI in a subprocess starts on ONNX Runtime in under a second instead of
    importing torch. Constrained decoding keeps its answers valid, so format, CLI, front-end, export
    and robustness tests run on it in the fast layer."""
    from genomicllm_export import export_model
    from genomicllm_kernel.testing import build_random_model

    model = build_random_model(tmp_path_factory.mktemp("random") / "tiny_random_model")
    export_model(model, quantize="int8", progress=lambda m: None)
    return model


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
def shipped_or_tiny_model(request) -> Path:
    """The shipped default model when it is in the checkout (front-end tests run on it), else the
    tiny one trained on the small corpus (only then is the corpus built)."""
    shipped = ROOT / "models" / "default"
    return shipped if (shipped / "model.safetensors").exists() else request.getfixturevalue("tiny_model")


#: fixtures that build the corpus (downloads about 300 MB on a fresh machine) or train on it
_CORPUS_FIXTURES = {"small_corpus", "tiny_model"}
#: test modules that start real servers (Galaxy, JupyterLab, Voila, a kernel) or build a wheel
_SLOW_MODULES = {"test_browser", "test_notebook", "test_wheel"}


def pytest_collection_modifyitems(config, items):
    """Mark as ``slow`` every test that needs the corpus or a server, so ``pytest -m "not slow"`` is
    the fast offline layer (random tiny model, shipped model, no downloads). CI runs everything."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if _CORPUS_FIXTURES & set(getattr(item, "fixturenames", ())) or module in _SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
