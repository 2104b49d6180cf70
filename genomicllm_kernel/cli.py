"""``genomicllm``: the command line for pipeline authors.

Exit codes: 0 success; 2 bad input (one line on stderr, no traceback); 1 internal error (a bug, or
a failure that is not the input's fault: training divergence, a data source that cannot be fetched);
130 / 143 after Ctrl-C / SIGTERM. Set ``GENOMICLLM_DEBUG=1`` to see the traceback of an internal error.

``--output`` is written to a hidden temporary file beside it (``.NAME.XXXXXXXX``) and renamed when
complete, so a failed or interrupted run leaves no partial output: the temporary file is removed on
every error, Ctrl-C and SIGTERM. Only SIGKILL (which no process can catch) can leave one behind.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

from . import __version__
from .api import BACKENDS
from .errors import GenomicLLMError, InputError
from .grammar import parse_item_pairs

FORMATS = ("table", "tsv", "jsonl")


class Terminated(BaseException):
    """SIGTERM (a Galaxy job killed, a time-out): unwinds like Ctrl-C so temporary files are removed."""


def _on_sigterm(signum, frame):
    raise Terminated()


class _LineProgress:
    """Progress as plain lines on stdout every 30 s, for batch jobs (Galaxy) where no terminal shows a bar."""

    def __init__(self, desc: str, every: float = 30.0):
        import time

        self.desc, self.every, self.n, self.t0 = desc, every, 0, time.time()
        self.last = self.t0
        self._time = time.time

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self._time()
        if now - self.last >= self.every:
            self.last = now
            print(f"{self.desc}: {self.n} answered ({self.n / (now - self.t0):.0f}/s)", flush=True)

    def close(self) -> None:
        if self._time() - self.t0 >= self.every:
            print(f"{self.desc}: {self.n} answered in {self._time() - self.t0:.0f} s", flush=True)


def _progress_bar(total: int | None, desc: str, output: str | None = None):
    """A tqdm bar on stderr (terminal, after two seconds), or progress lines on stdout when the
    answers go to a file and nobody watches a terminal (a Galaxy job)."""
    if not sys.stderr.isatty() and output not in (None, "-"):
        return _LineProgress(desc)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="seq", delay=2.0, file=sys.stderr, disable=None, leave=False)


def _label_columns(answers) -> list[str]:
    cols: list[str] = []
    for a in answers:
        for label in a.labels or {}:
            if label not in cols:
                cols.append(label)
    return cols


def _fmt_prob(p) -> str:
    return "" if p is None else f"{p:.4f}"


def _header(labels: list[str]) -> list[str]:
    return ["index", "id", "start", "end", "task", "question", "answer", "probability"] + [f"p({x})" for x in labels] + ["check", "agree", "model"]


def _row(a, labels: list[str]) -> list[str]:
    start, end = (str(a.window[0]), str(a.window[1])) if a.window else ("", "")
    row = [str(a.index), a.id or "", start, end, a.task, a.question, a.answer if a.answer is not None else "", _fmt_prob(a.probability)]
    row += [_fmt_prob((a.labels or {}).get(x)) if a.labels else "" for x in labels]
    row += [
        a.check.expected if a.check else "",
        "" if not a.check or a.check.agree is None else ("agree" if a.check.agree else "disagree"),
        a.model or "none (exact only)",
    ]
    return row


def write_answers(answers, fmt: str, stream, labels: list[str] | None = None) -> None:
    """Write answers; jsonl, and tsv when the label columns are known up front, stream in constant memory."""
    if fmt == "jsonl":
        for a in answers:
            stream.write(json.dumps(a.to_dict()) + "\n")
        return
    if fmt == "tsv" and labels is not None:
        stream.write("\t".join(_header(labels)) + "\n")
        for a in answers:
            stream.write("\t".join(c.replace("\t", " ") for c in _row(a, labels)) + "\n")
        return
    answers = list(answers)
    labels = _label_columns(answers)
    if fmt == "tsv":
        write_answers(answers, fmt, stream, labels)
        return
    header, rows = _header(labels), [_row(a, labels) for a in answers]
    widths = [min(60, max([len(h)] + [len(r[i]) for r in rows])) for i, h in enumerate(header)]
    cut = lambda s, w: s if len(s) <= w else s[: w - 1] + "…"  # noqa: E731
    stream.write("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip() + "\n")
    for r in rows:
        stream.write("  ".join(cut(c, w).ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")
    for a in answers:
        if a.note:
            stream.write(f"note: {a.note}\n")
            break


def check_output_path(output: str | None) -> Path | None:
    """Refuse an output path that cannot be written before any work is done (exit 2, not 1)."""
    if output in (None, "-"):
        return None
    out = Path(output)
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise InputError(f"--output {output}: is a directory; give a file name")
    if not parent.is_dir():
        raise InputError(f"--output {output}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"--output {output}: the folder {parent} is not writable")
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_output(answers, fmt: str, output: str | None, labels: list[str] | None = None) -> None:
    _write_atomically(output, lambda stream: write_answers(answers, fmt, stream, labels))


def _write_atomically(output: str | None, write) -> None:
    """``write(stream)`` to stdout, or to a hidden temporary file renamed to ``output`` when complete."""
    out = check_output_path(output)
    if out is None:
        write(sys.stdout)
        return
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent if str(out.parent) else ".")
    except OSError as exc:
        raise InputError(f"--output {output}: cannot be written ({exc.strerror})") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a finished output honours the umask
        with os.fdopen(fd, "w") as fh:
            write(fh)
        os.replace(tmp, out)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            raise GenomicLLMError(f"--output {output}: writing failed ({exc.strerror or exc})") from None
        raise


def _parse_items(pairs: list[str]) -> dict[str, str]:
    return parse_item_pairs(pairs or [], "--item")


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise InputError(f"{name} must be a positive whole number, not {value}")


def _prompt_lines(batch: str | None):
    """(file line number, prompt) for every prompt line, read lazily; '#' and blank lines are skipped."""
    from .fasta import open_text

    if batch in (None, "-"):
        if sys.stdin.isatty():
            raise InputError("no prompt given: write 'genomicllm ask \"ACGT, GC content =\"' or pipe prompts on stdin")
        handle, name, owned = open_text(sys.stdin.buffer, "stdin")
    else:
        handle, name, owned = open_text(batch)

    def lines():
        seen = 0
        try:
            for lineno, raw in enumerate(iter(lambda: handle.readline(1_000_001), ""), start=1):
                if len(raw) > 1_000_000:
                    raise InputError(f"{name}, line {lineno}: a prompt longer than 1,000,000 characters")
                text = raw.strip()
                if text and not text.startswith("#"):
                    seen += 1
                    yield lineno, text
        finally:
            if owned:
                handle.close()
        if not seen:
            raise InputError(f"{name}: no prompts found (one prompt per line)")

    return lines()


def _parsed(numbered):
    from .grammar import parse_prompt

    for lineno, text in numbered:
        label = f"line {lineno}" if lineno is not None else None
        try:
            yield label, parse_prompt(text)
        except InputError as exc:
            raise type(exc)(f"{label}: {exc}" if label else str(exc)) from None


def cmd_ask(args) -> int:
    """Prompts stream as predict's records do: read, parsed and answered in chunks, so a batch of
    any size runs in flat memory and jsonl / tsv answers appear while later lines are still read."""
    from .api import answer_prompts
    from .engine import in_chunks

    if args.prompt and args.batch:
        raise InputError("give a prompt or --batch FILE, not both")
    _positive("--batch-size", args.batch_size)
    check_output_path(args.output)
    numbered = iter([(None, args.prompt)]) if args.prompt else _prompt_lines(args.batch)

    def answers():
        offset = 0
        for chunk in in_chunks(_parsed(numbered), args.batch_size * 8):
            yield from answer_prompts(
                [p for _, p in chunk],
                model=args.model,
                backend=args.backend,
                batch_size=args.batch_size,
                progress=bar.update,
                where=[w for w, _ in chunk],
                offset=offset,
            )
            offset += len(chunk)

    bar = _progress_bar(None, "asking", args.output)
    try:
        _write_output(answers(), args.format, args.output)
    finally:
        bar.close()
    return 0


def cmd_predict(args) -> int:
    from .api import predict
    from .fasta import read_sequences
    from .registry import get_task

    items = _parse_items(args.item)
    task = get_task(args.task)
    _positive("--batch-size", args.batch_size)
    check_output_path(args.output)
    records = read_sequences(args.fasta, args.input_format, args.input_label, record_items=args.record_items)
    bar = _progress_bar(None, f"predicting {args.task}", args.output)
    try:
        answers = predict(
            args.task,
            records,
            question=args.question,
            items=items,
            model=args.model,
            backend=args.backend,
            batch_size=args.batch_size,
            window_size=args.window_size,
            window_step=args.window_step,
            progress=bar.update,
        )
        _write_output(answers, args.format, args.output, list(task.labels))  # streams: memory flat with input size
    finally:
        bar.close()
    return 0


def _loaded_model(args):
    from .api import GenomicLLM

    return GenomicLLM.from_pretrained(args.model, args.backend)


def write_explanations(explanations, fmt: str, stream) -> None:
    """tsv (one row per base), jsonl (one object per sequence) or bedgraph (importance per base)."""
    if fmt == "tsv":
        stream.write("id\tposition\tbase\timportance\tdelta_A\tdelta_C\tdelta_G\tdelta_T\n")
    elif fmt == "bedgraph":
        stream.write('track type=bedGraph name="GenomicLLM importance"\n')
    for e in explanations:
        if fmt == "jsonl":
            stream.write(json.dumps(e.to_dict()) + "\n")
            continue
        for rid, pos, base, imp, *d in e.rows():
            if fmt == "tsv":
                stream.write("\t".join([rid, str(pos), base, f"{imp:.6f}"] + [f"{x:.6f}" for x in d]) + "\n")
            else:
                stream.write(f"{rid or 'sequence'}\t{pos - 1}\t{pos}\t{imp:.6f}\n")


def cmd_explain(args) -> int:
    """In-silico mutagenesis of a prompt, or of every record (window) of a FASTA (mutagenesis.py)."""
    from .engine import prediction_jobs
    from .mutagenesis import explain_jobs, tiled_jobs
    from .fasta import read_sequences
    from .grammar import parse_prompt

    if bool(args.prompt) == bool(args.fasta):
        raise InputError('give a prompt ("SEQ, core promoter =") or --task T --fasta FILE, not both and not neither')
    _positive("--batch-size", args.batch_size)
    check_output_path(args.output)
    if args.prompt:
        prompt = parse_prompt(args.prompt)
        jobs = iter([(None, prompt, None)])
        from .mutagenesis import check_explainable

        check_explainable(prompt)
    else:
        if not args.task:
            raise InputError("--fasta needs --task (see 'genomicllm tasks')")
        records = read_sequences(args.fasta, args.input_format, args.input_label, record_items=args.record_items)
        jobs = tiled_jobs(prediction_jobs(args.task, records, args.question, _parse_items(args.item), args.batch_size), args.window_size)
    llm = _loaded_model(args)
    bar = _progress_bar(None, "explaining (variant sequences)", args.output)
    try:
        _write_atomically(args.output, lambda stream: write_explanations(explain_jobs(llm, jobs, args.batch_size, bar.update), args.format, stream))
    finally:
        bar.close()
    return 0


def cmd_variants(args) -> int:
    """Label probabilities of ref and alt windows for every VCF record (variants.py)."""
    from .variants import Summary, open_reference, open_vcf, read_cds, score_variants, write_tabular, write_vcf

    _positive("--batch-size", args.batch_size)
    _positive("--window", args.window)
    check_output_path(args.output)
    vcf = open_vcf(args.vcf)
    fasta = open_reference(args.reference)
    cds = read_cds(args.cds)
    llm = _loaded_model(args)
    summary = Summary()
    bar = _progress_bar(None, "scoring variants", args.output)
    try:
        results = score_variants(
            llm, vcf, fasta, args.task, args.question, _parse_items(args.item), args.window, cds, args.batch_size, summary, bar.update
        )
        if args.format == "vcf":
            _write_atomically(args.output, lambda stream: write_vcf(results, vcf, stream))
        else:
            _write_atomically(args.output, lambda stream: write_tabular(results, stream))
    finally:
        bar.close()
    print(summary.line(), file=sys.stderr)
    return 0


def cmd_scan(args) -> int:
    """Every window's label probability over a FASTA, streamed, as BED hits or a bedGraph (scan.py)."""
    from .registry import get_task
    from .scan import scan, write_bed, write_bedgraph

    _positive("--batch-size", args.batch_size)
    _positive("--window-size", args.window_size)
    _positive("--window-step", args.window_step)
    if not 0.0 <= args.threshold <= 1.0:
        raise InputError(f"--threshold must be a probability between 0 and 1, not {args.threshold}")
    check_output_path(args.output)
    task = get_task(args.task)
    label = args.label or (task.labels[0] if task.labels else None)
    llm = _loaded_model(args)
    counts = {}
    bar = _progress_bar(None, "scanning (windows)", args.output)
    try:
        hits = scan(
            llm,
            args.fasta,
            args.task,
            args.question,
            _parse_items(args.item),
            args.window_size,
            args.window_step,
            label,
            args.batch_size,
            bar.update,
            args.input_label,
        )

        def write(stream):
            counts["n"] = write_bed(hits, stream, args.threshold, label) if args.format == "bed" else write_bedgraph(hits, stream, label)

        _write_atomically(args.output, write)
    finally:
        bar.close()
    what = f"windows with p({label}) >= {args.threshold}" if args.format == "bed" else "bedGraph intervals"
    print(f"scan: {counts.get('n', 0)} {what}", file=sys.stderr)
    return 0


