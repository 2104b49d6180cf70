"""Genome-scale scans: every window's label probability, streamed from a FASTA of any size.

Why a reader of its own: ``fasta.read_sequences`` holds one record at a time, which for a
chromosome is hundreds of MB. A scan only ever needs the current window, so this reader keeps a
rolling buffer of at most ``window_size + piece`` bases: memory is flat whatever the input's size
(``bench/`` measures it from 10 to 100 Mb). The lines are read and checked with the same code as
every other FASTA input (``fasta._pieces``, ``fasta._check``), so errors name file, line and column.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import IO, Iterator

from .alphabet import normalise_sequence
from .errors import FastaError, InputError
from .fasta import _check, _pieces, open_text
from .grammar import make_prompt


#: header items of a chunk written by :func:`split_fasta`: where the chunk starts on its record, and
#: whether the record goes on in the next chunk (then the chunk adds no end-anchored window)
OFFSET_ITEM, CONTINUES_ITEM = "genomicllm_offset", "genomicllm_continues"


def _chunk_header(header: str, name: str, lineno: int) -> tuple[int, bool]:
    from .fasta import header_items

    parts = header.split(None, 1)
    items = dict(header_items(parts[1] if len(parts) > 1 else ""))
    try:
        offset = int(items.get(OFFSET_ITEM, "0"))
    except ValueError:
        raise FastaError(f"{name}, line {lineno}: {OFFSET_ITEM}= must be a whole number") from None
    return offset, items.get(CONTINUES_ITEM) == "yes"


def fasta_windows(source: str | Path | IO, size: int, step: int, label: str | None = None) -> Iterator[tuple[str, int, str]]:
    """(record id, 0-based start, window) for every window of every record; the last window of a
    record ends at its end (as ``predict --window-size`` does); a record shorter than ``size`` is one
    window. A chunk written by :func:`split_fasta` reports starts on its whole record."""
    handle, name, owned = open_text(source, label)
    try:
        rid: str | None = None
        buf = ""  # bases from buf_start on
        buf_start = 0  # 0-based record position of buf[0]
        next_start = 0  # start of the next window to emit
        emitted_end = 0  # end of the last emitted window of this record
        offset, continues = 0, False
        seen = 0

        def finish():
            # the final window: anchored at the record end unless the last one already reached it
            # (or the record goes on in the next chunk, whose windows continue the grid)
            total = buf_start + len(buf)
            if total == 0:
                raise FastaError(f"{name}: record {rid!r} has an empty sequence")
            if emitted_end < total and not continues:
                s = max(0, total - size)
                yield rid, offset + s, buf[s - buf_start :]

        column = 0
        for lineno, text, starts in _pieces(handle, name):
            if starts:
                column = 0
                stripped = text.strip()
                if not stripped or stripped.startswith(";"):
                    continue
                if stripped.startswith(">"):
                    if rid is not None:
                        yield from finish()
                    rid = stripped[1:].split()[0] if stripped[1:].strip() else None
                    if rid is None:
                        raise FastaError(f"{name}, line {lineno}: a '>' header line with no sequence name")
                    offset, continues = _chunk_header(stripped[1:], name, lineno)
                    seen += 1
                    buf, buf_start, next_start, emitted_end = "", 0, 0, 0
                    continue
                if rid is None:
                    raise FastaError(f"{name}, line {lineno}: sequence data before the first '>' header; is this a FASTA file?")
            elif rid is None:
                continue
            chunk = "".join(text.split())
            _check(name, lineno, column, chunk)
            column += len(text)
            buf += normalise_sequence(chunk)
            while next_start + size <= buf_start + len(buf):
                s = next_start - buf_start
                yield rid, offset + next_start, buf[s : s + size]
                emitted_end = next_start + size
                next_start += step
            # keep only what a later window can still need: from the next start, and the last
            # `size` bases (the record's final window is anchored at its end)
            keep_from = min(next_start - buf_start, len(buf) - size)
            if keep_from > 0:
                buf, buf_start = buf[keep_from:], buf_start + keep_from
        if rid is not None:
            yield from finish()
        if seen == 0:
            raise FastaError(f"{name}: no FASTA records found (a record starts with a '>' header line)")
    finally:
        if owned:
            handle.close()


def split_fasta(source, out_dir: str | Path, window_size: int, window_step: int, chunk_nt: int, label: str | None = None) -> list[Path]:
    """Cut a FASTA into chunk files of about ``chunk_nt`` nt (``chunk_0001.fa``, ...) whose scans,
    concatenated in order, equal the scan of the whole file: a long record is cut on the window grid
    (chunk starts are multiples of the step), each chunk carries the ``window - step`` bases the
    windows starting in it need, its header says where it starts on the record and whether the
    record goes on, and a record's tail shorter than a window stays with the chunk before it.
    Short records are packed together. For Galaxy's genome-scan workflow: one scan job per chunk."""
    from .fasta import read_fasta

    if window_size < 1 or not 1 <= window_step <= window_size:
        raise InputError("--window-size must be positive and --window-step between 1 and the window size")
    if chunk_nt < 1:
        raise InputError(f"--chunk-size must be a positive number of nucleotides, not {chunk_nt}")
    per = -(-max(chunk_nt, window_size) // window_step) * window_step  # on the window grid, at least one window
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    current: list[str] = []
    size = 0

    def flush():
        nonlocal current, size
        if current:
            path = out / f"chunk_{len(files) + 1:04d}.fa"
            path.write_text("".join(current))
            files.append(path)
            current, size = [], 0

    for rec in read_fasta(source, label):
        seq, n = rec.sequence, len(rec.sequence)
        starts = list(range(0, n, per))
        while len(starts) > 1 and n - starts[-1] < window_size:
            starts.pop()  # a tail shorter than a window stays with the chunk before it
        for k, s in enumerate(starts):
            last = k == len(starts) - 1
            piece = seq[s:] if last else seq[s : s + per + window_size - window_step]
            header = f">{rec.id} {OFFSET_ITEM}={s}" + ("" if last else f" {CONTINUES_ITEM}=yes")
            if len(starts) > 1 or size + len(piece) > per:
                flush()
            current.append(header + "\n" + "\n".join(piece[i : i + 60] for i in range(0, len(piece), 60)) + "\n")
            size += len(piece)
            if len(starts) > 1:
                flush()
    flush()
    return files


def scan(
    llm,
    source,
    task: str,
    question: str | None = None,
    items=None,
    window_size: int = 300,
    window_step: int | None = None,
    label: str | None = None,
    batch_size: int = 64,
    progress=None,
    input_label: str | None = None,
) -> Iterator[tuple[str, int, int, float, str]]:
    """(record, start0, end, probability of ``label``, answered label) per window, streamed. The
    options are checked when this is called, before any input is read."""
    from .engine import task_and_question

    t, q = task_and_question(task, question, classification_for="scan")
    label = label or t.labels[0]
    if label not in t.labels:
        raise InputError(f"--label {label!r} is not a label of task {t.id} ({', '.join(t.labels)})")
    step = window_step or window_size
    if window_size < 1 or step < 1:
        raise InputError("--window-size and --window-step must be positive numbers of nucleotides")
    if step > window_size:
        raise InputError(f"--window-step {step} is larger than --window-size {window_size}: bases between windows would never be read")
    return _scan(llm, fasta_windows(source, window_size, step, input_label), q, items, label, batch_size, progress)


def _scan(llm, windows, question, items, label, batch_size, progress):
    from .engine import in_chunks

    for part in in_chunks(windows, batch_size * 4):
        prompts = [make_prompt(question, w, items) for _, _, w in part]
        spans = [(s + 1, s + len(w)) for _, s, w in part]
        where = [f"record {rid!r}" for rid, _, _ in part]
        for (rid, s, w), a in zip(part, llm.answer(prompts, batch_size=batch_size, where=where, windows=spans)):
            yield rid, s, s + len(w), a.labels[label], a.answer
        if progress:
            progress(len(part))


def write_bed(hits, stream, threshold: float, label: str) -> int:
    """BED6 of the windows whose probability reaches ``threshold`` (score = 1000 x probability)."""
    n = 0
    name = label.replace(" ", "_")
    for rid, s, e, p, _ in hits:
        if p >= threshold:
            stream.write(f"{rid}\t{s}\t{e}\t{name}\t{int(round(1000 * p))}\t.\n")
            n += 1
    return n


def write_bedgraph(hits, stream, label: str) -> int:
    """bedGraph of every window's probability; overlapping windows are cut in the middle of their
    overlap, so the intervals a genome browser draws never overlap."""
    stream.write(f'track type=bedGraph name="GenomicLLM p({label})"\n')
    n, prev, covered = 0, None, None
    for hit in chain(hits, [None]):
        if prev is not None:
            rid, s, e, p, _ = prev
            same = hit is not None and hit[0] == rid
            end = (hit[1] + e) // 2 if same and hit[1] < e else e
            start = s if covered is None else max(s, covered)
            if end > start:
                stream.write(f"{rid}\t{start}\t{end}\t{p:.4f}\n")
                n += 1
            covered = max(end, start) if same else None
        prev = hit
    return n
