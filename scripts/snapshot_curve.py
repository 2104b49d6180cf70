"""Dev metrics along a training run: evaluate the run's weight snapshots and write one table.

    python scripts/snapshot_curve.py --run runs/gpu --data data/corpus [--limit 60] [--points 6]

Why: the loss curve mixes 14 tasks, so it cannot say which task is still improving and which has
plateaued. This evaluates up to ``--points`` snapshots (``snapshot_every`` in the training config;
evenly spaced, always the last; the run's checkpoint counts as one) with ``genomicllm evaluate``'s code on the same leak-filtered dev
sample, and writes ``<run>/snapshot_curve.json`` for ``genomicllm card``. Snapshots already in the
JSON are not evaluated again, so it can run alongside training.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genomicllm_kernel.evaluation import evaluate  # noqa: E402
from genomicllm_kernel.model_card import SAME_WEIGHTS_STEPS, headline_metrics, run_state  # noqa: E402


def pick(snapshots: list[Path], points: int) -> list[Path]:
    if len(snapshots) <= points:
        return snapshots
    idx = {round(i * (len(snapshots) - 1) / (points - 1)) for i in range(points)}
    return [snapshots[i] for i in sorted(idx)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/gpu")
    ap.add_argument("--data", default="data/corpus")
    ap.add_argument("--limit", type=int, default=60, help="examples per task and source")
    ap.add_argument("--points", type=int, default=6)
    ap.add_argument("--steps", type=int, nargs="*", help="evaluate the snapshots nearest these steps instead")
    args = ap.parse_args()
    run = Path(args.run)
    by_step = {int(p.name.split("_")[1]): p for p in (run / "snapshots").glob("step_*")}
    if (run / "checkpoint" / "model.safetensors").exists():  # the run's last weights are its last point
        last = run_state(run)["step"]
        by_step = {s: p for s, p in by_step.items() if last - s >= SAME_WEIGHTS_STEPS}  # nearly the checkpoint
        by_step[last] = run / "checkpoint"
    if not by_step:
        print(f"{run} has no checkpoint or snapshots/step_* folders", file=sys.stderr)
        return 2
    snapshots = [by_step[k] for k in sorted(by_step)]
    out = run / "snapshot_curve.json"
    done = json.loads(out.read_text()) if out.exists() else {"limit": args.limit, "points": []}
    if done.get("limit") != args.limit:
        done = {"limit": args.limit, "points": []}
    seen = {p["step"] for p in done["points"]}
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    chosen = sorted({by_step[min(by_step, key=lambda s: abs(s - t))] for t in args.steps}) if args.steps else pick(snapshots, args.points)
    step_of = {v: k for k, v in by_step.items()}
    for snap in chosen:
        step = step_of[snap]
        if step in seen:
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            res = evaluate(snap, Path(args.data), "dev", limit=args.limit, backend="torch")
        tokens = min(log, key=lambda r: abs(r["step"] - step))["tokens_seen"]
        point = {"step": step, "tokens_seen": tokens, "metrics": headline_metrics(res)}
        done["points"] = sorted(done["points"] + [point], key=lambda p: p["step"])
        out.write_text(json.dumps(done, indent=1))
        print(f"step {step}: {json.dumps(point['metrics'])}", file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
