"""Layer 1: the magics and the panel inside a real IPython InteractiveShell (no kernel, no browser)."""

import pytest

pytest.importorskip("IPython")
pytest.importorskip("ipywidgets")

from IPython.core.error import UsageError  # noqa: E402
from IPython.testing.globalipapp import start_ipython  # noqa: E402

from genomicllm_jupyter.display import MIMETYPE  # noqa: E402


@pytest.fixture(scope="module")
def ip(tmp_path_factory, random_model):
    import os

    os.environ["IPYTHONDIR"] = str(tmp_path_factory.mktemp("ipython"))
    shell = start_ipython()
    shell.run_line_magic("load_ext", "genomicllm_jupyter")
    shell.run_line_magic("config", f"GenomicLLMMagics.model = {str(random_model)!r}")
    return shell


def test_line_magic_answers_with_check(ip):
    out = ip.run_line_magic("genomicllm", "ACGTTGCA, GC content =")
    assert out[0].check.expected == "0.500"
    bundle = out._repr_mimebundle_()
    assert "text/html" in bundle and MIMETYPE in bundle and "application/json" not in bundle
    assert "0.500" in bundle["text/html"] and ("agree" in bundle["text/html"])


def test_cell_of_questions_and_interpolation(ip):
    ip.user_ns["seq"] = "ACGTAGGTAAGTCC"
    out = ip.run_cell_magic(
        "genomicllm", "--format table --out res", "{seq}, splice site =\n# a comment\nACGT, symbol = {{x}}, reading comprehension: symbol =\n"
    )
    assert list(out["task"]) == ["splice_site", "reading_comprehension"]
    assert ip.user_ns["res"][1].check.expected == "{x}"  # doubled braces are literal; unknown names untouched
    assert {"p(donor site)", "answer", "probability"} <= set(out.columns)


def test_fasta_cell_with_windows(ip):
    out = ip.run_cell_magic("genomicllm", "--task promoter --window-size 40 --window-step 20 --format json", ">a\n" + "ACGT" * 20 + "\n>b\nTTGACA\n")
    recs = out._repr_mimebundle_()[MIMETYPE]
    assert [r["id"] for r in recs] == ["a", "a", "a", "b"] and recs[0]["window"] == [1, 40]


def test_configurable_default_format(ip):
    ip.run_line_magic("config", "GenomicLLMMagics.default_format = 'table'")
    try:
        df = ip.run_line_magic("genomicllm", "ACGT, GC content =")
        assert df.iloc[0]["expected"] == "0.500"
    finally:
        ip.run_line_magic("config", "GenomicLLMMagics.default_format = 'html'")


@pytest.mark.parametrize(
    "line, cell, words",
    [
        ("ACGT, GC contnt =", None, "unknown question key"),
        ("ACGXT, GC content =", None, "character 'X' at position 4"),
        ("", None, "write a question"),
        ("--task promoter", ">a\nAC-GT\n", "line 2, column 3"),
        ("", ">a\nACGT\n", "needs --task"),
        ("--bogus", "ACGT, GC content =", "unrecognized arguments: --bogus"),
    ],
)
def test_mistakes_are_one_line_usage_errors(ip, line, cell, words):
    with pytest.raises(UsageError, match=words):
        if cell is None:
            ip.run_line_magic("genomicllm", line)
        else:
            ip.run_cell_magic("genomicllm", line, cell)


def test_panel_click_answers_and_plots(random_model):
    from genomicllm_jupyter import question_panel

    panel = question_panel(model=str(random_model), window_size=60)
    panel.task.value = "promoter"
    panel.sequence.value = ">long\n" + "ACGTTGCA" * 40
    panel.button.click()
    assert panel.last is not None and len(panel.last) > 2
    assert "<table" in panel.answer.value and "<svg" in panel.plot.value
    panel.task.value = "tf_binding"
    assert [f.description for f in panel.items_box.children] == ["transcription factor"]
    panel.sequence.value = "ACGTXX"
    panel.button.click()
    assert "character 'X'" in panel.status.value and panel.answer.value == ""


