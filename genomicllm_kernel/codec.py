"""The hybrid codec (the tokenizer without transformers): compact DNA tokens for sequence items, subword tokens for text.

Design (why it looks like this)
-------------------------------
Training happens on 2 CPU cores, so every token costs. ``../shared/notes/training.md`` measured that
non-overlapping 3-mer DNA tokens cut tokens about 3x versus single nucleotides and were the only
representation with which a small model learned anything in 30 minutes.

* **Sequence items** are cut into non-overlapping 3-mers from the first base; the last chunk may be
  1 or 2 nt. Tokens are ``<dna:ACG>`` over A, C, G, T, N (5 + 25 + 125 = 155 tokens). Other IUPAC
  ambiguity codes reach the model as N (the exact checks still see the original letters), except
  that a GC-content question reads S as C and W as A (:data:`STRONG_WEAK`).
* **DNA answers are aligned to the input's chunks** (one answer token per input chunk, in input
  order): complement of the chunk, the chunk reversed, or the chunk reverse-complemented. For the
  reverse tasks the decoder flips the token order back. Every DNA-to-DNA task thus becomes a
  monotonic token-by-token map that copy heads learn quickly, and frames never shift even when the
  length is not a multiple of 3.
* **Protein answers** are one ``<aa:X>`` token per complete input codon, again aligned.
* **GC content answers** are a scratchpad aligned the same way: one ``<gc:k/m>`` token per input
  chunk (k = G or C bases, m = A, C, G or T bases in the chunk, as the model reads it), and the
  decoder writes sum(k) / sum(m) with three decimals. Counting three letters is a local map the
  copy heads learn like complementing; spelling ``0.377`` digit by digit asked a 4 M-parameter
  model to count a whole sequence at once, and it stalled at MAE 0.06. The model emits every count;
  the decoder only adds and divides. (A model folder whose vocabulary has no ``<gc:`` tokens keeps
  the older ``d.ddd`` spelling, one character a token.)
* **Labels** of classification tasks are single tokens (``<label:True>``), so a classification is
  one forward pass and a softmax over the task's label tokens.
* **Question keys** are single tokens (``<q:core promoter>``); reading comprehension adds the item
  name as text, spelled exactly as the item's name is.
* **Annotation items** start with a marker ``<item:k>`` (k-th annotation item). Reading
  comprehension is extractive, as in SQuAD-style question answering: the answer is one pointer
  token ``<item:k>`` and the decoder returns that item's value. The model still has to find the
  item whose name matches the question (a wrong pointer is a wrong answer), but it no longer has
  to re-spell values such as ``ENSG00000147164`` token by token: with free text the 6-layer model
  stayed at 0.27 exact match after 2,100 steps while copying DNA reached 0.87. (Vocabularies
  without ``<item:`` tokens keep the older free-text answers.)
* **Name keys** (``<key:h>``, vocabularies that have them): an item name is text, and a name the
  learned subword vocabulary does not hold is spelled one character a token (``quality`` is seven
  tokens), so the "name's last token" the question must match is one letter, shared by many names.
  The model matched the seven names its records use, which are whole tokens, and pointed by position
  elsewhere (stage 8f: 0.35 exact match on unseen names, mostly the last or a neighbouring item).
  With name keys, every annotation item's name is followed by one key token ``<key:h>``, h a hash of
  the name (lower case, stripped) into ``name_keys`` buckets, and the question's name is followed by
  the same key: the hashing trick of fastText-style bucket embeddings. Matching a name is then one
  token's identity, the induction pattern below, for any name; two names of one prompt share a key
  with probability about 1 / ``name_keys`` per pair. The key is a function of the name alone, never
  of the other items or the answer.
* **Where the marker sits** (``item_marker`` in ``tokenizer_config.json``): ``before_name``
  (``<item:k> name = value``, the first models) or ``after_name`` (``name <item:k> = value``). With
  the marker after the name, the key the question must match (the name's last token) is always the
  token just before the marker, and the question's last token is always the token just before
  ``<ans>``: one previous-token head on each side and one matching head, the induction pattern small
  transformers learn early. Before the name, the marker sat 1-3 tokens and a whole value away from
  the token to match, and the first default model, which used that layout, mostly pointed at the
  neighbouring item when it missed (its model card has the exact match). The name is then tokenized
  on its own, exactly as the question spells it.
* **Text** (annotation items, gene descriptions, numbers) uses greedy longest match over a subword
  vocabulary learned from the corpus, with every printable ASCII character and 256 byte tokens as
  fallback, so any text decodes back exactly. A text answer is encoded as it reads after ``name =``
  in an item (with its leading space, which decoding drops), so reading comprehension copies the
  very tokens of the item's value instead of re-spelling them.

Each answer kind above is one class in :mod:`genomicllm_kernel.formats` (encode, allowed tokens per
step, number of steps, decode, validity); :meth:`HybridCodec.answer_format` picks it for a task, and
every setting that changes an encoding (``item_marker``, ``gc_scratchpad``, ``item_pointers``) is
saved in ``tokenizer_config.json`` and read back by :meth:`HybridCodec.from_pretrained`.

This module imports neither transformers nor torch, so the ONNX Runtime path starts fast;
:class:`genomicllm_kernel.tokenizer.GenomicLLMTokenizer` wraps it for Hugging Face.

Layout of one example::

    <bos> item <sep> item <sep> ... <q:key> [name] <ans> answer... <eos>
"""

