"""One object per answer kind: how an answer is spelled in tokens and read back.

Modelled on transformers' logits processors: the decoding loop (:class:`~.decoding.Decoder`) never
knows which kind it runs. It asks the prompt's :class:`AnswerFormat` which tokens may come at each
step (``allowed``), how many steps there can be (``max_steps``), and how to turn the tokens into
the answer (``decode``); training asks it to ``encode`` a gold answer, and evaluation whether an
answer ``is_valid``. A new kind of answer (a variant-effect score, a new spelling of DNA) is one
new class and one line in :meth:`~.codec.HybridCodec.answer_format`.

Why the kinds look as they do (aligned DNA, the GC scratchpad, item pointers) is documented in
:mod:`genomicllm_kernel.codec`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .codec import AMINO_ACIDS, GC_TOKENS, HybridCodec, chunk_bounds, dna_token, gc_counts, gc_fraction_text, gc_token, model_view
from .errors import InputError
from .grammar import AnnotationItem, Prompt
from .registry import DNA, LABEL, NUMBER, PROTEIN


@dataclass
class RawAnswer:
    """What a decoder returns for one prompt, before the API adds checks and provenance."""

    text: str
    probability: float
    labels: dict[str, float] | None


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _chunk_count(prompt: Prompt) -> int:
    return (len(prompt.sequence) + 2) // 3


class AnswerFormat:
    """The contract of one answer kind. Subclasses fill in what their kind needs."""

    #: emitted one token per input chunk and placed at the aligned positions (codec.ALIGN_OFFSET)
    aligned = False
    #: answered by one forward pass and a softmax over label tokens, with no generation
    single_pass = False
    #: evaluation reports exact match by input length (the generation tasks)
    length_curve = False

    def __init__(self, codec: HybridCodec):
        self.codec = codec

    def encode(self, prompt: Prompt, answer: str) -> list[str]:
        """The gold answer as tokens (without the closing <eos>)."""
        raise NotImplementedError

    def max_steps(self, prompt: Prompt) -> int:
        """The most answer tokens this prompt can need (context budgeting and the decoding bound)."""
        raise NotImplementedError

    def allowed(self, prompt: Prompt, step: int, so_far: list[int]) -> tuple[np.ndarray, bool]:
        """Token ids allowed at ``step`` given the ids emitted ``so_far``, and whether the answer
        must end after this step."""
        raise NotImplementedError

    def decode(self, prompt: Prompt, tokens: list[str]) -> str:
        """Answer text from the emitted tokens (specials already removed)."""
        return self.codec._join_text(tokens)

    @staticmethod
    def is_valid(task, answer: str) -> bool:
        """Whether an answer text has this kind's format (evaluation's ``valid_format``)."""
        return bool(answer)


class LabelFormat(AnswerFormat):
    """One label token; the answer is the most probable of the task's label tokens."""

    single_pass = True

    def encode(self, prompt: Prompt, answer: str) -> list[str]:
        task = prompt.task
        if answer not in task.labels:
            raise InputError(f"{answer!r} is not a label of task {task.id} ({', '.join(task.labels)})")
        return [f"<label:{answer}>"]

    def max_steps(self, prompt: Prompt) -> int:
        return 1

    def score(self, prompts: list[Prompt], logits: np.ndarray) -> list[RawAnswer]:
        task = prompts[0].task
        probs = _softmax(logits[:, self.codec.label_ids(task)].astype(np.float64))
        out = []
        for row in probs:
            best = int(row.argmax())
            out.append(RawAnswer(task.labels[best], float(row[best]), {label: float(p) for label, p in zip(task.labels, row)}))
        return out

    @staticmethod
    def is_valid(task, answer: str) -> bool:
        return answer in task.labels


class _ChunkSized(AnswerFormat):
    """Aligned kinds whose token at step j must fit input chunk j (its length 1-3)."""

    aligned = True

    def __init__(self, codec: HybridCodec):
        super().__init__(codec)
        self._by_size: dict[int, np.ndarray] = {}

    def ids_for_size(self, size: int) -> np.ndarray:
        raise NotImplementedError

    def max_steps(self, prompt: Prompt) -> int:
        return _chunk_count(prompt)

    def allowed(self, prompt: Prompt, step: int, so_far: list[int]) -> tuple[np.ndarray, bool]:
        n = len(prompt.sequence)
        size = min(3, n - 3 * step)
        if size not in self._by_size:
            self._by_size[size] = self.ids_for_size(size)
        return self._by_size[size], step == _chunk_count(prompt) - 1


