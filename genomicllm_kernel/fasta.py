"""Streaming readers for batches of sequences: FASTA (multi-record, wrapped, any case) and tabular.

Readers are generators so that a 100,000-record file never sits in memory; every error names the
file and line so that a Galaxy user can find the bad record.

Why the input is opened exactly once and read in bounded pieces: a pipe (``--fasta <(...)``, a
FIFO, stdin) can be read only once, so sniffing gzip magic or the format with a second ``open``
drained it or blocked on it; and a source without newlines (``/dev/zero``, a binary file) must
fail on its first piece instead of growing one line in memory. Lines are read ``MAX_PIECE_CHARS``
at a time (a longer sequence line is checked piece by piece), and a record longer than
``MAX_RECORD_NT`` is refused with a message (a whole human chromosome 1 fits).
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from .alphabet import IUPAC_NUCLEOTIDES, first_invalid_character, normalise_sequence
from .errors import FastaError

MAX_PIECE_CHARS = 1 << 20
MAX_RECORD_NT = 300_000_000
FORMATS = ("auto", "fasta", "tabular")


@dataclass(frozen=True)
class Record:
    id: str
    sequence: str
    #: per-record annotation items (name, value): a FASTA header's ``name=value`` pairs or a tabular
    #: file's named extra columns, read when the caller asks for them (``record_items=True``)
    items: tuple[tuple[str, str], ...] = ()


def _open_path(path: Path) -> IO[bytes]:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FastaError(f"{path}: no such file") from None
    except OSError as exc:
        raise FastaError(f"{path}: cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise FastaError(f"{path}: is a directory, not a sequence file")
    try:
        return open(path, "rb")  # once: a FIFO or process substitution can be read only once
    except OSError as exc:
        raise FastaError(f"{path}: cannot be read ({exc.strerror})") from None


def _text_stream(raw: IO[bytes], name: str) -> IO[str]:
    """Decode a byte stream, looking through gzip and naming encodings this reader does not take."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
    magic = buffered.peek(4)[:4]
    if magic[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise FastaError(f"{name}: the file is UTF-16 encoded; save it as plain text (ASCII or UTF-8)")
    if magic[:2] == b"\x1f\x8b":
        buffered = io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"))  # type: ignore[arg-type]
    # utf-8-sig drops a byte-order mark (editors on Windows write one); other bytes fail the IUPAC check
    return io.TextIOWrapper(buffered, encoding="utf-8-sig", errors="replace", newline=None)


def open_text(source: str | Path | IO, label: str | None = None) -> tuple[IO[str], str, bool]:
    """(text handle, name for messages, whether we opened it and must close it): a path or stream
    opened once, through gzip, with a byte-order mark dropped and UTF-16 refused."""
    if hasattr(source, "read"):
        name = label or getattr(source, "name", "<stream>")
        if isinstance(source, io.TextIOBase):
            return source, str(name), False  # type: ignore[return-value]
        return _text_stream(source, str(name)), str(name), False  # type: ignore[arg-type]
    path = Path(source)
    raw = _open_path(path)
    try:
        return _text_stream(raw, label or str(path)), label or str(path), True
    except BaseException:
        raw.close()
        raise


def _pieces(handle: IO[str], name: str) -> Iterator[tuple[int, str, bool]]:
    """(line number, text without its newline, whether it starts a line) in bounded pieces."""
    lineno, at_start = 0, True
    try:
        while True:
            piece = handle.readline(MAX_PIECE_CHARS)
            if not piece:
                return
            if at_start:
                lineno += 1
            ends = piece.endswith("\n")
            yield lineno, piece.rstrip("\r\n") if ends else piece, at_start
            at_start = ends
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        what = "is truncated" if isinstance(exc, EOFError) else "is not a valid gzip file"
        raise FastaError(f"{name}: compressed input {what} ({exc})") from None
    except OSError as exc:
        raise FastaError(f"{name}: read failed ({exc.strerror or exc})") from None


def _check(name: str, lineno: int, column0: int, text: str) -> None:
    bad = first_invalid_character(text)
    if bad is not None:
        col, char = bad
        raise FastaError(
            f"{name}, line {lineno}, column {column0 + col}: character {char!r} is not an IUPAC nucleotide code "
            f"({''.join(sorted(IUPAC_NUCLEOTIDES))})"
        )


def _too_long(name: str, lineno: int, rid: str) -> FastaError:
    return FastaError(
        f"{name}, line {lineno}: record {rid!r} is longer than {MAX_RECORD_NT:,} nt, the longest "
        "record this reader holds; split it (e.g. per chromosome) first"
    )


def header_items(description: str) -> tuple[tuple[str, str], ...]:
    """``name=value`` pairs of a FASTA description, separated by ';' (names may hold spaces) or,
    without any ';', by white space; words without '=' are ignored."""
    parts = description.split(";") if ";" in description else description.split()
    items = []
    for part in parts:
        key, sep, value = part.partition("=")
        if sep and key.strip() and value.strip():
            items.append((" ".join(key.split()), value.strip()))
    return tuple(items)


def _fasta(pieces: Iterator[tuple[int, str, bool]], name: str, record_items: bool) -> Iterator[Record]:
    header: str | None = None
    header_line = 0
    parts: list[str] = []
    size = 0
    column = 0
    seen = 0
    for lineno, text, starts in pieces:
        if starts:
            column = 0
            stripped = text.strip()
            if not stripped or stripped.startswith(";"):
                continue
            if stripped.startswith(">"):
                if header is not None:
                    yield _finish(name, header, header_line, parts, record_items)
                    seen += 1
                if len(text) >= MAX_PIECE_CHARS:
                    raise FastaError(f"{name}, line {lineno}: a header line longer than {MAX_PIECE_CHARS:,} characters")
                header, header_line, parts, size = stripped[1:].strip(), lineno, [], 0
                if not header:
                    raise FastaError(f"{name}, line {lineno}: a '>' header line with no sequence name")
                continue
            if header is None:
                raise FastaError(f"{name}, line {lineno}: sequence data before the first '>' header; is this a FASTA file?")
        elif header is None:  # the rest of an over-long first line that was not a header
            continue
        chunk = "".join(text.split())
        _check(name, lineno, column, chunk)
        column += len(text)
        size += len(chunk)
        if size > MAX_RECORD_NT:
            raise _too_long(name, header_line, header.split()[0])
        parts.append(chunk)
    if header is not None:
        yield _finish(name, header, header_line, parts, record_items)
        seen += 1
    if seen == 0:
        raise FastaError(f"{name}: no FASTA records found (a record starts with a '>' header line)")


def _finish(name: str, header: str, lineno: int, parts: list[str], record_items: bool) -> Record:
    sequence = "".join(parts)
    rid = header.split()[0]
    if not sequence:
        raise FastaError(f"{name}, line {lineno}: record {rid!r} has an empty sequence")
    items = header_items(header[len(rid) :]) if record_items else ()
    return Record(rid, normalise_sequence(sequence), items)


def _whole_lines(pieces: Iterator[tuple[int, str, bool]], name: str) -> Iterator[tuple[int, str]]:
    """Join pieces back into lines (tabular rows), bounded by the longest record."""
    current: list[str] = []
    lineno = 0
    size = 0
    for n, text, starts in pieces:
        if starts and current:
            yield lineno, "".join(current)
            current, size = [], 0
        lineno = n
        current.append(text)
        size += len(text)
        if size >= MAX_PIECE_CHARS and "\t" not in current[0]:
            raise FastaError(
                f"{name}, line {lineno}: no tab in the first {MAX_PIECE_CHARS:,} characters of the line; "
                "expected FASTA ('>' header lines) or tabular (id<TAB>sequence)"
            )
        if size > MAX_RECORD_NT:
            raise FastaError(f"{name}, line {lineno}: a line longer than {MAX_RECORD_NT:,} characters")
    if current:
        yield lineno, "".join(current)


def _tabular(pieces: Iterator[tuple[int, str, bool]], name: str, record_items: bool, sniffed: bool) -> Iterator[Record]:
    seen = 0
    columns: list[str] = []
    first = True
    for lineno, line in _whole_lines(pieces, name):
        if not line.strip():
            continue
        if first:
            first = False
            head = line.lstrip("#").strip().split("\t")
            if line.startswith("#") or head[0].strip().lower() == "id":
                columns = [c.strip() for c in head]
                continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2:
            if sniffed:
                raise FastaError(f"{name}, line {lineno}: neither FASTA (records start with a '>' header line) nor tabular (id<TAB>sequence columns)")
            raise FastaError(f"{name}, line {lineno}: expected two tab-separated columns (id, sequence), found {len(cols)}")
        rid, seq = cols[0].strip(), cols[1].strip()
        if not seq:
            raise FastaError(f"{name}, line {lineno}: record {rid!r} has an empty sequence")
        _check(name, lineno, len(cols[0]) + 1, seq)
        items: tuple[tuple[str, str], ...] = ()
        if record_items:
            items = tuple((columns[k], v.strip()) for k, v in enumerate(cols[2:], start=2) if k < len(columns) and columns[k] and v.strip())
        seen += 1
        yield Record(rid or f"record{seen}", normalise_sequence(seq), items)
    if seen == 0:
        raise FastaError(f"{name}: no records found (expected id<TAB>sequence lines)")


def read_sequences(source: str | Path | IO, fmt: str = "auto", label: str | None = None, record_items: bool = False) -> Iterator[Record]:
    """Read FASTA or tabular records; ``auto`` looks at the first non-blank line.

    ``label`` names the input in error messages (default: its path). With ``record_items`` each
    record carries its header's ``name=value`` pairs (FASTA) or its named extra columns (tabular,
    names from a first line such as ``#id<TAB>sequence<TAB>symbol``).
    """
    if fmt not in FORMATS:
        raise FastaError(f"input format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handle, name, owned = open_text(source, label)
    try:
        pieces = _pieces(handle, name)
        buffered: list[tuple[int, str, bool]] = []
        if fmt == "auto":
            for piece in pieces:
                buffered.append(piece)
                if piece[1].strip():
                    break
            if not buffered:
                raise FastaError(f"{name}: the file is empty")
            first = buffered[-1][1].lstrip()
            if "\x00" in first:
                raise FastaError(f"{name}: a binary file (NUL bytes on line {buffered[-1][0]}), not FASTA or tabular text")
            fmt = "fasta" if first.startswith((">", ";")) else "tabular"
        stream = _chain(buffered, pieces)
        if fmt == "fasta":
            yield from _fasta(stream, name, record_items)
        else:
            yield from _tabular(stream, name, record_items, sniffed=bool(buffered))
    finally:
        if owned:
            handle.close()


def _chain(first: list, rest: Iterator) -> Iterator:
    yield from first
    yield from rest


def read_fasta(source: str | Path | IO, label: str | None = None, record_items: bool = False) -> Iterator[Record]:
    """Records of a FASTA file."""
    return read_sequences(source, "fasta", label, record_items)


def read_tabular(source: str | Path | IO, label: str | None = None, record_items: bool = False) -> Iterator[Record]:
    """Two tab-separated columns, id and sequence; a first line starting with '#' or 'id' is a header."""
    return read_sequences(source, "tabular", label, record_items)