from __future__ import annotations

import json
import os
from collections import Counter
from itertools import product
from typing import Iterable

from . import registry
from .alphabet import MODEL_NUCLEOTIDES
from .errors import InputError
from .grammar import AnnotationItem, Prompt, SequenceItem, parse_prompt
from .registry import READING_PREFIX

VOCAB_FILE = "vocab.json"
SPECIAL = ["<pad>", "<bos>", "<eos>", "<unk>", "<sep>", "<ans>"]
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY*XBZJUO"
PRINTABLE = [chr(c) for c in range(32, 127)]
BYTES = [f"<0x{b:02X}>" for b in range(256)]
MAX_PIECE = 24


#: Aligned answers (DNA, protein) are placed at positions ALIGN_OFFSET + 2 + m, and the prompt's
#: final <ans> token at ALIGN_OFFSET + 1, so the query that predicts answer token j always sits
#: exactly ALIGN_OFFSET positions after input chunk j (at position 1 + j). With rotary position
#: embeddings that is a constant relative offset, which one attention head learns quickly, instead
#: of an offset that changes with the sequence length.
ALIGN_OFFSET = 512


def position_ids(prompt_len: int, answer_len: int, aligned: bool) -> list[int]:
    """Positions of ``prompt + answer`` tokens (the prompt includes <bos> and ends with <ans>)."""
    if not aligned:
        return list(range(prompt_len + answer_len))
    return list(range(prompt_len - 1)) + [ALIGN_OFFSET + 1] + [ALIGN_OFFSET + 2 + m for m in range(answer_len)]


def dna_token(chunk: str) -> str:
    return f"<dna:{chunk}>"


def gc_token(gc: int, known: int) -> str:
    return f"<gc:{gc}/{known}>"


GC_TOKENS = [gc_token(k, m) for m in range(4) for k in range(m + 1)]
MAX_ITEM_MARKERS = 32
ITEM_MARKER_LAYOUTS = ("before_name", "after_name")
ITEM_TOKENS = [f"<item:{k}>" for k in range(1, MAX_ITEM_MARKERS + 1)]
KEY_PREFIX = "<key:"


def key_tokens(n_keys: int) -> list[str]:
    return [f"{KEY_PREFIX}{h}>" for h in range(n_keys)]


def name_key(name: str, n_keys: int) -> str:
    """The key token of an item name (see "Name keys" above): case and surrounding space do not count,
    as the grammar's reading comprehension matches names."""
    import hashlib

    digest = hashlib.sha256(f"item-name:{name.strip().lower()}".encode()).digest()
    return f"{KEY_PREFIX}{int.from_bytes(digest[:8], 'big') % n_keys}>"


def gc_counts(chunk: str) -> tuple[int, int]:
    """(G or C bases, A/C/G/T bases) in a chunk as the model reads it (N counts in neither)."""
    return sum(c in "GC" for c in chunk), sum(c in "ACGT" for c in chunk)


def gc_fraction_text(gc: int, known: int) -> str:
    """The fraction as checks.gc_content writes it (0.000 when no base is known)."""
    return f"{gc / known:.3f}" if known else "0.000"


def _dna_chunks() -> list[str]:
    return ["".join(p) for k in (1, 2, 3) for p in product(MODEL_NUCLEOTIDES, repeat=k)]


