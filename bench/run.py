"""Benchmarks for the ONNX Runtime backend against the PyTorch reference, measured in one run.

    python bench/run.py --model models/default [--n 10000] [--out bench/RESULTS.md]

Measures, each for ONNX Runtime (fp32 and int8) and PyTorch eager with the same thread count:
cold start (new process to first answer), latency per question for each task (median of 5, warm),
batch classification throughput on GUE-length sequences (70 and 101 nt), generation throughput
(reverse complement of 60-nt sequences), and peak memory of ``genomicllm predict`` streaming a
10,000- and a 100,000-record FASTA (flat memory means streaming works).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genomicllm_export.onnx_export import PARITY_PROMPTS  # noqa: E402
from genomicllm_kernel import api  # noqa: E402
from genomicllm_kernel.grammar import parse_prompt  # noqa: E402

BACKENDS = ("onnx", "onnx-int8", "torch")


def gue_sequences(n: int, rng: random.Random) -> list[str]:
    seqs = []
    gue = ROOT.parent / "shared" / "data" / "gue"
    for name in ("prom_core_all", "tf_0"):
        path = gue / name / "dev.csv.gz"
        if path.exists():
            with gzip.open(path, "rt") as fh:
                next(fh)
                seqs += [line.split(",")[0] for line in fh]
    if not seqs:  # no GUE beside the checkout: random sequences of the same lengths
        seqs = ["".join(rng.choice("ACGT") for _ in range(rng.choice((70, 101)))) for _ in range(2000)]
    return [rng.choice(seqs) for _ in range(n)]


def cold_start(model: str, backend: str, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "genomicllm_kernel.cli", "ask", PARITY_PROMPTS[0], "--model", model, "--backend", backend],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def latency(model: str, backend: str) -> dict[str, float]:
    out = {}
    for prompt in PARITY_PROMPTS:
        p = parse_prompt(prompt)
        api.ask(prompt, model=model, backend=backend)  # warm
        times = []
        for _ in range(5):
            t = time.perf_counter()
            api.ask(prompt, model=model, backend=backend)
            times.append(time.perf_counter() - t)
        out[f"{p.task.id} ({p.question})"] = statistics.median(times) * 1000
    return out


def throughput(model: str, backend: str, prompts: list[str], batch: int) -> float:
    t = time.perf_counter()
    api.ask(prompts, model=model, backend=backend, batch_size=batch)
    return len(prompts) / (time.perf_counter() - t)


def peak_memory(model: str, n: int, tmp: Path, rng: random.Random) -> float:
    fa = tmp / f"in{n}.fa"
    with open(fa, "w") as fh:
        for i, s in enumerate(gue_sequences(n, rng)):
            fh.write(f">r{i}\n{s}\n")
    code = (
        "import sys; from genomicllm_kernel.cli import main; "
        f"rc = main(['predict', '--task', 'promoter', '--question', 'core promoter', '--fasta', {str(fa)!r}, "
        f"'--model', {model!r}, '--format', 'tsv', '--output', {str(tmp / 'out.tsv')!r}, '--batch-size', '64']); "
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]); sys.exit(rc)"
    )
    r = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    lines = sum(1 for _ in open(tmp / "out.tsv"))
    assert lines == n + 1, (lines, n)
    return int(r.stdout.strip().splitlines()[-1]) / 1024


def describe_model(model: str) -> str:
    """Where the model is (relative to the repo when inside it) and its shape, for the results header."""
    path = Path(model).resolve()
    name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    from genomicllm_kernel.model import count_parameters

    try:
        cfg = json.loads((path / "config.json").read_text())
        params = count_parameters(path)
        return f"`{name}` ({cfg['num_hidden_layers']} layers, hidden {cfg['hidden_size']}" + (
            f", {params / 1e6:.2f} M parameters)" if params else ")"
        )
    except (OSError, KeyError, ValueError):
        return f"`{name}`"


def describe_machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, 1 thread per backend"


def forward_gflop(model: str, prompts: list[str]) -> float:
    """Forward FLOPs of a batch-classification pass over ``prompts`` (GFLOP): 2 per non-embedding
    weight and token, causal attention (2 * hidden * T^2 per layer), the last position's logits."""
    from genomicllm_kernel.tokenizer import GenomicLLMTokenizer

    cfg = json.loads((Path(model) / "config.json").read_text())
    h, layers, ffn, vocab = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"], cfg["vocab_size"]
    per_token = 2 * layers * (4 * h * h + 3 * h * ffn)
    tok = GenomicLLMTokenizer.from_pretrained(model)
    total = 0
    for p in prompts:
        t = len(tok.encode_prompt(parse_prompt(p)))
        total += per_token * t + 2 * layers * h * t * t + 2 * vocab * h
    return total / 1e9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "models" / "default"))
    ap.add_argument("--n", type=int, default=10000, help="sequences for batch classification")
    ap.add_argument("--gen", type=int, default=300, help="prompts for generation throughput")
    ap.add_argument("--stream", type=int, nargs=2, default=[10000, 100000], help="FASTA sizes for the memory test")
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    ap.add_argument(
        "--render-only", action="store_true", help="on the machine that measured it: rewrite the markdown (and its headers) from the .json"
    )
    args = ap.parse_args()
    if args.render_only:
        res = json.loads(Path(args.out).with_suffix(".json").read_text())
        res["model"] = describe_model(res["model"].split("`")[1] if "`" in res["model"] else res["model"])
        res["machine"] = describe_machine()
        Path(args.out).with_suffix(".json").write_text(json.dumps(res, indent=1))
        Path(args.out).write_text(to_markdown(res))
        return
    rng = random.Random(0)
    os.environ.setdefault("GENOMICLLM_THREADS", "1")
    res: dict = {
        "model": describe_model(args.model),
        "machine": describe_machine(),
        "cold_start_s": {},
        "latency_ms": {},
        "classification_seq_per_s": {},
        "generation_seq_per_s": {},
    }
    cls_prompts = [f"{s}, core promoter =" for s in gue_sequences(args.n, rng)]
    gen_prompts = [f"{''.join(rng.choice('ACGT') for _ in range(60))}, reverse complementary sequence =" for _ in range(args.gen)]
    for b in BACKENDS:
        print(f"[{b}] cold start", file=sys.stderr)
        res["cold_start_s"][b] = cold_start(args.model, b)
        print(f"[{b}] latency", file=sys.stderr)
        res["latency_ms"][b] = latency(args.model, b)
        print(f"[{b}] classification throughput ({args.n} sequences)", file=sys.stderr)
        res["classification_seq_per_s"][b] = throughput(args.model, b, cls_prompts, 64)
        print(f"[{b}] generation throughput ({args.gen} prompts)", file=sys.stderr)
        res["generation_seq_per_s"][b] = throughput(args.model, b, gen_prompts, 32)
    # Batch classification is compute-bound: how close each backend gets to the CPU's fp32 matmul peak
    # (one thread, as the backends run) says how much any fp32 engine could still gain.
    sys.path.insert(0, str(ROOT / "bench"))
    from train_speed import matmul_peak

    gflop = forward_gflop(args.model, cls_prompts)
    res["classification_gflop_per_s"] = {b: gflop * res["classification_seq_per_s"][b] / len(cls_prompts) for b in BACKENDS}
    res["fp32_matmul_peak_gflop_per_s"] = matmul_peak(1) / 1e9
    with tempfile.TemporaryDirectory() as tmp:
        res["peak_rss_mb"] = {}
        for n in args.stream:
            print(f"peak memory streaming {n} records", file=sys.stderr)
            res["peak_rss_mb"][n] = peak_memory(args.model, n, Path(tmp), rng)
    Path(args.out).with_suffix(".json").write_text(json.dumps(res, indent=1))
    Path(args.out).write_text(to_markdown(res))
    print(to_markdown(res))


