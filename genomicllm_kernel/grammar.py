"""The question grammar of TASKS.md: ``<item>, <item>, ..., <question key> =``.

An item is a nucleotide sequence or an annotation ``name = value``; items come in any order.
:func:`parse_prompt` turns text into a typed :class:`Prompt`; :func:`format_prompt` writes one back
in canonical form (upper-case sequences, ``name = value``, registry spelling of the key), so that
``parse(format(parse(x))) == parse(x)``. Values cannot contain commas: a comma always ends an item.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .alphabet import IUPAC_NUCLEOTIDES, first_invalid_character, normalise_sequence
from .errors import GrammarError, SequenceError
from .registry import READING_PREFIX, Task, canonical_question, task_for_question


@dataclass(frozen=True)
class SequenceItem:
    sequence: str

    def text(self) -> str:
        return self.sequence


@dataclass(frozen=True)
class AnnotationItem:
    name: str
    value: str

    def text(self) -> str:
        return f"{self.name} = {self.value}"


Item = SequenceItem | AnnotationItem


@dataclass(frozen=True)
class Prompt:
    items: tuple[Item, ...]
    question: str  # canonical question key
    task: Task = field(compare=False)

    @property
    def sequences(self) -> list[str]:
        return [i.sequence for i in self.items if isinstance(i, SequenceItem)]

    @property
    def sequence(self) -> str:
        """The prompt's one nucleotide sequence ('' when it has none)."""
        seqs = self.sequences
        return seqs[0] if seqs else ""

    @property
    def annotations(self) -> dict[str, str]:
        return {i.name: i.value for i in self.items if isinstance(i, AnnotationItem)}

    @property
    def reading_target(self) -> str | None:
        if self.question.startswith(READING_PREFIX):
            return self.question[len(READING_PREFIX) :].strip()
        return None

    def text(self) -> str:
        return format_prompt(self)


def make_prompt(question: str, sequence: str | None = None, items: dict[str, str] | None = None) -> Prompt:
    """Build a prompt from parts (used by ``predict``), validating like the parser does."""
    parts: list[Item] = []
    if sequence is not None:
        parts.append(_sequence_item(sequence, 1))
    for name, value in (items or {}).items():
        parts.append(_annotation_item(f"{name}={value}", len(parts) + 1))
    return _finish(tuple(parts), question)


def parse_item_pairs(pairs, option: str = "--item") -> dict[str, str]:
    """``NAME=VALUE`` strings (a command-line or magic option, repeated) as an ordered dict."""
    items: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = str(pair).partition("=")
        if not sep or not name.strip() or not value.strip():
            raise GrammarError(f"{option} expects name=value, got {pair!r}")
        items[" ".join(name.split())] = value.strip()
    return items


def parse_prompt(text: str) -> Prompt:
    if not isinstance(text, str):
        raise GrammarError(f"a prompt must be text, got {type(text).__name__}")
    body = text.strip()
    if not body:
        raise GrammarError("empty prompt: write '<sequence>, <question key> =', e.g. 'ACGT, GC content ='")
    if not body.endswith("="):
        raise GrammarError("a prompt must end with '<question key> =' (e.g. 'ACGT, GC content =')")
    pieces = body[:-1].split(",")
    question_text = pieces[-1].strip()
    if not question_text:
        raise GrammarError("the prompt has no question key before the final '='")
    items = tuple(_parse_item(piece, n) for n, piece in enumerate(pieces[:-1], start=1))
    return _finish(items, question_text)


def _finish(items: tuple[Item, ...], question_text: str) -> Prompt:
    question = canonical_question(question_text)
    task = task_for_question(question)
    prompt = Prompt(items=items, question=question, task=task)
    n_seq = len(prompt.sequences)
    if task.needs_sequence and n_seq == 0:
        raise SequenceError(f"question {question!r} needs a nucleotide sequence item, and the prompt has none")
    if n_seq > 1:
        raise SequenceError(f"the prompt has {n_seq} sequence items; ask about one sequence at a time")
    return prompt


def _parse_item(piece: str, number: int) -> Item:
    text = piece.strip()
    if not text:
        raise GrammarError(f"item {number} is empty (two commas in a row, or a comma at the start)")
    if "=" in text:
        return _annotation_item(text, number)
    return _sequence_item(text, number)


def _annotation_item(text: str, number: int) -> AnnotationItem:
    name, _, value = text.partition("=")
    name, value = " ".join(name.split()), value.strip()
    if not name:
        raise GrammarError(f"item {number} ({text.strip()!r}) has a value but no name before '='")
    if not value:
        raise GrammarError(f"item {number} ({name!r}) has no value after '='")
    if "=" in value and not name.lower().startswith(READING_PREFIX):
        # 'a = b = c' is almost always a missing comma.
        raise GrammarError(f"item {number} ({text.strip()!r}) has more than one '='; separate items with commas")
    return AnnotationItem(name, value)


def _sequence_item(text: str, number: int) -> SequenceItem:
    raw = text.strip()
    if not raw:
        raise SequenceError(f"item {number} is an empty sequence")
    bad = first_invalid_character(raw)
    if bad is not None:
        position, char = bad
        raise SequenceError(
            f"item {number} is not a nucleotide sequence: character {char!r} at position {position} is outside "
            f"the IUPAC nucleotide codes ({''.join(sorted(IUPAC_NUCLEOTIDES))}); annotations are written 'name = value'"
        )
    return SequenceItem(normalise_sequence(raw))


def format_prompt(prompt: Prompt) -> str:
    return ", ".join([item.text() for item in prompt.items] + [f"{prompt.question} ="])
