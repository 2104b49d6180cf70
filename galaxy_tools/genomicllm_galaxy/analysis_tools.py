"""The three analysis tools (issue #18) over the classification tasks of the registry: explain
(in-silico mutagenesis), variant effect (VCF + reference) and scan (windows over a genome).

Each has one conditional ``task`` whose options are the registry's classification tasks; inside it,
the task's question keys, its items and (for scan) its labels. ``generate.render_all`` writes them
beside the per-task tools.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from genomicllm_kernel.registry import TASKS

ITEM_VALIDATOR = (
    '                <validator type="regex" message="letters, digits, space, colon, dot, dash or underscore">^[A-Za-z0-9 :._-]*$</validator>\n'
)


def classification_tasks():
    return [t for t in TASKS.values() if t.labels]


def _var(name: str) -> str:
    return name.replace(" ", "_")


def task_conditional(with_label: bool = False) -> str:
    """The task select and, per task, its question, items and (optionally) the label to report."""
    tasks = classification_tasks()
    selected = ' selected="true"'
    opts = "\n".join(
        f"                <option value={quoteattr(t.id)}{selected if t.id == 'promoter' else ''}>{escape(t.title)}</option>" for t in tasks
    )
    whens = []
    for t in tasks:
        qs = "\n".join(f"                    <option value={quoteattr(k)}>{escape(k)}</option>" for k in t.question_keys)
        body = f'                <param name="question" type="select" label="Question">\n{qs}\n                </param>\n'
        for spec in t.items:
            body += (
                f'                <param name="{_var(spec.name)}" type="text" value="" optional="true" label={quoteattr(spec.name)} help={quoteattr(spec.help)}>\n'
                + ITEM_VALIDATOR
                + "                </param>\n"
            )
        if with_label:
            labels = "\n".join(f"                    <option value={quoteattr(x)}>{escape(x)}</option>" for x in t.labels)
            body += f'                <param name="label" type="select" label="Report the probability of">\n{labels}\n                </param>\n'
        whens.append(f'            <when value="{t.id}">\n{body}            </when>')
    return (
        '        <conditional name="task">\n'
        '            <param name="id" type="select" label="Question about">\n'
        f"{opts}\n            </param>\n" + "\n".join(whens) + "\n        </conditional>\n"
    )


def task_args(with_label: bool = False) -> str:
    """Command lines of the task conditional: every value single-quoted."""
    lines = ["    --task '$task.id'", "    --question '$task.question'"]
    for t in classification_tasks():
        for spec in t.items:
            v = _var(spec.name)
            lines.append(f"#if $task.id == '{t.id}' and str($task.{v}).strip():\n    --item '{spec.name}=$task.{v}'\n#end if")
    if with_label:
        lines.append("    --label '$task.label'")
    return "\n".join(lines) + "\n"


SAFE_LABEL = """#import re
#set $safe_label = re.sub(r'[^A-Za-z0-9_.-]', '_', str($input.element_identifier))
"""


def _tool(tid: str, name: str, description: str, command: str, inputs: str, outputs: str, tests: str, help_: str) -> str:
    return f'''<tool id="{tid}" name="{escape(name)}" version="@TOOL_VERSION@+galaxy@VERSION_SUFFIX@" profile="@PROFILE@">
    <description>{escape(description)}</description>
    <macros>
        <import>macros.xml</import>
    </macros>
    <expand macro="requirements"/>
    <expand macro="version_command"/>
    <command detect_errors="exit_code"><![CDATA[
@THREADS@
{command}@MODEL_ARGS@
    --output '$output'
    ]]></command>
    <inputs>
{inputs}        <expand macro="model_options"/>
    </inputs>
    <outputs>
{outputs}    </outputs>
    <tests>
{tests}    </tests>
    <help><![CDATA[
{help_}
    ]]></help>
    <expand macro="citations"/>
</tool>
'''


def explain_xml() -> str:
    command = (
        SAFE_LABEL
        + "genomicllm explain\n"
        + task_args()
        + "    --fasta '$input'\n#if $input.is_of_type('fasta'):\n    --input-format fasta\n#else:\n    --input-format tabular\n#end if\n"
        "    --input-label '$safe_label'\n    --window-size '$window_size'\n    --format '$format'\n"
    )
    inputs = (
        '        <expand macro="sequence_input"/>\n'
        + task_conditional()
        + '        <param argument="--window-size" type="integer" value="300" min="10" max="1500" label="Explain long sequences in tiles of (nt)" '
        'help="non-overlapping tiles, so every base is explained once; each base costs 3 model answers"/>\n'
        '        <param argument="--format" type="select" label="Output">\n'
        '            <option value="tsv" selected="true">Table: importance and the change for each substitution, per base</option>\n'
        '            <option value="bedgraph">bedGraph of the importance (for a genome browser)</option>\n'
        "        </param>\n"
    )
    outputs = (
        '        <data name="output" format="tabular" label="${tool.name} on ${on_string}">\n'
        '            <change_format>\n                <when input="format" value="bedgraph" format="bedgraph"/>\n            </change_format>\n'
        "        </data>\n"
    )
    tests = """        <test expect_num_outputs="1">
            <param name="input" value="promoter.fa" ftype="fasta"/>
            <conditional name="task">
                <param name="id" value="promoter"/>
                <param name="question" value="core promoter"/>
            </conditional>
            <expand macro="builtin_model_test"/>
            <output name="output" ftype="tabular">
                <assert_contents>
                    <has_line line="id&#9;position&#9;base&#9;importance&#9;delta_A&#9;delta_C&#9;delta_G&#9;delta_T"/>
                    <has_n_columns n="8"/>
                    <has_line_matching expression="^seq1\\t1\\t[ACGT]\\t-?\\d\\.\\d{6}(\\t-?\\d\\.\\d{6}){4}$"/>
                </assert_contents>
            </output>
        </test>
        <test expect_num_outputs="1">
            <param name="input" value="tf.fa" ftype="fasta"/>
            <conditional name="task">
                <param name="id" value="tf_binding"/>
                <param name="transcription_factor" value="GUE tf_2"/>
            </conditional>
            <param name="format" value="bedgraph"/>
            <expand macro="builtin_model_test"/>
            <output name="output" ftype="bedgraph">
                <assert_contents>
                    <has_line_matching expression="^track type=bedGraph.*$"/>
                    <has_line_matching expression="^seq1\\t0\\t1\\t-?\\d\\.\\d{6}$"/>
                </assert_contents>
            </output>
        </test>
        <test expect_failure="true" expect_exit_code="2">
            <param name="input" value="protein.fa" ftype="fasta"/>
            <expand macro="builtin_model_test"/>
            <assert_stderr>
                <has_text text="is not an IUPAC nucleotide code"/>
                <not_has_text text="Traceback"/>
            </assert_stderr>
        </test>
