"""Where ONNX Runtime spends an explanation's time, by operator type (issue #18):

    python bench/ort_profile.py [--model models/default] [--backend onnx-int8] [--out bench/ORT_PROFILE.md]

Why: the targets of #18 are set per thread, and ONNX Runtime's own time is most of an explanation
(bench/ANALYSIS.md); which operators take it decides what is worth changing in the exported graph
(a fused kernel, a smaller input) and what only a smaller model can change. One 300 nt explanation
(900 substitutions, reference KV cache shared) runs under ONNX Runtime's profiler on one thread;
the table sums each operator type's kernel time.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "default"))
    ap.add_argument("--backend", default="onnx-int8")
    ap.add_argument("--out", default=str(ROOT / "bench" / "ORT_PROFILE.md"))
    args = ap.parse_args(argv)
    os.environ["GENOMICLLM_THREADS"] = "1"
    import onnxruntime as ort

    from genomicllm_kernel import ort_backend
    from genomicllm_kernel.engine import GenomicLLM

    prefix = tempfile.mkdtemp() + "/ort"

    def profiled_session(path, threads=1, device="auto"):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.enable_profiling, opts.profile_file_prefix, opts.log_severity_level = True, prefix, 3
        session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        return session, session.get_providers()[0]

    ort_backend.make_session = profiled_session
    llm = GenomicLLM.from_pretrained(args.model, args.backend, threads=1)
    rng = random.Random(0)
    seq = "".join(rng.choices("ACGT", k=300))
    llm.explain(f"{seq}, proximal promoter =")
    events = json.loads(Path(llm.decoder.session.end_profiling()).read_text())
    by_op, by_node = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
            by_node[e["name"][: -len("_kernel_time")]] += e["dur"]
    total = sum(by_op.values())
    lines = [
        "# ONNX Runtime time of one explanation, by operator (issue #18)",
        "",
        f"`python bench/ort_profile.py --backend {args.backend}`: {llm.model_id}, {llm.runtime}, one thread; "
        f"one 300 nt explanation (900 substitutions), {total / 1e6:.2f} s of kernel time.",
        "",
        "| operator | ms | share |",
        "| --- | --- | --- |",
        *[f"| {op} | {us / 1000:.0f} | {100 * us / total:.1f}% |" for op, us in by_op.most_common(14)],
        "",
        "| node (top 10) | ms |",
        "| --- | --- |",
        *[f"| `{node}` | {us / 1000:.0f} |" for node, us in by_node.most_common(10)],
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
