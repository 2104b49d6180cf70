"""Galaxy wrappers for GenomicLLM, generated from the task registry (``python -m genomicllm_galaxy.generate``)."""
