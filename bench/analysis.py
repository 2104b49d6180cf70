"""Speed and memory of the analysis commands (issue #18), on one CPU thread:

    python bench/analysis.py --model models/default [--backend onnx-int8] [--out bench/ANALYSIS.md]

* explain: wall time of the in-silico mutagenesis of 300 nt sequences (900 substitutions each);
* variants: SNVs scored per second with 300 nt windows (two answers each: ref and alt);
* scan: 300 nt windows per second over a random genome, and the peak memory of ``genomicllm scan``
  (a new process) on inputs of growing size: flat memory means the FASTA is streamed;
* reader: peak memory of the streaming window reader alone over 10 and 100 Mb (no model), which
  is what grows, if anything, with the input.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genomicllm_kernel.engine import GenomicLLM  # noqa: E402


def random_fasta(path: Path, nt: int, rng: random.Random, records: int = 1) -> None:
    per = nt // records
    with open(path, "w") as fh:
        for r in range(records):
            fh.write(f">chr{r + 1}\n")
            left = per
            while left > 0:
                n = min(60_000, left)
                seq = "".join(rng.choices("ACGT", k=n))
                fh.write("\n".join(seq[i : i + 60] for i in range(0, n, 60)) + "\n")
                left -= n


def _hwm_mb(pid) -> float:
    """VmHWM (peak resident memory of the process's own address space) from /proc: unlike
    ru_maxrss, it is not inherited from the parent across fork and exec."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one command, its VmHWM polled until it exits."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _hwm_mb(proc.pid))
        time.sleep(0.2)
    if proc.returncode:
        raise SystemExit(f"{cmd[:4]} failed ({proc.returncode})")
    return peak, time.perf_counter() - t