def chunk_bounds(length: int) -> list[tuple[int, int]]:
    return [(s, min(s + 3, length)) for s in range(0, length, 3)]


#: S (G or C) and W (A or T) as a GC-content question reads them: a base of the same strength. Their
#: GC status is known (checks.gc_content counts S as GC and W as not), so the model reads a base it
#: counts, and its answer is the exact check's on valid IUPAC input (issue #17, item 3); as N, the
#: model miscounted the chunks they were in.
STRONG_WEAK = str.maketrans({"S": "C", "W": "A"})
#: the questions whose answer S -> C and W -> A leave unchanged
STRONG_WEAK_QUESTIONS = frozenset({"GC content"})


def model_view(sequence: str, question: str | None = None) -> str:
    """The sequence as the model reads it: ambiguity codes other than N become N (for a GC-content
    question, S and W first become C and A: :data:`STRONG_WEAK`)."""
    if question in STRONG_WEAK_QUESTIONS:
        sequence = sequence.translate(STRONG_WEAK)
    return "".join(c if c in MODEL_NUCLEOTIDES else "N" for c in sequence)


def base_vocabulary() -> list[str]:
    """Every token whose meaning is fixed by the registry (not learned from text)."""
    tokens = list(SPECIAL)
    tokens += [f"<q:{k}>" for k in registry.all_question_keys()]
    labels: list[str] = []
    for task in registry.TASKS.values():
        labels += [label for label in task.labels if label not in labels]
    tokens += [f"<label:{label}>" for label in labels]
    tokens += [dna_token(c) for c in _dna_chunks()]
    tokens += [f"<aa:{a}>" for a in AMINO_ACIDS]
    tokens += GC_TOKENS + ITEM_TOKENS
    tokens += PRINTABLE + BYTES
    return tokens


def learn_text_pieces(texts: Iterable[str], size: int = 1500, min_count: int = 3) -> list[str]:
    """Pick frequent words (with and without a leading space) as text tokens.

    Greedy longest match over these plus single characters is a simple, exactly invertible subword
    scheme; the score favours pieces that save the most tokens overall.
    """
    import re

    counts: Counter[str] = Counter()
    for text in texts:
        for match in re.finditer(r" ?[A-Za-z]+| ?[0-9]+|[^\sA-Za-z0-9]+| ?", text):
            piece = match.group(0)
            if 1 < len(piece) <= MAX_PIECE and "<" not in piece and ">" not in piece:
                counts[piece] += 1
    scored = [(c * (len(p) - 1), p) for p, c in counts.items() if c >= min_count]
    scored.sort(key=lambda x: (-x[0], x[1]))
    return sorted(p for _, p in scored[:size])


def rank_text_pieces(texts: Iterable[str], known: Iterable[str] = (), size: int = 1000, min_count: int = 3) -> list[str]:
    """The ``size`` pieces (as :func:`learn_text_pieces` picks them) not in ``known``, most tokens saved first.

    Why: a vocabulary learned once from an early corpus spells most words of a later one a character
    a token (gene full names: 16.8 tokens per answer, 82% of them one character or a space; see
    docs/experiments.md, "Stage 11"), and a name spelled so is a long sequence to memorise."""
    import re

    known = set(known)
    counts: Counter[str] = Counter()
    for text in texts:
        for match in re.finditer(r" ?[A-Za-z]+| ?[0-9]+|[^\sA-Za-z0-9]+| ?", text):
            piece = match.group(0)
            if 1 < len(piece) <= MAX_PIECE and "<" not in piece and ">" not in piece and piece not in known:
                counts[piece] += 1
    scored = sorted(((c * (len(p) - 1), p) for p, c in counts.items() if c >= min_count), key=lambda x: (-x[0], x[1]))
    return [p for _, p in scored[:size]]


TOKENIZER_CONFIG = "tokenizer_config.json"
#: every codec setting, saved in tokenizer_config.json by save_pretrained and read back by
#: from_pretrained; a folder written before a setting existed falls back to LEGACY_SETTINGS
SETTINGS = ("item_marker", "gc_scratchpad", "item_pointers")


def read_settings(folder) -> tuple[dict, list[str]]:
    """The codec settings a model folder saved, and the names that had to be inferred (older folders)."""
    try:
        with open(os.path.join(folder, TOKENIZER_CONFIG), encoding="utf-8") as fh:
            saved = json.load(fh)
    except FileNotFoundError:
        saved = {}
    return {k: saved[k] for k in SETTINGS if k in saved}, [k for k in SETTINGS if k not in saved]