"""
    help_ = """**What it does**

Says which bases drove a classification answer, by in-silico mutagenesis: every base of each
sequence is replaced by each of the three others, the model answers every variant sequence, and
the change in the probability of the answered label is reported. ``importance`` is the answered
label's probability on the sequence minus its mean over the three substitutions: positive where a
base supports the answer, negative where it works against it. The figures are the model's own
answers, so they are exactly as faithful as the model; they do not say the biology is right.

**Output**

*Table*: one row per base: ``id``, ``position`` (1-based on the record), ``base``, ``importance``,
``delta_A`` .. ``delta_T`` (change of the answered label's probability with that base; 0 for the
record's own base). *bedGraph*: the importance per base, for a genome browser (record id as the
chromosome).

**Cost**

Three model answers per base: a 300 nt sequence is 900 answers. Long records are explained in
non-overlapping tiles of the chosen size."""
    return _tool(
        "genomicllm_explain",
        "GenomicLLM explain",
        "which bases drove a classification (in-silico mutagenesis)",
        command,
        inputs,
        outputs,
        tests,
        help_,
    )


def variant_effect_xml() -> str:
    command = (
        "genomicllm variants\n    --vcf '$vcf'\n"
        "#if $reference_source.source == 'cached':\n    --reference '$reference_source.genome.fields.path'\n"
        "#else:\n    --reference '$reference_source.reference'\n#end if\n"
        + task_args()
        + "    --window '$window'\n#if $cds:\n    --cds '$cds'\n#end if\n    --format '$format'\n"
    )
    inputs = (
        '        <param name="vcf" type="data" format="vcf,vcf_bgzip" label="Variants" help="VCF (plain or bgzip); SNVs and short indels are scored"/>\n'
        '        <conditional name="reference_source">\n'
        '            <param name="source" type="select" label="Reference genome">\n'
        '                <option value="cached" selected="true">A built-in genome</option>\n'
        '                <option value="history">A FASTA from my history</option>\n'
        "            </param>\n"
        '            <when value="cached">\n'
        '                <param name="genome" type="select" label="Genome">\n'
        '                    <options from_data_table="all_fasta">\n'
        '                        <validator type="no_options" message="No built-in genome is registered on this Galaxy (all_fasta data table); choose a FASTA from your history"/>\n'
        "                    </options>\n"
        "                </param>\n"
        "            </when>\n"
        '            <when value="history">\n'
        '                <param name="reference" type="data" format="fasta" label="Reference FASTA" help="the genome the VCF was called on (same contig names)"/>\n'
        "            </when>\n"
        "        </conditional>\n"
        + task_conditional()
        + '        <param argument="--window" type="integer" value="300" min="10" max="1500" label="Window centred on each variant (nt)"/>\n'
        '        <param argument="--cds" type="data" format="bed" optional="true" label="Coding segments (BED, optional)" '
        'help="SNVs inside a segment get their protein change (each line one in-frame segment, strand in column 6)"/>\n'
        '        <param argument="--format" type="select" label="Output">\n'
        '            <option value="vcf" selected="true">VCF with GLLM_* INFO fields</option>\n'
        '            <option value="tabular">Table, one row per alt allele</option>\n'
        "        </param>\n"
    )
    outputs = (
        '        <data name="output" format="vcf" label="${tool.name} on ${on_string}">\n'
        '            <change_format>\n                <when input="format" value="tabular" format="tabular"/>\n            </change_format>\n'
        "        </data>\n"
    )
    history_ref = """            <conditional name="reference_source">
                <param name="source" value="history"/>
                <param name="reference" value="ref.fa" ftype="fasta"/>
            </conditional>"""
    tests = f"""        <test expect_num_outputs="1">
            <param name="vcf" value="variants.vcf" ftype="vcf"/>
{history_ref}
            <param name="window" value="120"/>
            <param name="cds" value="cds.bed" ftype="bed"/>
            <expand macro="builtin_model_test"/>
            <output name="output" ftype="vcf">
                <assert_contents>
                    <has_line_matching expression="^##INFO=&lt;ID=GLLM_DELTA,Number=A,Type=Float.*$"/>
                    <has_line_matching expression="^chr1\\t1001\\tsnv1\\t.*GLLM_STATUS=scored.*$"/>
                    <has_line_matching expression="^chr1\\t1600\\tmismatch\\t.*GLLM_STATUS=ref_mismatch.*$"/>
                </assert_contents>
            </output>
        </test>
        <test expect_num_outputs="1">
            <param name="vcf" value="variants.vcf" ftype="vcf"/>
{history_ref}
            <param name="window" value="120"/>
            <param name="format" value="tabular"/>
            <expand macro="builtin_model_test"/>
            <output name="output" ftype="tabular">
                <assert_contents>
                    <has_line_matching expression="^chrom\\tpos\\tid\\tref\\talt\\tstatus\\tlabel\\tp_ref\\tp_alt\\tdelta\\tprotein\\twindow_start\\twindow_end$"/>
                    <has_line_matching expression="^chr1\\t1001\\tsnv1\\t[ACGT]\\t[ACGT]\\tscored\\t(True|False)\\t[01]\\.\\d{{4}}\\t[01]\\.\\d{{4}}\\t-?[01]\\.\\d{{4}}\\t.*$"/>
                    <has_line_matching expression="^chr9\\t10\\tnocontig\\tA\\tG\\tcontig_missing\\t.*$"/>
                </assert_contents>
            </output>
        </test>