class DNAFormat(_ChunkSized):
    """One DNA token per input chunk in input order (reversed chunks for the reverse questions,
    whose token order ``decode`` flips back)."""

    length_curve = True
    REVERSED = frozenset({"reverse sequence", "reverse complementary sequence"})

    def ids_for_size(self, size: int) -> np.ndarray:
        return np.array([i for t, i in self.codec.vocab.items() if t.startswith("<dna:") and len(t) - 6 == size])

    def encode(self, prompt: Prompt, answer: str) -> list[str]:
        view = model_view(answer)
        if len(view) != len(prompt.sequence):
            raise InputError("a DNA answer must be as long as the prompt's sequence")
        bounds = chunk_bounds(len(prompt.sequence))
        if prompt.question in self.REVERSED:
            n = len(view)
            return [dna_token(view[n - e : n - s]) for s, e in bounds]
        return [dna_token(view[s:e]) for s, e in bounds]

    def decode(self, prompt: Prompt, tokens: list[str]) -> str:
        if prompt.question in self.REVERSED:
            tokens = tokens[::-1]
        return self.codec._join_text(tokens)

    @staticmethod
    def is_valid(task, answer: str) -> bool:
        return bool(answer) and set(answer) <= set("ACGTN")


class GCScratchpadFormat(_ChunkSized):
    """One ``<gc:k/m>`` count per input chunk; the decoder adds the counts and divides.

    ``m``, the chunk's A/C/G/T bases, is a fact of the input, not of the answer, so at chunk j only
    the tokens with that chunk's ``m`` are allowed (as a DNA answer's token must fit its chunk's
    length); the model still counts the G and C bases (``k``). Why: unconstrained, a model that sees
    few N in training miscounted the known bases of chunks with N and disagreed with its own exact
    check on valid IUPAC input (issue #17, item 3)."""

    def ids_for_size(self, size: int) -> np.ndarray:
        return np.array([self.codec.vocab[t] for t in GC_TOKENS if int(t[-2]) <= size])

    def ids_for_known(self, known: int) -> np.ndarray:
        return np.array([self.codec.vocab[gc_token(k, known)] for k in range(known + 1)])

    def allowed(self, prompt: Prompt, step: int, so_far: list[int]) -> tuple[np.ndarray, bool]:
        view = model_view(prompt.sequence, prompt.question)
        known = gc_counts(view[3 * step : 3 * step + 3])[1]
        key = ("known", known)
        if key not in self._by_size:
            self._by_size[key] = self.ids_for_known(known)
        return self._by_size[key], step == _chunk_count(prompt) - 1

    def encode(self, prompt: Prompt, answer: str) -> list[str]:
        # the scratchpad is computed from the sequence; the gold answer is the same exact value
        view = model_view(prompt.sequence, prompt.question)
        return [gc_token(*gc_counts(view[s:e])) for s, e in chunk_bounds(len(view))]

    def decode(self, prompt: Prompt, tokens: list[str]) -> str:
        if not (tokens and all(t.startswith("<gc:") for t in tokens)):
            return self.codec._join_text(tokens)
        gc = known = 0
        for t in tokens:
            k, m = t[4:-1].split("/")
            gc, known = gc + int(k), known + int(m)
        # S and W reached the model as C and A (codec.STRONG_WEAK), so its counts include them
        return gc_fraction_text(gc, known)

    @staticmethod
    def is_valid(task, answer: str) -> bool:
        try:
            return 0.0 <= float(answer) <= 1.0 and len(answer) == 5
        except ValueError:
            return False


class GCDigitsFormat(AnswerFormat):
    """``d.ddd`` one character a token: models trained before the scratchpad."""

    is_valid = staticmethod(GCScratchpadFormat.is_valid)

    def __init__(self, codec: HybridCodec):
        super().__init__(codec)
        digits = np.array([codec.char_id(c) for c in "0123456789"])
        self._steps = [np.array([codec.char_id("0"), codec.char_id("1")]), np.array([codec.char_id(".")]), digits, digits, digits]

    def encode(self, prompt: Prompt, answer: str) -> list[str]:
        return [c if c in self.codec.vocab else "<unk>" for c in answer]

    def max_steps(self, prompt: Prompt) -> int:
        return 5

    def allowed(self, prompt: Prompt, step: int, so_far: list[int]) -> tuple[np.ndarray, bool]:
        return self._steps[step], step == 4


