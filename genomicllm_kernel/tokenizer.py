"""The Hugging Face face of the hybrid codec: a ``PreTrainedTokenizer`` with ``save_pretrained`` /
``from_pretrained``, ``__call__`` with padding, and ``decode``. The design of the encoding is
documented in :mod:`genomicllm_kernel.codec`; this class only adapts it to transformers.
"""

from __future__ import annotations

import json
import os

from transformers import PreTrainedTokenizer

from .codec import VOCAB_FILE, HybridCodec, learn_text_pieces  # noqa: F401 (re-exported)
from .grammar import parse_prompt

_DELEGATED = (
    "text_tokens",
    "dna_tokens",
    "prompt_tokens",
    "encode_prompt",
    "decode_prompt_tokens",
    "answer_tokens",
    "encode_answer",
    "decode_answer",
    "label_ids",
    "ids_with_prefix",
    "text_ids",
    "char_id",
    "is_aligned",
    "gc_scratchpad",
    "item_pointers",
    "item_ids",
    "pointed_item",
    "item_marker",
    "answer_format",
    "settings",
    "name_keys",
)


class GenomicLLMTokenizer(PreTrainedTokenizer):
    """A transformers tokenizer (``save_pretrained`` / ``from_pretrained``) for GenomicLLM prompts."""

    vocab_files_names = {"vocab_file": VOCAB_FILE}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str | None = None,
        text_pieces: list[str] | None = None,
        item_pointers: bool | None = None,
        item_marker: str = "before_name",
        gc_scratchpad: bool | None = None,
        **kwargs,
    ):
        if vocab_file is not None:
            # settings a folder did not save (written before they existed) are inferred from its vocabulary
            with open(vocab_file, encoding="utf-8") as fh:
                self.codec = HybridCodec(json.load(fh), item_marker, gc_scratchpad, item_pointers)
        else:
            self.codec = HybridCodec.build(text_pieces, True if item_pointers is None else item_pointers, item_marker)
        # every codec setting is saved in tokenizer_config.json, as PreTrainedTokenizer saves its init kwargs
        kwargs.update(self.codec.settings())
        self.vocab = self.codec.vocab
        kwargs.setdefault("padding_side", "left")
        for role in ("bos", "eos", "pad", "unk", "sep"):
            kwargs.setdefault(f"{role}_token", f"<{role}>")
        super().__init__(**kwargs)

    def use_item_marker(self, layout: str) -> None:
        """Switch the item-marker layout (continued training in a new layout); saved with the tokenizer."""
        self.codec = HybridCodec(self.codec.vocab, layout, self.codec.gc_scratchpad, self.codec.item_pointers)
        self.init_kwargs["item_marker"] = layout

    def add_name_keys(self, n_keys: int) -> None:
        """Append ``n_keys`` name-key tokens (codec.py, "Name keys") to the vocabulary; existing ids stay."""
        self.codec = self.codec.with_name_keys(n_keys)
        self.vocab = self.codec.vocab

    def add_text_pieces(self, pieces) -> None:
        """Append text pieces to the vocabulary (codec.HybridCodec.with_text_pieces); existing ids stay."""
        self.codec = self.codec.with_text_pieces(pieces)
        self.vocab = self.codec.vocab

    def __getattr__(self, name):
        if name in _DELEGATED:
            return getattr(self.__dict__["codec"], name)
        try:
            return super().__getattr__(name)
        except AttributeError:
            raise AttributeError(name) from None

    @property
    def vocab_size(self) -> int:
        return len(self.codec)

    def __len__(self) -> int:
        return len(self.codec)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.codec.vocab)

    def _convert_token_to_id(self, token: str) -> int:
        return self.codec._convert_token_to_id(token)

    def _convert_id_to_token(self, index: int) -> str:
        return self.codec._convert_id_to_token(index)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        name = (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILE
        path = os.path.join(save_directory, name)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.codec.vocab, fh, ensure_ascii=False, indent=0)
        return (path,)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return self.codec.prompt_tokens(parse_prompt(text))

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        ids = [self.bos_token_id] + list(token_ids_0)
        return ids + list(token_ids_1) if token_ids_1 else ids

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return self.codec.decode_prompt_tokens(tokens)
