"""Layer 2: the example notebook executed top to bottom by a real Jupyter kernel (nbclient)."""

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"


def test_quickstart_runs_clean(tmp_path, shipped_or_tiny_model):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env_before = os.environ.get("GENOMICLLM_MODEL")
    os.environ["GENOMICLLM_MODEL"] = str(shipped_or_tiny_model)
    try:
        client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
    finally:
        if env_before is None:
            os.environ.pop("GENOMICLLM_MODEL", None)
        else:
            os.environ["GENOMICLLM_MODEL"] = env_before
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"], "no tracebacks anywhere"
    # the deliberate bad question (last cell) is shown as one UsageError line on stderr
    text = "".join(o.get("text", "") for o in code[-1].outputs if o.output_type == "stream")
    assert text.strip().count("\n") == 0 and text.startswith("UsageError:") and "character 'X' at position 5" in text
    for c in code[:-1]:
        assert not [o for o in c.outputs if o.output_type == "stream" and "Error" in o.get("text", "")], c.source
    html = "".join(o.get("data", {}).get("text/html", "") for c in code for o in c.outputs)
    assert "protein sequence" in html and "core promoter" in html and ("agree" in html)
    assert "data:image/png;base64," in html, "the --explain cell draws its logo"
    assert "delta (alt - ref)" in html and "ref mismatch" in html and "2 scored" in html, "the --variants cell's table"
    widgets = [o for o in code[-2].outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, "the panel cell should display a widget"
