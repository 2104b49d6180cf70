"""``%%genomicllm`` (cell) and ``%genomicllm`` (line), modelled on JupySQL / jupyter-ai magics.

* A cell holds one question per line in the grammar, or a FASTA block asked with ``--task``.
* ``--explain`` draws per-base importance as a sequence logo; ``--variants VCF --reference REF.fa``
  scores a VCF's variants (a table with delta bars; the cell may hold the VCF text itself).
* ``{name}`` is replaced by the value of ``name`` from the notebook namespace; other braces (and
  ``{{`` / ``}}``) are left alone, so braces inside items never break a cell.
* Defaults are configurable: ``%config GenomicLLMMagics.default_format = 'table'``, ``.model``,
  ``.backend``, ``.batch_size``.
* User mistakes become a ``UsageError``: one readable line, no traceback.
"""

from __future__ import annotations

import io
import re

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, needs_local_scope
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Int, Unicode

from genomicllm_kernel import ask, predict
from genomicllm_kernel.api import explain, explain_records, variant_effects
from genomicllm_kernel.api import BACKENDS
from genomicllm_kernel.errors import GenomicLLMError
from genomicllm_kernel.fasta import read_fasta
from genomicllm_kernel.grammar import parse_item_pairs

from .display import AnswerTable, ExplanationView, JSONAnswers, VariantTable

_NAME = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


def interpolate(text: str, namespace: dict) -> str:
    """Replace ``{name}`` with namespace values; leave unknown names and doubled braces as written."""

    def sub(m):
        name = m.group(1)
        return str(namespace[name]) if name in namespace else m.group(0)

    return _NAME.sub(sub, text).replace("{{", "{").replace("}}", "}")


