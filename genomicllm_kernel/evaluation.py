"""``genomicllm evaluate``: every metric TASKS.md names, per task and per source.

Classification is answered from the label probabilities of one forward pass (no sampling);
generation with constrained greedy decoding. Examples flagged ``leak`` by the data builder are
dropped before scoring (GUE dev sequences whose middle 24-mer occurs in training, prom_300
sequences containing a prom_core training sequence). Generation exact match is also reported by
input-length bucket. Metrics come from scikit-learn, sacrebleu and rouge-score, not hand-written.

MCC and exact match also carry a 95% bootstrap interval: dev groups are small after the leak filter
(GUE prom_core_tata keeps 15 of 613), so a point estimate alone cannot say whether a target was
missed or the sample was unlucky.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from .data.builders import TILED_TASKS
from .errors import InputError
from .grammar import parse_prompt
from .pieces import PIECE_NT
from .registry import TASKS

BUCKETS = [(1, 32), (33, 64), (65, 128), (129, 256), (257, 512), (513, 10**9)]


def source_group(source: str) -> str:
    """The group a figure is reported for: each GUE set, each Genomic Benchmarks set, known and unseen
    genes, generated item names, else annotation (per extra genome) or derived labels."""
    if source.startswith("GUE:"):
        return source
    if source.startswith("Genomic Benchmarks "):
        return "GB:" + source.split()[2].rstrip(":")
    if source.startswith("org.Hs.eg.db ("):
        return source[len("org.Hs.eg.db (") : -1]
    if source.startswith("generated item names"):
        return "generated item names"
    if "[" in source:
        return "annotation " + source[source.index("[") :]
    return "annotation" if not source.startswith("derived") else "derived"


def classification_metrics(truth: list[str], pred: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    return {
        "n": len(truth),
        "accuracy": accuracy_score(truth, pred),
        "macro_f1": f1_score(truth, pred, average="macro", zero_division=0),
        "mcc": matthews_corrcoef(truth, pred) if len(set(truth) | set(pred)) > 1 else 0.0,
    }


BOOTSTRAP_RESAMPLES = 1000


def mcc_interval(truth: list[str], pred: list[str], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0, units=None) -> list[float]:
    """Percentile 95% interval of MCC over bootstrap resamples of the examples, or, with ``units``
    (one key per row, such as its transcript), of whole units: rows cut from one transcript are not
    independent, and resampling them one by one would print too narrow an interval.

    MCC comes from each resample's confusion matrix, all resamples at once (scikit-learn's
    ``matthews_corrcoef`` per resample would take seconds per group); the formula is the one
    scikit-learn uses, and the tests check the two agree.
    """
    labels = sorted(set(truth) | set(pred))
    k = len(labels)
    index = {label: i for i, label in enumerate(labels)}
    t = np.array([index[x] for x in truth])
    p = np.array([index[x] for x in pred])
    owner, n = _units(units, len(t))
    draw = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    # each unit's confusion counts (a row's, without units), summed over the units a resample draws
    per_unit = np.bincount(owner * k * k + t * k + p, minlength=n * k * k).reshape(n, k * k)
    conf = per_unit[draw].sum(axis=1).reshape(resamples, k, k).astype(float)
    return _percentiles(_mcc_from_confusion(conf))


def _units(units, n_rows: int) -> tuple[np.ndarray, int]:
    """(each row's unit index, number of units); every row its own unit without ``units``."""
    if units is None:
        return np.arange(n_rows), n_rows
    index: dict = {}
    owner = np.array([index.setdefault(u, len(index)) for u in units])
    return owner, len(index)


def _mcc_from_confusion(conf: np.ndarray) -> np.ndarray:
    t_sum, p_sum = conf.sum(axis=2), conf.sum(axis=1)
    correct = np.trace(conf, axis1=1, axis2=2)
    n = conf.sum(axis=(1, 2))
    cov_tp = correct * n - (t_sum * p_sum).sum(axis=1)
    cov_pp = n * n - (p_sum * p_sum).sum(axis=1)
    cov_tt = n * n - (t_sum * t_sum).sum(axis=1)
    denom = np.sqrt(cov_tt * cov_pp)
    return np.divide(cov_tp, denom, out=np.zeros_like(cov_tp), where=denom > 0)


def mean_interval(hits: list[bool], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0, units=None) -> list[float]:
    """Percentile 95% interval of a proportion (exact match) over bootstrap resamples of the rows,
    or of whole ``units`` (as :func:`mcc_interval`)."""
    x = np.asarray(hits, dtype=float)
    owner, n = _units(units, len(x))
    draw = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    hits_of, rows_of = np.bincount(owner, weights=x, minlength=n), np.bincount(owner, minlength=n)
    return _percentiles(hits_of[draw].sum(axis=1) / rows_of[draw].sum(axis=1))


def _percentiles(values: np.ndarray) -> list[float]:
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def _valid(task, answer: str | None) -> bool:
    """Whether ``answer`` has the format of the task's answer kind (``formats.AnswerFormat.is_valid``)."""
    from .formats import format_class

    return answer is not None and format_class(task).is_valid(task, answer)


def _exact(truth, pred, task) -> float:
    return float(np.mean([a == b for a, b in zip(truth, pred)]))


def _mae(truth, pred, task) -> float:
    t = np.array([float(x) for x in truth])
    p = np.array([float(x) if _valid(task, x) else 0.0 for x in pred])
    return float(np.abs(t - p).mean())


def _pearson(truth, pred, task) -> float:
    t = np.array([float(x) for x in truth])
    p = np.array([float(x) if _valid(task, x) else 0.0 for x in pred])
    return float(np.corrcoef(t, p)[0, 1]) if t.std() > 0 and p.std() > 0 else 0.0


def _per_residue(truth, pred, task) -> float:
    return float(np.mean([sum(x == y for x, y in zip(a, b)) / max(1, len(a)) for a, b in zip(truth, pred)]))


def _bleu4(truth, pred, task) -> float:
    import sacrebleu

    return sacrebleu.corpus_bleu(pred, [truth]).score / 100


def _rouge_l(truth, pred, task) -> float:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    return float(np.mean([scorer.score(a, b)["rougeL"].fmeasure for a, b in zip(truth, pred)]))


#: every metric a task may name in the registry (``Task.metrics``): (truth, pred, task) -> value;
#: classification's accuracy, macro-F1 and MCC come together from :func:`classification_metrics`
METRICS = {"mae": _mae, "pearson_r": _pearson, "exact_match": _exact, "per_residue_accuracy": _per_residue, "bleu4": _bleu4, "rouge_l": _rouge_l}
CLASSIFICATION_METRICS = ("accuracy", "macro_f1", "mcc")


def task_metrics(task_id: str, rows: list[dict]) -> dict:
    """The metrics the registry names for the task (with bootstrap intervals for MCC and exact
    match, and exact match by input length for the generation kinds)."""
    from .formats import format_class

    task = TASKS[task_id]
    truth = [r["answer"] for r in rows]
    pred = [r["pred"] or "" for r in rows]
    # rows that name their unit (the transcript a tile was cut from) are resampled by unit
    units = [r["unit"] for r in rows] if rows and all("unit" in r for r in rows) else None
    out: dict = {"n": len(rows), "valid_format": float(np.mean([_valid(task, r["pred"]) for r in rows]))}
    if set(CLASSIFICATION_METRICS) & set(task.metrics):
        out.update(classification_metrics(truth, pred))
        out["mcc_ci"] = mcc_interval(truth, pred, units=units)
    for name in task.metrics:
        if name in METRICS:
            out[name] = METRICS[name](truth, pred, task)
        elif name not in CLASSIFICATION_METRICS:
            raise ValueError(f"task {task_id} names an unknown metric {name!r}")
    if "exact_match" in out:
        out["exact_match_ci"] = mean_interval([a == b for a, b in zip(truth, pred)], units=units)
    if format_class(task).length_curve:
        by = {}
        for lo, hi in BUCKETS:
            sel = [r for r in rows if lo <= r["length"] <= hi]
            if sel:
                by[f"{lo}-{hi if hi < 10**9 else 'max'}"] = {"n": len(sel), "exact_match": float(np.mean([r["answer"] == r["pred"] for r in sel]))}
        out["exact_by_length"] = by
    return out


def _sample(data: Path, split: str, tasks, limit: int, seed: int = 0, label_limit: int | None = None):
    """(rows per (task, source group) group, leak-flagged rows dropped per group): at most ``limit``
    rows of each group, and ``label_limit`` (default ``limit``) of each classification group."""
    path = data / f"{split}.jsonl"
    if not path.exists():
        raise InputError(f"{path} not found; run 'genomicllm data build --out {data}' first")
    groups: dict[tuple, list] = defaultdict(list)
    dropped = defaultdict(int)
    with open(path) as fh:
        for line in fh:
            ex = json.loads(line)
            if tasks and ex["task"] not in tasks:
                continue
            key = (ex["task"], source_group(ex["source"]))
            if ex.get("leak"):
                dropped[key] += 1
                continue
            groups[key].append(ex)
    for key, rows in groups.items():
        cap = label_limit if label_limit and TASKS[key[0]].labels else limit
        if len(rows) > cap:
            # each group's draw depends on its own rows only, not on their order in the file or on
            # the other groups: a corpus rebuilt with one source changed (its rows, or how many rows
            # another split has) keeps every other group's sample, so two models compare row for row
            rows.sort(key=lambda ex: (ex.get("region", ""), ex["prompt"], ex["answer"]))
            groups[key] = random.Random(f"{seed}:{key[0]}:{key[1]}").sample(rows, cap)
    return groups, dropped


def evaluate(
    model,
    data: Path,
    split: str = "dev",
    tasks=None,
    out: Path | None = None,
    limit: int = 300,
    backend: str | None = None,
    batch_size: int = 32,
    name: str | None = None,
    label_limit: int | None = None,
) -> dict:
    """Score ``model`` on a corpus split: at most ``limit`` rows per task and source group, and
    ``label_limit`` (default ``limit``) per classification group. Why a separate cap: a
    classification group's MCC over 300 rows has an interval of about +-0.1, too wide to tell a model
    from a baseline a few points away, while its rows cost one forward pass each; generation rows
    cost one pass per answer token."""
    from tqdm import tqdm

    from .engine import GenomicLLM

    if tasks:
        unknown = [t for t in tasks if t not in TASKS]
        if unknown:
            raise InputError(f"unknown task(s) {unknown}; tasks: {', '.join(TASKS)}")
    engine = GenomicLLM.from_pretrained(model, backend)
    groups, dropped = _sample(Path(data), split, tasks, limit, label_limit=label_limit)
    results: dict = {"model": engine.model_id, "runtime": engine.runtime, "split": split, "limit_per_group": limit}
    results.update(limit_per_label_group=label_limit or limit, groups={}, tasks={})
    all_rows: dict[str, list] = defaultdict(list)
    total = sum(len(v) for v in groups.values())
    bar = tqdm(total=total, desc=f"evaluating {split}", unit="ex", disable=None)
    t0 = time.time()
    for (task_id, group), rows in sorted(groups.items()):
        prompts = [parse_prompt(r["prompt"]) for r in rows]
        answers = list(engine.answer(prompts, batch_size, progress=bar.update))
        scored = [{"answer": r["answer"], "pred": a.answer, "length": len(p.sequence)} for r, a, p in zip(rows, answers, prompts)]
        if task_id in TILED_TASKS:
            for row, r in zip(scored, rows):
                row["unit"] = r["region"]
        results["groups"][f"{task_id} | {group}"] = dict(task_metrics(task_id, scored), leak_dropped=dropped.get((task_id, group), 0))
        all_rows[task_id] += scored
    bar.close()
    for task_id, rows in sorted(all_rows.items()):
        results["tasks"][task_id] = task_metrics(task_id, rows)
    for task_id, by in _read_whole(engine, groups, batch_size).items():
        results["tasks"][task_id]["exact_by_length_whole"] = by
    results["seconds"] = round(time.time() - t0, 1)
    md = to_markdown(results)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        stem = name or f"eval_{split}"
        (out / f"{stem}.json").write_text(json.dumps(results, indent=1))
        (out / f"{stem}.md").write_text(md)
    print(md)
    return results


METRIC_ORDER = ["n", "valid_format", "accuracy", "macro_f1", "mcc", "mae", "pearson_r", "exact_match", "per_residue_accuracy", "bleu4", "rouge_l"]


def interval_text(ci: list[float] | None) -> str:
    return f" ({ci[0]:.2f} to {ci[1]:.2f})" if ci else ""


def _read_whole(engine, groups: dict, batch_size: int) -> dict:
    """{task: {length bucket: n, exact match}} of the rows the engine reads in pieces (pieces.py),
    answered again with the whole input read at once: what the model alone does at those lengths,
    reported beside the pieces' curve."""
    from .pieces import JOINS, pieces_of

    long: dict[str, list] = defaultdict(list)
    for (task_id, _group), rows in sorted(groups.items()):
        if JOINS.keys().isdisjoint(TASKS[task_id].question_keys):
            continue  # no question of this task is read in pieces
        long[task_id] += [r for r in rows if pieces_of(parse_prompt(r["prompt"])) is not None]
    out = {}
    engine.read_in_pieces, kept = False, engine.read_in_pieces
    try:
        for task_id, rows in long.items():
            if not rows:
                continue
            prompts = [parse_prompt(r["prompt"]) for r in rows]
            answers = engine.answer(prompts, batch_size)
            scored = [{"answer": r["answer"], "pred": a.answer, "length": len(p.sequence)} for r, a, p in zip(rows, answers, prompts)]
            out[task_id] = task_metrics(task_id, scored).get("exact_by_length", {})
    finally:
        engine.read_in_pieces = kept
    return out


def _label_cap_text(results: dict) -> str:
    cap = results.get("limit_per_label_group", results["limit_per_group"])
    return "" if cap == results["limit_per_group"] else f", {cap} per classification task and source"


def to_markdown(results: dict) -> str:
    lines = [
        f"Model `{results['model']}` on the {results['split']} split ({results['runtime']}; at most "
        f"{results['limit_per_group']} examples per task and source{_label_cap_text(results)}; leak-flagged examples dropped; "
        "MCC and exact match with their 95% bootstrap interval).",
        "",
        "| task | source | " + " | ".join(METRIC_ORDER) + " |",
        "|" + " --- |" * (len(METRIC_ORDER) + 2),
    ]

    def row(name, group, m):
        cells = []
        for k in METRIC_ORDER:
            v = m.get(k)
            cells.append("" if v is None else (str(v) if k == "n" else f"{v:.3f}" + interval_text(m.get(f"{k}_ci"))))
        return f"| {name} | {group} | " + " | ".join(cells) + " |"

    for key, m in results["groups"].items():
        task_id, group = key.split(" | ", 1)
        lines.append(row(task_id, group, m))
    lines += ["", "All sources pooled:", "", "| task | | " + " | ".join(METRIC_ORDER) + " |", "|" + " --- |" * (len(METRIC_ORDER) + 2)]
    for task_id, m in results["tasks"].items():
        lines.append(row(task_id, "all", m))
    gen = [(t, m["exact_by_length"], m.get("exact_by_length_whole", {})) for t, m in results["tasks"].items() if "exact_by_length" in m]
    if gen:
        lines += [
            "",
            f"Generation exact match by input length (nt); reverse / complement inputs longer than {PIECE_NT} nt are read in pieces "
            "(pieces.py), and the last column is the same rows read whole, as the model alone does:",
            "",
            "| task | length | n | exact match | read whole |",
            "| --- | --- | --- | --- | --- |",
        ]
        for t, by, whole in gen:
            for b, v in by.items():
                w = whole.get(b)
                read_whole = "" if w is None else f"{w['exact_match']:.3f} (n={w['n']})"
                lines.append(f"| {t} | {b} | {v['n']} | {v['exact_match']:.3f} | {read_whole} |")
    return "\n".join(lines) + "\n"
