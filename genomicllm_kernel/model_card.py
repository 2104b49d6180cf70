"""``genomicllm card``: write MODEL_CARD.md and learning_curve.svg from files that commands wrote.

Every figure comes from the run's ``train_log.jsonl`` / ``train_config.json`` (written by
``genomicllm train``), the evaluation JSON (``genomicllm evaluate``), the ONNX export report
(``genomicllm export``) and the corpus ``DATA_CARD.md`` (``genomicllm data build``), so rerunning
those commands reproduces the card.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError
from .evaluation import interval_text, to_markdown
from .model import count_parameters

TARGETS = {  # issue targets, dev split, leak-filtered
    "gc_content": ("mae", "<=", 0.01),
    "reading_comprehension": ("exact_match", ">=", 0.99),
}
#: issue #20's targets on Genomic Benchmarks records (dev, by locus): group -> (metric, threshold)
GB_TARGETS = {
    ("enhancer", "GB:human_enhancers_ensembl"): ("mcc", 0.5),
    ("enhancer", "GB:human_enhancers_cohn"): ("mcc", 0.5),
    ("open_chromatin", "GB:human_ocr_ensembl"): ("mcc", 0.6),
    ("regulatory", "GB:human_ensembl_regulatory"): ("macro_f1", 0.8),
}


HISTORY_FILE = "training_history.json"
#: snapshots this few steps apart hold practically the same weights: a run that stops just after its
#: last snapshot evaluates that snapshot and its checkpoint; the curve keeps the later one only
SAME_WEIGHTS_STEPS = 10
#: the targets table judges each metric's trend over this many of the curve's last points
TREND_POINTS = 12


def distinct_points(points: list[dict]) -> list[dict]:
    """Curve points in step order, dropping any within ``SAME_WEIGHTS_STEPS`` of the next one."""
    points = sorted(points, key=lambda p: p["step"])
    return [p for p, q in zip(points, points[1:] + [None]) if q is None or q["step"] - p["step"] >= SAME_WEIGHTS_STEPS]


def smoothed_loss(log: list[dict], window: int = 20) -> list[float]:
    """Running mean of ``window`` log points (per-batch loss swings with the task mix); records
    recovered from an earlier card's plot are running means already and are kept as they are."""
    out = []
    for i, r in enumerate(log):
        if r.get("smoothed"):
            out.append(r["loss"])
            continue
        w = [x["loss"] for x in log[max(0, i - window + 1) : i + 1]]
        out.append(sum(w) / len(w))
    return out


def learning_curve_svg(log: list[dict], width: int = 640, height: int = 260) -> str:
    smooth = [(r["tokens_seen"], v) for r, v in zip(log, smoothed_loss(log))]
    x1 = max(x for x, _ in smooth) or 1
    y1 = max(y for _, y in smooth) or 1
    sx = lambda x: 50 + (width - 70) * x / x1  # noqa: E731
    sy = lambda y: 15 + (height - 55) * (1 - y / y1)  # noqa: E731
    path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(smooth))
    ticks = "".join(
        f"<text x='{sx(x1 * f):.0f}' y='{height - 22}' font-size='10' text-anchor='middle'>{x1 * f / 1e6:.1f}M</text>"
        for f in (0, 0.25, 0.5, 0.75, 1)
    )
    yt = "".join(f"<text x='44' y='{sy(y1 * f) + 3:.0f}' font-size='10' text-anchor='end'>{y1 * f:.2f}</text>" for f in (0, 0.5, 1))
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-family='sans-serif'>"
        f"<rect width='100%' height='100%' fill='white'/>"
        f"<line x1='50' y1='{sy(0)}' x2='{width - 20}' y2='{sy(0)}' stroke='#888'/><line x1='50' y1='15' x2='50' y2='{sy(0)}' stroke='#888'/>"
        f"{ticks}{yt}<text x='{width / 2}' y='{height - 5}' font-size='11' text-anchor='middle'>training tokens seen</text>"
        f"<text x='12' y='{height / 2}' font-size='11' transform='rotate(-90 12 {height / 2})' text-anchor='middle'>answer-token loss (running mean)</text>"
        f"<path d='{path}' fill='none' stroke='#4c78a8' stroke-width='1.5'/></svg>"
    )


def tasks_fed_by_gue(groups: dict) -> set[str]:
    """Tasks with GUE groups beside their annotation-derived one (an evaluation's ``groups`` keys are
    ``task | source``): their annotation part gets its own curve row, ``task (annotation) mcc``."""
    return {k.split(" | ")[0] for k in groups if "| GUE:" in k}


def headline_metrics(results: dict) -> dict[str, float]:
    """One number per task (the metric its target is stated in) plus the GUE groups, from an evaluation."""
    key = {
        "gc_content": "mae",
        "gene_description": "rouge_l",
        "nt2aa": "exact_match",
        "reverse_complement": "exact_match",
        "reading_comprehension": "exact_match",
    }
    out = {f"{t} {key.get(t, 'mcc')}": m[key.get(t, "mcc")] for t, m in results["tasks"].items() if key.get(t, "mcc") in m}
    mixed = tasks_fed_by_gue(results["groups"])
    for k, m in results["groups"].items():
        task, source = k.split(" | ", 1)
        if "mcc" not in m:
            continue
        if source.startswith("GUE:"):
            out[source + " mcc"] = m["mcc"]
        elif source == "annotation" and task in mixed:  # the annotation-derived target of a task GUE also feeds
            out[f"{task} (annotation) mcc"] = m["mcc"]
    return out


