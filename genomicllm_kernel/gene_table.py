"""The gene table shipped beside the model: official symbol, Entrez id and full name of every human
gene record, the database check of ``description`` answers.

A 6.8 M-parameter model cannot hold 60,000 gene names reliably, and a user asking "what is BRCA1?"
deserves the record either way. So a description answer carries the record's full name and agree /
disagree, exactly as GC content carries its exact value. The table is written by ``genomicllm data
build`` from the org.Hs.eg.db package it downloads (``gene_table.tsv.gz`` in the corpus;
``scripts/release_model.sh`` copies it into the model folder); its first line names the release.
"""

from __future__ import annotations

import gzip
import io
from functools import lru_cache
from pathlib import Path

FILENAME = "gene_table.tsv.gz"


def write_gene_table(path: Path, records: dict[str, dict], release: str) -> int:
    """One row per gene (symbol, id, full name); aliases are not rows. Returns the number of genes."""
    genes = {}
    for symbol, rec in records.items():
        if rec.get("symbol") == symbol and rec.get("name"):
            genes.setdefault(str(rec["id"]), rec)
    tmp = Path(str(path) + ".partial")
    # no name or time in the gzip header: the same records give the same bytes (a seeded build is reproducible)
    with (
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
        io.TextIOWrapper(gz, encoding="utf-8") as fh,
    ):
        fh.write(f"# {release}\n")
        fh.write("symbol\tid\tname\n")
        for gid, rec in sorted(genes.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0):
            fh.write(f"{rec['symbol']}\t{gid}\t{rec['name']}\n")
    tmp.replace(path)
    return len(genes)


class GeneTable:
    """Look up a gene by symbol (exact, then case-insensitive) or Entrez id."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.by_symbol: dict[str, tuple[str, str, str]] = {}
        self.by_upper: dict[str, tuple[str, str, str]] = {}
        self.by_id: dict[str, tuple[str, str, str]] = {}
        with gzip.open(self.path, "rt", encoding="utf-8") as fh:
            self.release = fh.readline().lstrip("# ").strip()
            fh.readline()
            for line in fh:
                symbol, gid, name = line.rstrip("\n").split("\t")
                row = (symbol, gid, name)
                self.by_symbol[symbol] = row
                self.by_upper.setdefault(symbol.upper(), row)
                self.by_id[gid] = row

    def __len__(self) -> int:
        return len(self.by_id)

    def lookup(self, annotations: dict[str, str]) -> tuple[str, str, str] | None:
        """The record the prompt's ``symbol`` / ``id`` items name (symbol first), or None."""
        items = {k.strip().lower(): v.strip() for k, v in annotations.items()}
        symbol, gid = items.get("symbol"), items.get("id")
        if symbol:
            row = self.by_symbol.get(symbol) or self.by_upper.get(symbol.upper())
            if row:
                return row
        if gid:
            return self.by_id.get(gid)
        return None


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> GeneTable:
    return GeneTable(Path(path))


def gene_table_for(model_dir: Path | None) -> GeneTable | None:
    """The gene table beside a model (or its ONNX folder's parent), if it ships one."""
    if model_dir is None:
        return None
    for cand in (Path(model_dir) / FILENAME, Path(model_dir).parent / FILENAME):
        if cand.is_file():
            return _load(str(cand), cand.stat().st_mtime_ns)
    return None
