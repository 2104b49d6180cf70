"""Render every tool's command with Galaxy's own template code and run it with ``genomicllm`` stubbed.

Run with the Python of Galaxy's virtual environment (``tests/test_galaxy.py`` does):

    $GALAXY_VENV/bin/python tests/galaxy_render.py galaxy_tools/ WORKDIR

Galaxy hands a collection element identifier to the template raw, so hostile identifiers are the
attack: each one tries to run ``touch PWNED`` or write outside the job folder. The stub records
its argument vector; the report (JSON on stdout) lists, per tool and identifier, the label the
stub received and every file that appeared outside the stub's own record.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from galaxy.tool_util.parser import get_tool_source
from galaxy.util.template import fill_template

HOSTILE = [
    "'; touch PWNED; '",
    '"; touch PWNED; "',
    "$(touch PWNED)",
    "`touch PWNED`",
    "a' && touch ../PWNED && echo '",
    "x\ntouch PWNED\n",
    "../../PWNED",
    "name with spaces; & | > PWNED",
]
STUB = """#!/usr/bin/env python3
import json, os, sys
with open(os.path.join(os.getcwd(), "argv.json"), "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
"""


class Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class Data:
    """Stands in for Galaxy's DatasetFilenameWrapper: str() is the path, element_identifier raw."""

    def __init__(self, path: Path, identifier: str, ext: str):
        self.path, self.element_identifier, self.ext, self.name = str(path), identifier, ext, identifier

    def __str__(self) -> str:
        return self.path

    def is_of_type(self, *exts) -> bool:
        return self.ext in exts


def context(tool_source, job: Path, identifier: str, ext: str, source: str) -> dict:
    ctx: dict = {}
    for page in tool_source.parse_input_pages().page_sources:
        for param in page.parse_input_sources():
            name = param.get("name") or param.get("argument", "").lstrip("-").replace("-", "_")
            kind = param.get("type")
            if kind == "select":
                options = [o[1] for o in param.parse_static_options()]
                ctx[name] = options[0] if options else ""
            elif kind == "text":
                ctx[name] = "symbol" if name == "item_name" else ""
            elif kind == "boolean":
                ctx[name] = True
            elif kind in ("integer", "float"):
                ctx[name] = param.get("value")
    if "window" not in ctx:
        ctx["window"] = Obj(mode="windows", size=100, step=50)
    ctx.update(
        # the analysis tools' conditionals and extra inputs (explain, variant effect, scan)
        task=Obj(id="tf_binding", question="transcription factor binding site", transcription_factor="GUE tf_2", chromosome="", label="True"),
        vcf=Data(job / "vcf.dat", identifier, "vcf"),
        inputs=[Data(job / "part1.dat", identifier, "bed"), Data(job / "part2.dat", identifier, "bed")],
        cds=Data(job / "cds.dat", identifier, "bed"),
        reference_source=Obj(
            source=source == "builtin" and "cached" or "history",
            reference=Data(job / "ref.dat", identifier, "fasta"),
            genome=Obj(fields=Obj(path="/genomes/hg19.fa")),
        ),
    )
    ctx.update(
        input=Data(job / "input.dat", identifier, ext),
        prompts=Data(job / "prompts.dat", identifier, "txt"),
        output=str(job / "output.dat"),
        model_source=Obj(
            source=source,
            builtin_model=Obj(fields=Obj(path="/models/default")),
            model_archive=Data(job / "model.zip", identifier, "zip"),
            backend="auto",
        ),
    )
    return ctx


def main(tools: Path, work: Path) -> int:
    stub_dir = work / "bin"
    stub_dir.mkdir(parents=True, exist_ok=True)
    stub = stub_dir / "genomicllm"
    stub.write_text(STUB)
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    report = []
    for xml in sorted(tools.glob("genomicllm_*.xml")):
        tool_source = get_tool_source(str(xml))
        command = tool_source.parse_command()
        for n, identifier in enumerate(HOSTILE):
            for ext, source in (("fasta", "builtin"), ("bed", "history")):
                job = work / "jobs" / f"{xml.stem}-{n}-{ext}" / "working"
                job.mkdir(parents=True)
                rendered = fill_template(command, context=context(tool_source, job, identifier, ext, source), python_template_version="3")
                # as galaxy.tools.evaluation.ToolEvaluator._build_command_line does after filling the template
                rendered = "\n".join(line.strip() for line in rendered.split("\n"))
                rendered = rendered.replace("\n", " ").replace("\r", " ").strip()
                env = {"PATH": f"{stub_dir}:/usr/bin:/bin", "GALAXY_SLOTS": "2", "HOME": str(job)}
                r = subprocess.run(["bash", "-c", rendered], cwd=job, env=env, capture_output=True, text=True, timeout=60)
                argv_file = job / "argv.json"
                calls = [json.loads(line) for line in argv_file.read_text().splitlines()] if argv_file.exists() else []
                label = None
                if calls and "--input-label" in calls[0]:
                    label = calls[0][calls[0].index("--input-label") + 1]
                fmt = calls[0][calls[0].index("--input-format") + 1] if calls and "--input-format" in calls[0] else None
                stray = sorted(
                    str(p.relative_to(work))
                    for p in work.rglob("*")
                    if p.is_file() and p != argv_file and p.parent != stub_dir and p.name != "argv.json"
                )
                report.append(
                    {
                        "tool": xml.stem,
                        "identifier": identifier,
                        "ext": ext,
                        "rc": r.returncode,
                        "calls": len(calls),
                        "label": label,
                        "input_format": fmt,
                        "stray": stray,
                        "stderr": r.stderr[-300:],
                    }
                )
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