def cmd_split_fasta(args) -> int:
    """Chunks of a FASTA whose scans, concatenated in order, equal the whole file's scan (scan.split_fasta);
    written into a hidden folder beside ``--out-dir`` and renamed when complete."""
    import shutil

    from .scan import split_fasta

    out = Path(args.out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out-dir {out}: exists and is not an empty folder")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"--out-dir {out}: the folder {parent} does not exist or is not writable")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        files = split_fasta(args.fasta, tmp, args.window_size, args.window_step or args.window_size, args.chunk_size, args.input_label)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"split-fasta: {len(files)} chunks in {out}", file=sys.stderr)
    return 0


def cmd_tasks(args) -> int:
    from .baselines import format_figure, load_evaluation, load_same_rows_baseline, question_figures
    from .model import default_model_dir
    from .registry import TASKS

    model_dir = Path(args.model) if getattr(args, "model", None) else default_model_dir()
    evaluation = load_evaluation(model_dir)
    same_rows = load_same_rows_baseline(model_dir, "dev", evaluation or {})
    for t in TASKS.values():
        labels = f"  labels: {' / '.join(t.labels)}" if t.labels else ""
        print(f"{t.id:22s} {t.answer_kind:8s} keys: {' | '.join(t.question_keys)}{labels}")
        for row in question_figures(t.id, evaluation, same_rows) if evaluation else []:
            print(f"{'':31s}dev {format_figure(row)}")
    if evaluation:
        print(f"(dev figures: {evaluation.get('model')}, leak-filtered dev split; 'genomicllm evaluate' reproduces them)")
    return 0


def cmd_data_build(args) -> int:
    from .data.build import build

    build(
        Path(args.out),
        small=args.small,
        seed=args.seed,
        cache=Path(args.cache) if args.cache else None,
        fasta=Path(args.fasta) if args.fasta else None,
        gtf=Path(args.gtf) if args.gtf else None,
        enhancers=Path(args.enhancers) if args.enhancers else None,
        progress=lambda m: print(m, file=sys.stderr),
    )
    return 0


def cmd_train(args) -> int:
    from .training import TrainConfig, train

    cfg = TrainConfig.load(args.config)
    for key in ("data", "out"):
        if getattr(args, key):
            setattr(cfg, key, getattr(args, key))
    if args.max_steps:
        cfg.max_steps = args.max_steps
    path = train(cfg, resume=args.resume, max_minutes=args.max_minutes, stop_at_step=args.stop_at_step)
    print(f"checkpoint: {path}", file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from .evaluation import evaluate

    evaluate(
        args.model,
        Path(args.data),
        args.split,
        tasks=args.tasks,
        out=Path(args.out) if args.out else None,
        limit=args.limit,
        backend=args.backend,
        name=args.name,
        label_limit=args.label_limit,
    )
    return 0


def cmd_card(args) -> int:
    from .model_card import write_card

    print(write_card(Path(args.model), args.run and Path(args.run), Path(args.data)), file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    try:
        from genomicllm_export import export_model
    except ImportError:
        raise InputError("export needs the ONNX extras: pip install 'genomicllm[cpu]'") from None
    export_model(args.model, args.out, quantize=args.quantize, check=not args.no_check, progress=lambda m: print(m, file=sys.stderr))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genomicllm", description="Ask a DNA sequence questions with GenomicLLM.")
    p.add_argument("--version", action="version", version=f"genomicllm {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def model_opts(sp, formats=FORMATS, batch_size=32):
        sp.add_argument("--model", help="model folder or a zip of one (default: the shipped model, or $GENOMICLLM_MODEL)")
        sp.add_argument(
            "--backend", default="auto", choices=BACKENDS, help="auto (default): ONNX Runtime when the model has its ONNX export, else PyTorch"
        )
        sp.add_argument("--format", choices=formats, default=formats[0], help=f"output format (default: {formats[0]})")
        sp.add_argument("--output", "-o", help="write to this file instead of stdout (written atomically)")
        sp.add_argument("--batch-size", type=int, default=batch_size)

    def task_opts(sp, required=True):
        sp.add_argument("--task", required=required, help="task id (see 'genomicllm tasks')")
        sp.add_argument("--question", help="question key of the task (default: its first key)")
        sp.add_argument(
            "--item", action="append", metavar="NAME=VALUE", help="context item added to every prompt (e.g. 'transcription factor=GUE tf_2')"
        )

    a = sub.add_parser("ask", help="answer prompts written in the GenomicLLM grammar")
    a.add_argument("prompt", nargs="?", help='e.g. "ACGTTGCA, GC content ="')
    a.add_argument("--batch", metavar="FILE", help="one prompt per line ('-' for stdin)")
    model_opts(a)
    a.set_defaults(func=cmd_ask)

    pr = sub.add_parser("predict", help="ask one task about every sequence of a FASTA or tabular file")
    pr.add_argument("--task", required=True, help="task id (see 'genomicllm tasks')")
    pr.add_argument("--fasta", required=True, help="FASTA (or id<TAB>sequence) file, gzip allowed")
    pr.add_argument("--input-format", choices=("auto", "fasta", "tabular"), default="auto")
    pr.add_argument("--input-label", help="name of the input in error messages (default: its path)")
    pr.add_argument("--question", help="question key of the task (default: its first key)")
    pr.add_argument("--item", action="append", metavar="NAME=VALUE", help="context item added to every prompt")
    pr.add_argument("--window-size", type=int, help="answer long sequences window by window (nt)")
    pr.add_argument(
        "--window-step", type=int, help="step between windows (nt; default: the window size; at most the window size, so that every base is read)"
    )
    pr.add_argument(
        "--record-items",
        action="store_true",
        help="add each record's own items to its prompt: the FASTA header's name=value pairs "
        "('>r1 symbol=BRCA1' or '>r1 symbol=BRCA1; map location=17q21.31') or a tabular file's named "
        "extra columns (first line '#id<TAB>sequence<TAB>symbol'); a record's item overrides --item",
    )
    model_opts(pr)
    pr.set_defaults(func=cmd_predict)

    x = sub.add_parser("explain", help="which bases drove a classification: in-silico mutagenesis (every position x every other base)")
    x.add_argument("prompt", nargs="?", help='e.g. "TATAAAAG..., core promoter ="')
    task_opts(x, required=False)
    x.add_argument("--fasta", help="FASTA (or id<TAB>sequence) file: explain every record")
    x.add_argument("--input-format", choices=("auto", "fasta", "tabular"), default="auto")
    x.add_argument("--input-label", help="name of the input in error messages (default: its path)")
    x.add_argument("--window-size", type=int, help="explain long records window by window (nt, non-overlapping)")
    x.add_argument("--record-items", action="store_true", help="add each record's header name=value pairs to its prompt (as predict does)")
    model_opts(x, ("tsv", "jsonl", "bedgraph"), batch_size=64)
    x.set_defaults(func=cmd_explain)

    v = sub.add_parser("variants", help="effect of each VCF variant on a classification: ref vs alt window probabilities")
    v.add_argument("--vcf", required=True, help="VCF (plain or bgzip)")
    v.add_argument("--reference", required=True, help="reference FASTA (plain or bgzip; indexed if it has a .fai)")
    task_opts(v)
    v.add_argument("--window", type=int, default=300, help="window centred on each variant (nt, default 300)")
    v.add_argument("--cds", help="BED of coding segments (strand in column 6): SNVs inside one get their protein change")
    model_opts(v, ("vcf", "tabular"))
    v.set_defaults(func=cmd_variants)

    sc = sub.add_parser("scan", help="every window's label probability over a FASTA (a genome), streamed, as BED or bedGraph")
    sc.add_argument("--fasta", required=True, help="FASTA file (gzip allowed), read as a stream: memory stays flat")
    sc.add_argument("--input-label", help="name of the input in error messages (default: its path)")
    task_opts(sc)
    sc.add_argument("--window-size", type=int, required=True, help="window length (nt)")
    sc.add_argument("--window-step", type=int, help="step between windows (nt; default the window size)")
    sc.add_argument("--label", help="label whose probability is reported (default: the task's first label, e.g. True)")
    sc.add_argument("--threshold", type=float, default=0.5, help="BED: report windows whose probability is at least this (default 0.5)")
    model_opts(sc, ("bed", "bedgraph"), batch_size=64)
    sc.set_defaults(func=cmd_scan)

    sp = sub.add_parser("split-fasta", help="cut a FASTA into chunks for parallel scan jobs (their scans, concatenated, equal the whole scan)")
    sp.add_argument("--fasta", required=True, help="FASTA file (gzip allowed)")
    sp.add_argument("--input-label", help="name of the input in error messages (default: its path)")
    sp.add_argument("--window-size", type=int, required=True, help="the scan's window size (nt)")
    sp.add_argument("--window-step", type=int, help="the scan's window step (nt; default the window size)")
    sp.add_argument("--chunk-size", type=int, default=5_000_000, help="about this many nt per chunk (default 5,000,000)")
    sp.add_argument("--out-dir", required=True, help="new folder for chunk_0001.fa, chunk_0002.fa, ...")
    sp.set_defaults(func=cmd_split_fasta)

    t = sub.add_parser("tasks", help="list tasks, question keys, labels and the model's dev figure per question")
    t.add_argument("--model", help="model folder whose eval_dev.json to show (default: the shipped model)")
    t.set_defaults(func=cmd_tasks)

    d = sub.add_parser("data", help="build the training and evaluation corpus")
    dsub = d.add_subparsers(dest="data_command", required=True)
    b = dsub.add_parser("build", help="obtain public sources and write train/dev/test splits")
    b.add_argument("--out", default="data/corpus")
    b.add_argument("--small", action="store_true", help="a small corpus in seconds (for tests)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--cache", help="download cache (default: ~/.cache/genomicllm/data)")
    b.add_argument("--fasta", help="your genome FASTA (with --gtf): build annotation tasks from it")
    b.add_argument("--gtf", help="GTF or GFF3 annotation of --fasta")
    b.add_argument("--enhancers", help="BED of real enhancer annotations (hg19) to add")
    b.set_defaults(func=cmd_data_build)

    tr = sub.add_parser("train", help="train a model from a config file")
    tr.add_argument("--config", required=True)
    tr.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    tr.add_argument("--data")
    tr.add_argument("--out")
    tr.add_argument("--max-steps", type=int)
    tr.add_argument("--max-minutes", type=float, help="stop (and checkpoint) after this many minutes")
    tr.add_argument("--stop-at-step", type=int, help="stop (and checkpoint) at this step, keeping the config's schedule")
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="score a model on a corpus split with every metric of TASKS.md")
    ev.add_argument("--model", required=True)
    ev.add_argument("--data", default="data/corpus")
    ev.add_argument("--split", choices=("dev", "test"), default="dev")
    ev.add_argument("--tasks", nargs="*")
    ev.add_argument("--limit", type=int, default=300, help="examples per task and source (default 300)")
    ev.add_argument(
        "--label-limit", type=int, default=None, help="examples per classification task and source (default: --limit); one forward pass each"
    )
    ev.add_argument("--out", help="folder for the markdown table and JSON")
    ev.add_argument("--name", help="file stem for the outputs (default eval_<split>)")
    ev.add_argument("--backend", default="auto", choices=BACKENDS)
    ev.set_defaults(func=cmd_evaluate)
    ex = sub.add_parser("export", help="export a model to ONNX (Optimum) with a parity check against PyTorch")
    ex.add_argument("--model", required=True)
    ex.add_argument("--out", help="output folder (default: MODEL/onnx, where the auto backend finds it)")
    ex.add_argument("--quantize", choices=("int8",), help="also write model_int8.onnx (dynamic quantization)")
    ex.add_argument("--no-check", action="store_true", help="skip the parity check")
    ex.set_defaults(func=cmd_export)

    cd = sub.add_parser("card", help="write MODEL_CARD.md from the run log, evaluations and data card")
    cd.add_argument("--model", default="models/default")
    cd.add_argument("--run", help="training run folder (train_log.jsonl); default: the run the model's train_config.json names")
    cd.add_argument("--data", default="data/corpus")
    cd.set_defaults(func=cmd_card)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return args.func(args)
    except InputError as exc:  # the user's to fix: exit 2
        print(f"genomicllm: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except GenomicLLMError as exc:  # deliberate, but not bad input (divergence, a source that failed): exit 1
        print(f"genomicllm: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("genomicllm: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("genomicllm: terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, no traceback
        if os.environ.get("GENOMICLLM_DEBUG"):
            raise
        print(f"genomicllm: internal error: {type(exc).__name__}: {_one_line(exc)} (set GENOMICLLM_DEBUG=1 for details)", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
