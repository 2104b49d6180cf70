"""The Galaxy suite: generated from the registry, lint-clean, and tested on a real Galaxy server.

The server tests need Galaxy in its own virtual environment, named by ``$GALAXY_VENV`` (``.ci/run``
installs it); without it they are skipped, while the generator and lint tests still run.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "galaxy_tools"
GALAXY_VENV = Path(os.environ["GALAXY_VENV"]) if os.environ.get("GALAXY_VENV") else None
# Skipped only when GALAXY_VENV is unset; when it is set (CI), a missing Galaxy is a failure, not a skip.
_skip_without_galaxy = pytest.mark.skipif(GALAXY_VENV is None, reason="set GALAXY_VENV to a virtual environment with Galaxy 26.1 (.ci/run does)")


def needs_galaxy(test):
    """Galaxy's own code (template engine, server, planemo) runs: skipped without GALAXY_VENV, and slow."""
    return pytest.mark.slow(_skip_without_galaxy(test))


def test_committed_tools_match_the_generator():
    r = subprocess.run([sys.executable, "-m", "genomicllm_galaxy.generate", "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    from genomicllm_kernel.registry import TASKS

    analysis = [
        "genomicllm_explain.xml",
        "genomicllm_variant_effect.xml",
        "genomicllm_scan.xml",
        "genomicllm_split_fasta.xml",
        "genomicllm_merge_bed.xml",
    ]
    assert sorted(p.name for p in TOOLS.glob("genomicllm_*.xml")) == sorted(
        [f"genomicllm_{t}.xml" for t in TASKS] + ["genomicllm_ask.xml"] + analysis
    )


def test_every_user_value_is_quoted():
    """Outside Cheetah directives (#if, #set), every $value in a command sits inside single quotes on
    its line, after the macros are expanded the way Galaxy expands them."""
    import re

    macros = (TOOLS / "macros.xml").read_text()
    tokens = dict(re.findall(r'<token name="(@[A-Z_]+@)"><!\[CDATA\[(.*?)\]\]></token>', macros, re.S))
    for xml in TOOLS.glob("genomicllm_*.xml"):
        command = xml.read_text().split("<command", 1)[1].split("]]></command>", 1)[0]
        for token, body in tokens.items():
            command = command.replace(token, body)
        for line in command.splitlines():
            if line.lstrip().startswith("#"):
                continue
            for var in re.findall(r"\$[A-Za-z_][A-Za-z0-9_.]*", line):
                if var.startswith("$__"):
                    continue
                assert re.search(r"'[^']*" + re.escape(var) + r"[^']*'", line), f"{xml.name}: {var} unquoted in {line!r}"


def _planemo() -> str | None:
    if GALAXY_VENV and (GALAXY_VENV / "bin" / "planemo").exists():
        return str(GALAXY_VENV / "bin" / "planemo")
    return shutil.which("planemo")


@pytest.mark.slow
@pytest.mark.skipif(_planemo() is None and GALAXY_VENV is None, reason="planemo is not installed (GALAXY_VENV)")
def test_planemo_lint_clean_at_warn_level():
    assert _planemo(), f"no planemo in GALAXY_VENV={GALAXY_VENV}"
    r = subprocess.run([_planemo(), "lint", "--fail_level", "warn", str(TOOLS)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


@pytest.fixture(scope="module")
def galaxy(tmp_path_factory, shipped_or_tiny_model):
    from genomicllm_galaxy.server import start

    assert (GALAXY_VENV / "bin" / "galaxy").exists(), f"GALAXY_VENV={GALAXY_VENV} has no Galaxy installed"
    root = tmp_path_factory.mktemp("galaxy")
    server = start(GALAXY_VENV, root, shipped_or_tiny_model, project_bin=Path(sys.executable).parent)
    yield server
    server.stop()


@needs_galaxy
def test_every_tool_test_passes_on_galaxy(galaxy, tmp_path):
    report = tmp_path / "tool_tests.json"
    t0 = time.time()
    r = subprocess.run(
        [
            str(GALAXY_VENV / "bin" / "galaxy-tool-test"),
            "-u",
            galaxy.url,
            "-k",
            galaxy.user_key,
            "-a",
            galaxy.admin_key,
            "--with-reference-data",
            "--parallel-tests",
            "4",
            "--test-data",
            str(TOOLS / "test-data"),
            "-j",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=3000,
    )
    tests = json.loads(report.read_text())["tests"]
    failed = [t["id"] for t in tests if t["data"]["status"] != "success"]
    print(f"{len(tests)} Galaxy tool tests in {time.time() - t0:.0f} s")
    assert not failed, f"failed: {failed}\n{r.stdout[-3000:]}"
    ids = {t["id"].split("/")[0] for t in tests}
    assert len(ids) == 20 and len(tests) >= 34


def _history_with_fasta(galaxy, tmp_path, name: str, text: str):
    """(bioblend client, a new history, the uploaded FASTA dataset) on the running server."""
    from bioblend.galaxy import GalaxyInstance

    gi = GalaxyInstance(galaxy.url, key=galaxy.user_key)
    history = gi.histories.create_history(name)
    fa = tmp_path / f"{name}.fa"
    fa.write_text(text)
    up = gi.tools.upload_file(str(fa), history["id"], file_type="fasta")["outputs"][0]
    gi.datasets.wait_for_dataset(up["id"], maxwait=600)
    return gi, history, up


@needs_galaxy
def test_bioblend_upload_run_two_tools_and_a_bad_fasta(galaxy, tmp_path):
    gi, history, up = _history_with_fasta(galaxy, tmp_path, "bioblend", ">r1\nACGTTGCA\n>r2\nTATAAAAGGCGCGCTGACGTCAGCG\n")
    model = {"model_source|source": "builtin", "model_source|builtin_model": "default", "model_source|backend": "auto"}
    gc = gi.tools.run_tool(history["id"], "genomicllm_gc_content", {"input": {"src": "hda", "id": up["id"]}, **model})["outputs"][0]
    pr = gi.tools.run_tool(history["id"], "genomicllm_promoter", {"input": {"src": "hda", "id": up["id"]}, "question": "core promoter", **model})[
        "outputs"
    ][0]
    for out in (gc, pr):
        gi.datasets.wait_for_dataset(out["id"], maxwait=600)
    gc_rows = gi.datasets.download_dataset(gc["id"]).decode().splitlines()
    assert gc_rows[1].split("\t")[:5] == ["0", "r1", "", "", "gc_content"] and "\t0.500\t" in gc_rows[1]
    pr_rows = gi.datasets.download_dataset(pr["id"]).decode().splitlines()
    assert pr_rows[2].split("\t")[6] in ("True", "False")

    bad = tmp_path / "protein.fa"
    bad.write_text(">p1\nMKVLAAGIVQ\n")
    up_bad = gi.tools.upload_file(str(bad), history["id"], file_type="fasta")["outputs"][0]
    gi.datasets.wait_for_dataset(up_bad["id"], maxwait=600)
    job_out = gi.tools.run_tool(history["id"], "genomicllm_promoter", {"input": {"src": "hda", "id": up_bad["id"]}, **model})
    out = job_out["outputs"][0]
    with pytest.raises(Exception):
        gi.datasets.wait_for_dataset(out["id"], maxwait=600)
    job = gi.jobs.show_job(job_out["jobs"][0]["id"], full_details=True)
    assert job["state"] == "error"
    stderr = job["tool_stderr"].strip()
    assert stderr.count("\n") == 0 and "protein.fa, line 2, column 4: character 'L' is not an IUPAC nucleotide code" in stderr
    assert job["exit_code"] == 2


def _planemo_workflow_test(galaxy, tmp_path, workflow: str):
    r = subprocess.run(
        [
            _planemo(),
            "test",
            "--engine",
            "external_galaxy",
            "--galaxy_url",
            galaxy.url,
            "--galaxy_admin_key",
            galaxy.admin_key,
            "--galaxy_user_key",
            galaxy.user_key,
            "--test_output_json",
            str(tmp_path / "wf.json"),
            "--test_output",
            str(tmp_path / "wf.html"),
            "--test_data",
            str(TOOLS / "test-data"),
            str(TOOLS / "workflows" / workflow),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=TOOLS / "workflows",
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    tests = json.loads((tmp_path / "wf.json").read_text())["tests"]
    assert tests and all(t["data"]["status"] == "success" for t in tests)


@needs_galaxy
def test_workflow_promoter_then_splice(galaxy, tmp_path):
    _planemo_workflow_test(galaxy, tmp_path, "promoter_and_splice.gxwf.yml")


@needs_galaxy
def test_genome_scan_workflow_spreads_scan_jobs_over_the_runners(galaxy, tmp_path, shipped_or_tiny_model):
    """split -> scan mapped over the chunks -> merge, on the real server (4 local job workers):
    the merged BED equals the scan of the whole FASTA, and at least 4 scan jobs ran at once
    (their start / end times from Galaxy's core job metrics)."""
    from bioblend.galaxy import GalaxyInstance

    since = time.time() - 5
    _planemo_workflow_test(galaxy, tmp_path, "genome_scan.gxwf.yml")
    gi, admin = GalaxyInstance(galaxy.url, key=galaxy.user_key), GalaxyInstance(galaxy.url, key=galaxy.admin_key)
    spans = []
    for job in gi.jobs.get_jobs(tool_id=["genomicllm_scan"], limit=100):
        details = admin.jobs.show_job(job["id"], full_details=True)
        metrics = {m["name"]: float(m["raw_value"]) for m in details.get("job_metrics", []) if m["name"] in ("start_epoch", "end_epoch")}
        if len(metrics) == 2 and metrics["start_epoch"] >= since:
            spans.append((metrics["start_epoch"], metrics["end_epoch"]))
    assert len(spans) == 9, spans
    most = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    print(f"{len(spans)} scan jobs, at most {most} at once")
    assert most >= 4, spans
    # the merged output is the scan of the whole file
    hist = max(gi.histories.get_histories(), key=lambda h: h["update_time"])
    merged = [d for d in gi.histories.show_history(hist["id"], contents=True) if d.get("name", "").startswith("GenomicLLM merge")]
    rows = gi.datasets.download_dataset(merged[-1]["id"]).decode()
    whole = subprocess.run(
        [
            sys.executable,
            "-m",
            "genomicllm_kernel.cli",
            "scan",
            "--fasta",
            str(TOOLS / "test-data" / "genome.fa"),
            "--task",
            "promoter",
            "--question",
            "proximal promoter",
            "--window-size",
            "300",
            "--window-step",
            "150",
            "--threshold",
            "0",
            "--model",
            str(shipped_or_tiny_model),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert rows == whole


@needs_galaxy
def test_hostile_identifiers_never_reach_the_shell(tmp_path):
    """Every tool's command, rendered by Galaxy's own template code with hostile collection element
    identifiers (quotes, $(...), backticks, newlines, ../) and run with genomicllm stubbed: the stub
    is called once with a sanitised label, and nothing is written outside the job's own record."""
    r = subprocess.run(
        [str(GALAXY_VENV / "bin" / "python"), str(ROOT / "tests" / "galaxy_render.py"), str(TOOLS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout)
    assert len(report) == 20 * 8 * 2
    for row in report:
        if row["tool"] == "genomicllm_merge_bed":  # plain cat of its inputs: never calls genomicllm, never runs a name
            assert row["calls"] == 0 and not [p for p in row["stray"] if "PWNED" in p], row
            continue
        assert row["rc"] == 0 and row["calls"] == 1, row
        assert [p for p in row["stray"] if not p.startswith("jobs/genomicllm_merge_bed-")] == [], row  # merge's own output.dat
        if row["tool"] not in ("genomicllm_ask", "genomicllm_variant_effect", "genomicllm_merge_bed"):  # these read no labelled sequence input
            assert row["label"] and all(c.isalnum() or c in "_.-" for c in row["label"]), row
        if row["tool"] not in (
            "genomicllm_ask",
            "genomicllm_variant_effect",
            "genomicllm_scan",
            "genomicllm_split_fasta",
            "genomicllm_merge_bed",
        ):  # FASTA only
            assert row["input_format"] == ("fasta" if row["ext"] == "fasta" else "tabular"), row


@needs_galaxy
def test_collection_with_a_hostile_element_identifier(galaxy, tmp_path):
    """The attack of the security report on the real server: a list whose element is named
    "'; touch pwned; '" mapped over a tool; the job succeeds and no file 'pwned' appears."""
    gi, history, up = _history_with_fasta(galaxy, tmp_path, "hostile", ">r1\nACGTTGCA\n")
    hostile = "'; touch pwned; '"
    hdca = gi.histories.create_dataset_collection(
        history["id"], {"collection_type": "list", "name": "hostile", "element_identifiers": [{"name": hostile, "src": "hda", "id": up["id"]}]}
    )
    model = {"model_source|source": "builtin", "model_source|builtin_model": "default", "model_source|backend": "auto"}
    run = gi.tools.run_tool(
        history["id"], "genomicllm_gc_content", {"input": {"batch": True, "values": [{"src": "hdca", "id": hdca["id"]}]}, **model}
    )
    out = run["outputs"][0]
    gi.datasets.wait_for_dataset(out["id"], maxwait=600)
    rows = gi.datasets.download_dataset(out["id"]).decode().splitlines()
    assert "\t0.500\t" in rows[1]
    from bioblend.galaxy import GalaxyInstance

    job = GalaxyInstance(galaxy.url, key=galaxy.admin_key).jobs.show_job(run["jobs"][0]["id"], full_details=True)
    assert job["state"] == "ok" and "--input-label '___touch_pwned___'" in job["command_line"], job.get("command_line")
    assert not [p for p in galaxy.root.rglob("pwned")]
