"""Rewrite a model folder's ``onnx/model_int8.onnx`` from its shipped ``onnx/model.onnx`` with the
current quantizer (``genomicllm_export.onnx_export.quantize_int8``), and refresh the int8 entry of
its ``export_report.json`` (parity against PyTorch fp32 on the export's prompt set):

    python scripts/requantize_int8.py models/default

Why not ``genomicllm export``: that re-exports the fp32 graph too, and the fp32 file (the reference)
has not changed; this keeps it byte for byte and changes only what the quantizer makes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "export")]

from genomicllm_export.onnx_export import parity_report, quantize_int8  # noqa: E402


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit(__doc__)
    model = Path(argv[0])
    folder = model / "onnx"
    if not (folder / "model.onnx").exists():
        sys.exit(f"error: {folder}/model.onnx not found (run genomicllm export first)")
    quantize_int8(folder)
    report_file = folder / "export_report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    report["int8"] = parity_report(model, folder, "model_int8.onnx")
    report_file.write_text(json.dumps(report, indent=1))
    q = report["int8"]
    print(
        f"{folder / 'model_int8.onnx'}: {q['identical_answers']}/{q['n']} answers identical to PyTorch fp32, max probability difference {q['max_probability_diff']:.2e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