"""
    help_ = """**What it does**

For each SNV and short indel of a VCF, cuts the window centred on it from the reference genome,
builds the same window carrying the alt allele, and asks the model the chosen classification
question about both. It reports the probability of the label answered on the reference window
(``GLLM_LABEL``) for the reference (``GLLM_P_REF``) and the alt (``GLLM_P_ALT``) window and their
difference (``GLLM_DELTA``). With coding segments (BED), an SNV inside one gets its protein change
from the exact translation (``GLLM_PROTEIN``, e.g. ``K12E``).

**Records that are not scored**

A record whose REF does not match the reference, whose contig the reference lacks, whose allele is
symbolic (``<DEL>``, ``*``) or longer than half the window is never scored: it keeps its line with
``GLLM_STATUS`` saying why (``ref_mismatch``, ``contig_missing``, ``symbolic_allele``,
``too_long_for_window``), and the job's standard error counts each status.

**Input**

A VCF (plain or bgzip, with its header) and the reference it was called on: a built-in genome or a
FASTA from your history (same contig names as the VCF's CHROM column)."""
    return _tool(
        "genomicllm_variant_effect",
        "GenomicLLM variant effect",
        "on a classification, from a VCF and its reference",
        command,
        inputs,
        outputs,
        tests,
        help_,
    )


def scan_xml() -> str:
    command = (
        SAFE_LABEL
        + "genomicllm scan\n    --fasta '$input'\n    --input-label '$safe_label'\n"
        + task_args(with_label=True)
        + "    --window-size '$window_size'\n    --window-step '$window_step'\n    --threshold '$threshold'\n    --format '$format'\n"
    )
    inputs = (
        '        <param name="input" type="data" format="fasta" label="Genome or sequences (FASTA)" help="read as a stream: memory stays flat whatever its size"/>\n'
        + task_conditional(with_label=True)
        + '        <param argument="--window-size" type="integer" value="300" min="10" max="1500" label="Window size (nt)"/>\n'
        '        <param argument="--window-step" type="integer" value="150" min="1" max="1500" label="Step between windows (nt)" help="at most the window size"/>\n'
        '        <param argument="--threshold" type="float" value="0.5" min="0" max="1" label="BED: report windows whose probability is at least"/>\n'
        '        <param argument="--format" type="select" label="Output">\n'
        '            <option value="bed" selected="true">BED of the windows at or above the threshold (score = 1000 x probability)</option>\n'
        '            <option value="bedgraph">bedGraph of every window\'s probability</option>\n'
        "        </param>\n"
    )
    outputs = (
        '        <data name="output" format="bed" label="${tool.name} on ${on_string}">\n'
        '            <change_format>\n                <when input="format" value="bedgraph" format="bedgraph"/>\n            </change_format>\n'
        "        </data>\n"
    )
    tests = """        <test expect_num_outputs="1">
            <param name="input" value="ref.fa" ftype="fasta"/>
            <param name="window_size" value="200"/>
            <param name="window_step" value="100"/>
            <param name="threshold" value="0"/>
            <expand macro="builtin_model_test"/>
            <output name="output" ftype="bed">
                <assert_contents>
                    <has_n_lines n="23"/>
                    <has_line_matching expression="^chr1\\t0\\t200\\tTrue\\t\\d+\\t[.]$"/>
                    <has_line_matching expression="^chr2\\t300\\t500\\tTrue\\t\\d+\\t[.]$"/>
                </assert_contents>
            </output>
        </test>
        <test expect_num_outputs="1">
            <param name="input" value="ref.fa" ftype="fasta"/>
            <conditional name="task">
                <param name="id" value="splice_site"/>
                <param name="label" value="donor site"/>
            </conditional>
            <param name="window_size" value="400"/>
            <param name="window_step" value="400"/>
            <param name="format" value="bedgraph"/>
            <expand macro="builtin_model_test"/>
            <output name="output" ftype="bedgraph">
                <assert_contents>
                    <has_line_matching expression="^track type=bedGraph name=.GenomicLLM p.donor site.*$"/>
                    <has_line_matching expression="^chr1\\t0\\t400\\t[01]\\.\\d{4}$"/>
                </assert_contents>
            </output>
        </test>
"""
    help_ = """**What it does**

Slides a window along every record of a FASTA (a genome, chromosomes, contigs) and asks the model
the chosen classification question about each window. *BED* reports the windows whose probability
of the chosen label reaches the threshold (name = label, score = 1000 x probability); *bedGraph*
reports every window's probability, overlapping windows cut in the middle of their overlap so the
intervals never overlap. The last window of a record ends at its end.

The FASTA is read as a stream, so memory stays flat whatever the genome's size. For a whole genome
on a cluster, the workflow *GenomicLLM genome scan* splits the FASTA into chunks (**GenomicLLM
split FASTA for a scan**), maps this tool over them (one job per chunk, as many at once as the
Galaxy's runners allow) and merges the results in genome order."""
    return _tool("genomicllm_scan", "GenomicLLM scan", "windows over a genome for a classification", command, inputs, outputs, tests, help_)


def _plain_tool(tid: str, name: str, description: str, command: str, inputs: str, outputs: str, tests: str, help_: str) -> str:
    """A tool without a model (the genome-scan workflow's split and merge steps)."""
    return f'''<tool id="{tid}" name="{escape(name)}" version="@TOOL_VERSION@+galaxy@VERSION_SUFFIX@" profile="@PROFILE@">
    <description>{escape(description)}</description>
    <macros>
        <import>macros.xml</import>
    </macros>
    <expand macro="requirements"/>
    <expand macro="version_command"/>
    <command detect_errors="exit_code"><![CDATA[
{command}    ]]></command>
    <inputs>
{inputs}    </inputs>
    <outputs>
{outputs}    </outputs>
    <tests>
{tests}    </tests>
    <help><![CDATA[
{help_}
    ]]></help>
    <expand macro="citations"/>
</tool>
'''


def split_fasta_xml() -> str:
    command = (
        SAFE_LABEL + "genomicllm split-fasta\n    --fasta '$input'\n    --input-label '$safe_label'\n"
        "    --window-size '$window_size'\n    --window-step '$window_step'\n    --chunk-size '$chunk_size'\n    --out-dir chunks\n"
    )
    inputs = (
        '        <param name="input" type="data" format="fasta" label="Genome (FASTA)"/>\n'
        '        <param argument="--window-size" type="integer" value="300" min="10" max="1500" label="Window size of the scan (nt)"/>\n'
        '        <param argument="--window-step" type="integer" value="150" min="1" max="1500" label="Window step of the scan (nt)"/>\n'
        '        <param argument="--chunk-size" type="integer" value="5000000" min="1000" label="About this many nt per chunk" '
        'help="one scan job per chunk: smaller chunks spread the work over more jobs"/>\n'
    )
    outputs = (
        '        <collection name="chunks" type="list" label="${tool.name} on ${on_string}">\n'
        '            <discover_datasets pattern="(?P&lt;designation&gt;chunk_\\d+)\\.fa" directory="chunks" format="fasta" sort_by="designation"/>\n'
        "        </collection>\n"
    )
    tests = """        <test expect_num_outputs="1">
            <param name="input" value="ref.fa" ftype="fasta"/>
            <param name="window_size" value="200"/>
            <param name="window_step" value="100"/>
            <param name="chunk_size" value="1000"/>
            <output_collection name="chunks" type="list" count="3">
                <element name="chunk_0001">
                    <assert_contents>
                        <has_line line="&gt;chr1 genomicllm_offset=0 genomicllm_continues=yes"/>
                    </assert_contents>
                </element>
                <element name="chunk_0002">
                    <assert_contents>
                        <has_line line="&gt;chr1 genomicllm_offset=1000"/>
                    </assert_contents>
                </element>
                <element name="chunk_0003">
                    <assert_contents>
                        <has_line line="&gt;chr2 genomicllm_offset=0"/>
                    </assert_contents>
                </element>
            </output_collection>
        </test>
"""
    help_ = """**What it does**

Cuts a FASTA (a genome) into a collection of chunks for **GenomicLLM scan**, so that Galaxy runs
one scan job per chunk, as many at once as its job runners allow. The chunks are cut on the scan's
window grid and carry the bases the windows at their ends need, so the scans of the chunks,
merged in collection order by **GenomicLLM merge scan results**, are exactly the scan of the whole
file. Use the same window size and step here and in the scan. The workflow *GenomicLLM genome
scan* chains the three steps."""
    return _plain_tool(
        "genomicllm_split_fasta", "GenomicLLM split FASTA for a scan", "into chunks for parallel scan jobs", command, inputs, outputs, tests, help_
    )


def merge_bed_xml() -> str:
    command = "#for $part in $inputs:\ncat '$part' >> '$output' &&\n#end for\ntrue\n"
    inputs = (
        '        <param name="inputs" type="data" format="bed,bedgraph" multiple="true" label="Scan results of the chunks (in collection order)"/>\n'
    )
    outputs = '        <data name="output" format_source="inputs" label="${tool.name} on ${on_string}"/>\n'
    tests = """        <test expect_num_outputs="1">
            <param name="inputs" value="hits_1.bed,hits_2.bed" ftype="bed"/>
            <output name="output" ftype="bed">
                <assert_contents>
                    <has_n_lines n="3"/>
                    <has_line_matching expression="^chr1\\t0\\t200\\tTrue\\t.*$"/>
                    <has_line_matching expression="^chr2\\t0\\t200\\tTrue\\t.*$"/>
                </assert_contents>
            </output>
        </test>
"""
    help_ = """**What it does**

Concatenates the scan results of the chunks made by **GenomicLLM split FASTA for a scan**, in
collection order, which is genome order: the result equals the scan of the whole genome."""
    return _plain_tool("genomicllm_merge_bed", "GenomicLLM merge scan results", "of a chunked genome scan", command, inputs, outputs, tests, help_)


def render_analysis_tools() -> dict[str, str]:
    return {
        "genomicllm_explain.xml": explain_xml(),
        "genomicllm_variant_effect.xml": variant_effect_xml(),
        "genomicllm_scan.xml": scan_xml(),
        "genomicllm_split_fasta.xml": split_fasta_xml(),
        "genomicllm_merge_bed.xml": merge_bed_xml(),
    }
