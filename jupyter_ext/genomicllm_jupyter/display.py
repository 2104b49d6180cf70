"""Rich display of answers: an HTML table with probability bars and exact checks, machine-readable
JSON under a vendor mimetype (a plain ``application/json`` entry would win over HTML in JupyterLab),
and a pandas DataFrame for batches.
"""

from __future__ import annotations

import html
import json

MIMETYPE = "application/vnd.genomicllm+json"

# The table fits the notebook's width: a fixed layout shares the width between columns and long
# sequences or model ids wrap anywhere instead of pushing the exact-check column off the page.
_STYLE = (
    "<style>.gllm-wrap{max-width:100%;overflow-x:auto}"
    ".gllm{table-layout:fixed;width:100%;max-width:100%;border-collapse:collapse}"
    ".gllm td,.gllm th{padding:2px 8px;text-align:left !important;font-family:monospace;font-size:12px;"
    "overflow-wrap:anywhere;word-break:break-word;vertical-align:top}"
    ".gllm .bar{display:inline-block;height:9px;background:#4c78a8;vertical-align:middle;margin-right:4px}"
    ".gllm .agree{color:#2a7d2a;font-weight:bold}.gllm .disagree{color:#b22222;font-weight:bold}</style>"
)


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _bar(p: float | None) -> str:
    if p is None:
        return ""
    return f'<span class="bar" style="width:{int(round(60 * p))}px"></span>{p:.3f}'


class AnswerTable:
    """A list of answers that renders as HTML, JSON (vendor mimetype), text, or a DataFrame."""

    def __init__(self, answers):
        self.answers = list(answers)

    def __len__(self) -> int:
        return len(self.answers)

    def __getitem__(self, i):
        return self.answers[i]

    def to_records(self) -> list[dict]:
        return [a.to_dict() for a in self.answers]

    def to_dataframe(self):
        import pandas as pd

        rows = []
        for a in self.answers:
            row = {"id": a.id, "task": a.task, "question": a.question, "answer": a.answer, "probability": a.probability}
            if a.window:
                row["start"], row["end"] = a.window
            for label, p in (a.labels or {}).items():
                row[f"p({label})"] = p
            if a.check:
                row["expected"], row["agree"] = a.check.expected, a.check.agree
            row["model"] = a.model
            rows.append(row)
        return pd.DataFrame(rows)

    def _repr_html_(self) -> str:
        head = "<tr><th>#</th><th>question</th><th>answer</th><th>probability</th><th>labels</th><th>exact check</th></tr>"
        body = []
        for a in self.answers:
            labels = "<br>".join(f"{html.escape(k)}: {_bar(v)}" for k, v in (a.labels or {}).items())
            check = ""
            if a.check:
                state = (
                    ""
                    if a.check.agree is None
                    else (" <span class='agree'>agree</span>" if a.check.agree else " <span class='disagree'>disagree</span>")
                )
                check = f"{html.escape(_short(a.check.expected))}{state}"
            answer = html.escape(_short(a.answer)) if a.answer is not None else "<i>no model answer</i>"
            where = f"{html.escape(a.id or '')}{f' {a.window[0]}-{a.window[1]}' if a.window else ''}"
            body.append(
                f"<tr><td>{where or a.index}</td><td>{html.escape(a.question)}</td><td><b>{answer}</b></td>"
                f"<td>{_bar(a.probability)}</td><td>{labels}</td><td>{check}</td></tr>"
            )
        model = next((a.model for a in self.answers if a.model), None)
        runtime = next((a.runtime for a in self.answers if a.runtime), None)
        note = next((a.note for a in self.answers if a.note), None)
        foot = f"<div style='font-size:11px;color:#666'>model {html.escape(model or 'none')} · {html.escape(runtime or 'exact only')}"
        foot += f" · {html.escape(note)}</div>" if note else "</div>"
        cols = (
            "<colgroup><col style='width:9%'><col style='width:17%'><col style='width:20%'><col style='width:14%'>"
            "<col style='width:20%'><col style='width:20%'></colgroup>"
        )
        return f"{_STYLE}<div class='gllm-wrap'><table class='gllm'>{cols}{head}{''.join(body)}</table></div>{foot}"

    def __repr__(self) -> str:
        lines = []
        for a in self.answers:
            p = f" (p={a.probability:.3f})" if a.probability is not None else ""
            chk = ""
            if a.check:
                chk = f"  [exact: {a.check.expected}" + ("" if a.check.agree is None else (", agree" if a.check.agree else ", disagree")) + "]"
            lines.append(f"{a.question}: {a.answer if a.answer is not None else '(no model answer)'}{p}{chk}")
        return "\n".join(lines)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self._repr_html_(), "text/plain": repr(self), MIMETYPE: json.loads(json.dumps(self.to_records()))}


