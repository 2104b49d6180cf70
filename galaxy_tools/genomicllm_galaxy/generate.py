"""Write one Galaxy tool XML per task (and the generic Ask tool) from the task registry.

    python -m genomicllm_galaxy.generate            # (re)write galaxy_tools/*.xml
    python -m genomicllm_galaxy.generate --check    # exit 1 if the committed files differ

The help of each tool quotes the shipped model's evaluation (``models/default/eval_test.json`` and
``eval_dev.json``, written by ``genomicllm evaluate``), so what a Galaxy user reads is what the
model measured.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from genomicllm_kernel.cli import _header
from genomicllm_kernel.registry import TASKS, Task

HERE = Path(__file__).resolve().parent.parent
ROOT = HERE.parent
GUE_TASKS = {"promoter", "splice_site", "tf_binding"}

#: per task: a small test input (galaxy_tools/test-data), the parameters its test sets, and the
#: exact value the check must report for the first record (tasks with an exact computation)
TESTS = {
    "splice_site": ("splice.fa", {}, None),
    "enhancer": ("regulatory.fa", {}, None),
    "promoter": ("promoter.fa", {"question": "core promoter"}, None),
    "open_chromatin": ("regulatory.fa", {}, None),
    "regulatory": ("regulatory.fa", {}, None),
    "tf_binding": ("tf.fa", {"transcription_factor": "CTCF"}, None),
    "orf": ("cds.fa", {}, None),
    "sequence_direction": ("cds.fa", {}, None),
    "gene_biotype": ("cds.fa", {}, None),
    "gc_content": ("gc.fa", {}, "0.500"),
    "nt2aa": ("cds.fa", {}, "MAASE*"),
    "reverse_complement": ("gc.fa", {"question": "reverse complementary sequence"}, "TGCAACGT"),
    "gene_description": ("cds.fa", {"symbol": "BRCA1"}, None),
    "reading_comprehension": ("cds.fa", {"item_name": "symbol", "symbol": "BRCA1"}, "BRCA1"),
}
ITEM_VALIDATOR = (
    '            <validator type="regex" message="letters, digits, space, colon, dot, dash or underscore">'
    "^[A-Za-z0-9 :._-]{quantifier}$</validator>\n"
)


@functools.lru_cache(maxsize=1)
def _model_size() -> str:
    """'about N M parameters', read from the shipped weights' header (the help never states a stale size)."""
    from genomicllm_kernel.model import count_parameters

    params = count_parameters(ROOT / "models" / "default")
    return f"about {params / 1e6:.0f} M parameters" if params else "a few million parameters"


def _metrics_line(task: Task) -> str:
    lines = []
    for split, what in (
        ("test", "held-out test regions (chr3/chr4/chr5 slices, hg38 alpha-globin)"),
        ("dev", "dev split (held-out loci and GUE dev, leak-filtered)"),
    ):
        path = ROOT / "models" / "default" / f"eval_{split}.json"
        if not path.exists():
            continue
        m = json.loads(path.read_text()).get("tasks", {}).get(task.id)
        if not m:
            continue
        keys = [k for k in ("accuracy", "macro_f1", "mcc", "mae", "pearson_r", "exact_match", "per_residue_accuracy", "bleu4", "rouge_l") if k in m]
        vals = ", ".join(f"{k.replace('_', ' ')} {m[k]:.3f}" for k in keys)
        lines.append(f"- {what}: {vals} (n = {m['n']})")
    if not lines:
        return "No evaluation of the installed model is recorded; see its model card."
    from genomicllm_kernel.baselines import format_figure, load_evaluation, load_same_rows_baseline, question_figures

    dev = load_evaluation(ROOT / "models" / "default")
    same_rows = load_same_rows_baseline(ROOT / "models" / "default", "dev", dev or {})
    per_question = [f"- {format_figure(row)}" for row in question_figures(task.id, dev or {}, same_rows)]
    text = "Measured for the shipped default model by ``genomicllm evaluate``:\n\n" + "\n".join(lines)
    if per_question:
        text += "\n\nPer question and source (dev, leak-filtered), against a k-mer (3-6) + logistic regression baseline where one is measured (fitted on the same task's training rows and scored on the same rows; and, for GUE, the data README's figure on the whole dev split, leaked rows included):\n\n"
        text += "\n".join(per_question)
    return text


