"""Refit some blocks of a per-question head, keep the rest from a model fitted before.

Why: a convex refit of every block takes about 100 minutes on 2 cores (the five GUE TF blocks with
all their rows take most of it), while a corpus change usually touches a few questions. With
``head_fit_blocks`` (the blocks to fit) and ``head_fit_keep`` (a checkpoint fitted over the same
language model), :func:`head_fit.fit_cached_head` fits only the named blocks' rows and copies every
other block's first-layer weights, choices and offset scale from the kept model. Each block's convex
fit depends on its own rows only (its held-out tenth is drawn from a generator of its own index,
head_fit.held_out_split), and the second layer is the kept model's label basis, so a kept block
answers exactly as it did, and a refitted one as a full refit over the same rows would make it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .composition import as_layout
from .errors import InputError


def _parts(layout) -> list[tuple[str, slice]]:
    """The layout's parts in column order: the whole sequence's k-mers, the reading frames, the
    positional bins, the motif scores and the likelihoods (a part may be empty)."""
    return [
        ("whole", slice(0, layout.whole_size)),
        ("frames", slice(layout.whole_size, layout.bins_start)),
        ("bins", slice(layout.bins_start, layout.motif_start)),
        ("motifs", slice(layout.motif_start, layout.likelihood_start)),
        ("likelihoods", slice(layout.likelihood_start, layout.size)),
    ]


@dataclasses.dataclass
class KeptHead:
    """The fitted head of ``path`` (first layer per block in its own layout, second layer, choices)."""

    path: Path
    names: list
    layout: object
    head_a: object  # [blocks, layout.size, rank]
    head_b: object  # [hidden, rank]
    choices: dict  # block name -> the choice its fit recorded (train_config.json)

    @classmethod
    def load(cls, path: str | Path, init_model, rank: int) -> "KeptHead":
        import json

        import torch

        from .composition_model import GenomicLlamaForCausalLM
        from .head_fit import read_head
        from .model import load_torch_model

        path = Path(path)
        if not (path / "model.safetensors").exists():
            raise InputError(f"head_fit_keep: {path} is not a checkpoint (no model.safetensors)")
        model, _ = load_torch_model(path)
        if not isinstance(model, GenomicLlamaForCausalLM) or not getattr(model.config, "composition_head_rank", 0):
            raise InputError(f"head_fit_keep: {path} has no per-question composition head")
        if model.config.composition_head_rank != rank:
            raise InputError(f"head_fit_keep: {path} has head rank {model.config.composition_head_rank}, this fit {rank}")
        ours = {k: v for k, v in init_model.state_dict().items() if not k.startswith("composition")}
        theirs = {k: v for k, v in model.state_dict().items() if not k.startswith("composition")}
        if ours.keys() != theirs.keys() or any(not torch.equal(ours[k], theirs[k]) for k in ours):
            raise InputError(f"head_fit_keep: {path} was fitted over another language model than init_from")
        config = path / "train_config.json"
        fitted = json.loads(config.read_text()).get("fitted", {}) if config.exists() else {}
        if fitted.get("solver") != "convex" or "blocks" not in fitted:
            raise InputError(f"head_fit_keep: {path} was not fitted by the convex solver (its train_config.json has no block choices)")
        head_a, head_b = read_head(model)
        return cls(path, list(model.config.composition_blocks), as_layout(model.config), head_a, head_b, dict(fitted["blocks"]))

    def widened_block(self, name: str, layout):
        """[layout.size, rank]: block ``name``'s first layer placed in ``layout``. A part the block
        reads must have the same columns there; a part it does not read (all zero: the kept fit
        dropped it, or another block's choice put it in the layout) may differ, e.g. reading frames
        of other k-mer sizes offered to the refitted blocks only."""
        import torch

        old = self.head_a[self.names.index(name)]
        out = torch.zeros(layout.size, old.shape[-1], dtype=old.dtype)
        for (part, have), (_, want) in zip(_parts(self.layout), _parts(layout)):
            width = have.stop - have.start
            if not width or not bool(old[have].abs().sum() > 0):
                continue
            if width != want.stop - want.start:
                raise InputError(
                    f"head_fit_keep: {name!r} of {self.path} reads a {part} part of {width} columns, this fit's layout has {want.stop - want.start}: refit it"
                )
            out[want] = old[have]
        return out

    def check_layout(self, layout) -> None:
        """The whole sequence's k-mers are read by every block: they must be the same."""
        if tuple(self.layout.ks) != tuple(layout.ks):
            raise InputError(f"head_fit_keep: {self.path} reads k-mers {list(self.layout.ks)}, this fit {list(layout.ks)}")

    def merge(self, head_a, choices: dict, names: list, refit: set, layout):
        """``head_a`` (this fit's, [blocks, layout.size, rank]) and ``choices`` (block index -> choice)
        with every kept block (a block of the kept model not in ``refit``) copied in."""
        head_a, choices = head_a.clone(), dict(choices)
        for name in self.names:
            if name in refit:
                continue
            if name not in names:
                raise InputError(f"head_fit_keep: block {name!r} of {self.path} is not a block of this fit")
            b = names.index(name)
            head_a[b] = self.widened_block(name, layout)
            if name in self.choices:
                choices[b] = dict(self.choices[name], kept_from=str(self.path))
        return head_a, choices


def check_refit_blocks(blocks, names: list, kept: KeptHead) -> set:
    """The named blocks as a set, each one a block of this fit; every block of this fit that the
    kept model lacks must be among them (it has nothing to copy)."""
    unknown = [b for b in blocks if b not in names]
    if unknown:
        raise InputError(f"head_fit_blocks {unknown} are not composition blocks of this fit ({len(names)} blocks)")
    missing = [b for b in names if b not in kept.names and b not in blocks]
    if missing:
        raise InputError(f"head_fit_blocks must name {missing}: {kept.path} has no head for them")
    return set(blocks)


def basis_spans(basis, lm_weight, label_ids) -> bool:
    """Whether ``basis`` ([hidden, rank]) spans the label rows: realise needs it to write any block."""
    E = np.asarray(lm_weight, dtype=np.float64)[sorted(set(label_ids))]
    B = np.asarray(basis, dtype=np.float64)
    return bool(np.allclose(E @ B @ B.T, E, atol=1e-4 * max(1.0, float(np.abs(E).max()))))