def curve_trend(curve: dict | None, metric: str, last: int = TREND_POINTS) -> str:
    """Whether ``metric`` still moves over the curve's last ``last`` points: Spearman's rank correlation
    with the step and its two-sided p-value.

    Why: the issue closes a missed target either by meeting it or by showing that the design has
    plateaued on it. A miss that still rises is a matter of more of the same training; one with no
    rank trend over the last tens of millions of tokens is not, whatever the per-point noise.
    """
    points = [p for p in (curve or {}).get("points", []) if p["metrics"].get(metric) is not None][-last:]
    if len(points) < 5:
        return ""
    values = [p["metrics"][metric] for p in points]
    span = f"{len(points)} snapshots, {(points[-1]['tokens_seen'] - points[0]['tokens_seen']) / 1e6:.0f} M tokens"
    if len(set(values)) == 1:
        return f"constant ({span})"
    from scipy.stats import spearmanr

    rho, pval = spearmanr([p["step"] for p in points], values)
    better = -rho if metric.endswith(" mae") else rho
    word = "no trend" if pval >= 0.05 else ("improving" if better > 0 else "worsening")
    p_text = "< 0.001" if pval < 0.001 else f"{pval:.2g}"
    return f"{word} (Spearman {rho:+.2f}, p {p_text}; {span})"


def _value(m: dict, key: str) -> str:
    return f"{m[key]:.3f}" + interval_text(m.get(f"{key}_ci"))


def _verdict(m: dict, key: str, threshold: float) -> str:
    """'yes' / 'no' on the point estimate, saying when the threshold lies inside the interval."""
    ci = m.get(f"{key}_ci")
    verdict = "yes" if m[key] > threshold else "no"
    return verdict + (" (threshold inside the interval)" if ci and ci[0] <= threshold <= ci[1] else "")


def curve_table(curve: dict) -> list[str]:
    pts = curve["points"]
    names = sorted({k for p in pts for k in p["metrics"]})
    lines = ["| metric | " + " | ".join(f"step {p['step']} ({p['tokens_seen'] / 1e6:.1f}M tok)" for p in pts) + " |", "| --- |" + " --- |" * len(pts)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(_fmt(p["metrics"].get(n)) for p in pts) + " |")
    return lines


def _hardware(state: dict, cfg: dict) -> str:
    device = state.get("device", "cpu")
    if device != "cpu":
        return f"one {device} GPU with bf16 autocast (lent for minutes; `scripts/gpu_train.py` filled the lease)"
    world, threads = int(state.get("world", 1)), int(cfg.get("threads", 1))
    per = "one thread" if threads == 1 else f"{threads} threads"
    where = f"one CPU process with {per}" if world == 1 else f"{world} CPU processes of {per} each (torchrun DDP on gloo)"
    bf16 = " with bf16 autocast" if state.get("bf16") else " in fp32"
    return f"{where}{bf16} (AMD EPYC; development work shared the machine)"


def _config_file(cfg: dict) -> str:
    """The repo config whose ``out`` is this run's folder (the card names the command that made it)."""
    for f in sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.toml")):
        if f'out = "{cfg.get("out")}"' in f.read_text():
            return f"configs/{f.name}"
    return "the run's train_config.json"


def run_state(run: Path, log: list[dict] | None = None) -> dict:
    """The run's last state: the log is written every log_every steps, the checkpoint knows the exact last step."""
    ck = run / "checkpoint"
    state = dict(log[-1]) if log else json.loads((run / "train_log.jsonl").read_text().splitlines()[-1])
    if (ck / "trainer_state.pt").exists():
        import torch

        saved = torch.load(ck / "trainer_state.pt", weights_only=True)
    elif (ck / "run_summary.json").exists():  # what scripts/gpu_train.py brings back (no optimizer state)
        saved = json.loads((ck / "run_summary.json").read_text())
        state.setdefault("device", saved.get("device", "cpu"))
    else:
        return state
    state.update(step=int(saved["step"]), tokens_seen=int(saved["tokens_seen"]), minutes=float(saved["elapsed"]) / 60)
    return state


def _classification_only(cfg: dict) -> bool:
    """Whether a stage's task weights sampled classification questions only (every task without labels at 0)."""
    from .registry import TASKS

    weights = cfg.get("task_weights") or {}
    return all(weights.get(key, 1.0) == 0 for key, task in TASKS.items() if not task.labels)


def run_stages(run: Path, model_cfg: dict | None = None, history: list[dict] | None = None) -> list[dict]:
    """The training stages behind a run, oldest first. A run started ``init_from`` another run's
    checkpoint continues it, so the compute, loss curve and snapshot curve of the model include both.
    A stage whose run folder has no log (trained on another machine, or long ago) is taken from
    ``history``: the stages an earlier ``genomicllm card`` recorded in the model folder. A head refit
    that kept blocks from another run (``head_fit_keep``, head_keep.py) continues that run: its kept
    questions are that run's fits, over the same language model."""
    stages, seen = [], set()
    recorded = {Path(st["out"]): st for st in history or []}
    while run is not None and run.resolve() not in seen:
        seen.add(run.resolve())
        if not (run / "train_log.jsonl").exists():
            if run not in recorded:
                raise InputError(f"{run}/train_log.jsonl not found and no earlier card recorded that stage")
            stages.insert(0, recorded[run])
            cfg = recorded[run]["cfg"]
        else:
            cfg_file = run / "checkpoint" / "train_config.json"
            cfg = json.loads(cfg_file.read_text()) if cfg_file.exists() else (model_cfg or {})
            curve_file = run / "snapshot_curve.json"
            log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
            stages.insert(
                0,
                {
                    "out": cfg.get("out", str(run)),
                    "cfg": cfg,
                    "config_file": _config_file(cfg),
                    "state": run_state(run, log),
                    "log": log,
                    "curve": json.loads(curve_file.read_text()) if curve_file.exists() else None,
                },
            )
        source = cfg.get("head_fit_keep") or cfg.get("init_from")
        parent = Path(source) if source else None
        run = parent.parent if parent is not None and parent.name == "checkpoint" else parent
        model_cfg = None
    return stages