def _question_param(task: Task) -> str:
    if task.extractive:  # the question names the item to read back
        return (
            f'        <param name="item_name" type="text" value={quoteattr(task.items[0].name)} label="Item to read back" '
            'help="the name of an item given below">\n' + ITEM_VALIDATOR.format(quantifier="+") + "        </param>\n"
        )
    if len(task.question_keys) == 1:
        return ""
    selected = ' selected="true"'
    opts = "\n".join(
        f"            <option value={quoteattr(k)}{selected if i == 0 else ''}>{escape(k)}</option>" for i, k in enumerate(task.question_keys)
    )
    return f'        <param argument="--question" type="select" label="Question">\n{opts}\n        </param>\n'


def _item_params(task: Task) -> list[tuple[str, str, str]]:
    return [(spec.name, spec.name.replace(" ", "_"), spec.help) for spec in task.items]


@functools.lru_cache(maxsize=1)
def _shipped_codec():
    """(codec, context) of the shipped model, read once for all tools."""
    from genomicllm_kernel.codec import HybridCodec

    model = ROOT / "models" / "default"
    return HybridCodec.from_pretrained(model), json.loads((model / "config.json").read_text())["max_position_embeddings"]


def window_limit(task: Task) -> int:
    """The longest window (nt) the shipped model reads for every question of ``task`` without items:
    the Galaxy window-size bound, computed by the same function the kernel's length check uses."""
    from genomicllm_kernel.engine import sequence_limit
    from genomicllm_kernel.grammar import make_prompt

    codec, context = _shipped_codec()
    keys = task.question_keys if not task.extractive else [f"{task.default_question} symbol"]
    items = {"symbol": "X"} if task.extractive else None
    return min(sequence_limit(codec, make_prompt(k, "A", items), context) for k in keys)


def _test(params: list[str], asserts: list[str]) -> str:
    """One <test> of the tool's tabular output: parameter lines, then assert_contents lines."""
    lines = ['        <test expect_num_outputs="1">'] + [f"            {p}" for p in params]
    lines += ['            <output name="output">', "                <assert_contents>"]
    lines += [f"                    {a}" for a in asserts]
    lines += ["                </assert_contents>", "            </output>", "        </test>"]
    return "\n".join(lines) + "\n"


def _extra_tests(task: Task, n_cols: int) -> str:
    """Tests of the options one tool stands for: a model zip from the history (GC content, whose
    exact check holds whatever the model), and per-record items from FASTA headers (reading
    comprehension: the exact check is the header's value)."""
    if task.id == "gc_content":
        return _test(
            [
                '<param name="input" value="gc.fa" ftype="fasta"/>',
                '<conditional name="model_source">',
                '    <param name="source" value="history"/>',
                '    <param name="model_archive" value="tiny_model.zip" ftype="zip"/>',
                "</conditional>",
            ],
            [
                f'<has_n_columns n="{n_cols}"/>',
                '<has_line_matching expression="^0\\tseq1\\t\\t\\tgc_content\\t.*\\t0\\.500\\t(agree|disagree)\\ttiny_random_model@[0-9a-f]{12}$"/>',
            ],
        )
    if task.id == "reading_comprehension":
        row = '<has_line_matching expression="^{n}\\t{rid}\\t\\t\\treading_comprehension\\treading comprehension: map location\\t.*\\t{value}\\t(agree|disagree)\\t.*$"/>'
        return _test(
            [
                '<param name="input" value="items.fa" ftype="fasta"/>',
                '<param name="item_name" value="map location"/>',
                '<param name="record_items" value="true"/>',
                '<expand macro="builtin_model_test"/>',
            ],
            [
                f'<has_n_columns n="{n_cols}"/>',
                '<has_n_lines n="3"/>',
                row.format(n=0, rid="seq1", value="17q21\\.31"),
                row.format(n=1, rid="seq2", value="17p13\\.1"),
            ],
        )
    return ""