class JSONAnswers(AnswerTable):
    """``--format json``: the records under the vendor mimetype, with text fallback."""

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {MIMETYPE: self.to_records(), "text/plain": json.dumps(self.to_records(), indent=1)}


#: bases per row of an explanation logo: long sequences wrap, so 1,500 nt stay readable
LOGO_ROW_NT = 150


def explanation_figure(e, row_nt: int = LOGO_ROW_NT):
    """A matplotlib figure: per row of ``row_nt`` bases, the sequence logo of the importance
    (logomaker; letter height = importance, below the axis where the base works against the answer)
    over the line of the lowest probability one substitution reaches at each position."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import logomaker
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    n = len(e.sequence)
    rows = max(1, -(-n // row_nt))
    imp = e.importance
    lowest = e.probability + e.delta().min(axis=1)
    fig, axes = plt.subplots(
        2 * rows, 1, figsize=(min(16, 2 + row_nt * 0.09), 2.3 * rows), squeeze=False, gridspec_kw={"height_ratios": [3, 1] * rows}
    )
    scale = float(np.abs(imp).max()) or 1.0
    for r in range(rows):
        s, t = r * row_nt, min(n, (r + 1) * row_nt)
        matrix = pd.DataFrame(0.0, index=range(e.offset + s, e.offset + t), columns=list("ACGT"))
        for i in range(s, t):
            if e.sequence[i] in "ACGT":
                matrix.loc[e.offset + i, e.sequence[i]] = imp[i]
        logo_ax, line_ax = axes[2 * r, 0], axes[2 * r + 1, 0]
        logomaker.Logo(matrix, ax=logo_ax, color_scheme="classic", flip_below=False)
        logo_ax.set_ylim(-scale * 1.05, scale * 1.05)
        logo_ax.axhline(0, color="#999", lw=0.5)
        logo_ax.set_ylabel("importance", fontsize=8)
        line_ax.plot(range(e.offset + s, e.offset + t), lowest[s:t], color="#4c78a8", lw=1)
        line_ax.axhline(e.probability, color="#999", ls="--", lw=0.7)
        line_ax.set_ylim(0, 1)
        line_ax.set_xlim(logo_ax.get_xlim())
        line_ax.set_ylabel(f"p({e.label})", fontsize=8)
        for ax in (logo_ax, line_ax):
            ax.tick_params(labelsize=7)
    axes[0, 0].set_title(
        f"{e.id or 'sequence'}: {e.question} = {e.label} (p {e.probability:.3f}); dashed: unchanged, line: lowest after one substitution", fontsize=9
    )
    fig.tight_layout()
    return fig


class ExplanationView:
    """Explanations rendered as sequence logos (PNG, embedded), with the records as JSON."""

    def __init__(self, explanations):
        self.explanations = list(explanations)

    def __len__(self) -> int:
        return len(self.explanations)

    def __getitem__(self, i):
        return self.explanations[i]

    def to_dataframe(self):
        import pandas as pd

        cols = ["id", "position", "base", "importance", "delta_A", "delta_C", "delta_G", "delta_T"]
        return pd.DataFrame([row for e in self.explanations for row in e.rows()], columns=cols)

    def _logo_png(self, e) -> str | None:
        try:
            import base64
            import io

            import matplotlib.pyplot as plt

            fig = explanation_figure(e)
        except ImportError:  # logomaker / matplotlib not installed: the shaded sequence instead
            return None
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        return base64.b64encode(buf.getvalue()).decode()

    def _repr_html_(self) -> str:
        parts = []
        for e in self.explanations:
            png = self._logo_png(e)
            title = html.escape(f"{e.id or 'sequence'}{f' {e.offset}-{e.offset + len(e.sequence) - 1}' if e.offset != 1 else ''}")
            if png:
                parts.append(f"<div class='gllm-explain'><div>{title}</div><img style='max-width:100%' src='data:image/png;base64,{png}'/></div>")
            else:
                parts.append(f"<div class='gllm-explain'><div>{title}</div>{e._repr_html_()}</div>")
        return "".join(parts)

    def __repr__(self) -> str:
        return "\n".join(
            f"{e.id or 'sequence'}: {e.question} = {e.label} (p={e.probability:.3f}); top bases {', '.join(str(e.offset + int(i)) for i in e.importance.argsort()[::-1][:5])}"
            for e in self.explanations
        )

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self._repr_html_(), "text/plain": repr(self), MIMETYPE: [e.to_dict() for e in self.explanations]}


def _delta_bar(delta: float | None, scale: float) -> str:
    """A bar centred on zero: red to the left where the alt lowers the answered label's probability,
    blue to the right where it raises it; 40 px = ``scale`` (the table's largest change)."""
    if delta is None:
        return ""
    width = int(round(40 * min(1.0, abs(delta) / scale)))
    left = f"<span class='bar neg' style='width:{width}px'></span>" if delta < 0 else ""
    right = f"<span class='bar' style='width:{width}px'></span>" if delta > 0 else ""
    return (
        f"<span style='display:inline-block;width:40px;text-align:right'>{left}</span>|"
        f"<span style='display:inline-block;width:44px'>{right}</span>{delta:+.4f}"
    )


class VariantTable:
    """Variant effects (a :class:`genomicllm_kernel.variants.VariantEffects`) as an HTML table with a
    delta bar per ALT, the skipped records with their status, and the summary line."""

    def __init__(self, effects):
        self.effects = effects

    def __len__(self) -> int:
        return len(self.effects)

    def __getitem__(self, i):
        return self.effects[i]

    def to_dataframe(self):
        return self.effects.to_dataframe()

    def _repr_html_(self) -> str:
        e = self.effects
        head = (
            "<tr><th>variant</th><th>id</th><th>label</th><th>p(ref)</th><th>p(alt)</th>"
            "<th>delta (alt - ref)</th><th>protein</th><th>status</th></tr>"
        )
        body = []
        scale = max((abs(c.delta) for c in e.calls if c.delta), default=0.0) or 1.0
        for c in e.calls:
            scored = c.status == "scored"
            where = html.escape(f"{c.chrom}:{c.pos} {_short(c.ref, 12)}>{_short(c.alt, 12)}")
            status = html.escape(c.status.replace("_", " "))
            body.append(
                f"<tr><td>{where}</td><td>{html.escape(c.id)}</td><td>{html.escape(c.label or '')}</td>"
                f"<td>{_bar(c.p_ref) if scored else ''}</td><td>{_bar(c.p_alt) if scored else ''}</td>"
                f"<td>{_delta_bar(c.delta, scale)}</td><td>{html.escape(c.protein if c.protein != '.' else '')}</td>"
                f"<td>{status if scored else f'<span class=disagree>{status}</span>'}</td></tr>"
            )
        foot = (
            f"<div style='font-size:11px;color:#666'>{html.escape(e.question)} · {html.escape(e.summary.line())} · "
            f"delta bars: 40 px = {scale:.3g} · model {html.escape(e.model or 'none')}</div>"
        )
        style = _STYLE.replace("</style>", ".gllm .bar.neg{background:#e45756}</style>")
        widths = (15, 10, 9, 13, 13, 20, 10, 10)  # the delta column holds two 40 px half-bars and the figure
        cols = "<colgroup>" + "".join(f"<col style='width:{w}%'>" for w in widths) + "</colgroup>"
        return f"{style}<div class='gllm-wrap'><table class='gllm'>{cols}{head}{''.join(body)}</table></div>{foot}"

    def __repr__(self) -> str:
        return repr(self.effects)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self._repr_html_(), "text/plain": repr(self), MIMETYPE: self.effects.to_records()}