@magics_class
class GenomicLLMMagics(Magics):
    default_format = Unicode("html", help="html (rich table), table (pandas DataFrame) or json").tag(config=True)
    model = Unicode("", help="model folder; empty means the shipped default model").tag(config=True)
    backend = Unicode("auto", help="auto, onnx, onnx-int8 or torch").tag(config=True)
    batch_size = Int(32).tag(config=True)

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        if shell is not None and self not in shell.configurables:
            shell.configurables.append(self)

    @needs_local_scope
    @magic_arguments()
    @argument("--task", "-t", help="task id for a FASTA cell (see genomicllm tasks)")
    @argument("--question", "-q", help="question key of --task (default: its first key)")
    @argument("--item", "-i", action="append", default=[], metavar="NAME=VALUE", help="item added to every FASTA question")
    @argument("--format", "-f", choices=("html", "table", "json"), help="output format (default: %%config default_format)")
    @argument("--model", "-m", help="model folder")
    @argument("--backend", "-b", choices=BACKENDS)
    @argument("--out", "-o", help="store the results in this notebook variable")
    @argument("--window-size", type=int, help="answer long sequences window by window (nt)")
    @argument("--window-step", type=int, help="step between windows (nt)")
    @argument(
        "--explain",
        "-x",
        action="store_true",
        help="explain classification answers: per-base importance (in-silico mutagenesis) drawn as a sequence logo",
    )
    @argument(
        "--variants",
        nargs="?",
        const="-",
        metavar="VCF",
        help="score the SNVs / short indels of a VCF (a path, or the cell's VCF text when no path is given) with --task, "
        "on windows of --window-size nt (default 300) from --reference",
    )
    @argument("--reference", "-r", help="reference FASTA (plain or bgzip) for --variants")
    @argument("--cds", help="BED of coding segments for --variants: the exact protein change of an SNV inside one")
    @argument("prompt", nargs="*", help="a question in the grammar (line magic)")
    @line_cell_magic
    def genomicllm(self, line: str, cell: str | None = None, local_ns=None):
        """Ask GenomicLLM: ``%genomicllm ACGT, GC content =`` or a ``%%genomicllm`` cell of questions / FASTA."""
        try:
            args = parse_argstring(self.genomicllm, line)
        except UsageError:
            raise
        except SystemExit:  # argparse on bad options
            raise UsageError(f"could not read the options {line!r}; see %genomicllm? for help") from None
        for key in ("task", "question", "model", "out", "variants", "reference", "cds"):
            setattr(args, key, _unquote(getattr(args, key)))
        args.item = [_unquote(i) for i in args.item]
        namespace = {**(self.shell.user_ns if self.shell else {}), **(local_ns or {})}
        fmt = args.format or self.default_format
        model = args.model or self.model or None
        backend = args.backend or self.backend
        try:
            if args.variants:
                view = self._variants(args, cell, namespace, model, backend)
            elif args.explain:
                view = self._explain(args, cell, namespace, model, backend)
            else:
                answers = self._answer(args, cell, namespace, model, backend)
        except GenomicLLMError as exc:
            raise UsageError(str(exc)) from None
        if args.variants or args.explain:
            if args.out:
                self.shell.user_ns[args.out] = view
            return view.to_dataframe() if fmt == "table" else view
        if args.out:
            self.shell.user_ns[args.out] = answers
        if fmt == "table":
            return answers.to_dataframe()
        if fmt == "json":
            return JSONAnswers(answers.answers)
        return answers

    def _explain(self, args, cell, namespace, model, backend) -> ExplanationView:
        """``--explain``: a question (line), one per line (cell), or FASTA records with ``--task``."""
        text = interpolate(" ".join(args.prompt) if cell is None else cell, namespace).strip()
        if not text:
            raise UsageError("write a classification question to explain, e.g. %genomicllm --explain TATAAAAGGC..., core promoter =")
        progress = _progress(None)
        try:
            if text.startswith(">") or args.task:
                if not args.task:
                    raise UsageError("a FASTA cell needs --task (e.g. %%genomicllm --explain --task promoter)")
                box = io.StringIO(text if text.startswith(">") else f">sequence\n{text}")
                box.name = "cell"
                records = read_fasta(box)
                items = parse_item_pairs(args.item, "--item")
                return ExplanationView(
                    explain_records(args.task, records, args.question, items, model, backend, window_size=args.window_size, progress=progress.update)
                )
            lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
            return ExplanationView([explain(line, model=model, backend=backend, progress=progress.update) for line in lines])
        finally:
            progress.close()

    def _variants(self, args, cell, namespace, model, backend) -> VariantTable:
        """``--variants``: every ALT of a VCF file (or of the cell's VCF text) against ``--reference``."""
        import tempfile
        from pathlib import Path

        if args.explain:
            raise UsageError("use --variants or --explain, not both")
        if not args.task:
            raise UsageError("--variants needs --task (a classification task, e.g. --task promoter)")
        if not args.reference:
            raise UsageError("--variants needs --reference REF.fa (the FASTA the VCF's positions refer to)")
        vcf_path = interpolate(args.variants, namespace)
        progress = _progress(None)
        try:
            with tempfile.TemporaryDirectory(prefix="genomicllm-") as tmp:
                if vcf_path == "-":
                    text = interpolate(cell or "", namespace).strip()
                    if not text:
                        raise UsageError("--variants without a path reads VCF text from the cell, and the cell is empty")
                    vcf_path = str(Path(tmp) / "cell.vcf")
                    Path(vcf_path).write_text(text + "\n")
                effects = variant_effects(
                    vcf_path,
                    interpolate(args.reference, namespace),
                    args.task,
                    args.question,
                    parse_item_pairs(args.item, "--item"),
                    args.window_size or 300,
                    interpolate(args.cds, namespace) if args.cds else None,
                    model,
                    backend,
                    self.batch_size,
                    progress.update,
                )
        finally:
            progress.close()
        return VariantTable(effects)

    def _answer(self, args, cell, namespace, model, backend) -> AnswerTable:
        if cell is None:
            text = " ".join(args.prompt).strip()
            if not text:
                raise UsageError("write a question after %genomicllm, e.g. %genomicllm ACGTTGCA, GC content =")
            return AnswerTable([ask(interpolate(text, namespace), model=model, backend=backend)])
        body = interpolate(cell, namespace).strip()
        if not body:
            raise UsageError("the cell is empty: write one question per line, or a FASTA block with --task")
        if body.startswith(">") or args.task:
            if not args.task:
                raise UsageError("a FASTA cell needs --task (e.g. %%genomicllm --task promoter)")
            items = parse_item_pairs(args.item, "--item")
            box = io.StringIO(body if body.startswith(">") else f">sequence\n{body}")
            box.name = "cell"
            records = read_fasta(box)
            progress = _progress(None)
            try:
                answers = list(
                    predict(
                        args.task,
                        records,
                        question=args.question,
                        items=items,
                        model=model,
                        backend=backend,
                        batch_size=self.batch_size,
                        window_size=args.window_size,
                        window_step=args.window_step,
                        progress=progress.update,
                    )
                )
            finally:
                progress.close()
            return AnswerTable(answers)
        lines = [ln.strip() for ln in body.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        progress = _progress(len(lines))
        try:
            return AnswerTable(ask(lines, model=model, backend=backend, batch_size=self.batch_size, progress=progress.update))
        finally:
            progress.close()


def _unquote(value):
    """IPython splits magic options without removing quotes; accept --question "core promoter"."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _progress(total):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="GenomicLLM", unit="seq", delay=2.0, leave=False)