def tool_xml(task: Task) -> str:
    tid = f"genomicllm_{task.id}"
    question_arg = ""
    if task.extractive:
        question_arg = f"    --question '{task.default_question} $item_name'\n"
    elif len(task.question_keys) > 1:
        question_arg = "    --question '$question'\n"
    item_cmd = "".join(f"#if str(${var}).strip():\n    --item '{name}=${var}'\n#end if\n" for name, var, _ in _item_params(task))
    item_params = "".join(
        f'        <param name="{var}" type="text" value="" optional="true" label={quoteattr(name)} help={quoteattr(help_)}>\n'
        + ITEM_VALIDATOR.format(quantifier="*")
        + "        </param>\n"
        for name, var, help_ in _item_params(task)
    )
    labels = list(task.labels)
    header = "\t".join(_header(labels))
    n_cols = len(header.split("\t"))
    fa, params, exact_first = TESTS[task.id]
    max_window = window_limit(task)
    q_test = "".join(f'            <param name="{k}" value={quoteattr(v)}/>\n' for k, v in params.items())
    answer_re = "(" + "|".join(labels) + ")" if labels else ".+"
    q_shown = f"{task.default_question} {params['item_name']}" if task.extractive else params.get("question", task.default_question)
    exact = ""
    if exact_first:
        check_re = exact_first.replace("*", "[*]")
        exact = f'                    <has_line_matching expression="^0\\tseq1\\t\\t\\t{task.id}\\t.*\\t{check_re}\\t(agree|disagree)\\t.*$"/>\n'
    window_test = ""
    if task.is_classification:
        window_test = f'''        <test expect_num_outputs="1">
            <param name="input" value="long.tabular" ftype="tabular"/>
{q_test}            <conditional name="window">
                <param name="mode" value="windows"/>
                <param name="size" value="100"/>
                <param name="step" value="50"/>
            </conditional>
            <expand macro="builtin_model_test"/>
            <output name="output">
                <assert_contents>
                    <has_n_columns n="{n_cols}"/>
                    <has_n_lines n="7"/>
                    <has_line_matching expression="^0\\tlong1\\t1\\t100\\t{task.id}\\t.*$"/>
                </assert_contents>
            </output>
        </test>
'''
    cites = '        <expand macro="citation_dnabert2"/>\n' if task.id in GUE_TASKS else ""
    labels_rst = (
        ", ".join(f"``{x}``" for x in labels)
        if labels
        else {
            "number": "a fraction with three decimals",
            "dna": "a nucleotide sequence",
            "protein": "an amino-acid sequence (``*`` = stop)",
            "text": "free text",
        }[task.answer_kind]
    )
    keys_rst = ", ".join(f"``{k}``" for k in task.question_keys)
    derived = ""
    if task.id in ("enhancer", "regulatory"):
        derived = (
            "\n\n.. class:: warningmark\n\nThe shipped model learned **derived** labels: no curated enhancer annotation was reachable, "
            "so enhancer-like regions are distal ATAC-seq peaks (more than 5 kb from a TSS, outside CpG islands). "
            "Treat its answers as a screen, not an annotation."
        )
    check_rst = ""
    if task.checker:
        check_rst = "\n\nThe answer is checked against the exact computation, which is reported beside it (``check`` and ``agree`` columns)."
    example_seq = {"gc.fa": "ACGTTGCA", "cds.fa": "ATGGCGGCTTCAGAGTAA"}.get(fa, "TATAAAAGGCGCGCTGACGTCAGCG")
    return f'''<tool id="{tid}" name="GenomicLLM: {escape(task.title)}" version="@TOOL_VERSION@+galaxy@VERSION_SUFFIX@" profile="@PROFILE@">
    <description>{escape(task.help.split("?")[0].split(".")[0].lower())}</description>
    <macros>
        <import>macros.xml</import>
    </macros>
    <expand macro="requirements"/>
    <expand macro="version_command"/>
    <command detect_errors="exit_code"><![CDATA[
@THREADS@
genomicllm predict
    --task '{task.id}'
{question_arg}{item_cmd}@INPUT_ARGS@
@RECORD_ITEMS_ARGS@
@MODEL_ARGS@
@WINDOW_ARGS@
    --format tsv
    --output '$output'
    ]]></command>
    <inputs>
        <expand macro="sequence_input"/>
{_question_param(task)}{item_params}        <expand macro="record_items_param"/>
        <expand macro="window_options" max_size="{max_window}"/>
        <expand macro="model_options"/>
    </inputs>
    <expand macro="answers_output"/>
    <tests>
        <test expect_num_outputs="1">
            <param name="input" value="{fa}" ftype="fasta"/>
{q_test}            <expand macro="builtin_model_test"/>
            <output name="output">
                <assert_contents>
                    <has_line line="{escape(header).replace(chr(9), "&#9;")}"/>
                    <has_n_columns n="{n_cols}"/>
                    <has_n_lines n="3"/>
                    <has_line_matching expression="^0\\tseq1\\t\\t\\t{task.id}\\t{escape(q_shown)}\\t{answer_re}\\t[01]\\.\\d{{4}}\\t.*$"/>
{exact}                </assert_contents>
            </output>
        </test>
{window_test}{_extra_tests(task, n_cols)}    </tests>
    <help><![CDATA[
**What it does**

{task.help} One GenomicLLM language model answers the question for every sequence of the input,
with the probability of its answer{" and of every label" if labels else ""}.

Question keys: {keys_rst}. Answers: {labels_rst}.{check_rst}{derived}

**Input**

FASTA (several records, wrapped lines, upper or lower case, RNA ``U`` read as ``T``) or a tabular
file whose first two columns are an id and a sequence. Sequences must use IUPAC nucleotide codes;
any other character makes the job fail with a one-line message naming the record's line and column.

@OUTPUT_HELP@

**Example**

Input record ``seq1`` = ``{example_seq}`` gives one row with the answer for ``{escape(q_shown)}``.

**Accuracy**

{_metrics_line(task)}

**Limits**

A small model ({_model_size()}) trained here on public data: use it to screen sequences, not
as ground truth; where the figures above say it is not above a k-mer baseline, prefer the baseline.
Sequences far longer than the training windows (see the model card) are extrapolations.
    ]]></help>
    <expand macro="citations">
{cites}    </expand>
</tool>
'''