def reader_peak(path: Path) -> float:
    code = (
        "from genomicllm_kernel.scan import fasta_windows\n"
        f"n = sum(1 for _ in fasta_windows({str(path)!r}, 300, 300))\n"
        "hwm = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')][0].split()[1]\n"
        "print(n, int(hwm) / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT).stdout.split()
    return float(out[1])


def one_question(llm, decoder, question: str, seqs: list[str], vcf: Path, ref: Path) -> dict:
    """explain (median of three 300 nt sequences, and once with every substitution a full pass),
    variants (200 SNVs, 300 nt windows; and with two full passes each) and scan speed of one question."""
    from genomicllm_kernel.scan import scan
    from genomicllm_kernel.variants import open_reference, open_vcf, score_variants

    got: dict = {}
    codec = llm.codec
    compact = llm.decoder.compact_features([codec.encode_prompt(f"{seqs[0]}, {question} =")])
    got["head_only"] = bool(llm.decoder.head_only is not None and compact is not None and llm.decoder.head_only.covers(*compact)[0])
    times = []
    for s in seqs:
        t = time.perf_counter()
        llm.explain(f"{s}, {question} =")
        times.append(time.perf_counter() - t)
    got["explain_300nt_s"] = sorted(times)[len(times) // 2]
    # the same explanation without the reference's key/value cache (every substitution a full pass)
    reuses, decoder.reuses_prefix = decoder.reuses_prefix, False
    t = time.perf_counter()
    llm.explain(f"{seqs[0]}, {question} =")
    got["explain_300nt_s_full_passes"] = time.perf_counter() - t
    decoder.reuses_prefix = reuses

    t = time.perf_counter()
    scored = sum(len(calls) for _, calls in score_variants(llm, open_vcf(vcf), open_reference(ref), "promoter", question, window=300))
    got["variants_per_s"] = scored / (time.perf_counter() - t)
    # the same variants with two full passes each (no alt continued from its ref's cache)
    reuses, decoder.reuses_prefix = decoder.reuses_prefix, False
    t = time.perf_counter()
    scored = sum(len(calls) for _, calls in score_variants(llm, open_vcf(vcf), open_reference(ref), "promoter", question, window=300))
    got["variants_per_s_full_passes"] = scored / (time.perf_counter() - t)
    decoder.reuses_prefix = reuses

    t = time.perf_counter()
    n = sum(1 for _ in scan(llm, str(ref), "promoter", question, window_size=300, window_step=300))
    got["scan_windows_per_s"] = n / (time.perf_counter() - t)
    return got


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "default"))
    ap.add_argument("--backend", default="onnx-int8")
    ap.add_argument("--out", default=str(ROOT / "bench" / "ANALYSIS.md"))
    ap.add_argument(
        "--questions",
        nargs="+",
        default=["proximal promoter", "proximal tata promoter"],
        help="promoter questions to time (the first also for the scan memory runs); the default pair is one the language model answers "
        "and one fitted at offset x0, which the per-question head answers alone (head_only.py)",
    )
    ap.add_argument("--scan-mb", type=float, nargs="*", default=[0.1, 1.0], help="sizes (Mb) of the end-to-end scan memory runs")
    args = ap.parse_args(argv)
    first = args.questions[0]
    os.environ["GENOMICLLM_THREADS"] = "1"
    rng = random.Random(0)
    llm = GenomicLLM.from_pretrained(args.model, args.backend, threads=1)
    results: dict = {"model": llm.model_id, "runtime": llm.runtime, "threads": 1, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}

    seqs = ["".join(rng.choices("ACGT", k=300)) for _ in range(3)]
    llm.explain(f"{seqs[0][:60]}, core promoter =")  # warm-up
    decoder = type(llm.decoder)
    results["questions"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ref = tmp / "ref.fa"
        random_fasta(ref, 200_000, rng)
        chrom = "".join(line.strip() for line in ref.read_text().splitlines()[1:])
        n_var = 200
        lines = ["##fileformat=VCFv4.2", "##contig=<ID=chr1,length=200000>", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
        for k in range(n_var):
            pos = 1000 + k * 900
            ref_base = chrom[pos - 1]
            lines.append(f"chr1\t{pos}\tv{k}\t{ref_base}\t{'A' if ref_base != 'A' else 'C'}\t.\t.\t.")
        vcf = tmp / "v.vcf"
        vcf.write_text("\n".join(lines) + "\n")
        for question in args.questions:
            results["questions"][question] = one_question(llm, decoder, question, seqs, vcf, ref)
        results.update(results["questions"][first])  # the first question's figures, as before

        results["scan_peak_rss_mb"] = {}
        for mb in args.scan_mb:
            fa = tmp / f"g{mb}.fa"
            random_fasta(fa, int(mb * 1e6), rng)
            out = tmp / "hits.bed"
            cmd = [sys.executable, "-m", "genomicllm_kernel.cli", "scan", "--fasta", str(fa), "--task", "promoter", "--question", first]
            cmd += ["--window-size", "300", "--model", args.model, "--backend", args.backend, "--output", str(out)]
            rss, dt = peak_rss_mb(cmd)
            results["scan_peak_rss_mb"][f"{mb:g} Mb"] = {"peak_rss_mb": round(rss), "seconds": round(dt, 1)}
        results["reader_peak_rss_mb"] = {}
        for mb in (10, 100):
            fa = tmp / f"r{mb}.fa"
            random_fasta(fa, mb * 1_000_000, rng, records=1)
            results["reader_peak_rss_mb"][f"{mb} Mb"] = round(reader_peak(fa))
            fa.unlink()

    targets = {"explain_300nt_s": ("<", 2.0), "variants_per_s": (">=", 200), "scan_windows_per_s": (">=", 400)}
    lines = [
        "# Analysis commands: speed and memory (issue #18)",
        "",
        f"`python bench/analysis.py --model {args.model} --backend {args.backend}`: {results['model']}, {results['runtime']}, one thread, "
        f"{results['machine']}.",
        "",
        "| measure | value | target |",
        "| --- | --- | --- |",
    ]
    for key, (op, goal) in targets.items():
        for question, got in results["questions"].items():
            v = got[key]
            met = v < goal if op == "<" else v >= goal
            lines.append(f"| {key} ({question}) | {v:.2f} | {op} {goal} ({'met' if met else 'NOT met'}) |")
    for question, got in results["questions"].items():
        if got["head_only"]:
            continue  # no model pass to share: its full-pass rows would time the same path twice
        lines.append(
            f"| explain_300nt_s_full_passes ({question}) | {got['explain_300nt_s_full_passes']:.2f} | (reference: every substitution a full pass) |"
        )
        lines.append(
            f"| variants_per_s_full_passes ({question}) | {got['variants_per_s_full_passes']:.2f} | (reference: ref and alt windows two full passes) |"
        )
    lines.append(
        f"| answered by the head alone | {', '.join(q for q, got in results['questions'].items() if got['head_only']) or 'none'} | (head_only.py: fitted at offset x0) |"
    )
    for what in ("scan_peak_rss_mb", "reader_peak_rss_mb"):
        lines.append(f"| {what} | {json.dumps(results[what])} | flat with input size |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
