"""Jupyter front end for GenomicLLM: the ``%%genomicllm`` / ``%genomicllm`` magics and a question panel.

Load with ``%load_ext genomicllm_jupyter``. Everything goes through ``genomicllm_kernel.ask`` /
``predict``; this package only parses cells, renders answers and draws widgets.
"""

from .display import AnswerTable  # noqa: F401


def load_ipython_extension(ipython) -> None:
    from .magics import GenomicLLMMagics

    ipython.register_magics(GenomicLLMMagics)


def question_panel(**kwargs):
    """The ipywidgets question panel (sequence box, task, items, Ask button, answer and plot)."""
    from .widget import QuestionPanel

    return QuestionPanel(**kwargs)
