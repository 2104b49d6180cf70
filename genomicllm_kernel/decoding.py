"""Turning prompts into answers with a causal LM: one forward pass for labels, constrained greedy
decoding for everything else.

The loop here is the same for every task: the prompt's answer format (:mod:`.formats`) says which
tokens may come at each step and when the answer ends, so every answer has a valid format and the
loop never knows which kind it runs. The same logic serves the PyTorch backend here and the ONNX
Runtime backend (which only supplies ``start`` and ``step``).
"""

from __future__ import annotations

import numpy as np

from .codec import ALIGN_OFFSET, HybridCodec
from .formats import RawAnswer  # noqa: F401 (re-exported: what a decoder returns)
from .grammar import Prompt


def _rows(compact, rows):
    """Those rows of a compact composition input (None stays None)."""
    return None if compact is None else (compact[0][rows], compact[1][rows])


class Decoder:
    """Backend-independent decoding; subclasses implement :meth:`start` and :meth:`step`."""

    name = "abstract"

    def __init__(self, tokenizer: HybridCodec, context: int, composition=None, composition_blocks=()):
        from .composition import as_layout

        self.tok = tokenizer
        self.context = context
        #: the model's composition input (a :class:`~.composition.Layout`, from its k-mer sizes or
        #: its config); None: the model has none
        self.composition = as_layout(composition) if composition else None
        #: the model's per-question blocks of that input (composition_model.GenomicLlamaConfig)
        self.composition_blocks = tuple(composition_blocks or ())

    def features(self, seqs: list[list[int]]) -> np.ndarray | None:
        """The composition input for encoded prompts, or None for a model without one."""
        return self.dense(self.compact_features(seqs))

    def compact_features(self, seqs: list[list[int]]):
        """(block per row, that block's vector per row): the composition input in the codec's compact
        form (codec.HybridCodec.composition_vectors), or None for a model without one."""
        return self.tok.composition_vectors(seqs, self.composition, self.composition_blocks) if self.composition else None

    def dense(self, compact) -> np.ndarray | None:
        """The model's ``dna_features`` input from :meth:`compact_features` (None stays None)."""
        from .codec import scatter_blocks

        return None if compact is None else scatter_blocks(*compact, self.composition.size, len(self.composition_blocks))

    # A backend gives logits for the last position of each row, and a cache to continue from.
    def start(self, ids: np.ndarray, mask: np.ndarray, pos: np.ndarray, features: np.ndarray | None = None):  # -> (logits[B,V], state)
        raise NotImplementedError

    def step(self, state, next_ids: np.ndarray):  # -> (logits[B,V], state)
        raise NotImplementedError

    @staticmethod
    def positions(mask: np.ndarray, aligned: bool) -> np.ndarray:
        """Left-padded prompt positions; aligned answers put the final <ans> at ALIGN_OFFSET + 1."""
        pos = np.maximum(mask.cumsum(-1) - 1, 0).astype(np.int64)
        if aligned:
            pos[:, -1] = ALIGN_OFFSET + 1
        return pos

    def pad_batch(self, seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        n = max(len(s) for s in seqs)
        ids = np.full((len(seqs), n), self.tok.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(seqs), n), dtype=np.int64)
        for i, s in enumerate(seqs):
            ids[i, n - len(s) :] = s
            mask[i, n - len(s) :] = 1
        return ids, mask

    #: at most this many prompt tokens in one forward pass of single-pass (label) answers; None: the
    #: caller's batch. A backend sets it where smaller passes run faster (ONNX Runtime int8 on CPU:
    #: activations that stay in cache beat one big batch, measured in bench/ANALYSIS.md)
    tokens_per_pass: int | None = None

    def rows_per_pass(self, n_tok: int, asked: int) -> int:
        """How many prompts of ``n_tok`` tokens one single-pass forward takes (at most ``asked``)."""
        if not self.tokens_per_pass:
            return asked
        return max(1, min(asked, self.tokens_per_pass // max(1, n_tok)))

    def answer_batch(self, prompts: list[Prompt], encoded: list[list[int]] | None = None, compact=None) -> list[RawAnswer]:
        """Answer prompts of one task (the caller groups by task); ``encoded`` are their token ids
        when the caller already has them (the length check encodes every prompt once), ``compact``
        their composition input (:meth:`compact_features`) when it was already computed."""
        fmt = self.tok.answer_format(prompts[0].task)
        seqs = encoded if encoded is not None else [self.tok.encode_prompt(p) for p in prompts]
        if compact is None:
            compact = self.compact_features(seqs)
        if fmt.single_pass and self.head_only is not None and compact is not None:
            covered = self.head_only.covers(*compact)
            if covered.any():
                return self._answer_head_only(prompts, seqs, compact, covered)
        rows = self.rows_per_pass(max(len(s) for s in seqs), len(seqs)) if fmt.single_pass else len(seqs)
        if rows < len(seqs):
            return [
                a
                for s in range(0, len(seqs), rows)
                for a in self._answer_model(prompts[s : s + rows], seqs[s : s + rows], _rows(compact, slice(s, s + rows)))
            ]
        return self._answer_model(prompts, seqs, compact)

    def _answer_model(self, prompts: list[Prompt], seqs: list[list[int]], compact) -> list[RawAnswer]:
        """:meth:`answer_batch`'s model pass over one batch."""
        fmt = self.tok.answer_format(prompts[0].task)
        ids, mask = self.pad_batch(seqs)
        logits, state = self.start(ids, mask, self.positions(mask, fmt.aligned), self.dense(compact))
        if fmt.single_pass:
            return fmt.score(prompts, logits)
        return self._generate(prompts, fmt, logits, state)

    #: a :class:`~.head_only.HeadOnlyAnswers` of the model: label answers of rows whose question's
    #: fit multiplies the language model's term by zero come from the head alone (the same logits,
    #: without the transformer pass); None: every answer runs the model
    head_only = None

    def _answer_head_only(self, prompts: list[Prompt], seqs: list[list[int]], compact, covered: np.ndarray) -> list[RawAnswer]:
        """Single-pass answers: the ``covered`` rows from the head alone, the others from the model."""
        fmt = self.tok.answer_format(prompts[0].task)
        inside = np.flatnonzero(covered)
        out: list[RawAnswer | None] = [None] * len(prompts)
        for i, a in zip(inside, fmt.score([prompts[i] for i in inside], self.head_only.logits(*_rows(compact, inside)))):
            out[i] = a
        rest = np.flatnonzero(~covered)
        if rest.size:
            for i, a in zip(rest, self.answer_batch([prompts[i] for i in rest], [seqs[i] for i in rest], _rows(compact, rest))):
                out[i] = a
        return out

    def _head_only_scores(self, prompts: list[Prompt], compact) -> list[RawAnswer] | None:
        """Every row's single-pass answer from the head alone, or None unless it covers them all."""
        if self.head_only is None or compact is None or not self.head_only.covers(*compact).all():
            return None
        return self.tok.answer_format(prompts[0].task).score(prompts, self.head_only.logits(*compact))

    def _head_only_pair_scores(self, prompts: list[Prompt], seqs: list[list[int]]) -> list[RawAnswer] | None:
        """:meth:`_head_only_scores` of ``seqs``, featurised only when their first row is covered (a
        question the model answers keeps its per-batch features)."""
        if self.head_only is None or self.composition is None or not seqs or not self.head_only.covers(*self.compact_features(seqs[:1])).all():
            return None
        return self._head_only_scores(prompts, self.compact_features(seqs))

    def _in_batches(self, prompts: list[Prompt], encoded: list[list[int]], batch_size: int) -> list[RawAnswer]:
        """:meth:`answer_batch` over ``batch_size`` prompts at a time (the full-pass path of a backend
        that cannot continue a cache)."""
        return [a for s in range(0, len(prompts), batch_size) for a in self.answer_batch(prompts[s : s + batch_size], encoded[s : s + batch_size])]

    #: whether :meth:`extend` continues from a slice of a cache (else :meth:`answer_sharing_prefix` runs full passes)
    reuses_prefix = False

    def extend(self, state, length: int, ids: np.ndarray, pos: np.ndarray, features: np.ndarray | None):  # -> logits[B,V]
        """Logits at the last position of ``ids`` [B, S] read after the first ``length`` positions of a
        one-row ``state`` from :meth:`start` (every row shares that prefix)."""
        raise NotImplementedError

    def answer_sharing_prefix(self, reference: list[int], prompts: list[Prompt], encoded: list[list[int]], batch_size: int = 64) -> list[RawAnswer]:
        """Single-pass answers of prompts whose tokens start like ``reference``'s (the substitutions of
        in-silico mutagenesis): the reference is run once and each batch continues from its cache
        where its rows first differ, which halves the work on average for a causal model. Exactly
        the answers of :meth:`answer_batch` (tested), only cheaper."""
        fmt = self.tok.answer_format(prompts[0].task)
        if not fmt.single_pass:
            raise ValueError("prefix sharing serves single-pass (label) answers")
        # every variant's composition in one call: the motif scores of substitutions near the
        # reference are rescored from its window scores only when enough of them come together
        compact = self.compact_features(encoded)
        direct = self._head_only_scores(prompts, compact)
        if direct is not None:
            return direct
        if not self.reuses_prefix:
            return self._in_batches(prompts, encoded, batch_size)
        ref = np.asarray(reference, dtype=np.int64)[None]
        ref_mask = np.ones_like(ref)
        _, state = self.start(ref, ref_mask, self.positions(ref_mask, fmt.aligned), self.features([list(reference)]))

        def same_prefix(e):  # positions equal to the reference, leaving at least the last token to run
            n = min(len(e), len(reference)) - 1
            diff = np.flatnonzero(np.asarray(e[:n]) != ref[0, :n])
            return int(diff[0]) if diff.size else n

        shared = [same_prefix(e) for e in encoded]
        order = sorted(range(len(prompts)), key=lambda i: (len(encoded[i]), shared[i]))
        results: dict[int, RawAnswer] = {}
        s = 0
        while s < len(order):
            n_tok = len(encoded[order[s]])
            batch = [order[s]]
            rows = self.rows_per_pass(n_tok - shared[order[s]], batch_size)  # the first row has the longest suffix
            while len(batch) < rows and s + len(batch) < len(order) and len(encoded[order[s + len(batch)]]) == n_tok:
                batch.append(order[s + len(batch)])
            s += len(batch)
            length = min(shared[i] for i in batch)
            ids = np.asarray([encoded[i][length:] for i in batch], dtype=np.int64)
            pos = self.positions(np.ones((len(batch), n_tok), dtype=np.int64), fmt.aligned)[:, length:]
            logits = self.extend(state, length, ids, pos, self.dense(_rows(compact, batch)))
            results.update(zip(batch, fmt.score([prompts[i] for i in batch], logits)))
        return [results[i] for i in range(len(prompts))]

    def extend_rows(self, state, length: int, ids: np.ndarray, pos: np.ndarray, features: np.ndarray | None):  # -> logits[B,V]
        """Like :meth:`extend`, but row ``r`` of ``ids`` continues from row ``r`` of a ``state`` of
        as many rows (each row its own prefix: the reference window of its own variant)."""
        raise NotImplementedError

    def answer_pairs_sharing_prefix(
        self, prompts: list[Prompt], references: list[list[int]], variants: list[list[int]], batch_size: int = 32
    ) -> list[tuple[RawAnswer, RawAnswer]]:
        """Single-pass answers of (reference, variant) pairs of one question, each variant differing
        from its own reference (variant effects: the window centred on a variant, with its ref and its
        alt allele). Pairs of equal lengths go together: their references run in one pass, and each
        variant continues from its own reference's cache where its tokens first differ, so a
        variant costs one pass and a half instead of two (a SNV in the middle of its window). Exactly
        the answers of :meth:`answer_batch` on both prompts (tested), only cheaper; ``prompts`` are
        the pairs' (shared) questions, used for scoring."""
        fmt = self.tok.answer_format(prompts[0].task)
        if not fmt.single_pass:
            raise ValueError("prefix sharing serves single-pass (label) answers")
        ref_direct, var_direct = self._head_only_pair_scores(prompts, references), self._head_only_pair_scores(prompts, variants)
        if ref_direct is not None and var_direct is not None:
            return list(zip(ref_direct, var_direct))
        if not self.reuses_prefix:
            return list(zip(self._in_batches(prompts, references, batch_size), self._in_batches(prompts, variants, batch_size)))
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (r, v) in enumerate(zip(references, variants)):
            groups.setdefault((len(r), len(v)), []).append(i)
        results: dict[int, tuple[RawAnswer, RawAnswer]] = {}
        for (n_ref, n_var), members in groups.items():
            rows = self.rows_per_pass(n_ref, min(len(members), batch_size))
            for s in range(0, len(members), rows):
                batch = members[s : s + rows]
                ids = np.asarray([references[i] for i in batch], dtype=np.int64)
                mask = np.ones_like(ids)
                logits, state = self.start(ids, mask, self.positions(mask, fmt.aligned), self.features([references[i] for i in batch]))
                ref_answers = fmt.score([prompts[i] for i in batch], logits)
                # positions equal to the row's own reference, leaving at least the last token to run
                n = min(n_ref, n_var) - 1
                same = [np.flatnonzero(np.asarray(variants[i][:n]) != ids[r, :n]) for r, i in enumerate(batch)]
                length = min(int(d[0]) if d.size else n for d in same)
                var_ids = np.asarray([variants[i][length:] for i in batch], dtype=np.int64)
                pos = self.positions(np.ones((len(batch), n_var), dtype=np.int64), fmt.aligned)[:, length:]
                logits = self.extend_rows(state, length, var_ids, pos, self.features([variants[i] for i in batch]))
                results.update(zip(batch, zip(ref_answers, fmt.score([prompts[i] for i in batch], logits))))
        return [results[i] for i in range(len(prompts))]

    def _generate(self, prompts: list[Prompt], fmt, logits: np.ndarray, state) -> list[RawAnswer]:
        b = len(prompts)
        eos = self.tok.eos_token_id
        limits = [fmt.max_steps(p) for p in prompts]
        done = [lim == 0 for lim in limits]
        out: list[list[int]] = [[] for _ in prompts]
        logp = np.zeros(b)
        step = 0
        while not all(done):
            nxt = np.full(b, eos, dtype=np.int64)
            for i, p in enumerate(prompts):
                if done[i]:
                    continue
                allowed, last = fmt.allowed(p, step, out[i])
                row = logits[i, allowed].astype(np.float64)
                lp = row - np.log(np.exp(row - row.max()).sum()) - row.max()
                k = int(row.argmax())
                nxt[i] = allowed[k]
                logp[i] += lp[k]
                if nxt[i] == eos:
                    done[i] = True
                    continue
                out[i].append(int(nxt[i]))
                if last or len(out[i]) >= limits[i]:
                    done[i] = True
            step += 1
            if all(done):
                break
            logits, state = self.step(state, nxt)
        return [RawAnswer(self.tok.decode_answer(p, ids), float(np.exp(lp)), None) for p, ids, lp in zip(prompts, out, logp)]


class TorchDecoder(Decoder):
    name = "torch"

    def __init__(self, model, tokenizer, threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.model = model
        self.torch = torch
        layout = model.config if getattr(model.config, "composition_ks", None) else None
        blocks = getattr(model.config, "composition_blocks", ())
        super().__init__(getattr(tokenizer, "codec", tokenizer), model.config.max_position_embeddings, layout, blocks)

    def start(self, ids, mask, pos, features=None):
        torch = self.torch
        ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
        pos = torch.from_numpy(pos)
        extra = {} if features is None else {"dna_features": torch.from_numpy(features)}
        with torch.inference_mode():
            out = self.model(input_ids=ids_t, attention_mask=mask_t, position_ids=pos, use_cache=True, logits_to_keep=1, **extra)
        return out.logits[:, -1].float().numpy(), (out.past_key_values, mask_t, pos[:, -1])

    reuses_prefix = True

    def extend(self, state, length, ids, pos, features=None):
        import copy

        past = copy.deepcopy(state[0])
        past.crop(length)
        past.batch_repeat_interleave(ids.shape[0])
        return self._continue(past, length, ids, pos, features)

    def _continue(self, past, length, ids, pos, features):
        torch = self.torch
        mask = torch.ones((ids.shape[0], length + ids.shape[1]), dtype=torch.int64)
        extra = {} if features is None else {"dna_features": torch.from_numpy(features)}
        with torch.inference_mode():
            out = self.model(
                input_ids=torch.from_numpy(ids),
                attention_mask=mask,
                position_ids=torch.from_numpy(np.ascontiguousarray(pos)),
                past_key_values=past,
                use_cache=True,
                logits_to_keep=1,
                **extra,
            )
        return out.logits[:, -1].float().numpy()

    def extend_rows(self, state, length, ids, pos, features=None):
        import copy

        past = copy.deepcopy(state[0])
        past.crop(length)
        return self._continue(past, length, ids, pos, features)

    def step(self, state, next_ids):
        torch = self.torch
        past, mask, last_pos = state
        mask = torch.cat([mask, torch.ones((mask.shape[0], 1), dtype=mask.dtype)], dim=1)
        pos = (last_pos + 1).unsqueeze(1)
        with torch.inference_mode():
            out = self.model(
                input_ids=torch.from_numpy(next_ids).unsqueeze(1),
                attention_mask=mask,
                position_ids=pos,
                past_key_values=past,
                use_cache=True,
                logits_to_keep=1,
            )
        return out.logits[:, -1].float().numpy(), (out.past_key_values, mask, pos[:, 0])
