"""Streaming readers for batches of sequences: FASTA (multi-record, wrapped, any case) and tabular.

Readers are generators so that a 100,000-record file never sits in memory; every error names the
file and line so that a Galaxy user can find the bad record.
"""
from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from .alphabet import IUPAC_NUCLEOTIDES, first_invalid_character, normalise_sequence
from .errors import FastaError


@dataclass(frozen=True)
class Record:
    id: str
    sequence: str


def _open(source: str | Path | IO[str], label: str | None = None) -> tuple[IO[str], str]:
    if label:
        handle, _ = _open(source)
        return handle, label
    if hasattr(source, "read"):
        return source, getattr(source, "name", "<stream>")  # type: ignore[return-value]
    path = Path(source)
    if not path.exists():
        raise FastaError(f"{path}: no such file")
    with open(path, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    if gz:
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8", errors="replace"), str(path)
    return open(path, encoding="utf-8", errors="replace"), str(path)


def _check_line(name: str, lineno: int, line: str) -> None:
    bad = first_invalid_character(line)
    if bad is not None:
        col, char = bad
        raise FastaError(
            f"{name}, line {lineno}, column {col}: character {char!r} is not an IUPAC nucleotide code "
            f"({''.join(sorted(IUPAC_NUCLEOTIDES))})"
        )


def read_fasta(source: str | Path | IO[str], label: str | None = None) -> Iterator[Record]:
    """Records of a FASTA file; ``label`` names the input in error messages (default: its path)."""
    handle, name = _open(source, label)
    header: str | None = None
    header_line = 0
    parts: list[str] = []
    seen = 0
    try:
        for lineno, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith(";"):
                continue
            if line.startswith(">"):
                if header is not None:
                    yield _finish(name, header, header_line, parts)
                    seen += 1
                header, header_line, parts = line[1:].strip(), lineno, []
                if not header:
                    raise FastaError(f"{name}, line {lineno}: a '>' header line with no sequence name")
                continue
            if header is None:
                raise FastaError(f"{name}, line {lineno}: sequence data before the first '>' header; is this a FASTA file?")
            line = "".join(line.split())
            _check_line(name, lineno, line)
            parts.append(line)
        if header is not None:
            yield _finish(name, header, header_line, parts)
            seen += 1
    finally:
        if not hasattr(source, "read"):
            handle.close()
    if seen == 0:
        raise FastaError(f"{name}: no FASTA records found (a record starts with a '>' header line)")


def _finish(name: str, header: str, lineno: int, parts: list[str]) -> Record:
    sequence = "".join(parts)
    if not sequence:
        raise FastaError(f"{name}, line {lineno}: record {header.split()[0]!r} has an empty sequence")
    return Record(header.split()[0], normalise_sequence(sequence))


def read_tabular(source: str | Path | IO[str], label: str | None = None) -> Iterator[Record]:
    """Two tab-separated columns, id and sequence; a first line starting with '#' or 'id' is a header."""
    handle, name = _open(source, label)
    seen = 0
    try:
        for lineno, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.startswith("#") or (lineno == 1 and line.lower().startswith("id\t")):
                continue
            cols = line.split("\t")
            if len(cols) < 2:
                raise FastaError(f"{name}, line {lineno}: expected two tab-separated columns (id, sequence), found {len(cols)}")
            rid, seq = cols[0].strip(), cols[1].strip()
            if not seq:
                raise FastaError(f"{name}, line {lineno}: record {rid!r} has an empty sequence")
            _check_line(name, lineno, seq)
            seen += 1
            yield Record(rid or f"record{seen}", normalise_sequence(seq))
    finally:
        if not hasattr(source, "read"):
            handle.close()
    if seen == 0:
        raise FastaError(f"{name}: no records found (expected id<TAB>sequence lines)")


def read_sequences(source: str | Path | IO[str], fmt: str = "auto", label: str | None = None) -> Iterator[Record]:
    """Read FASTA or tabular; ``auto`` looks at the first non-blank character."""
    if fmt == "auto" and not hasattr(source, "read"):
        handle, _ = _open(source)
        with handle:
            first = next((line for line in handle if line.strip()), "")
        fmt = "fasta" if first.lstrip().startswith((">", ";")) else "tabular"
    elif fmt == "auto":
        fmt = "fasta"
    return read_fasta(source, label) if fmt == "fasta" else read_tabular(source, label)
