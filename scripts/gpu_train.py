"""Fill a fixed GPU lease with one complete training run, and pack what comes back.

A lent GPU comes for minutes, so the run's length has to be chosen on the machine: train the warmup
steps (where the learning rate does not depend on ``max_steps``), measure the step time, set
``max_steps`` to fill the remaining time, and resume. The result is exactly the run that
``genomicllm train --config CONFIG`` with that ``max_steps`` gives (the effective config is written to
``train_config.json`` in the checkpoint).

The packed outputs respect the lease's transfer limits (a few files of at most 16 MB): the final
weights as a tar split into parts (fp32, no optimizer state), and weight snapshots in bf16.

    python scripts/gpu_train.py --config configs/gpu.toml --seconds 420 --pack OUTDIR    # on the GPU
    python scripts/gpu_train.py --config configs/gpu.toml --unpack OUTDIR                # here, after
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genomicllm_kernel.training import TrainConfig, train  # noqa: E402

PART_BYTES = 15 * 1024 * 1024


def seconds_per_step(log_path: Path, skip: int) -> float:
    rows = [json.loads(x) for x in log_path.read_text().splitlines() if x.strip()]
    rows = [r for r in rows if r["step"] >= skip] or rows
    first, last = rows[0], rows[-1]
    if last["step"] == first["step"]:
        raise SystemExit("gpu_train: too few logged steps to measure the step time")
    return (last["minutes"] - first["minutes"]) * 60 / (last["step"] - first["step"])


def pack(run: Path, dest: Path, snapshots: int) -> list[Path]:
    """Final checkpoint (minus optimizer state) as tar parts + the last ``snapshots`` snapshots in bf16."""
    import torch
    from safetensors.torch import load_file, save_file

    dest.mkdir(parents=True, exist_ok=True)
    ckpt = run / "checkpoint"
    state = torch.load(ckpt / "trainer_state.pt", weights_only=True)
    summary = {k: state[k] for k in ("step", "tokens_seen", "elapsed")}
    summary["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    (ckpt / "run_summary.json").write_text(json.dumps(summary))
    tar_path = dest / "final.tar"
    with tarfile.open(tar_path, "w") as tar:
        for f in sorted(ckpt.iterdir()):
            if f.name != "trainer_state.pt":
                tar.add(f, arcname=f"checkpoint/{f.name}")
    data = tar_path.read_bytes()
    tar_path.unlink()
    out = []
    for i in range(0, len(data), PART_BYTES):
        part = dest / f"final.tar.part{i // PART_BYTES:02d}"
        part.write_bytes(data[i : i + PART_BYTES])
        out.append(part)
    snaps = [s for s in sorted((run / "snapshots").glob("step_*")) if int(s.name[5:]) < summary["step"]]
    snaps = snaps[:snapshots]  # the evenly spaced ones (max_steps may leave one more just before the end)
    for snap in snaps:
        tensors = {k: v.to(torch.bfloat16).contiguous() for k, v in load_file(snap / "model.safetensors").items()}
        target = dest / f"snapshot_{snap.name}.bf16.safetensors"
        save_file(tensors, target)
        out.append(target)
    return out


def unpack(pack_dir: Path, run: Path) -> list[Path]:
    """The inverse of :func:`pack`, here: ``<run>/checkpoint`` from the tar parts, and each bf16
    snapshot as ``<run>/snapshots/step_N`` (fp32 again, with the checkpoint's config and tokenizer)."""
    import io
    import shutil

    from safetensors.torch import load_file, save_file

    data = b"".join(p.read_bytes() for p in sorted(pack_dir.glob("final.tar.part*")))
    if not data:
        raise SystemExit(f"gpu_train: no final.tar.part* in {pack_dir}")
    run.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(run, filter="data")
    if (pack_dir / "train_log.jsonl").exists():
        shutil.copy(pack_dir / "train_log.jsonl", run / "train_log.jsonl")
    ckpt, made = run / "checkpoint", [run / "checkpoint"]
    for snap in sorted(pack_dir.glob("snapshot_step_*.bf16.safetensors")):
        folder = run / "snapshots" / snap.name.split(".")[0].removeprefix("snapshot_")
        folder.mkdir(parents=True, exist_ok=True)
        for f in ckpt.iterdir():
            if f.name not in ("model.safetensors", "run_summary.json", "train_config.json"):
                shutil.copy(f, folder / f.name)
        save_file({k: v.float().contiguous() for k, v in load_file(snap).items()}, folder / "model.safetensors", metadata={"format": "pt"})
        made.append(folder)
    return made


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/gpu.toml")
    ap.add_argument("--seconds", type=float, default=0.0, help="training time to fill, after the calibration")
    ap.add_argument("--calibrate-steps", type=int, default=200)
    ap.add_argument("--step-time", type=float, help="seconds per step measured by an earlier run: skip the calibration")
    ap.add_argument("--setup-seconds", type=float, default=40.0, help="start-up time to allow for with --step-time")
    ap.add_argument("--margin", type=float, default=1.08, help="step-time safety factor")
    ap.add_argument("--snapshots", type=int, default=2, help="snapshots kept along the run (bf16 in the pack)")
    ap.add_argument("--pack", type=Path, help="write the transfer-sized outputs here")
    ap.add_argument("--unpack", type=Path, metavar="PACKDIR", help="here, after the lease: rebuild the config's run folder from a pack")
    args = ap.parse_args(argv)

    cfg = TrainConfig.load(args.config)
    if args.unpack:
        for f in unpack(args.unpack, Path(cfg.out)):
            print(f"unpacked {f}")
        return 0
    if args.seconds <= 0:
        ap.error("--seconds (the training time to fill) is required, unless --unpack")
    if not args.step_time and args.calibrate_steps >= cfg.warmup_steps:
        raise SystemExit("gpu_train: calibrate within warmup (--calibrate-steps < warmup_steps)")
    run = Path(cfg.out)
    if args.step_time:
        sps, setup, done = args.step_time, args.setup_seconds, 0
    else:
        t0 = time.time()
        train(cfg, stop_at_step=args.calibrate_steps, progress=False)
        sps = seconds_per_step(run / "train_log.jsonl", skip=args.calibrate_steps // 4)
        setup = time.time() - t0 - sps * args.calibrate_steps  # tokenizer + example bank + warm-up
        done = args.calibrate_steps
    steps = int(max(0.0, args.seconds - setup) / (sps * args.margin))
    cfg.max_steps = min(cfg.max_steps, max(cfg.warmup_steps + 1, done + steps))  # the config's value is the cap
    if args.snapshots:
        cfg.snapshot_every = max(1, cfg.max_steps // (args.snapshots + 1))
    print(
        json.dumps({"seconds_per_step": round(sps, 4), "setup_s": round(setup, 1), "max_steps": cfg.max_steps, "snapshot_every": cfg.snapshot_every}),
        flush=True,
    )
    train(cfg, resume=bool(done), max_minutes=(args.seconds + 30) / 60, progress=False)
    if args.pack:
        for f in pack(run, args.pack, args.snapshots):
            print(f"packed {f} ({f.stat().st_size / 1e6:.1f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    from genomicllm_kernel.errors import GenomicLLMError

    try:
        raise SystemExit(main())
    except GenomicLLMError as exc:
        raise SystemExit(f"gpu_train: {exc}") from None
