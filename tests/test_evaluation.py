"""evaluate on the small corpus with the tiny model: every metric TASKS.md names is reported."""

import json

from genomicllm_kernel.evaluation import classification_metrics, evaluate, task_metrics


def test_metrics_on_known_values():
    m = classification_metrics(["a", "b", "a", "b"], ["a", "b", "b", "b"])
    assert m["accuracy"] == 0.75 and round(m["mcc"], 4) == 0.5774
    g = task_metrics("gc_content", [{"answer": "0.500", "pred": "0.400", "length": 4}, {"answer": "0.300", "pred": "0.300", "length": 4}])
    assert abs(g["mae"] - 0.05) < 1e-9 and g["valid_format"] == 1.0
    d = task_metrics("gene_description", [{"answer": "BRCA1 DNA repair associated", "pred": "BRCA1 DNA repair associated", "length": 0}])
    assert d["exact_match"] == 1.0 and d["rouge_l"] == 1.0 and d["bleu4"] > 0.99


def test_evaluate_reports_every_task(tiny_model, small_corpus, tmp_path):
    res = evaluate(tiny_model, small_corpus, "test", out=tmp_path, limit=8)
    assert set(res["tasks"]) == {
        "splice_site",
        "enhancer",
        "promoter",
        "open_chromatin",
        "regulatory",
        "tf_binding",
        "orf",
        "sequence_direction",
        "gene_biotype",
        "gc_content",
        "nt2aa",
        "reverse_complement",
        "gene_description",
        "reading_comprehension",
    }
    for task, m in res["tasks"].items():
        assert m["valid_format"] == 1.0, task
    assert {"accuracy", "macro_f1", "mcc"} <= set(res["tasks"]["splice_site"])
    assert {"mae", "pearson_r"} <= set(res["tasks"]["gc_content"])
    assert {"bleu4", "rouge_l", "exact_match"} <= set(res["tasks"]["gene_description"])
    assert "exact_by_length" in res["tasks"]["reverse_complement"]
    assert json.loads((tmp_path / "eval_test.json").read_text())["split"] == "test"
    assert (tmp_path / "eval_test.md").read_text().startswith("Model `")


def test_bootstrap_intervals_agree_with_scikit_learn_and_shrink_with_n():
    import numpy as np
    from sklearn.metrics import matthews_corrcoef

    from genomicllm_kernel.evaluation import _mcc_from_confusion, mcc_interval, mean_interval

    rng = np.random.default_rng(1)
    labels = ["promoter", "enhancer", "neither"]
    truth = list(rng.choice(labels, 400))
    pred = [t if rng.random() < 0.7 else rng.choice(labels) for t in truth]
    index = {x: i for i, x in enumerate(sorted(labels))}
    conf = np.zeros((1, 3, 3))
    for t, p in zip(truth, pred):
        conf[0, index[t], index[p]] += 1
    assert abs(_mcc_from_confusion(conf)[0] - matthews_corrcoef(truth, pred)) < 1e-12
    point = matthews_corrcoef(truth, pred)
    lo, hi = mcc_interval(truth, pred)
    small_lo, small_hi = mcc_interval(truth[:40], pred[:40])
    assert lo < point < hi and (hi - lo) < (small_hi - small_lo)
    assert mean_interval([True] * 30) == [1.0, 1.0]
    lo, hi = mean_interval([True, False] * 50)
    assert lo < 0.5 < hi and hi - lo > 0.1


def test_intervals_resample_whole_units_when_rows_name_them():
    """Rows cut from one transcript move together: resampling transcripts gives a wider interval
    than resampling their rows, and one row per unit gives the row bootstrap exactly."""
    import numpy as np

    from genomicllm_kernel.evaluation import mcc_interval, mean_interval

    rng = np.random.default_rng(2)
    # 10 transcripts of 30 rows; each transcript is either mostly right or mostly wrong
    truth, pred, units = [], [], []
    for u in range(10):
        good = u % 2 == 0
        for _ in range(30):
            t = str(rng.choice(["1", "2", "3"]))
            truth.append(t)
            pred.append(t if rng.random() < (0.95 if good else 0.5) else str(rng.choice(["1", "2", "3"])))
            units.append(f"tx{u}")
    lo, hi = mcc_interval(truth, pred)
    ulo, uhi = mcc_interval(truth, pred, units=units)
    assert uhi - ulo > 1.5 * (hi - lo)
    hits = [a == b for a, b in zip(truth, pred)]
    assert mean_interval(hits, units=units)[1] - mean_interval(hits, units=units)[0] > mean_interval(hits)[1] - mean_interval(hits)[0]
    singletons = [f"row{i}" for i in range(len(truth))]
    assert mcc_interval(truth, pred, units=singletons) == [lo, hi]
    assert mean_interval(hits, units=singletons) == mean_interval(hits)
    rows = [{"answer": t, "pred": p, "length": 3, "unit": u} for t, p, u in zip(truth, pred, units)]
    assert task_metrics("orf", rows)["mcc_ci"] == [ulo, uhi]