def test_explain_magic_draws_a_logo_of_the_models_importance(ip, random_model):
    pytest.importorskip("logomaker")
    from genomicllm_kernel import explain

    seq = "TTGACAATTAATCATCGGCTCGTATAATGTGTGG"
    view = ip.run_line_magic("genomicllm", f"--explain {seq}, core promoter =")
    bundle = view._repr_mimebundle_()
    assert "data:image/png;base64," in bundle["text/html"]
    rec = bundle[MIMETYPE][0]
    direct = explain(f"{seq}, core promoter =", model=str(random_model))
    assert rec["importance"] == pytest.approx(list(direct.importance), abs=1e-5) and len(rec["importance"]) == len(seq)
    df = ip.run_cell_magic("genomicllm", "--explain --task promoter --window-size 20 --format table", f">a\n{seq}\n")
    assert list(df["position"]) == list(range(1, len(seq) + 1)) and set(df["id"]) == {"a"}
    with pytest.raises(UsageError, match="classification question"):
        ip.run_line_magic("genomicllm", f"--explain {seq}, GC content =")


def test_panel_explain_button(random_model):
    pytest.importorskip("logomaker")
    from genomicllm_jupyter import question_panel

    panel = question_panel(model=str(random_model), window_size=60)
    panel.task.value = "splice_site"
    panel.sequence.value = "ACGTAGGTAAGTCCGATTAGC"
    panel.explain_button.click()
    assert "data:image/png" in panel.answer.value and len(panel.last_explanation[0].sequence) == 21
    panel.task.value = "gc_content"
    panel.explain_button.click()
    assert "classification tasks" in panel.status.value


def test_variants_magic_is_a_table_with_delta_bars_of_the_models_answers(ip, tmp_path, random_model):
    """--variants VCF --reference REF: every ALT scored as `genomicllm variants` scores it (the
    model's answers to the ref and alt windows), skipped records with their status, a delta bar per
    scored ALT; the cell may hold the VCF text; mistakes are one line."""
    from genomicllm_kernel.api import variant_effects
    from tests.test_explain_variants_scan import _reference, _vcf

    ref, chr1, chr2 = _reference(tmp_path)
    vcf = _vcf(tmp_path, chr1, chr2)
    ip.user_ns["ref_fa"] = str(ref)
    view = ip.run_line_magic("genomicllm", f"--variants {vcf} --reference {{ref_fa}} --task promoter --window-size 120 --out eff")
    direct = variant_effects(vcf, ref, "promoter", window=120, model=str(random_model))
    rows = view._repr_mimebundle_()[MIMETYPE]
    assert [r["id"] for r in rows] == [c.id for c in direct.calls] and ip.user_ns["eff"] is view
    for r, c in zip(rows, direct.calls):
        assert r["status"] == c.status
        if c.status == "scored":
            assert r["p_ref"] == pytest.approx(c.p_ref, abs=1e-5) and r["delta"] == pytest.approx(c.delta, abs=1e-5)
    page = view._repr_html_()
    scored = sum(c.status == "scored" for c in direct.calls)
    assert page.count("</tr>") == len(direct.calls) + 1 and page.count("|<span") == scored
    assert "ref mismatch" in page and "contig missing" in page and "4 scored" in page
    # the cell's own VCF text, and the table format
    text = vcf.read_text().splitlines()
    cell = "\n".join(text[:5] + [text[5]])
    df = ip.run_cell_magic("genomicllm", f"--variants --reference {ref} --task promoter --window-size 120 --format table", cell)
    assert list(df["id"]) == ["snv1"] and df.iloc[0]["p_alt"] == pytest.approx(direct.calls[0].p_alt, abs=1e-5)
    for line, words in [
        (f"--variants {vcf} --task promoter", "--reference"),
        (f"--variants {vcf} --reference {ref}", "--task"),
        (f"--variants {vcf} --reference {ref} --task gc_content", "classification"),
        (f"--variants {tmp_path / 'none.vcf'} --reference {ref} --task promoter", "none.vcf"),
    ]:
        with pytest.raises(UsageError, match=words):
            ip.run_line_magic("genomicllm", line)
