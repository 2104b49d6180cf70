"""evaluate on the small corpus with the tiny model: every metric TASKS.md names is reported."""
import json

from genomicllm_kernel.evaluation import classification_metrics, evaluate, task_metrics


def test_metrics_on_known_values():
    m = classification_metrics(["a", "b", "a", "b"], ["a", "b", "b", "b"])
    assert m["accuracy"] == 0.75 and round(m["mcc"], 4) == 0.5774
    g = task_metrics("gc_content", [{"answer": "0.500", "pred": "0.400", "length": 4},
                                    {"answer": "0.300", "pred": "0.300", "length": 4}])
    assert abs(g["mae"] - 0.05) < 1e-9 and g["valid_format"] == 1.0
    d = task_metrics("gene_description", [{"answer": "BRCA1 DNA repair associated", "pred": "BRCA1 DNA repair associated", "length": 0}])
    assert d["exact_match"] == 1.0 and d["rouge_l"] == 1.0 and d["bleu4"] > 0.99


def test_evaluate_reports_every_task(tiny_model, small_corpus, tmp_path):
    res = evaluate(tiny_model, small_corpus, "test", out=tmp_path, limit=8)
    assert set(res["tasks"]) == {"splice_site", "enhancer", "promoter", "open_chromatin", "regulatory", "tf_binding", "orf",
                                 "sequence_direction", "gene_biotype", "gc_content", "nt2aa", "reverse_complement",
                                 "gene_description", "reading_comprehension"}
    for task, m in res["tasks"].items():
        assert m["valid_format"] == 1.0, task
    assert {"accuracy", "macro_f1", "mcc"} <= set(res["tasks"]["splice_site"])
    assert {"mae", "pearson_r"} <= set(res["tasks"]["gc_content"])
    assert {"bleu4", "rouge_l", "exact_match"} <= set(res["tasks"]["gene_description"])
    assert "exact_by_length" in res["tasks"]["reverse_complement"]
    assert json.loads((tmp_path / "eval_test.json").read_text())["split"] == "test"
    assert (tmp_path / "eval_test.md").read_text().startswith("Model `")
