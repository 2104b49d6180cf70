"""Turning prompts into answers with a causal LM: one forward pass for labels, constrained greedy
decoding for everything else.

The decoding is constrained by the task's answer kind so that every answer has a valid format:
a label of the task's set, one GC-count token per input chunk (``d.ddd`` for models without the
scratchpad), exactly one DNA token per input chunk, one
amino-acid token per codon, text tokens until ``<eos>`` for free text. The same logic serves the
PyTorch backend here and the ONNX Runtime backend (which only supplies ``forward``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grammar import Prompt
from .registry import DNA, LABEL, NUMBER, PROTEIN, TEXT
from .codec import ALIGN_OFFSET, GC_TOKENS, HybridCodec, chunk_bounds


@dataclass
class RawAnswer:
    text: str
    probability: float
    labels: dict[str, float] | None


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


class Decoder:
    """Backend-independent decoding; subclasses implement :meth:`forward`."""

    name = "abstract"

    def __init__(self, tokenizer: HybridCodec, context: int):
        self.tok = tokenizer
        self.context = context
        self._dna = np.array(sorted(tokenizer.ids_with_prefix("<dna:")))
        self._aa = np.array(sorted(tokenizer.ids_with_prefix("<aa:")))
        # a text answer is never empty: a lone " " piece may open it (words outside the vocabulary
        # start so), but the next piece shows a character, and only then may <eos> follow
        # (" " then <eos> decodes to "")
        text_ids = set(tokenizer.text_ids())
        self._text_open = np.array(sorted(text_ids))
        self._text = np.array(sorted(text_ids | {tokenizer.eos_token_id}))
        self._visible = frozenset(i for t, i in tokenizer.vocab.items() if i in text_ids and t.strip())
        self._text_visible = np.array(sorted(self._visible))
        self._digits = np.array([tokenizer.char_id(c) for c in "0123456789"])
        self._zero_one = np.array([tokenizer.char_id("0"), tokenizer.char_id("1")])
        self._dot = np.array([tokenizer.char_id(".")])

    # A backend gives logits for the last position of each row, and a cache to continue from.
    def start(self, ids: np.ndarray, mask: np.ndarray, pos: np.ndarray):  # -> (logits[B,V], state)
        raise NotImplementedError

    @staticmethod
    def positions(mask: np.ndarray, aligned: bool) -> np.ndarray:
        """Left-padded prompt positions; aligned answers put the final <ans> at ALIGN_OFFSET + 1."""
        pos = np.maximum(mask.cumsum(-1) - 1, 0).astype(np.int64)
        if aligned:
            pos[:, -1] = ALIGN_OFFSET + 1
        return pos

    def step(self, state, next_ids: np.ndarray):  # -> (logits[B,V], state)
        raise NotImplementedError

    def pad_batch(self, seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        n = max(len(s) for s in seqs)
        ids = np.full((len(seqs), n), self.tok.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(seqs), n), dtype=np.int64)
        for i, s in enumerate(seqs):
            ids[i, n - len(s):] = s
            mask[i, n - len(s):] = 1
        return ids, mask

    def answer_batch(self, prompts: list[Prompt]) -> list[RawAnswer]:
        """Answer prompts of one task (the caller groups by task)."""
        task = prompts[0].task
        seqs = [self.tok.encode_prompt(p) for p in prompts]
        ids, mask = self.pad_batch(seqs)
        logits, state = self.start(ids, mask, self.positions(mask, self.tok.is_aligned(prompts[0])))
        if task.answer_kind == LABEL:
            label_ids = self.tok.label_ids(task)
            probs = _softmax(logits[:, label_ids].astype(np.float64))
            out = []
            for row in probs:
                best = int(row.argmax())
                out.append(RawAnswer(task.labels[best], float(row[best]),
                                     {label: float(p) for label, p in zip(task.labels, row)}))
            return out
        return self._generate(prompts, logits, state)

    def _allowed(self, prompt: Prompt, step: int, shown: bool = True) -> tuple[np.ndarray, bool]:
        """Allowed token ids at ``step`` and whether the answer must end after it (``shown``: a
        text answer has a visible character so far, so it may end)."""
        kind = prompt.task.answer_kind
        if prompt.task.extractive and self.tok.item_pointers:
            return np.array(self.tok.item_ids(prompt)), True
        if kind == NUMBER and self.tok.gc_scratchpad:
            return self._chunk_sized(prompt, step, NUMBER), step == len(chunk_bounds(len(prompt.sequence))) - 1
        if kind == NUMBER:
            return ([self._zero_one, self._dot, self._digits, self._digits, self._digits][step], step == 4)
        if kind == DNA:
            n = len(chunk_bounds(len(prompt.sequence)))
            return self._chunk_sized(prompt, step, DNA), step == n - 1
        if kind == PROTEIN:
            return self._aa, step == len(prompt.sequence) // 3 - 1
        if shown:
            return self._text, False
        return (self._text_open if step == 0 else self._text_visible), False

    def _chunk_sized(self, prompt: Prompt, step: int, kind: str) -> np.ndarray:
        """Answer tokens that fit input chunk ``step``: a k-mer of its length (DNA), or GC counts of at
        most that many known bases (GC scratchpad)."""
        bounds = chunk_bounds(len(prompt.sequence))
        size = bounds[step][1] - bounds[step][0]
        cache = self.__dict__.setdefault("_by_chunk_size", {})
        if (kind, size) not in cache:
            if kind == DNA:
                ids = [i for t, i in self.tok.vocab.items() if t.startswith("<dna:") and len(t) - 6 == size]
            else:
                ids = [self.tok.vocab[t] for t in GC_TOKENS if int(t[-2]) <= size]
            cache[kind, size] = np.array(ids)
        return cache[kind, size]

    def max_steps(self, prompt: Prompt) -> int:
        kind = prompt.task.answer_kind
        if prompt.task.extractive and self.tok.item_pointers:
            return 1
        if kind == NUMBER:
            return len(chunk_bounds(len(prompt.sequence))) if self.tok.gc_scratchpad else 5
        if kind == DNA:
            return len(chunk_bounds(len(prompt.sequence)))
        if kind == PROTEIN:
            return len(prompt.sequence) // 3
        return prompt.task.max_answer_tokens(len(prompt.sequence))

    def _generate(self, prompts: list[Prompt], logits: np.ndarray, state) -> list[RawAnswer]:
        b = len(prompts)
        limits = [self.max_steps(p) for p in prompts]
        done = [lim == 0 for lim in limits]
        out: list[list[int]] = [[] for _ in prompts]
        shown = [False] * b
        logp = np.zeros(b)
        step = 0
        while not all(done):
            nxt = np.full(b, self.tok.eos_token_id, dtype=np.int64)
            for i, p in enumerate(prompts):
                if done[i]:
                    continue
                allowed, last = self._allowed(p, step, shown[i])
                row = logits[i, allowed].astype(np.float64)
                lp = row - np.log(np.exp(row - row.max()).sum()) - row.max()
                k = int(row.argmax())
                nxt[i] = allowed[k]
                logp[i] += lp[k]
                if nxt[i] == self.tok.eos_token_id:
                    done[i] = True
                    continue
                out[i].append(int(nxt[i]))
                shown[i] = shown[i] or int(nxt[i]) in self._visible
                if last or len(out[i]) >= limits[i]:
                    done[i] = True
            step += 1
            if all(done):
                break
            logits, state = self.step(state, nxt)
        return [RawAnswer(self.tok.decode_answer(p, ids), float(np.exp(lp)), None)
                for p, ids, lp in zip(prompts, out, logp)]


class TorchDecoder(Decoder):
    name = "torch"

    def __init__(self, model, tokenizer, threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.model = model
        self.torch = torch
        super().__init__(getattr(tokenizer, "codec", tokenizer), model.config.max_position_embeddings)

    def start(self, ids, mask, pos):
        torch = self.torch
        ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
        pos = torch.from_numpy(pos)
        with torch.inference_mode():
            out = self.model(input_ids=ids_t, attention_mask=mask_t, position_ids=pos, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1].float().numpy(), (out.past_key_values, mask_t, pos[:, -1])

    def step(self, state, next_ids):
        torch = self.torch
        past, mask, last_pos = state
        mask = torch.cat([mask, torch.ones((mask.shape[0], 1), dtype=mask.dtype)], dim=1)
        pos = (last_pos + 1).unsqueeze(1)
        with torch.inference_mode():
            out = self.model(input_ids=torch.from_numpy(next_ids).unsqueeze(1), attention_mask=mask,
                             position_ids=pos, past_key_values=past, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1].float().numpy(), (out.past_key_values, mask, pos[:, 0])