def history_record(stages: list[dict]) -> dict:
    """What the model folder keeps of its stages, so a later stage's card can still show them when
    the run folders are gone (they are not committed): config, final state, loss log, dev curve."""
    keep = ("step", "tokens_seen", "loss", "smoothed")
    return {"stages": [{**st, "log": [{k: r[k] for k in keep if k in r} for r in st["log"]]} for st in stages]}


def _joined(stages: list[dict]):
    """Loss log and snapshot curve of all stages on one axis of steps and tokens."""
    log, points, step0, tok0, limit = [], [], 0, 0, None
    for st in stages:
        log += [{**r, "step": r["step"] + step0, "tokens_seen": r["tokens_seen"] + tok0} for r in st["log"]]
        if st["curve"]:
            limit = st["curve"]["limit"]
            points += [{**p, "step": p["step"] + step0, "tokens_seen": p["tokens_seen"] + tok0} for p in st["curve"]["points"]]
        step0 += st["state"]["step"]
        tok0 += st["state"]["tokens_seen"]
    return log, ({"limit": limit, "points": distinct_points(points)} if points else None)


def _compute_lines(stages: list[dict], model_cfg: dict) -> list[str]:
    lines = []
    for i, st in enumerate(stages):
        cfg, state = st["cfg"] or model_cfg, st["state"]
        head = "- "
        if len(stages) > 1:
            head = (
                f"- Stage {i + 1} (`{st['config_file']}`"
                + (", from the previous stage's weights, fresh optimizer" if cfg.get("init_from") else "")
                + "): "
            )
        if cfg.get("method") == "cached_head" and cfg.get("head_fit_solver") == "convex":
            fitted = cfg.get("fitted", {})
            blocks = fitted.get("blocks", {})
            thirds = sorted(b for b, c in blocks.items() if c.get("part", "").split("+")[0] == "positional")
            lines.append(
                head + f'the per-question composition head refitted (`method = "cached_head"`, `head_fit_solver = "convex"`, '
                f"`genomicllm_kernel/head_convex.py`) on the previous stage's frozen `<ans>` states of {fitted.get('examples', 0):,} "
                f"classification training examples ({state['tokens_seen'] / 1e6:.2f} M tokens, one forward pass each): per question, an "
                f"L2 logistic regression on its standardised {'/'.join(str(k) for k in cfg.get('composition', []))}-mer frequencies"
                + (
                    f" and the {'/'.join(str(k) for k in cfg.get('composition_bin_ks', []))}-mers of each of {cfg.get('composition_bins')} parts of the sequence"
                    if cfg.get("composition_bins")
                    else ""
                )
                + f" with the frozen model's label logits as offset, solved to convergence; the ridge (from {cfg.get('head_fit_ridges')})"
                + (" and whether the question reads the parts" if cfg.get("composition_bins") else "")
                + " chosen by the loss on a held-out tenth of its training examples, then refitted on all of them and written into the "
                f"rank-{cfg.get('composition_head_rank')} head exactly; {state['minutes']:.1f} minutes on {_hardware(state, cfg)}. "
                + (
                    f"The parts were kept for {len(thirds)} of {len(blocks)} questions ({', '.join(f'`{b}`' for b in thirds)}). "
                    if cfg.get("composition_bins")
                    else ""
                )
                + _rows_sentence(cfg)
                + _kept_sentence(cfg, blocks)
                + _phase_sentence(cfg, blocks)
                + "Every other weight stayed the previous stage's, bit for bit."
            )
            continue
        if cfg.get("method") == "cached_head":
            fitted = cfg.get("fitted", {})
            lines.append(
                head + f'the per-question composition head refitted (`method = "cached_head"`, `genomicllm_kernel/head_fit.py`) '
                f"on the previous stage's frozen `<ans>` states of {fitted.get('examples', 0):,} classification training examples "
                f"({state['tokens_seen'] / 1e6:.2f} M tokens, one forward pass each), over "
                f"{'/'.join(str(k) for k in cfg.get('composition', []))}-mers at rank {cfg.get('composition_head_rank')}: "
                f"AdamW (lr {cfg.get('lr')}, weight decay {cfg.get('weight_decay')}), epoch {fitted.get('best_epoch')} kept "
                f"(lowest loss on a held-out tenth of those examples), {state['minutes']:.1f} minutes on {_hardware(state, cfg)}. "
                "Every other weight stayed the previous stage's, bit for bit."
            )
            continue
        stopped = cfg.get("max_steps") and state["step"] < cfg["max_steps"] - cfg.get("log_every", 10)
        lines.append(
            head + f"{state['step']} optimizer steps, {state['tokens_seen'] / 1e6:.2f} M tokens seen (prompt + answer, padding "
            f"excluded), {state['minutes']:.1f} minutes of training on {_hardware(state, cfg)}."
            + (
                f" The run was stopped there, before `max_steps` {cfg['max_steps']} (so the learning rate had not finished "
                f"its cosine decay); the config's `stop_at_step = {state['step']}` makes `scripts/release_model.sh` stop there too."
                if stopped
                else ""
            )
            + (
                f" Only the weights named {', '.join(f'`{t}*`' for t in cfg['trainable'])} trained (`trainable`); every other "
                "weight stayed the previous stage's, bit for bit"
                + (", and only classification questions were sampled." if _classification_only(cfg) else ".")
                if cfg.get("trainable")
                else ""
            )
        )
        lines.append(
            f"  Batch {cfg.get('batch_size')} per process{_global_batch(cfg, state)}, AdamW (weight decay {cfg.get('weight_decay')}), "
            f"lr {cfg.get('lr')} with warm-up and cosine decay, "
            + (
                f"length curriculum from {cfg.get('curriculum_start_tokens')} to {cfg.get('max_train_tokens')} tokens over "
                f"{cfg.get('curriculum_steps')} steps"
                if cfg.get("curriculum_start_tokens") != cfg.get("max_train_tokens")
                else f"examples up to {cfg.get('max_train_tokens')} tokens from the start (no length curriculum)"
            )
            + "; task weights in the config. "
            f"Final throughput {state['tokens_per_s']:.0f} tokens/s."
            + (
                f" Classification label tokens counted {cfg.get('label_loss_weight')}x in the loss from step "
                f"{cfg.get('label_loss_from_step', 0)} (`label_loss_weight`), so the logged loss changes scale there."
                if cfg.get("label_loss_weight", 1.0) != 1.0
                else ""
            )
            + (
                f" Reading comprehension's `<item:k>` answer tokens counted {cfg.get('pointer_loss_weight')}x (`pointer_loss_weight`)."
                if cfg.get("pointer_loss_weight", 1.0) != 1.0
                else ""
            )
        )
    recovered = [i + 1 for i, st in enumerate(stages) if st.get("recovered")]
    if recovered:
        which = "Stage" + ("s " if len(recovered) > 1 else " ") + ", ".join(map(str, recovered))
        lines.append(f"- {which}: the record was {stages[recovered[0] - 1]['recovered']}.")
    if len(stages) > 1:
        lines.append(
            f"- In all: {sum(st['state']['step'] for st in stages)} steps, "
            f"{sum(st['state']['tokens_seen'] for st in stages) / 1e6:.1f} M tokens, "
            f"{sum(st['state']['minutes'] for st in stages):.1f} minutes of training."
        )
    return lines