def test_markdown_and_card_show_intervals():
    m = task_metrics(
        "splice_site",
        [
            {"answer": a, "pred": p, "length": 3}
            for a, p in [
                ("donor site", "donor site"),
                ("acceptor site", "acceptor site"),
                ("non-splice site", "donor site"),
                ("donor site", "donor site"),
            ]
            * 5
        ],
    )
    assert len(m["mcc_ci"]) == 2 and m["mcc_ci"][0] <= m["mcc"] <= m["mcc_ci"][1]
    from genomicllm_kernel.evaluation import to_markdown

    md = to_markdown(
        {"model": "m", "runtime": "r", "split": "dev", "limit_per_group": 5, "groups": {"splice_site | annotation": m}, "tasks": {"splice_site": m}}
    )
    assert f"{m['mcc']:.3f} ({m['mcc_ci'][0]:.2f} to {m['mcc_ci'][1]:.2f})" in md
    from genomicllm_kernel.model_card import _verdict

    assert _verdict({"mcc": 0.525, "mcc_ci": [0.44, 0.61]}, "mcc", 0.563) == "no (threshold inside the interval)"
    assert _verdict({"mcc": 0.70, "mcc_ci": [0.65, 0.75]}, "mcc", 0.5) == "yes"


def test_a_groups_sample_depends_on_its_own_rows_only(tmp_path):
    """evaluate's per-group draw: the same rows give the same sample whatever their order in the file
    and whatever the other groups hold (a corpus rebuilt with one source changed keeps the others')."""
    import json
    import random

    from genomicllm_kernel.evaluation import _sample

    def row(task, source, i):
        return {"task": task, "source": source, "prompt": f"ACGT{i}, q =", "answer": "True", "region": f"r{i}", "split": "dev"}

    kept = [row("promoter", "annotation", i) for i in range(50)]
    other = [row("splice_site", "annotation", i) for i in range(30)]
    samples = []
    for n, extra in enumerate((other, other[:7], [])):
        rows = kept + extra
        random.Random(n).shuffle(rows)
        folder = tmp_path / str(n)
        folder.mkdir()
        (folder / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        groups, _ = _sample(folder, "dev", None, 10)
        samples.append([r["region"] for r in groups[("promoter", "annotation")]])
    assert len(samples[0]) == 10 and samples[0] == samples[1] == samples[2]
    groups, _ = _sample(tmp_path / "0", "dev", None, 10, seed=1)
    assert [r["region"] for r in groups[("promoter", "annotation")]] != samples[0]  # the seed still draws


def test_classification_groups_take_their_own_cap(tmp_path):
    """--label-limit caps classification groups (one forward pass a row) apart from --limit, which
    still caps generation groups; without it both take --limit."""
    import json

    from genomicllm_kernel.evaluation import _sample

    rows = [
        {"task": "promoter", "source": "annotation", "prompt": f"ACGT{i}, core promoter =", "answer": "True", "region": f"p{i}"} for i in range(50)
    ]
    rows += [
        {"task": "reverse_complement", "source": "annotation", "prompt": f"ACGT{i}, reverse sequence =", "answer": "TGCA", "region": f"g{i}"}
        for i in range(50)
    ]
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    groups, _ = _sample(tmp_path, "dev", None, 10, label_limit=30)
    assert len(groups[("promoter", "annotation")]) == 30 and len(groups[("reverse_complement", "annotation")]) == 10
    groups, _ = _sample(tmp_path, "dev", None, 10)
    assert len(groups[("promoter", "annotation")]) == 10