class ProteinFormat(AnswerFormat):
    """One amino-acid token per complete input codon (aligned)."""

    aligned = True
    length_curve = True

    def __init__(self, codec: HybridCodec):
        super().__init__(codec)
        self._ids = np.array(sorted(codec.ids_with_prefix("<aa:")))

    def encode(self, prompt: Prompt, answer: str) -> list[str]:
        return [f"<aa:{a}>" if f"<aa:{a}>" in self.codec.vocab else "<aa:X>" for a in answer]

    def max_steps(self, prompt: Prompt) -> int:
        return len(prompt.sequence) // 3

    def allowed(self, prompt: Prompt, step: int, so_far: list[int]) -> tuple[np.ndarray, bool]:
        return self._ids, step == len(prompt.sequence) // 3 - 1

    @staticmethod
    def is_valid(task, answer: str) -> bool:
        return set(answer) <= set(AMINO_ACIDS)


class TextFormat(AnswerFormat):
    """Text pieces until <eos>. Never empty: a lone " " piece may open the answer (words outside
    the vocabulary start so), but the next piece shows a character, and only then may <eos> follow
    (" " then <eos> decodes to "")."""

    def __init__(self, codec: HybridCodec):
        super().__init__(codec)
        text_ids = set(codec.text_ids())
        self._open = np.array(sorted(text_ids))
        self._any = np.array(sorted(text_ids | {codec.eos_token_id}))
        self._visible_set = frozenset(i for t, i in codec.vocab.items() if i in text_ids and t.strip())
        self._visible = np.array(sorted(self._visible_set))

    def encode(self, prompt: Prompt, answer: str) -> list[str]:
        # encoded as it reads after 'name =' in an item, with its leading space (decode drops it)
        return self.codec.text_tokens(" " + answer)

    def max_steps(self, prompt: Prompt) -> int:
        return prompt.task.max_answer_tokens(len(prompt.sequence))

    def allowed(self, prompt: Prompt, step: int, so_far: list[int]) -> tuple[np.ndarray, bool]:
        if any(i in self._visible_set for i in so_far):
            return self._any, False
        return (self._open if step == 0 else self._visible), False

    def decode(self, prompt: Prompt, tokens: list[str]) -> str:
        text = self.codec._join_text(tokens)
        return text[1:] if text.startswith(" ") else text


class PointerFormat(AnswerFormat):
    """Extractive reading comprehension: one ``<item:k>`` token naming the annotation item whose
    value is the answer."""

    def encode(self, prompt: Prompt, answer: str) -> list[str]:
        return [f"<item:{self.codec.pointed_item(prompt, answer)}>"]

    def max_steps(self, prompt: Prompt) -> int:
        return 1

    def allowed(self, prompt: Prompt, step: int, so_far: list[int]) -> tuple[np.ndarray, bool]:
        return np.array(self.codec.item_ids(prompt)), True

    def decode(self, prompt: Prompt, tokens: list[str]) -> str:
        if not (tokens and tokens[0].startswith("<item:")):
            text = self.codec._join_text(tokens)
            return text[1:] if text.startswith(" ") else text
        values = [i.value for i in prompt.items if isinstance(i, AnnotationItem)]
        k = int(tokens[0][6:-1])
        return values[k - 1] if k <= len(values) else ""


def format_class(task, gc_scratchpad: bool = True, item_pointers: bool = True) -> type[AnswerFormat]:
    """The one dispatch from a task to its answer format. The two flags describe older vocabularies
    (GC spelled as digits, reading comprehension answered in free text); validity is the same."""
    if task.extractive and item_pointers:
        return PointerFormat
    return {LABEL: LabelFormat, NUMBER: GCScratchpadFormat if gc_scratchpad else GCDigitsFormat, DNA: DNAFormat, PROTEIN: ProteinFormat}.get(
        task.answer_kind, TextFormat
    )