def ask_xml() -> str:
    return """<tool id="genomicllm_ask" name="Ask GenomicLLM" version="@TOOL_VERSION@+galaxy@VERSION_SUFFIX@" profile="@PROFILE@">
    <description>answer questions written in the GenomicLLM grammar</description>
    <macros>
        <import>macros.xml</import>
    </macros>
    <expand macro="requirements"/>
    <expand macro="version_command"/>
    <command detect_errors="exit_code"><![CDATA[
@THREADS@
genomicllm ask
    --batch '$prompts'
@MODEL_ARGS@
    --format tsv
    --output '$output'
    ]]></command>
    <inputs>
        <param name="prompts" type="data" format="txt" label="Questions" help="One question per line: sequence and items separated by commas, then the question key and '=' (lines starting with # are skipped)"/>
        <expand macro="model_options"/>
    </inputs>
    <expand macro="answers_output"/>
    <tests>
        <test expect_num_outputs="1">
            <param name="prompts" value="prompts.txt"/>
            <expand macro="builtin_model_test"/>
            <output name="output">
                <assert_contents>
                    <has_line_matching expression="^index\\tid\\tstart\\tend\\ttask\\tquestion\\tanswer\\tprobability\\t.*\\tcheck\\tagree\\tmodel$"/>
                    <has_n_lines n="4"/>
                    <has_line_matching expression="^0\\t\\t\\t\\tgc_content\\tGC content\\t\\d\\.\\d{3}\\t.*\\t0\\.500\\t(agree|disagree)\\t.*$"/>
                    <has_line_matching expression="^1\\t\\t\\t\\tpromoter\\tcore promoter\\t(True|False)\\t.*$"/>
                    <has_line_matching expression="^2\\t\\t\\t\\tnt2aa\\tprotein sequence\\t[A-Z*]+\\t.*\\tMAASE[*]\\t(agree|disagree)\\t.*$"/>
                </assert_contents>
            </output>
        </test>
        <test expect_failure="true" expect_exit_code="2">
            <param name="prompts" value="bad_prompts.txt"/>
            <expand macro="builtin_model_test"/>
            <assert_stderr>
                <has_line_matching expression="^genomicllm: error: line 1|^genomicllm: error: unknown question key 'GC contnt'.*$"/>
                <not_has_text text="Traceback"/>
            </assert_stderr>
        </test>
    </tests>
    <help><![CDATA[
**What it does**

Answers questions written in the GenomicLLM grammar, one per line::

    ACGTTGCA, GC content =
    TATAAAAGGCGCGCTGACGTCAGCG, core promoter =
    ATGGCGGCTTCAGAGTAA, protein sequence =
    ATGGATTTATCTGCTCTTCGCGTT, symbol = BRCA1, description =

Each line holds items separated by commas (a nucleotide sequence, or annotations ``name = value``,
in any order), then a question key followed by ``=``. The per-task GenomicLLM tools list each
task's question keys and answers.

@OUTPUT_HELP@

**Errors**

A line the grammar cannot read (unknown question key, a character outside the IUPAC nucleotide
codes, no sequence) fails the job with one line on stderr naming the line and the problem.
    ]]></help>
    <expand macro="citations"/>
</tool>
"""


def render_all() -> dict[str, str]:
    files = {f"genomicllm_{t.id}.xml": tool_xml(t) for t in TASKS.values()}
    files["genomicllm_ask.xml"] = ask_xml()
    from .analysis_tools import render_analysis_tools

    files.update(render_analysis_tools())
    return files


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed XMLs differ from the generated ones")
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args(argv)
    out = Path(args.out)
    stale = []
    for name, text in render_all().items():
        path = out / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"generated Galaxy tools differ from the committed ones: {', '.join(stale)}; run python -m genomicllm_galaxy.generate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
