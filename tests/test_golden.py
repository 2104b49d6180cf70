"""The shipped model's answers are a fixed point of every engine refactor (golden test).

``tests/golden/shipped_answers.json`` holds the shipped model's answers, probabilities, label
probabilities and checks on a fixed prompt set covering all 14 tasks (every question variant of
the generation tasks, items, ambiguity codes, mixed-length batches and windows), on the PyTorch and
ONNX Runtime backends, recorded before the engine refactor. Rewrite it only when the shipped model
(or its int8 file) changes:

    python tests/test_golden.py --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "shipped_answers.json"
MODEL = ROOT / "models" / "default"
BACKENDS = ("torch", "onnx", "onnx-int8")

EXTRA_PROMPTS = [
    "ACGTNRYSWKMBDHVACGT, GC content =",
    "acguuaggcuaa, reverse complementary sequence =",
    "ATGGCGGCTTCAGAGTAATT, protein sequence =",
    "symbol = BRCA1, id = 672, chromosome = 17, reading comprehension: chromosome =",
    "GCTAGCTAGGATCCAAGCTTGCATGCCTGCAGGTCGACTCTAGAGGATCCCCGGGTACCGAGCTCGAATTC, core notata promoter =",
    "CAGGTAAGTACTTT, splice site =",
    "symbol = TP53, description =",
    "TTGACATATAAT" * 12 + ", proximal promoter =",
]
WINDOWED = ("promoter", "core promoter", "TATAAAAGGCGCGCTGACGTCAGCGCGGCGGCGCCTCGGCCGCCGGGAGCCGCCATGG" * 4, 90, 45)


def record(backend: str) -> list[dict]:
    from genomicllm_export.onnx_export import PARITY_PROMPTS
    from genomicllm_kernel.api import ask, predict

    answers = list(ask(PARITY_PROMPTS + EXTRA_PROMPTS, model=MODEL, backend=backend, batch_size=4))
    task, question, seq, size, step = WINDOWED
    answers += list(predict(task, [("w", seq)], question=question, model=MODEL, backend=backend, window_size=size, window_step=step))
    keep = ("prompt", "task", "question", "answer", "probability", "labels", "check", "window")
    return [{k: v for k, v in a.to_dict().items() if k in keep} for a in answers]


#: float32 kernels round differently on different CPUs: the PyTorch answers recorded on an AMD EPYC
#: differ from a Xeon's by up to 5.6e-6 (ONNX Runtime fp32 by 1.2e-7); an engine change moves them more.
#: int8's integer sums are exact on every x86 CPU (7-bit weights, onnx_export.quantize_int8), but the
#: activations' quantization is float arithmetic whose kernels differ by instruction set
TOLERANCE = {"torch": 2e-5, "onnx": 2e-5, "onnx-int8": 1e-3}


def _close(a, b, tol: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(a - b) <= tol
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    return a == b


@pytest.mark.skipif(not (MODEL / "model.safetensors").exists(), reason="the shipped model is not in this checkout")
@pytest.mark.parametrize("backend", BACKENDS)
def test_shipped_answers_are_unchanged(backend):
    golden = json.loads(GOLDEN.read_text())
    from genomicllm_kernel.engine import GenomicLLM

    assert golden["model"] == GenomicLLM.from_pretrained(MODEL, backend).model_id, "the shipped model changed: rewrite the golden file"
    now = record(backend)
    then = golden["answers"][backend]
    assert len(now) == len(then)
    for a, b in zip(now, then):
        assert a.keys() == b.keys()
        for k in a:
            assert _close(a[k], b[k], TOLERANCE[backend]), (backend, a["prompt"], k, a[k], b[k])


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    from genomicllm_kernel.engine import GenomicLLM

    data = {"model": GenomicLLM.from_pretrained(MODEL, "torch").model_id, "answers": {b: record(b) for b in BACKENDS}}
    GOLDEN.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {GOLDEN}: {sum(len(v) for v in data['answers'].values())} answers")