def to_markdown(res: dict) -> str:
    b = BACKENDS
    lines = [
        f"# Inference benchmark ({res['machine']})",
        "",
        f"Model: {res['model']}. Produced by `python bench/run.py` (run on an otherwise idle machine).",
        "",
        "| measure | " + " | ".join(b) + " | ONNX fp32 / PyTorch | ONNX int8 / PyTorch |",
        "| --- |" + " --- |" * (len(b) + 2),
    ]

    def row(name, d, fmt, higher_better=True):
        ratios = [d[x] / d["torch"] if higher_better else d["torch"] / d[x] for x in ("onnx", "onnx-int8")]
        lines.append(f"| {name} | " + " | ".join(fmt.format(d[x]) for x in b) + " | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")

    row("cold start, new process to first answer (s)", res["cold_start_s"], "{:.2f}", higher_better=False)
    row("batch classification (sequences/s, batch 64)", res["classification_seq_per_s"], "{:.0f}")
    row("generation, reverse complement of 60 nt (sequences/s, batch 32)", res["generation_seq_per_s"], "{:.1f}")
    if "classification_gflop_per_s" in res:
        peak, g = res["fp32_matmul_peak_gflop_per_s"], res["classification_gflop_per_s"]
        row("batch classification, forward compute (GFLOP/s)", g, "{:.1f}")
        lines += [
            "",
            f"Batch classification is compute-bound: the fp32 matmul peak of one thread here is {peak:.1f} GFLOP/s "
            f"(1024^3, `bench/train_speed.py`'s measure); ONNX Runtime fp32 reaches {g['onnx'] / peak:.0%} of it, PyTorch "
            f"{g['torch'] / peak:.0%}, so 2x PyTorch in fp32 would take {2 * g['torch'] / peak:.0%} of the peak. int8 "
            "(integer matmuls) is the path past it.",
        ]
    lines += ["", "Latency per question (ms, median of 5, warm):", "", "| question | " + " | ".join(b) + " |", "| --- |" + " --- |" * len(b)]
    for q in res["latency_ms"]["onnx"]:
        lines.append(f"| {q} | " + " | ".join(f"{res['latency_ms'][x][q]:.1f}" for x in b) + " |")
    lines += ["", "Peak memory of `genomicllm predict` streaming a FASTA (ONNX Runtime):", "", "| records | peak RSS (MB) |", "| --- | --- |"]
    for n, mb in res["peak_rss_mb"].items():
        lines.append(f"| {n} | {mb:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