def item_marker_of(folder) -> str:
    """The model folder's item-marker layout (folders written before the setting existed: before_name)."""
    return read_settings(folder)[0].get("item_marker", "before_name")


class HybridCodec:
    """Encode prompts and answers to ids and back, from a vocabulary (token -> id)."""

    def __init__(self, vocab: dict[str, int], item_marker: str = "before_name", gc_scratchpad: bool | None = None, item_pointers: bool | None = None):
        if item_marker not in ITEM_MARKER_LAYOUTS:
            raise InputError(f"item_marker must be one of {', '.join(ITEM_MARKER_LAYOUTS)}, not {item_marker!r}")
        self.item_marker = item_marker
        self.vocab = dict(vocab)
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        self._text_pieces = {t for t in self.vocab if not (t.startswith("<") and t.endswith(">") and len(t) > 1)}
        self._max_piece = max((len(t) for t in self._text_pieces), default=1)
        self.bos_token_id = self.vocab["<bos>"]
        self.eos_token_id = self.vocab["<eos>"]
        self.pad_token_id = self.vocab["<pad>"]
        self.unk_token_id = self.vocab["<unk>"]
        #: False: a model trained before the GC scratchpad, which spells GC content as d.ddd
        self.gc_scratchpad = GC_TOKENS[0] in self.vocab if gc_scratchpad is None else gc_scratchpad
        #: False: a model trained before item pointers, which answers reading comprehension in free text
        self.item_pointers = ITEM_TOKENS[0] in self.vocab if item_pointers is None else item_pointers
        for name, on, token in (("gc_scratchpad", self.gc_scratchpad, GC_TOKENS[0]), ("item_pointers", self.item_pointers, ITEM_TOKENS[0])):
            if on and token not in self.vocab:
                raise InputError(f"{name} is set but the vocabulary has no {token} tokens")
        #: the number of name-key buckets the vocabulary holds (0: a model trained before name keys)
        self.name_keys = sum(1 for t in self.vocab if t.startswith(KEY_PREFIX))
        if self.name_keys and any(t not in self.vocab for t in key_tokens(self.name_keys)):
            raise InputError(f"the vocabulary's {KEY_PREFIX}h> tokens are not numbered 0..{self.name_keys - 1}")
        self._keyed = bool(self.name_keys) and self.item_pointers and self.item_marker == "after_name"
        self._formats: dict[str, object] = {}

    def settings(self) -> dict:
        """Every setting that changes how prompts and answers are encoded (saved with the tokenizer)."""
        return {"item_marker": self.item_marker, "gc_scratchpad": self.gc_scratchpad, "item_pointers": self.item_pointers}

    def with_name_keys(self, n_keys: int) -> "HybridCodec":
        """This codec with ``n_keys`` name-key tokens appended to its vocabulary (ids of every
        existing token unchanged), for continued training of a model trained without them."""
        if self.name_keys:
            if self.name_keys != n_keys:
                raise InputError(f"the vocabulary already has {self.name_keys} name keys, not {n_keys}")
            return self
        vocab = dict(self.vocab)
        for t in key_tokens(n_keys):
            vocab[t] = len(vocab)
        return HybridCodec(vocab, self.item_marker, self.gc_scratchpad, self.item_pointers)

    def with_text_pieces(self, pieces: Iterable[str]) -> "HybridCodec":
        """This codec with ``pieces`` appended to its text vocabulary (ids of every existing token
        unchanged; pieces it has, or that look like a special token, are skipped), for continued
        training: greedy longest match then uses them wherever they fit."""
        vocab = dict(self.vocab)
        for p in pieces:
            if p and p not in vocab and len(p) <= MAX_PIECE and not (p.startswith("<") and p.endswith(">")):
                vocab[p] = len(vocab)
        return HybridCodec(vocab, self.item_marker, self.gc_scratchpad, self.item_pointers)

    def name_key_tokens(self, name: str) -> list[str]:
        """[the name's key token] where this vocabulary and layout use name keys, else []."""
        return [name_key(name, self.name_keys)] if self._keyed else []

    def answer_format(self, task: registry.Task):
        """The task's :class:`~.formats.AnswerFormat` for this vocabulary (one instance per task)."""
        if task.id not in self._formats:
            from .formats import format_class

            self._formats[task.id] = format_class(task, self.gc_scratchpad, self.item_pointers)(self)
        return self._formats[task.id]

    def is_aligned(self, prompt: Prompt) -> bool:
        return self.answer_format(prompt.task).aligned

    @classmethod
    def build(cls, text_pieces: list[str] | None = None, item_pointers: bool = True, item_marker: str = "before_name") -> "HybridCodec":
        tokens = [t for t in base_vocabulary() if item_pointers or t not in ITEM_TOKENS]
        known = set(tokens)
        tokens += [p for p in (text_pieces or []) if p not in known]
        return cls({t: i for i, t in enumerate(tokens)}, item_marker)

    @classmethod
    def from_pretrained(cls, path) -> "HybridCodec":
        """The codec of a model folder: its vocab.json and every setting from tokenizer_config.json
        (``inferred`` names the settings an older folder did not save)."""
        with open(os.path.join(path, VOCAB_FILE), encoding="utf-8") as fh:
            vocab = json.load(fh)
        settings, inferred = read_settings(path)
        codec = cls(vocab, **settings)
        codec.inferred = inferred
        return codec

    def __len__(self) -> int:
        return len(self.vocab)

    def _convert_token_to_id(self, token: str) -> int:
        return self.vocab.get(token, self.unk_token_id)

    def _convert_id_to_token(self, index: int) -> str:
        return self.ids_to_tokens.get(index, "<unk>")

    # ---- prompts ---------------------------------------------------------------------------
    def text_tokens(self, text: str) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(text):
            for length in range(min(self._max_piece, len(text) - i), 1, -1):
                piece = text[i : i + length]
                if piece in self._text_pieces:
                    out.append(piece)
                    i += length
                    break
            else:
                char = text[i]
                if char in self.vocab:
                    out.append(char)
                else:
                    out += [f"<0x{b:02X}>" for b in char.encode("utf-8")]
                i += 1
        return out

    def dna_tokens(self, sequence: str, question: str | None = None) -> list[str]:
        view = model_view(sequence, question)
        return [dna_token(view[s:e]) for s, e in chunk_bounds(len(view))]

    def prompt_tokens(self, prompt: Prompt) -> list[str]:
        tokens: list[str] = []
        k = 0
        for n, item in enumerate(prompt.items):
            if n:
                tokens.append("<sep>")
            if isinstance(item, SequenceItem):
                tokens += self.dna_tokens(item.sequence, prompt.question)
            else:
                k += 1
                if not (self.item_pointers and k <= MAX_ITEM_MARKERS):
                    tokens += self.text_tokens(item.text())
                elif self.item_marker == "after_name":
                    tokens += self.text_tokens(item.name) + self.name_key_tokens(item.name) + [f"<item:{k}>"]
                    tokens += self.text_tokens(item.text()[len(item.name) :])
                else:
                    tokens += [f"<item:{k}>"] + self.text_tokens(item.text())
        if prompt.items:
            tokens.append("<sep>")
        if prompt.question.startswith(READING_PREFIX):
            tokens.append(f"<q:{READING_PREFIX}>")
            # spelled as the item's name is, so the model can match the two token for token
            tokens += self.text_tokens(prompt.reading_target if self.item_pointers else " " + prompt.reading_target)
            tokens += self.name_key_tokens(prompt.reading_target)
        else:
            tokens.append(f"<q:{prompt.question}>")
        tokens.append("<ans>")
        return tokens

    def encode_prompt(self, prompt: Prompt | str) -> list[int]:
        if isinstance(prompt, str):
            prompt = parse_prompt(prompt)
        return [self.bos_token_id] + [self._convert_token_to_id(t) for t in self.prompt_tokens(prompt)]

    def decode_prompt_tokens(self, tokens: list[str]) -> str:
        """Write prompt tokens back in the grammar (the inverse of :meth:`prompt_tokens`)."""
        items: list[str] = []
        current: list[str] = []
        question = ""
        for tok in tokens:
            if tok in ("<bos>", "<pad>", "<ans>", "<eos>") or tok.startswith(("<item:", KEY_PREFIX)):
                continue
            if tok == "<sep>":
                items.append(self._segment_text(current))
                current = []
            elif tok.startswith("<q:"):
                question = tok[3:-1]
                current = []
            else:
                current.append(tok)
        if question == READING_PREFIX:
            question = f"{READING_PREFIX} {self._segment_text(current).strip()}"
        return ", ".join(items + [f"{question} ="])

    def _segment_text(self, tokens: list[str]) -> str:
        if tokens and all(t.startswith("<dna:") for t in tokens):
            return "".join(t[5:-1] for t in tokens)
        return self._join_text(tokens)

    @staticmethod
    def _join_text(tokens: list[str]) -> str:
        out = bytearray()
        for tok in tokens:
            if len(tok) == 6 and tok.startswith("<0x"):
                out.append(int(tok[3:5], 16))
            elif tok.startswith(("<aa:", "<dna:", "<label:")):
                out += tok[tok.index(":") + 1 : -1].encode("utf-8")
            else:
                out += tok.encode("utf-8")
        return out.decode("utf-8", errors="replace")

    def _chunk_of_id_map(self) -> dict[int, str]:
        """DNA token id -> its bases (built once)."""
        if not hasattr(self, "_chunk_of_id"):
            self._chunk_of_id = {i: t[5:-1] for t, i in self.vocab.items() if t.startswith("<dna:")}
        return self._chunk_of_id

    def dna_runs(self, ids: Iterable[int]) -> list[str]:
        """The sequence items of an encoded prompt as the model reads them (runs of DNA tokens)."""
        chunk_of_id = self._chunk_of_id_map()
        runs, current = [], []
        for i in ids:
            chunk = chunk_of_id.get(int(i))
            if chunk is not None:
                current.append(chunk)
            elif current:
                runs.append("".join(current))
                current = []
        if current:
            runs.append("".join(current))
        return runs

    def _label_questions(self) -> dict[int, str]:
        """Token id -> key of every classification question's ``<q:...>`` token (built once)."""
        if not hasattr(self, "_label_question_of_id"):
            keys = [key for task in registry.TASKS.values() if task.labels for key in task.question_keys]
            self._label_question_of_id = {self.vocab[f"<q:{k}>"]: k for k in keys if f"<q:{k}>" in self.vocab}
        return self._label_question_of_id

    def composition_block(self, ids) -> str | None:
        """The block of ``dna_features`` an encoded prompt's k-mers go to: its question key, and for
        a TF question naming a factor, ``"<key> | <factor>"`` (a model with per-question blocks
        has one per GUE TF set); None for a question without labels."""
        questions = self._label_questions()
        key = next((questions[int(i)] for i in ids if int(i) in questions), None)
        if key is None or registry.task_for_question(key).items == ():
            return key
        # the block depends on the annotation items only: prompts that differ only inside their
        # sequence items (explain's substitutions, a scan's windows) share the answer, found once
        chunks = self._chunk_of_id_map()
        shape = tuple(-1 if int(i) in chunks else int(i) for i in ids)
        shape = tuple(i for n, i in enumerate(shape) if i != -1 or not n or shape[n - 1] != -1)
        cache = self.__dict__.setdefault("_block_of_shape", {})
        if shape not in cache:
            if len(cache) >= 4096:
                cache.clear()
            cache[shape] = self._composition_block_parsed(key, ids)
        return cache[shape]

    def _composition_block_parsed(self, key: str, ids) -> str:
        """:meth:`composition_block` of a question with items, read from the prompt written back."""
        try:
            prompt = parse_prompt(self.decode_prompt_tokens([self._convert_id_to_token(int(i)) for i in ids]))
        except InputError:
            return key
        named = [f"{key} | {v}" for k, v in prompt.annotations.items() if k.strip().lower() == registry.task_for_question(key).items[0].name]
        return named[0] if named else key

    def composition_features(self, encoded: list[list[int]], layout, blocks=()):
        """[rows, features] float32: the k-mer composition of each encoded prompt (:mod:`.composition`;
        ``layout`` a :class:`~.composition.Layout`, or the k-mer sizes of one), each row's vector in
        its question's block (:meth:`composition_vectors`), every other block zero.

        Only classification questions (tasks with labels) get it; every other row is zeros. Why: the
        features are added at the ``<ans>`` token, and on short sequences they are large (one 5-mer
        of a 5 nt sequence is a value of 64). Fed to generation questions they cost the stage-6
        model exact answers on short windows (reverse complement 1-32 nt 0.84, 1.00 with the
        features zeroed; docs/experiments.md), and generation has no use for them.
        """
        from .composition import as_layout

        return scatter_blocks(*self.composition_vectors(encoded, layout, blocks), as_layout(layout).size, len(blocks))

    def composition_vectors(self, encoded: list[list[int]], layout, blocks=()):
        """(block [rows] int, -1 for a row without features; vectors [rows, layout size] float32):
        the compact form of :meth:`composition_features`, whose rows are zero outside one block
        (26 blocks of 10,688 numbers in the shipped model: the dense form is mostly zeros)."""
        import numpy as np

        from .composition import as_layout

        layout = as_layout(layout)
        questions = self._label_questions()
        at = np.full(len(encoded), -1, dtype=np.int64)
        vectors = np.zeros((len(encoded), layout.size), dtype=np.float32)
        which = []  # the rows that get features
        for r, ids in enumerate(encoded):
            if not questions.keys().isdisjoint(int(i) for i in ids):
                block = 0
                if blocks:
                    key = self.composition_block(ids)
                    pooled = key.split(" | ")[0]
                    block = blocks.index(key) if key in blocks else blocks.index(pooled) if pooled in blocks else -1
                if block >= 0:
                    which.append(r)
                    at[r] = block
        if which:
            keys = [blocks[at[r]] for r in which] if blocks else None
            vectors[which] = layout.vectors([self.dna_runs(encoded[r]) for r in which], keys)
        return at, vectors

    # ---- answers ---------------------------------------------------------------------------
    def answer_tokens(self, prompt: Prompt, answer: str) -> list[str]:
        """Encode an answer to ``prompt`` (aligned to the input for DNA, protein and GC answers)."""
        return self.answer_format(prompt.task).encode(prompt, answer) + ["<eos>"]

    @staticmethod
    def pointed_item(prompt: Prompt, answer: str) -> int:
        """1-based index of the annotation item the answer is read from (the first one named as asked)."""
        annotations = [i for i in prompt.items if isinstance(i, AnnotationItem)]
        target = (prompt.reading_target or "").strip().lower()
        named = [k for k, i in enumerate(annotations, 1) if i.name.strip().lower() == target and i.value == answer]
        valued = [k for k, i in enumerate(annotations, 1) if i.value == answer]
        found = named or valued
        if not found or found[0] > MAX_ITEM_MARKERS:
            raise InputError(f"reading comprehension answer {answer!r} is not the value of one of the first {MAX_ITEM_MARKERS} items of the prompt")
        return found[0]

    def item_ids(self, prompt: Prompt) -> list[int]:
        """Pointer tokens for the prompt's annotation items (what an extractive answer may be)."""
        n = min(MAX_ITEM_MARKERS, sum(isinstance(i, AnnotationItem) for i in prompt.items))
        return [self.vocab[t] for t in ITEM_TOKENS[:n]]

    def encode_answer(self, prompt: Prompt, answer: str) -> list[int]:
        return [self._convert_token_to_id(t) for t in self.answer_tokens(prompt, answer)]

    def decode_answer(self, prompt: Prompt, ids: Iterable[int]) -> str:
        tokens: list[str] = []
        for i in ids:
            tok = self._convert_id_to_token(int(i))
            if tok == "<eos>":
                break
            if tok not in ("<pad>", "<bos>", "<ans>"):
                tokens.append(tok)
        return self.answer_format(prompt.task).decode(prompt, tokens)

    # ---- token classes used for constrained decoding and label scoring ----------------------
    def label_ids(self, task: registry.Task) -> list[int]:
        return [self.vocab[f"<label:{label}>"] for label in task.labels]

    def ids_with_prefix(self, prefix: str) -> list[int]:
        return [i for t, i in self.vocab.items() if t.startswith(prefix)]

    def text_ids(self) -> list[int]:
        return sorted(self.vocab[t] for t in self._text_pieces)

    def char_id(self, char: str) -> int:
        return self.vocab[char]


def scatter_blocks(at, vectors, size: int, n_blocks: int):
    """[rows, size * max(1, n_blocks)] float32: each row's vector placed in its block ``at[row]``
    (a row whose block is -1 stays zero): the model's ``dna_features`` input from
    :meth:`HybridCodec.composition_vectors`."""
    import numpy as np

    out = np.zeros((len(at), size * max(1, n_blocks)), dtype=np.float32)
    for r in np.flatnonzero(at >= 0):
        out[r, at[r] * size : (at[r] + 1) * size] = vectors[r]
    return out
