"""GenomicLLM kernel: grammar, task registry, hybrid tokenizer, answer formats, exact checks, model runtime.

Front ends use :func:`ask`, :func:`predict` and :func:`explain` (or a :class:`GenomicLLM` from
``GenomicLLM.from_pretrained``) only; they never reach into the model.
"""

__version__ = "0.1.0"

from .errors import GenomicLLMError, InputError  # noqa: E402,F401


def __getattr__(name):  # lazy: importing the package must not import torch
    if name in ("ask", "predict", "explain", "Answer", "GenomicLLM"):
        from . import api

        return getattr(api, name)
    raise AttributeError(name)
