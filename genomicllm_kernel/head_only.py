"""Label answers that the per-question head gives alone, without running the language model.

Why: a classification answer is ``lm_head(hidden * (1 + scale(f)) + head(f))`` at the prompt's
``<ans>`` token (composition_model.GenomicLlamaForCausalLM), where ``f`` is the prompt's composition
features and ``scale(f) = offset_scale - 1`` is the factor its question's fit chose for the frozen
language model's own logits (head_convex: 1, 0.5, 0.25 or 0). Where the held-out loss chose 0
(issue #20's promoter blocks, open reading frame, gene biotype: the model card lists them), the
hidden state is multiplied by zero, so the answer is ``lm_head(head(f))``: two small matrix products
of the features. Running the six transformer layers for it (1.4 GFLOP per 300 nt window) is what
explanations, variant effects and scans spent their time on (bench/ANALYSIS.md); this module computes
the same logits in float32 numpy (equal to the full forward pass to float rounding, tested), for
every backend, and the decoder falls back to the model for every other row.

A row qualifies when its factor ``1 + scale(f)`` is zero to :data:`TOLERANCE`: the scale is written
into the first k's frequency columns, whose sum is fixed for any sequence with at least one k-mer
of A/C/G/T (composition.composition_rows), so a sequence without one (all N) keeps the model path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: |1 + scale(f)| below this: the language model's term is float rounding (its hidden state times
#: about 1e-7), so the head alone is the answer
TOLERANCE = 1e-5

#: the tensors this needs from a model's safetensors file (embeddings: tied to the output layer)
WEIGHTS = ("composition_head.0.weight", "composition_head.1.weight", "composition_offset_scale.weight", "model.embed_tokens.weight")


@dataclass(frozen=True, eq=False)
class HeadOnlyAnswers:
    """Per block ``b`` of the composition input (one per question, composition_model): ``down[:, b]``
    [rank, size], the head's first layer on that block; ``scale[b]`` [size], the offset-scale layer
    on it. ``up`` [hidden, rank]: the head's shared second layer; ``output`` [vocab, hidden]: the
    output layer (the tied token embeddings). A prompt's features are zero outside its block, so
    each row reads its block's weights only (codec.HybridCodec.composition_vectors)."""

    down: np.ndarray
    up: np.ndarray
    scale: np.ndarray
    output: np.ndarray

    @classmethod
    def from_weights(cls, weights: dict, n_blocks: int) -> HeadOnlyAnswers | None:
        """From a model's state (numpy arrays by name) with ``n_blocks`` composition blocks; None when
        it has no head or no offset scale (every answer then needs the language model)."""
        if any(name not in weights for name in WEIGHTS):
            return None
        down, up, scale, output = (np.asarray(weights[name], dtype=np.float32) for name in WEIGHTS)
        blocks = max(1, n_blocks)
        size = down.shape[1] // blocks
        return cls(down.reshape(down.shape[0], blocks, size), up, scale.reshape(blocks, size), output)

    @classmethod
    def from_model_dir(cls, path: str | Path) -> HeadOnlyAnswers | None:
        """From ``path/model.safetensors`` and its config (only the four tensors above are read);
        None without them."""
        path = Path(path)
        if not (path / "model.safetensors").exists() or not (path / "config.json").exists():
            return None
        from safetensors import safe_open

        blocks = json.loads((path / "config.json").read_text()).get("composition_blocks") or ()
        with safe_open(str(path / "model.safetensors"), framework="np") as f:
            if any(name not in set(f.keys()) for name in WEIGHTS):
                return None
            return cls.from_weights({name: f.get_tensor(name) for name in WEIGHTS}, len(blocks))

    @property
    def size(self) -> int:
        """Features per block."""
        return self.scale.shape[1]

    def covers(self, at: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """[B] bool: the rows (block ``at``, -1 for none; that block's ``vectors``) whose language
        model term is multiplied by zero."""
        out = np.zeros(len(at), dtype=bool)
        rows = np.flatnonzero(at >= 0)
        if rows.size and vectors.shape[1] == self.size:
            factor = 1.0 + np.einsum("rf,rf->r", vectors[rows].astype(np.float32), self.scale[at[rows]])
            out[rows] = np.abs(factor) <= TOLERANCE
        return out

    def logits(self, at: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """[B, vocab] float32: the output layer read at the head's contribution alone, for rows
        that all have a block."""
        hidden = np.empty((len(at), self.down.shape[0]), dtype=np.float32)
        for b in np.unique(at):
            rows = np.flatnonzero(at == b)
            hidden[rows] = vectors[rows].astype(np.float32) @ self.down[:, b].T
        return (hidden @ self.up.T) @ self.output.T
