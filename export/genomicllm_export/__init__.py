"""Turn a GenomicLLM checkpoint into an ONNX model that ONNX Runtime serves (see :mod:`.onnx_export`)."""

from .onnx_export import export_model, parity_report  # noqa: F401