def _model_config(model: Path) -> dict:
    """The model folder's config.json ({} when absent or unreadable)."""
    try:
        return json.loads((Path(model) / "config.json").read_text())
    except (OSError, ValueError):
        return {}


def _architecture(model: Path) -> str:
    return (_model_config(model).get("architectures") or ["LlamaForCausalLM"])[0]


def _global_batch(cfg: dict, state: dict) -> str:
    world = int(state.get("world", 1))
    return f" ({world * int(cfg.get('batch_size') or 0)} per step)" if world > 1 else ""


def _fmt(v):
    return "" if v is None else f"{v:.3f}"


def same_rows_section(model: Path, evals: dict) -> list[str]:
    """The model against a k-mer + LR baseline fitted on the same task's training rows and scored on
    the very rows the model is scored on (``scripts/kmer_baseline.py``), every classification group."""
    from .baselines import SAME_ROWS_FILE, load_same_rows_baseline

    rows = []
    for split in ("dev", "test"):
        base = load_same_rows_baseline(model, split, evals.get(split, {}))
        for key, m in evals.get(split, {}).get("groups", {}).items():
            b = base.get(key)
            if b is None or "mcc" not in m:
                continue
            gap = m["mcc"] - b["mcc"]
            rows.append(
                f"| {split} | {key.replace(' | ', ' / ')} | {m['n']} | {m['mcc']:.3f} | {b['mcc']:.3f} (C {b['C']:g}, {b['train_rows']:,} rows) | {gap:+.3f} | {'above' if gap > 0 else 'NOT above'} |"
            )
    if not rows:
        return []
    return [
        "",
        "## Against a k-mer baseline on the same rows",
        "",
        f"A k-mer (3-6) frequency + L2 logistic regression per task and source, fitted on that group's training rows of the corpus "
        f"(C by 3-fold cross-validation on those rows) and scored on exactly the rows above (`{SAME_ROWS_FILE}`, "
        "`python scripts/kmer_baseline.py`). It knows the source of each row, which the model's question does not say "
        "(for example EPDnew non-TATA and GUE prom_300 windows share the question `proximal promoter`).",
        "",
        "| split | task / group | n | model MCC | baseline MCC | model - baseline | |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ]


def _model_shape(model: Path, cfg: dict) -> dict:
    """Hidden size, layers, heads, FFN and context from the model's config.json (the train config's otherwise)."""
    fallback = {
        "hidden_size": cfg.get("hidden"),
        "num_hidden_layers": cfg.get("layers"),
        "num_attention_heads": cfg.get("heads"),
        "intermediate_size": cfg.get("ffn"),
        "max_position_embeddings": cfg.get("context"),
    }
    try:
        found = json.loads((model / "config.json").read_text())
    except (OSError, ValueError):
        return fallback
    return {k: found.get(k, v) for k, v in fallback.items()}


def write_card(model: Path, run: Path | None, data: Path, out: Path | None = None) -> Path:
    """``run`` None: the run folder the model's ``train_config.json`` names (``out``)."""
    model, data = Path(model), Path(data)
    try:
        cfg = json.loads((model / "train_config.json").read_text()) if (model / "train_config.json").exists() else {}
    except ValueError:
        raise InputError(f"{model}/train_config.json is not valid JSON") from None
    if not run and "out" not in cfg:
        raise InputError(f"{model}/train_config.json does not name the training run; pass --run RUN_FOLDER")
    run = Path(run or cfg["out"])
    hist_file = model / HISTORY_FILE
    history = json.loads(hist_file.read_text())["stages"] if hist_file.exists() else None
    stages = run_stages(run, cfg, history)
    hist_file.write_text(json.dumps(history_record(stages), separators=(",", ":")))
    log, curve = _joined(stages)
    evals = {s: json.loads((model / f"eval_{s}.json").read_text()) for s in ("dev", "test", "dev_int8") if (model / f"eval_{s}.json").exists()}
    (model / "learning_curve.svg").write_text(learning_curve_svg(log))
    params = count_parameters(model)
    # the shape of the weights themselves: a later stage's train_config (a head refit) need not repeat it
    shape = _model_shape(model, cfg)
    L = [
        "# GenomicLLM default model",
        "",
        f"A small causal language model (transformers `{_architecture(model)}`) over the hybrid tokenizer",
        "(3-mer DNA tokens; DNA, protein and GC-count-scratchpad answers aligned one token per input chunk; single-token",
        "labels; see `genomicllm_kernel/codec.py`), trained",
        "on these machines from the corpus that `genomicllm data build` writes. Everything below was produced by commands:",
        ", then ".join(f"`genomicllm train --config {st['config_file']}`" for st in stages)
        + ", `genomicllm export`, `genomicllm evaluate`, `genomicllm card` (all in `scripts/release_model.sh`).",
        "",
        "## Model",
        "",
        f"- Shape: hidden {shape['hidden_size']}, {shape['num_hidden_layers']} layers, {shape['num_attention_heads']} heads, "
        f"FFN {shape['intermediate_size']}, context {shape['max_position_embeddings']} tokens"
        + (f"; {params / 1e6:.2f} M parameters (tied embeddings)." if params else "."),
        "- Files: `model.safetensors`, `config.json`, `vocab.json` + tokenizer config; `onnx/model.onnx` (Optimum export, last-position logits) and `onnx/model_int8.onnx`.",
        "",
        "## Compute",
        "",
        *_compute_lines(stages, cfg),
        "",
        "## Learning curve",
        "",
        "![learning curve](learning_curve.svg)",
        "",
        "| tokens seen (M) | step | loss (mean of the last 20 log points) |",
        "| --- | --- | --- |",
    ]
    smooth = smoothed_loss(log)
    for i in range(0, len(log), max(1, len(log) // 12)):
        L.append(f"| {log[i]['tokens_seen'] / 1e6:.2f} | {log[i]['step']} | {smooth[i]:.3f} |")
    if curve:
        L += [
            "",
            "## Dev metrics along training",
            "",
            f"Weight snapshots evaluated on the leak-filtered dev split (at most {curve['limit']} examples per task and source, "
            "PyTorch backend) by `python scripts/snapshot_curve.py`: where a row stops rising, more of the same training "
            "will not close that target.",
            "",
        ] + curve_table(curve)
    L += ["", "## Data", ""]
    card = data / "DATA_CARD.md"
    if card.exists():
        text = card.read_text()
        table = text.split("## Examples per task and split", 1)[1].split("##", 1)[0].strip()
        # the composition input arrived with the rebuilt corpus (Genomic Benchmarks labels, prom_300 rows, generated item
        # names, every gene): a model none of whose stages has it was trained on the build before
        earlier = not any(st.get("cfg", {}).get("composition") for st in stages)
        # a stage that trains only some weights (trainable) over a frozen model leaves the rest from before
        frozen_over_earlier = not earlier and all(st.get("cfg", {}).get("trainable") for st in stages if st.get("cfg", {}).get("composition"))
        predate = (
            "trained on enhancer and regulatory labels derived from ATAC-seq peaks, without prom_300 training rows, generated "
            "reading-comprehension item names or every gene's description, and never read the `benchmark = GUE` item that "
            "the prom_300 rows now carry (docs/experiments.md)"
        )
        if earlier:
            labels = f"This model's training stages predate the current corpus build: they {predate}. The evaluation below scores it on the current corpus."
        elif frozen_over_earlier:
            labels = (
                f"The language model's weights come from stages that predate the current corpus build: they {predate}. "
                "The last stage trained only the composition weights (the k-mer input and the per-question head), with every "
                "other weight frozen, on the current corpus's classification questions, whose enhancer, open chromatin and "
                "regulatory labels come from Genomic Benchmarks records lifted to GRCh37 (DATA_CARD.md); so every answer that "
                "is not a classification is the earlier stages' own."
            )
        else:
            labels = "Enhancer, open chromatin and regulatory labels come from Genomic Benchmarks records lifted to GRCh37 (DATA_CARD.md); open chromatin also from ATAC-seq peaks."
        L += [
            "Examples per task and split of the corpus the evaluation below uses (its DATA_CARD.md):",
            "",
            table,
            "",
            labels,
            "Test = augustus-doc hg19 chr3/chr4/chr5 slices + hg38 alpha-globin locus (never trained on); dev = held-out 1 Mb loci of chrX/chr22 and GUE dev splits.",
        ]
    for split, title in (("dev", "Evaluation: dev split (leak-filtered)"), ("test", "Evaluation: test split (held-out regions)")):
        if split in evals:
            L += ["", f"## {title}", "", to_markdown(evals[split])]
    if "dev" in evals:
        L += [
            "",
            "## Against the targets",
            "",
            "Values with their 95% bootstrap interval over the evaluated examples; a miss whose interval "
            "contains the threshold is within sampling noise of it. The trend is that of the target's metric along the dev curve "
            f"above (its last {TREND_POINTS} points; Spearman rank correlation with the step, no trend where p >= 0.05). "
            "The data README's GUE baselines were scored on every dev row, leaked ones included: the model and the same baseline "
            "on those rows are in docs/stage22d/gue_whole_dev.md (`python scripts/gue_whole_dev.py`).",
            "",
            "| target | value | met | trend along training |",
            "| --- | --- | --- | --- |",
        ]
        tasks = evals["dev"]["tasks"]
        groups = evals["dev"]["groups"]
        for t, m in tasks.items():
            L.append(f"| {t}: valid format 100% | {m['valid_format']:.3f} | {'yes' if m['valid_format'] == 1.0 else 'no'} | |")
        from .baselines import KMER_LR_DEV_MCC, load_same_rows_baseline

        same_rows = load_same_rows_baseline(model, "dev", evals["dev"])
        for key, base in KMER_LR_DEV_MCC.items():
            name, g = next(((k, m) for k, m in groups.items() if k.endswith(f"| {key}")), (None, None))
            if g and "mcc" in g:
                L.append(
                    f"| {key} MCC > k-mer+LR baseline {base:.3f} (data README: whole dev split, leaked rows included) | {_value(g, 'mcc')} "
                    f"| {_verdict(g, 'mcc', base)} | {curve_trend(curve, f'{key} mcc')} |"
                )
                same = same_rows.get(name, {}).get("mcc")
                if same is not None:
                    L.append(
                        f"| {key} MCC > the same k-mer+LR baseline on these leak-filtered rows, {same:.3f} | {_value(g, 'mcc')} "
                        f"| {_verdict(g, 'mcc', same)} | |"
                    )
        for (t, key), (metric, bar) in GB_TARGETS.items():
            g = groups.get(f"{t} | {key}")
            if g and metric in g:
                L.append(f"| {t} {key} {metric.replace('_', '-')} >= {bar} | {_value(g, metric)} | {'yes' if g[metric] >= bar else 'no'} | |")
        for key, label in (("reading_comprehension | generated item names", "unseen item names"), ("gene_description | known genes", "known genes")):
            g = groups.get(key)
            if g and "exact_match" in g:
                bar = 0.99 if "reading" in key else 0.6
                L.append(
                    f"| {key.split(' | ')[0]} ({label}) exact match >= {bar} | {_value(g, 'exact_match')} | {'yes' if g['exact_match'] >= bar else 'no'} | |"
                )
        for t in ("gc_content", "reverse_complement", "nt2aa"):
            whole = tasks.get(t, {}).get("exact_by_length_whole", {})
            for bucket, v in tasks.get(t, {}).get("exact_by_length", {}).items():
                read = " (long inputs read in pieces)" if bucket in whole else ""
                L.append(
                    f"| {t} exact match >= 0.99 at {bucket} nt{read} | {v['exact_match']:.3f} (n={v['n']}) | {'yes' if v['exact_match'] >= 0.99 else 'no'} | |"
                )
                if bucket in whole:
                    w = whole[bucket]
                    L.append(f"| {t} at {bucket} nt, the same rows read whole (the model alone) | {w['exact_match']:.3f} (n={w['n']}) | reported | |")
        for t in ("splice_site", "promoter", "orf", "sequence_direction", "gene_biotype"):
            g = next((m for k, m in groups.items() if k.startswith(f"{t} | annotation") and "[" not in k), None)
            if g:
                trend = curve_trend(curve, f"{t} (annotation) mcc" if t in tasks_fed_by_gue(groups) else f"{t} mcc")
                L.append(f"| {t} (annotation-derived) MCC > 0.5 | {_value(g, 'mcc')} | {_verdict(g, 'mcc', 0.5)} | {trend} |")
        for t, (k, op, v) in TARGETS.items():
            if t in tasks:
                x = tasks[t][k]
                ok = x <= v if op == "<=" else x >= v
                L.append(f"| {t} {k} {op} {v} | {_value(tasks[t], k)} | {'yes' if ok else 'no'} | {curve_trend(curve, f'{t} {k}')} |")
        for t in ("reverse_complement", "nt2aa"):
            by = tasks.get(t, {}).get("exact_by_length", {})
            short = [v for b, v in by.items() if b in ("1-32", "33-64")]
            if short:
                n = sum(v["n"] for v in short)
                em = sum(v["exact_match"] * v["n"] for v in short) / n
                L.append(f"| {t} exact match >= 0.9 up to 64 nt | {em:.3f} (n={n}) | {'yes' if em >= 0.9 else 'no'} | |")
        if "gene_description" in tasks:
            m = tasks["gene_description"]
            trend = curve_trend(curve, "gene_description rouge_l")
            L.append(
                f"| gene description BLEU-4 / ROUGE-L vs published 0.588 / 0.705 | {m['bleu4']:.3f} / {m['rouge_l']:.3f} | reported "
                f"| {'ROUGE-L ' + trend if trend else ''} |"
            )
    L += same_rows_section(model, evals)
    if "dev_int8" in evals and "dev" in evals:
        L += [
            "",
            "## int8 (ONNX Runtime dynamic quantization) vs fp32, dev split",
            "",
            "MatMul weights per channel in 7 bits (`reduce_range`), so x86 CPUs without VNNI cannot saturate "
            "their int16 pair sums and every CPU gives the same int8 answers (with 8-bit weights, 5 of 31 golden "
            "answers changed between an AMD EPYC and a Xeon; `export/genomicllm_export/onnx_export.py`). "
            "Questions whose head was fitted without the language model's logits (offset x0) are answered by the head alone in "
            "float32 on every backend (`genomicllm_kernel/head_only.py`), so int8 changes only the other questions' answers.",
            "",
            "| task | metric | fp32 | int8 |",
            "| --- | --- | --- | --- |",
        ]
        for t, m in evals["dev"]["tasks"].items():
            q = evals["dev_int8"]["tasks"].get(t, {})
            for k in ("mcc", "mae", "exact_match", "rouge_l"):
                if k in m and k in q:
                    L.append(f"| {t} | {k} | {m[k]:.3f} | {q[k]:.3f} |")
                    break
    report = model / "onnx" / "export_report.json"
    if report.exists():
        r = json.loads(report.read_text())
        L += [
            "",
            "## ONNX parity (at export)",
            "",
            f"- fp32: {r['fp32']['identical_answers']}/{r['fp32']['n']} identical greedy answers to PyTorch, max label-probability difference {r['fp32']['max_probability_diff']:.1e}.",
        ]
        if "int8" in r:
            L.append(
                f"- int8: {r['int8']['identical_answers']}/{r['int8']['n']} answers identical to PyTorch fp32, max probability difference {r['int8']['max_probability_diff']:.1e}."
            )
    L += [
        "",
        "## Known limits",
        "",
        f"- Small by design ({params / 1e6 if params else 0:.1f} M parameters, so that it answers fast on a laptop CPU): treat classifications as a screen. Reverse/complement, protein and GC inputs were trained up to the context limit; reverse / complement inputs longer than 510 nt are read in pieces (the model answers each, the engine joins them; the length curve above shows the model reading them whole as well); a classification input longer than its task's training data (100 nt for TF sites, 300 nt for promoters, 400 nt for splice sites, about 800 nt for enhancers and regulatory elements) is an extrapolation: window it at that length.",
        "- GC content is answered through a scratchpad: the model emits (GC, known-base) counts per 3-mer chunk and the decoder adds and divides; "
        "each chunk's known-base count is the input's (constrained decoding), and a GC question reads S as C and W as A, so S counts as GC and W as AT as the exact check does. The scratchpad spends one token per 3 nt, so the GC input limit is about half the classification limit.",
        "- Gene descriptions: the model's own answer is often wrong, above all for genes it never saw; every answer that names a known symbol or id carries "
        "the record's full name from the shipped gene table (gene_table.tsv.gz, org.Hs.eg.db) and agree / disagree. Reading comprehension and the exact tasks are checked against exact computations in every answer.",
        "- Classification inputs get the sequence's 4-mer / 5-mer composition as an extra model input (docs/experiments.md): a model folder without it (config model_type llama) still loads and answers."
        + (
            " Each classification question (and each GUE TF set) has its own block of that input and a head that adds its projection to the final hidden state at the answer, a k-mer logistic regression per question beside the language model's reading."
            if _model_config(model).get("composition_head_rank")
            else ""
        ),
    ]
    out = out or model / "MODEL_CARD.md"
    out.write_text("\n".join(L) + "\n")
    return out


def _rows_sentence(cfg: dict) -> str:
    """How many training examples each question's fit read (``head_fit_examples``, per block in
    ``head_fit_examples_by_block``): a reader comparing two heads needs to know they saw different rows."""
    cap, by_block = cfg.get("head_fit_examples"), cfg.get("head_fit_examples_by_block") or {}
    if not cap:
        return ""
    out = f"Each question read at most {int(cap):,} of its training examples (a seeded draw)"
    if by_block:
        caps = sorted({int(v) for v in by_block.values()})
        if len(caps) == 1:
            out += f", and at most {caps[0]:,} (all it has, where fewer) for " + ", ".join(f"`{b}`" for b in by_block)
        else:
            out += ", and " + ", ".join(f"`{b}` at most {int(v):,}" for b, v in by_block.items())
    return out + ". "


def _kept_sentence(cfg: dict, blocks: dict) -> str:
    """Which questions a partial refit (``head_fit_blocks``, head_keep.py) fitted, and where the rest came from."""
    if not cfg.get("head_fit_blocks"):
        return ""
    kept = sorted(b for b, c in blocks.items() if c.get("kept_from"))
    return (
        f"Only {', '.join(f'`{b}`' for b in cfg['head_fit_blocks'])} were fitted (`head_fit_blocks`; the examples above are theirs); "
        f"the other {len(kept)} questions' heads (weights and choices) were copied from `{cfg.get('head_fit_keep')}` (`head_fit_keep`, "
        "head_keep.py), which was fitted over the same language model: each question's fit reads its own rows only, so they answer as there. "
    )


def _phase_sentence(cfg: dict, blocks: dict) -> str:
    """What a head fit did with the reading frames, the head-fit rows (stage 12), their held-out
    draw and the heads shared over labels (stage 13), or nothing."""
    out = ""
    if cfg.get("composition_phase_ks"):
        asked = cfg.get("composition_phase_blocks", [])
        kept = [b for b in asked if blocks.get(b, {}).get("reads_frames", blocks.get(b, {}).get("part", "").split("+")[0] in ("phase", "positional"))]
        out += (
            f"The {'/'.join(str(k) for k in cfg['composition_phase_ks'])}-mers of each reading frame were offered to "
            f"{', '.join(f'`{b}`' for b in asked)} and kept for {', '.join(f'`{b}`' for b in kept) or 'none'}. "
        )
    scaled = {b: c["offset_scale"] for b, c in blocks.items() if c.get("offset_scale", 1.0) != 1.0}
    if scaled:
        out += (
            f"The frozen model's label logits were scaled per question (`composition_offset_scale`, tried at {cfg.get('head_fit_offset_scales')}): "
            + ", ".join(f"`{b}` x{v:g}" for b, v in sorted(scaled.items()))
            + ". "
        )
    if cfg.get("head_fit_offset_fixed"):
        out += (
            "These blocks read the frozen model's label logits at a factor set in the config, not chosen by a held-out loss "
            "(their rows were taught to the language model, so no held-out rows could weigh them): "
            + ", ".join(f"`{b}` x{float(v):g}" for b, v in sorted(cfg["head_fit_offset_fixed"].items()))
            + ". "
        )
    if cfg.get("head_fit_offset_choice"):
        out += (
            "These blocks' rows were taught to the language model, so their held-out loss favours its logits; each was fitted with them "
            "(x1) and without them (x0) on the same held-out rows, and x0 kept only where its loss was lower anyway: "
            + ", ".join(f"`{b}` x{float(blocks.get(b, {}).get('offset_scale', 1.0)):g}" for b in sorted(cfg["head_fit_offset_choice"]))
            + ". "
        )
    if cfg.get("head_fit_split_tasks"):
        out += (
            f"The head rows of {', '.join(f'`{t}`' for t in cfg['head_fit_split_tasks'])} came from `headfit.jsonl` (tiles of "
            "training transcripts"
            + (", and for `gene_biotype` windows of training exons," if "gene_biotype" in cfg["head_fit_split_tasks"] else "")
            + " that share no 24-mer with a training row of their question; no language-model stage reads them), not train.jsonl"
            + (
                ", and their held-out tenth was drawn by region (a transcript"
                + (", or a gene for `gene_biotype`" if "gene_biotype" in cfg["head_fit_split_tasks"] else "")
                + ") (`head_fit_hold_out_regions`). "
                if cfg.get("head_fit_hold_out_regions")
                else ". "
            )
        )
    shared = {b: c["sharing"] for b, c in blocks.items() if c.get("sharing") and c["sharing"] != "strand"}
    if cfg.get("head_fit_symmetric"):
        out += (
            "Questions whose labels are one reading of the sequence under different views were also offered a head shared over "
            "their labels (`head_fit_symmetric`, head_symmetry.py), chosen where its held-out loss was lower: "
            + (", ".join(f"`{b}` ({s})" for b, s in sorted(shared.items())) or "none")
            + ". "
        )
    if cfg.get("head_fit_strand_invariant"):
        folded = sorted(b for b, c in blocks.items() if c.get("sharing") == "strand")
        out += (
            "Strand-symmetric questions were also offered a head on features averaged with their reverse complement's "
            f"(`head_fit_strand_invariant`), chosen where its held-out loss was lower: {', '.join(f'`{b}`' for b in folded) or 'none'}. "
        )
    if cfg.get("composition_motifs"):
        asked = cfg.get("composition_motif_blocks", [])
        kept = [b for b in asked if blocks.get(b, {}).get("part", "").endswith("+motifs")]
        out += (
            f"Each sequence's best log-odds score against every {cfg['composition_motifs']} CORE vertebrate matrix (JASPAR, "
            f"`genomicllm_kernel/motifs.py`; the matrices travel in `config.json`) was offered to {len(asked)} questions and kept, "
            f"by held-out loss, for {', '.join(f'`{b}`' for b in kept) or 'none'}. "
        )
    if cfg.get("composition_likelihoods"):
        asked = cfg.get("composition_likelihood_blocks", [])
        kept = [b for b in asked if "likelihood" in blocks.get(b, {}).get("part", "")]
        out += (
            "The log-likelihoods of two Markov chains counted on the training transcripts by `genomicllm data build` "
            "(`sequence_likelihoods.json`, likelihoods.py: a three-periodic coding chain read in each frame, an mRNA chain read "
            f"forwards and backwards; they travel in `config.json`) were offered to the shared heads of {', '.join(f'`{b}`' for b in asked)} "
            f"and kept, by held-out loss, for {', '.join(f'`{b}`' for b in kept) or 'none'}. "
        )
    return out
