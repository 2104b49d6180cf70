"""The install a Galaxy administrator uses: a wheel built from the checkout, installed outside it,
answers with the shipped model it carries (share/genomicllm/models/default), not with the checkout."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_and_finds_its_model(tmp_path):
    dist = tmp_path / "dist"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)], capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next(dist.glob("genomicllm-*.whl"))
    prefix = tmp_path / "prefix"
    # --ignore-installed: never touch the test environment's own (editable) install
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", "--prefix", str(prefix), str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    site = next(prefix.glob("lib/python*/site-packages"))
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("GENOMICLLM_MODEL", None)
    work = tmp_path / "elsewhere"
    work.mkdir()
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import genomicllm_kernel, genomicllm_kernel.model as m; print(genomicllm_kernel.__file__); print(m.default_model_dir())",
        ],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=120,
    )
    module, model_dir = probe.stdout.split()
    assert module.startswith(str(site)) and model_dir.startswith(str(prefix / "share" / "genomicllm")), probe.stdout + probe.stderr
    r = subprocess.run(
        [sys.executable, str(prefix / "bin" / "genomicllm"), "ask", "ATGGCGGCTTCAGAGTAA, protein sequence =", "--format", "jsonl"],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["check"]["expected"] == "MAASE*" and rec["model"].startswith("default@") and rec["runtime"].startswith("onnxruntime")
