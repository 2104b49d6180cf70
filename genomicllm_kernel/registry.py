"""The task registry: the single source of truth for all 14 tasks of TASKS.md.

Corpus builders, evaluator, CLI, Galaxy XML generation, the notebook magic and the widget all read
task keys, label sets, answer kinds, metrics and checks from here. Adding a task means adding one
:class:`Task` entry plus its corpus builder (one line in ``data.builders.BUILDERS``); a new kind of
answer is one class in :mod:`genomicllm_kernel.formats`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Callable

from . import checks
from .errors import UnknownQuestionError

# Answer kinds pick the task's answer format (formats.py): how an answer is encoded and decoded.
LABEL, NUMBER, DNA, PROTEIN, TEXT = "label", "number", "dna", "protein", "text"

READING_PREFIX = "reading comprehension:"


@dataclass(frozen=True)
class ItemSpec:
    """An optional context item a task understands, e.g. ``transcription factor = CTCF``."""

    name: str
    help: str


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    question_keys: tuple[str, ...]
    answer_kind: str
    metrics: tuple[str, ...]
    help: str
    labels: tuple[str, ...] = ()
    items: tuple[ItemSpec, ...] = ()
    needs_sequence: bool = True
    #: exact computation: (sequence, question key, annotations) -> expected answer
    checker: Callable[[str, str, dict], str] | None = field(default=None, compare=False)
    #: the longest free-text answer, in tokens, for an input of n nt (TextFormat's bound; the other
    #: answer formats derive their length from the sequence itself)
    max_answer_tokens: Callable[[int], int] = field(default=lambda n: 1, compare=False)
    truth: str = ""
    #: the answer is the value of an item of the prompt, and the question names that item
    #: (``reading comprehension: <name>``): the model points at the item (extractive QA)
    extractive: bool = False
    #: the label does not depend on the strand read (ChIP-seq and ATAC peaks): training may show the
    #: reverse complement with the same label (``augment`` in the training config)
    strand_symmetric: bool = False
    #: the labels are one reading of the sequence under different views (head_symmetry.SYMMETRIES:
    #: "reading frame", "reversal"): a head fitted with ``head_fit_symmetric`` shares its weights over them
    label_symmetry: str = ""

    @property
    def is_classification(self) -> bool:
        return self.answer_kind == LABEL

    @property
    def default_question(self) -> str:
        return self.question_keys[0]

    def questions(self) -> list[str]:
        """The questions a front end offers: the keys, or for an extractive task one per offered item."""
        if self.extractive:
            return [f"{self.default_question} {spec.name}" for spec in self.items]
        return list(self.question_keys)


def _revcomp_checker(sequence: str, question: str, annotations: dict) -> str:
    return {
        "reverse sequence": checks.reverse,
        "complementary sequence": checks.complement,
        "reverse complementary sequence": checks.reverse_complement,
    }[question](sequence)


_TRUE_FALSE = ("True", "False")
_CLS = ("accuracy", "macro_f1", "mcc")

TASKS: dict[str, Task] = {
    t.id: t
    for t in [
        Task(
            "splice_site",
            "Splice site",
            ("splice site",),
            LABEL,
            _CLS,
            "Is the centre of the sequence an exon-intron (donor) or intron-exon (acceptor) boundary?",
            labels=("donor site", "acceptor site", "non-splice site"),
            truth="exon boundaries of an annotation; GUE splice",
        ),
        Task(
            "enhancer",
            "Enhancer",
            ("enhancer",),
            LABEL,
            _CLS,
            "Is the sequence an enhancer? (Trained on Genomic Benchmarks' Ensembl and Cohn enhancer sets.)",
            labels=_TRUE_FALSE,
            truth="enhancer annotations",
            strand_symmetric=True,
        ),
        Task(
            "promoter",
            "Promoter",
            (
                "promoter",
                "core promoter",
                "core tata promoter",
                "core notata promoter",
                "proximal promoter",
                "proximal tata promoter",
                "proximal notata promoter",
            ),
            LABEL,
            _CLS,
            "Is the sequence a promoter window? core = -34..+35 around the TSS (70 bp), "
            "proximal = -249..+50 (300 bp); tata / notata restrict to promoters with / without a TATA box.",
            labels=_TRUE_FALSE,
            items=(
                ItemSpec(
                    "benchmark",
                    "'GUE' asks a core or proximal question as GUE's prom_core / prom_300 sets do: promoter against a promoter with most of "
                    "its sequence replaced (optional; without it the negatives are genome background more than 2 kb from any TSS, the question "
                    "for a genomic window)",
                ),
            ),
            truth="TSS of an annotation; GUE prom",
        ),
        Task(
            "open_chromatin",
            "Open chromatin",
            ("open chromatin region",),
            LABEL,
            _CLS,
            "Is the sequence an open-chromatin (ATAC-seq accessible) region?",
            labels=_TRUE_FALSE,
            truth="open-chromatin annotations",
            strand_symmetric=True,
        ),
        Task(
            "regulatory",
            "Regulatory element class",
            ("regulatory",),
            LABEL,
            _CLS,
            "Which class of regulatory element is the sequence?",
            labels=("enhancer", "promoter", "open chromatin region"),
            items=(ItemSpec("chromosome", "chromosome the sequence comes from, e.g. chromosome11"),),
            truth="regulatory annotations",
        ),
        Task(
            "tf_binding",
            "Transcription factor binding site",
            ("transcription factor binding site",),
            LABEL,
            _CLS,
            "Is the sequence bound by a transcription factor (ChIP-seq peak)?",
            labels=_TRUE_FALSE,
            items=(
                ItemSpec(
                    "transcription factor",
                    "the factor, e.g. CTCF, or one of the GUE ChIP-seq sets 'GUE tf_0' .. 'GUE tf_4' (optional; without it the answer is pooled over all sets; "
                    "the GUE sets' factors are unpublished and a JASPAR scan named none, so no factor name stands for a set)",
                ),
            ),
            truth="ChIP-seq peaks; GUE tf",
            strand_symmetric=True,
        ),
        Task(
            "orf",
            "Open reading frame",
            ("open reading frame",),
            LABEL,
            _CLS,
            "Which frame (counted from the first base) encodes the protein?",
            labels=("1", "2", "3"),
            truth="CDS of an annotation",
            label_symmetry="reading frame",
        ),
        Task(
            "sequence_direction",
            "Sequence direction",
            ("sequence direction",),
            LABEL,
            _CLS,
            "Is the gene sequence given 5'->3' (forward) or the same strand read 3'->5' (reverse)?",
            labels=("forward", "reverse"),
            truth="any annotated gene",
            label_symmetry="reversal",
        ),
        Task(
            "gene_biotype",
            "Gene biotype",
            ("gene biotype",),
            LABEL,
            _CLS,
            "Is the sequence from a protein-coding gene?",
            labels=("protein coding gene", "other"),
            truth="gene biotypes of an annotation",
        ),
        Task(
            "gc_content",
            "GC content",
            ("GC content",),
            NUMBER,
            ("mae", "pearson_r"),
            "Fraction of G+C, three decimals.",
            checker=lambda s, q, a: checks.gc_content(s),
            truth="exact (count)",
        ),
        Task(
            "nt2aa",
            "Protein sequence",
            ("protein sequence",),
            PROTEIN,
            ("exact_match", "per_residue_accuracy"),
            "Translate from the first base with the standard genetic code (* = stop).",
            checker=lambda s, q, a: checks.translate(s),
            truth="exact (standard genetic code)",
        ),
        Task(
            "reverse_complement",
            "Reverse / complement",
            ("reverse sequence", "complementary sequence", "reverse complementary sequence"),
            DNA,
            ("exact_match",),
            "Reverse, complement or reverse-complement the sequence.",
            checker=_revcomp_checker,
            truth="exact",
        ),
        Task(
            "gene_description",
            "Gene description",
            ("description",),
            TEXT,
            ("exact_match", "bleu4", "rouge_l"),
            "Full gene name from a (partial) sequence and items such as symbol and id.",
            items=(ItemSpec("symbol", "gene symbol, e.g. BRCA1"), ItemSpec("id", "Entrez gene id, e.g. 672")),
            needs_sequence=False,
            max_answer_tokens=lambda n: 48,
            truth="gene records (full gene names)",
        ),
        Task(
            "reading_comprehension",
            "Reading comprehension",
            (READING_PREFIX,),
            TEXT,
            ("exact_match",),
            "Return the value of the named item given in the prompt.",
            # any item can be read back; these are the ones the front ends offer as fields
            items=(ItemSpec("symbol", "gene symbol, e.g. BRCA1"), ItemSpec("id", "Entrez gene id, e.g. 672")),
            needs_sequence=False,
            checker=lambda s, q, a: checks.reading_comprehension(a, q[len(READING_PREFIX) :]),
            max_answer_tokens=lambda n: 48,
            truth="the prompt itself",
            extractive=True,
        ),
    ]
}

_KEY_TO_TASK: dict[str, Task] = {key.lower(): task for task in TASKS.values() for key in task.question_keys}
_KEY_SPELLING: dict[str, str] = {key.lower(): key for task in TASKS.values() for key in task.question_keys}


def normalise_key(text: str) -> str:
    return " ".join(text.strip().split())


def all_question_keys() -> list[str]:
    return [key for task in TASKS.values() for key in task.question_keys]


def canonical_question(text: str) -> str:
    """Return the registry's spelling of a question key (reading comprehension keeps its name)."""
    key = normalise_key(text)
    if key.lower().startswith(READING_PREFIX):
        name = key[len(READING_PREFIX) :].strip()
        if not name:
            raise UnknownQuestionError("'reading comprehension:' needs the name of an item, e.g. 'reading comprehension: symbol ='")
        return f"{READING_PREFIX} {name}"
    task = _KEY_TO_TASK.get(key.lower())
    if task is None:
        close = difflib.get_close_matches(key.lower(), list(_KEY_TO_TASK), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(_KEY_SPELLING[c]) for c in close)}?" if close else ""
        raise UnknownQuestionError(f"unknown question key {key!r}{hint} (see 'genomicllm tasks' for all keys)")
    return next(k for k in task.question_keys if k.lower() == key.lower())


def task_for_question(text: str) -> Task:
    key = canonical_question(text)
    if key.startswith(READING_PREFIX):
        return TASKS["reading_comprehension"]
    return _KEY_TO_TASK[key.lower()]


def get_task(task_id: str) -> Task:
    try:
        return TASKS[task_id]
    except KeyError:
        close = difflib.get_close_matches(task_id, list(TASKS), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise UnknownQuestionError(f"unknown task {task_id!r}{hint} (tasks: {', '.join(TASKS)})") from None
