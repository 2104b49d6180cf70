"""The question panel: paste a sequence (raw or FASTA), pick a task, fill its items, press Ask.

Long sequences are answered window by window and, for classification tasks, the panel draws the
probability of the first label along the sequence (an inline SVG, so no plotting library is
needed and Voila serves it as a standalone page).
"""

from __future__ import annotations

import html
import io

import ipywidgets as W

from genomicllm_kernel import ask, predict
from genomicllm_kernel.api import explain_records
from genomicllm_kernel.errors import GenomicLLMError
from genomicllm_kernel.alphabet import normalise_sequence
from genomicllm_kernel.fasta import Record, read_fasta
from genomicllm_kernel.grammar import make_prompt
from genomicllm_kernel.registry import TASKS

from .display import AnswerTable, ExplanationView


def probability_plot(answers, label: str, width: int = 520, height: int = 140) -> str:
    """SVG line of P(label) per window centre along the sequence."""
    pts = [((a.window[0] + a.window[1]) / 2, (a.labels or {}).get(label, 0.0)) for a in answers if a.window]
    if len(pts) < 2:
        return ""
    x0, x1 = pts[0][0], pts[-1][0]
    sx = lambda x: 40 + (width - 50) * (x - x0) / max(1e-9, x1 - x0)  # noqa: E731
    sy = lambda y: 10 + (height - 35) * (1 - y)  # noqa: E731
    path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(pts))
    dots = "".join(f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='2.5' fill='#4c78a8'/>" for x, y in pts)
    return (
        f"<svg class='gllm-plot' width='{width}' height='{height}' xmlns='http://www.w3.org/2000/svg'>"
        f"<line x1='40' y1='{sy(0.5):.1f}' x2='{width - 10}' y2='{sy(0.5):.1f}' stroke='#ccc' stroke-dasharray='4'/>"
        f"<line x1='40' y1='{sy(0)}' x2='{width - 10}' y2='{sy(0)}' stroke='#888'/>"
        f"<line x1='40' y1='{sy(1)}' x2='40' y2='{sy(0)}' stroke='#888'/>"
        f"<text x='4' y='{sy(1) + 4}' font-size='10'>1.0</text><text x='4' y='{sy(0) + 4}' font-size='10'>0.0</text>"
        f"<text x='40' y='{height - 5}' font-size='10'>{int(x0)}</text>"
        f"<text x='{width - 60}' y='{height - 5}' font-size='10'>{int(x1)} nt</text>"
        f"<text x='{width / 2 - 60}' y='{height - 5}' font-size='10'>P({html.escape(label)}) by window</text>"
        f"<path d='{path}' fill='none' stroke='#4c78a8' stroke-width='1.5'/>{dots}</svg>"
    )


class QuestionPanel(W.VBox):
    def __init__(self, model: str | None = None, backend: str = "auto", window_size: int = 300, **kwargs):
        self.model, self.backend = model, backend
        # widths: a described widget adds its label to its width, so 100% overflowed the page; 'auto'
        # with max 100% keeps every row inside the notebook (and the Voila page)
        self.sequence = W.Textarea(
            placeholder="Paste a DNA sequence or FASTA records",
            layout=W.Layout(width="auto", max_width="100%", height="90px"),
            description="Sequence",
        )
        self.task = W.Dropdown(options=[(f"{t.title} ({t.id})", t.id) for t in TASKS.values()], value="promoter", description="Task")
        self.question = W.Dropdown(description="Question")
        self.items_box = W.VBox()
        self.window = W.BoundedIntText(value=window_size, min=10, max=100000, description="Window (nt)")
        self.button = W.Button(description="Ask", button_style="primary", icon="question")
        # in-silico mutagenesis of a classification answer, drawn as a sequence logo (display.py)
        self.explain_button = W.Button(description="Explain", icon="search", tooltip="which bases drove the answer (classification tasks)")
        self.answer = W.HTML(value="")
        self.plot = W.HTML(value="")
        self.status = W.HTML(value="")
        self.last: AnswerTable | None = None
        self.task.observe(self._task_changed, names="value")
        self.button.on_click(lambda _: self.ask())
        self.explain_button.on_click(lambda _: self.explain())
        self._task_changed()
        row = dict(layout=W.Layout(flex_flow="row wrap", max_width="100%"))
        kwargs.setdefault("layout", W.Layout(width="100%", max_width="100%", overflow="hidden"))
        super().__init__(
            [
                self.sequence,
                W.HBox([self.task, self.question], **row),
                self.items_box,
                W.HBox([self.window, self.button, self.explain_button], **row),
                self.status,
                self.answer,
                self.plot,
            ],
            **kwargs,
        )
        self.add_class("genomicllm-panel")

    def _task_changed(self, change=None) -> None:
        t = TASKS[self.task.value]
        self.question.options = t.questions()
        self.question.value = self.question.options[0]
        self.item_fields = {
            spec.name: W.Text(description=spec.name, placeholder=spec.help, style={"description_width": "initial"}) for spec in t.items
        }
        self.items_box.children = list(self.item_fields.values())

    def ask(self) -> AnswerTable | None:
        self.status.value = "<i>asking…</i>"
        self.answer.value, self.plot.value = "", ""
        try:
            table = self._ask()
        except GenomicLLMError as exc:
            self.status.value = f"<span class='gllm-error' style='color:#b22222'>{html.escape(str(exc), quote=False)}</span>"
            return None
        self.status.value = ""
        self.last = table
        self.answer.value = table._repr_html_()
        t = TASKS[self.task.value]
        if t.labels and any(a.window for a in table):
            self.plot.value = probability_plot(table.answers, t.labels[0])
        return table

    def explain(self) -> ExplanationView | None:
        """Explain the classification answer for every pasted record (tile by tile beyond the window size)."""
        self.status.value = "<i>explaining (one answer per substitution)…</i>"
        self.answer.value, self.plot.value = "", ""
        try:
            t = TASKS[self.task.value]
            if not t.labels:
                raise GenomicLLMError(f"Explain works for classification tasks; {t.title} answers {t.answer_kind}")
            records = self._records()
            if not records:
                raise GenomicLLMError("paste a DNA sequence first")
            items = {k: f.value.strip() for k, f in self.item_fields.items() if f.value.strip()}
            view = ExplanationView(
                explain_records(t.id, records, self.question.value, items, self.model, self.backend, window_size=self.window.value)
            )
        except GenomicLLMError as exc:
            self.status.value = f"<span class='gllm-error' style='color:#b22222'>{html.escape(str(exc), quote=False)}</span>"
            return None
        self.status.value = ""
        self.last_explanation = view
        self.answer.value = view._repr_html_()
        return view

    def _records(self) -> list[Record]:
        text = self.sequence.value.strip()
        if text.startswith(">"):
            box = io.StringIO(text)
            box.name = "pasted FASTA"
            return list(read_fasta(box))
        if text:
            raw = "".join(text.split())
            make_prompt(self.question.value, raw)  # validates: names the bad character and its position
            return [Record("sequence", normalise_sequence(raw))]
        return []

    def _ask(self) -> AnswerTable:
        text = self.sequence.value.strip()
        items = {k: f.value.strip() for k, f in self.item_fields.items() if f.value.strip()}
        t = TASKS[self.task.value]
        if not text and t.needs_sequence:
            raise GenomicLLMError("paste a DNA sequence first")
        records = self._records()
        if not records:
            return AnswerTable(ask([make_prompt(self.question.value, None, items).text()], model=self.model, backend=self.backend))
        long_ = any(len(r.sequence) > self.window.value for r in records)
        return AnswerTable(
            predict(
                t.id,
                records,
                question=self.question.value,
                items=items,
                model=self.model,
                backend=self.backend,
                window_size=self.window.value if long_ else None,
                window_step=max(1, self.window.value // 2) if long_ else None,
            )
        )
