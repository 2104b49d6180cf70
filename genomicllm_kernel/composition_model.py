"""``GenomicLlamaForCausalLM``: transformers' Llama plus one linear layer that adds the prompt's k-mer
composition (:mod:`.composition`) to the embedding of its ``<ans>`` token.

Why a subclass and not a new architecture: everything else (attention, KV cache, generation,
``save_pretrained`` / ``from_pretrained`` in safetensors) stays transformers' own, and a stock Llama
checkpoint becomes this class with the new layer at zero (:func:`with_composition`), so it answers
exactly as before until training moves the layer. The extra input ``dna_features`` is [batch,
features]; it only acts where ``input_ids`` equal ``config.composition_token_id`` (the prompt's final
``<ans>``), so decoding steps with a KV cache, whose tokens are answer tokens, are unaffected.

Importing this module registers the class with transformers' Auto classes and, when Optimum is
installed, an ONNX config (``GenomicLlamaOnnxConfig``) for ``text-generation-with-past`` export with
the extra input.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from .composition import DEFAULT_KS, as_layout, feature_size

MODEL_TYPE = "genomicllm_llama"
FEATURES_INPUT = "dna_features"


class GenomicLlamaConfig(LlamaConfig):
    model_type = MODEL_TYPE

    def __init__(
        self,
        composition_ks=DEFAULT_KS,
        composition_token_id: int | None = None,
        composition_blocks=(),
        composition_head_rank: int = 0,
        composition_bins: int = 0,
        composition_bin_ks=(),
        composition_bin_blocks=(),
        composition_phase_ks=(),
        composition_phase_blocks=(),
        composition_offset_scale: bool = False,
        composition_motifs: dict | None = None,
        composition_motif_blocks=(),
        composition_likelihoods: dict | None = None,
        composition_likelihood_blocks=(),
        **kwargs,
    ):
        self.composition_ks = list(composition_ks)
        #: with bins: each block also holds the ``composition_bin_ks``-mer frequencies of each of
        #: ``composition_bins`` equal parts of the sequence, which only the per-question head reads
        #: (composition.Layout); 0: the whole sequence's k-mers only
        self.composition_bins = composition_bins
        self.composition_bin_ks = list(composition_bin_ks)
        #: the blocks whose positional part is filled (empty: all of them)
        self.composition_bin_blocks = list(composition_bin_blocks)
        #: the k-mers of each reading frame, filled only in ``composition_phase_blocks`` and read by
        #: the per-question head only (composition.Layout, phased_rows); empty: none
        self.composition_phase_ks = list(composition_phase_ks)
        self.composition_phase_blocks = list(composition_phase_blocks)
        #: with the head: the final hidden state at <ans> is also scaled per question, by 1 plus a
        #: linear map of its block (``composition_offset_scale``), so a question's fit can trust
        #: the language model's own label logits less than 1 (head_convex.fit_block, offset scales)
        self.composition_offset_scale = bool(composition_offset_scale)
        #: motif matrices (motifs.MotifSet.to_config: JASPAR ids, names, log-odds rows) whose best
        #: score over the sequence fills the end of each block in ``composition_motif_blocks``,
        #: read by the per-question head only (composition.Layout); None: no motif part
        self.composition_motifs = composition_motifs
        self.composition_motif_blocks = list(composition_motif_blocks)
        #: the coding and mRNA Markov chains (likelihoods.SequenceLikelihoods.to_config) whose five
        #: log-likelihoods fill the end of each block in ``composition_likelihood_blocks``, read by the
        #: heads shared over a question's labels only (composition.Layout); None: no likelihood part
        self.composition_likelihoods = composition_likelihoods
        self.composition_likelihood_blocks = list(composition_likelihood_blocks)
        self.composition_token_id = composition_token_id
        #: the questions (and GUE TF sets) that each get their own block of ``dna_features``
        #: (codec.composition_block); empty: one block shared by every classification question
        self.composition_blocks = list(composition_blocks)
        #: rank of the per-question head on the final hidden state at <ans>; 0: no head
        self.composition_head_rank = composition_head_rank
        super().__init__(**kwargs)


def per_question_blocks() -> list[str]:
    """Every classification question key of the registry, then one block per GUE TF set, then one per
    proximal promoter question asked with ``benchmark = GUE``, then one per core promoter question
    asked so (each group appended last: a model fitted before it existed keeps its blocks' order as a
    prefix)."""
    from .registry import TASKS

    keys = [key for task in TASKS.values() if task.labels for key in task.question_keys]
    tf = TASKS["tf_binding"].question_keys[0]
    proximal = [key for key in TASKS["promoter"].question_keys if key.startswith("proximal")]
    core = [key for key in TASKS["promoter"].question_keys if key.startswith("core")]
    return keys + [f"{tf} | GUE tf_{k}" for k in range(5)] + [f"{key} | GUE" for key in proximal] + [f"{key} | GUE" for key in core]


def features_width(config) -> int:
    """Length of the ``dna_features`` input: one k-mer block per composition block (at least one)."""
    return as_layout(config).size * max(1, len(getattr(config, "composition_blocks", ()) or ()))


class GenomicLlamaForCausalLM(LlamaForCausalLM):
    config_class = GenomicLlamaConfig

    def __init__(self, config: GenomicLlamaConfig):
        super().__init__(config)
        self.composition = nn.Linear(feature_size(config.composition_ks), config.hidden_size, bias=False)
        rank = getattr(config, "composition_head_rank", 0)
        if rank:
            # per question: the block's k-mers -> rank numbers (its own weights), then one shared map
            # onto the final hidden state, so each question's label logits gain a k-mer logistic
            # regression of their own; the second layer starts at zero (the model answers as before)
            self.composition_head = nn.Sequential(
                nn.Linear(features_width(config), rank, bias=False), nn.Linear(rank, config.hidden_size, bias=False)
            )
        if rank and getattr(config, "composition_offset_scale", False):
            # zero: a scale of exactly 1 (the model answers as without it)
            self.composition_offset_scale = nn.Linear(features_width(config), 1, bias=False)
        self.post_init()
        if rank:
            with torch.no_grad():
                self.composition_head[1].weight.zero_()
                if hasattr(self, "composition_offset_scale"):
                    self.composition_offset_scale.weight.zero_()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        position_ids=None,
        dna_features=None,
        past_key_values=None,
        inputs_embeds=None,
        labels=None,
        use_cache=None,
        cache_position=None,
        logits_to_keep=0,
        **kwargs,
    ):
        # dna_features sits before past_key_values: the ONNX exporter maps its named dummy inputs onto
        # this signature's order, and an input after logits_to_keep (a default int) would be misnamed
        if dna_features is not None and inputs_embeds is None:
            inputs_embeds, at_answer, feats = self.embeddings_with_composition(input_ids, dna_features)
            if hasattr(self, "composition_head"):
                inputs = dict(attention_mask=attention_mask, position_ids=position_ids, past_key_values=past_key_values)
                inputs.update(use_cache=use_cache, cache_position=cache_position, **kwargs)
                return self._forward_with_head(at_answer, feats, inputs_embeds, labels, logits_to_keep, inputs)
        return super().forward(
            input_ids=None if inputs_embeds is not None else input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            labels=labels,
            use_cache=use_cache,
            cache_position=cache_position,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )

    def embeddings_with_composition(self, input_ids, dna_features):
        """(token embeddings with the input-side composition added at <ans>, the <ans> mask [B, S, 1],
        the features in the embeddings' dtype): the model's input, also what head fitting caches from."""
        inputs_embeds = self.model.embed_tokens(input_ids)
        at_answer = (input_ids == self.config.composition_token_id).unsqueeze(-1).to(inputs_embeds.dtype)
        feats = dna_features.to(inputs_embeds.dtype)
        # the input side reads the whole sequence's k-mers whatever block they sit in (blocks are zero
        # but one); a block's positional part (composition_bins) is the head's alone
        layout = as_layout(self.config)
        pooled = feats.view(feats.shape[0], -1, layout.size)[:, :, : layout.whole_size].sum(1)
        return inputs_embeds + at_answer * self.composition(pooled).unsqueeze(1), at_answer, feats

    def _forward_with_head(self, at_answer, feats, inputs_embeds, labels, logits_to_keep, inputs: dict):
        """LlamaForCausalLM.forward with the per-question head added to the final hidden state at <ans>."""
        from transformers.modeling_outputs import CausalLMOutputWithPast

        out = self.model(inputs_embeds=inputs_embeds, **inputs)
        hidden = out.last_hidden_state
        if hasattr(self, "composition_offset_scale"):
            hidden = hidden * (1 + at_answer * self.composition_offset_scale(feats).unsqueeze(1))
        hidden = hidden + at_answer * self.composition_head(feats).unsqueeze(1)
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden[:, keep, :])
        loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size) if labels is not None else None
        return CausalLMOutputWithPast(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states, attentions=out.attentions
        )


def with_composition(model, answer_token_id: int, ks=DEFAULT_KS, blocks=(), head_rank: int = 0) -> GenomicLlamaForCausalLM:
    """A stock Llama as :class:`GenomicLlamaForCausalLM` with the composition layer (and, with
    ``head_rank``, the per-question head over ``blocks``) at zero: the same answers."""
    if isinstance(model, GenomicLlamaForCausalLM):
        return model
    if not isinstance(model, LlamaForCausalLM):
        raise TypeError(f"composition features need a Llama model, not {type(model).__name__}")
    cfg = model.config.to_dict()
    for key in ("model_type", "architectures", "transformers_version"):
        cfg.pop(key, None)
    config = GenomicLlamaConfig(
        composition_ks=ks, composition_token_id=answer_token_id, composition_blocks=blocks, composition_head_rank=head_rank, **cfg
    )
    config.architectures = ["GenomicLlamaForCausalLM"]
    new = GenomicLlamaForCausalLM(config)
    missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
    if unexpected or {m for m in missing if not m.startswith("composition_head.")} - {"composition.weight"}:
        raise RuntimeError(f"weights did not carry over: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        new.composition.weight.zero_()
    new.tie_weights()
    return new


AutoConfig.register(MODEL_TYPE, GenomicLlamaConfig, exist_ok=True)
AutoModelForCausalLM.register(GenomicLlamaConfig, GenomicLlamaForCausalLM, exist_ok=True)


def register_onnx_config() -> None:
    """Teach Optimum's exporter the extra input (idempotent; needs optimum-onnx)."""
    from optimum.exporters.onnx.model_configs import LlamaOnnxConfig
    from optimum.exporters.tasks import TasksManager
    from optimum.utils.input_generators import DummyInputGenerator

    if MODEL_TYPE in TasksManager._SUPPORTED_MODEL_TYPE:
        return

    class DummyCompositionGenerator(DummyInputGenerator):
        SUPPORTED_INPUT_NAMES = (FEATURES_INPUT,)

        def __init__(self, task, normalized_config, batch_size: int = 2, **kwargs):
            self.batch_size = batch_size
            self.size = features_width(normalized_config.config)

        def generate(self, input_name, framework="pt", int_dtype="int64", float_dtype="fp32"):
            return self.random_float_tensor([self.batch_size, self.size], min_value=0, max_value=1, framework=framework, dtype=float_dtype)

    class GenomicLlamaOnnxConfig(LlamaOnnxConfig):
        DUMMY_INPUT_GENERATOR_CLASSES = LlamaOnnxConfig.DUMMY_INPUT_GENERATOR_CLASSES + (DummyCompositionGenerator,)

        @property
        def inputs(self):
            common = super().inputs
            common[FEATURES_INPUT] = {0: "batch_size"}
            return common

    TasksManager.create_register("onnx")(MODEL_TYPE, "text-generation", "text-generation-with-past", "feature-extraction")(GenomicLlamaOnnxConfig)

    # Optimum names a model's library from its class's module (``transformers.*``); this class is a
    # transformers model defined here, so answer "transformers" for it and defer to Optimum otherwise.
    infer = TasksManager._infer_library_from_model_or_model_class.__func__

    def infer_library(cls, model=None, model_class=None):
        target = model.__class__ if model is not None else model_class
        if isinstance(target, type) and issubclass(target, GenomicLlamaForCausalLM):
            return "transformers"
        return infer(cls, model=model, model_class=model_class)

    TasksManager._infer_library_from_model_or_model_class = classmethod(infer_library)
