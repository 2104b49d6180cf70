"""``genomicllm export``: Optimum's exporter (text-generation-with-past, one merged model with past
key values), ``onnx.checker``, and a parity check against PyTorch on a fixed prompt set covering all
14 tasks, at export time. ``--quantize int8`` adds ``model_int8.onnx`` made with ONNX Runtime's
dynamic quantization (per channel, 7-bit MatMul weights, the last layer cut to the last position), which measured faster here than Optimum's
ORTQuantizer; its agreement with fp32 is reported, not assumed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from genomicllm_kernel.errors import InputError

#: one prompt per task (and every question variant of the generation tasks)
PARITY_PROMPTS = [
    "CAGGTAAGTACTTTTCAGGTGAGGACTAGGCTGGTGCCTGAGGTAAGGCTGCAGG, splice site =",
    "GGCTGCTGGGAGGCAGGCTCTGGGCTGGGGCCCAGGCTGATGGATGTGGGG, enhancer =",
    "TATAAAAGGCGCGCTGACGTCAGCGCGGCGGCGCCTCGGCCGCCGGGAGCCGCCATGG, core promoter =",
    "TTTGACAGCTATAAATAGGCAGCGCAGCGGCGGCGCCTCGG, core tata promoter =",
    "GGGCGGGGCCGCGCGCCGCGGCCGCCATCTTGGCGCGAAG, proximal notata promoter =",
    "GCGCATGCGCAGGCCCGGGCGGGGCGGGGCCGGGCGCGCCCCCGG, open chromatin region =",
    "ACTGGGGGAGGGAGGCTGCAGGGCTTGCAGG, chromosome = chromosome11, regulatory =",
    "GGCCACCAGGGGGCGCTAGTGGCCACCAGGGGGCGC, transcription factor = CTCF, transcription factor binding site =",
    "GCTGCTTCTGGCCGAGGAGCTGCTGAAGCACATCAAG, open reading frame =",
    "GAACTACGTCGTCGGCAAGCAGAAGATCGGC, sequence direction =",
    "ATGGCGGCTTCAGAGTAAGCTGCGGCAGCA, gene biotype =",
    "TGGCTGAAGACAACCACAGCCTGA, GC content =",
    "ATGGCGGCTTCAGAGCTGGAGTAA, protein sequence =",
    "ACGTTGCAAGGCTTAG, reverse sequence =",
    "ACGTTGCAAGGCTTAG, complementary sequence =",
    "ACGTTGCAAGGCTTAGC, reverse complementary sequence =",
    "ATGGATTTATCTGCTCTTCGCGTT, symbol = BRCA1, description =",
    "Dbxref:MIM=300586, GGATCAATAC, reading comprehension: Dbxref:MIM =",
]


def keep_last_logits(path: Path) -> None:
    """Rewrite the graph so ``logits`` holds only the last position ([batch, 1, vocab]).

    Answers only ever read the last position (prompts are left-padded), so projecting every
    position through the output layer and copying [batch, length, vocab] floats out of the session
    is wasted work; ``ORTModelForCausalLM`` reads the last position too, so it still loads the file.
    """
    import onnx
    from onnx import helper, numpy_helper
    import numpy as np

    model = onnx.load(str(path))
    graph = model.graph
    (head,) = [n for n in graph.node if "logits" in n.output]
    hidden = head.input[0]
    graph.initializer.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), LAST_INDEX))
    gather = helper.make_node("Gather", [hidden, LAST_INDEX], ["genomicllm_last_hidden"], axis=1, name="genomicllm/keep_last_position")
    head.input[0] = "genomicllm_last_hidden"
    graph.node.insert(list(graph.node).index(head), gather)
    out = [o for o in graph.output if o.name == "logits"][0]
    out.type.tensor_type.shape.dim[1].ClearField("dim_param")
    out.type.tensor_type.shape.dim[1].dim_value = 1
    onnx.save(model, str(path))


LAST_INDEX = "genomicllm_last_index"
LAST_LAYER_CUT = "genomicllm/last_layer_last_position_"


def last_layer_on_last_position(path: Path, layers: int) -> bool:
    """Run the last decoder layer's attention output projection and MLP on the last position only
    (a graph from :func:`keep_last_logits`); False where the graph has no such layer to cut.

    The last layer's keys and values (its ``present`` outputs) come from its input, before its
    residual add, and only the last position is read after it, so gathering both operands of that
    add keeps every output bit-identical (tested) while the layer's MLP runs on one position: about
    10% faster in the int8 throughput graph (bench/ANALYSIS.md). fp32 keeps Optimum's graph.
    """
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    graph = model.graph
    found = [n for n in graph.node if n.op_type == "Add" and n.name == f"/model/layers.{layers - 1}/Add"]
    if len(found) != 1 or LAST_INDEX not in {i.name for i in graph.initializer}:
        return False
    (add,) = found
    at = list(graph.node).index(add)
    for k, operand in enumerate(list(add.input)):
        cut = f"genomicllm_last_layer_operand_{k}"
        graph.node.insert(at, helper.make_node("Gather", [operand, LAST_INDEX], [cut], axis=1, name=f"{LAST_LAYER_CUT}{k}"))
        add.input[k] = cut
    onnx.save(model, str(path))
    return True


#: node-name prefix of the per-question head in the exported graph (kept fp32 by quantize_int8)
HEAD_NODES = "/composition_head/"


def quantize_int8(folder: Path) -> Path:
    """``model_int8.onnx`` beside a folder's exported ``model.onnx``: ONNX Runtime's dynamic
    quantization of the MatMul weights, per channel, over the graph with the last layer cut to the
    last position (:func:`last_layer_on_last_position`).

    ``reduce_range`` (7-bit weights): x86 CPUs without VNNI sum pairs of u8 x s8 products in int16
    (VPMADDUBSW), which saturates with 8-bit weights. Measured on the stage-8c model: 8-bit weights
    answered 26 of the 31 golden prompts as fp32 does on such a CPU (AMD EPYC; max 0.29 in a label
    probability), 31 of 31 on a VNNI CPU (Xeon; max 0.035); 7-bit weights 31 of 31 (max 0.027)
    on the VNNI CPU, and no CPU can saturate them (255 x 63 x 2 < 2^15).

    The per-question head's two MatMuls stay fp32 (``HEAD_NODES``): a convex head's weights are
    logistic-regression coefficients over standardised k-mer frequencies, so a rare 6-mer's weight
    is orders of magnitude larger than a common 3-mer's, and one 7-bit scale per output channel
    would round the small ones to zero. They are one vector-matrix product per prompt.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    cut = folder / "model_cut.onnx"
    shutil.copy(folder / "model.onnx", cut)
    try:
        last_layer_on_last_position(cut, json.loads((folder / "config.json").read_text())["num_hidden_layers"])
        keep = [n.name for n in onnx.load(str(cut), load_external_data=False).graph.node if n.name.startswith(HEAD_NODES)]
        quantize_dynamic(
            str(cut), str(folder / "model_int8.onnx"), per_channel=True, reduce_range=True, weight_type=QuantType.QInt8, nodes_to_exclude=keep
        )
    finally:
        cut.unlink(missing_ok=True)
    return folder / "model_int8.onnx"


def parity_report(model_dir: Path, onnx_folder: Path, filename: str = "model.onnx", prompts=None) -> dict:
    """Answer the parity prompts with PyTorch and ONNX Runtime; compare answers and label probabilities."""
    from genomicllm_kernel.codec import HybridCodec
    from genomicllm_kernel.decoding import TorchDecoder
    from genomicllm_kernel.grammar import parse_prompt
    from genomicllm_kernel.model import load_torch_model
    from genomicllm_kernel.ort_backend import ORTDecoder

    net, tok = load_torch_model(model_dir)
    torch_dec = TorchDecoder(net, tok, threads=1)
    ort_dec = ORTDecoder(onnx_folder, HybridCodec.from_pretrained(onnx_folder), threads=1, filename=filename)
    rows, max_diff, same = [], 0.0, 0
    for text in prompts or PARITY_PROMPTS:
        p = parse_prompt(text)
        a, b = torch_dec.answer_batch([p])[0], ort_dec.answer_batch([p])[0]
        diff = (
            max((abs(a.labels[k] - b.labels[k]) for k in a.labels), default=abs(a.probability - b.probability))
            if a.labels
            else abs(a.probability - b.probability)
        )
        max_diff = max(max_diff, diff)
        same += a.text == b.text
        rows.append({"prompt": text, "torch": a.text, "onnx": b.text, "prob_diff": diff})
    return {"n": len(rows), "identical_answers": same, "max_probability_diff": max_diff, "rows": rows, "provider": ort_dec.provider}


def export_model(model_dir: str | Path, out: str | Path | None = None, quantize: str | None = None, check: bool = True, progress=print) -> Path:
    import onnx
    from optimum.exporters.onnx import main_export

    from genomicllm_kernel.model import check_model_dir

    model_dir = check_model_dir(model_dir)
    out = Path(out) if out else model_dir / "onnx"
    if quantize not in (None, "int8"):
        raise InputError(f"--quantize takes 'int8', got {quantize!r}")
    tmp = Path(tempfile.mkdtemp(prefix=".onnx-", dir=out.parent if out.parent.exists() else None))
    try:
        progress(f"exporting {model_dir} with Optimum (text-generation-with-past)")
        from genomicllm_kernel.composition_model import register_onnx_config

        register_onnx_config()  # GenomicLlamaForCausalLM (the composition input) beside Optimum's own configs
        main_export(
            str(model_dir), output=str(tmp), task="text-generation-with-past", do_validation=False, no_post_process=False, library_name="transformers"
        )
        for name in ("vocab.json", "tokenizer_config.json", "special_tokens_map.json"):
            if (model_dir / name).exists():
                shutil.copy(model_dir / name, tmp / name)
        keep_last_logits(tmp / "model.onnx")
        onnx.checker.check_model(str(tmp / "model.onnx"), full_check=True)
        report = {}
        if check:
            progress("parity check: PyTorch vs ONNX Runtime on prompts covering all 14 tasks")
            report["fp32"] = parity_report(model_dir, tmp)
            r = report["fp32"]
            if r["identical_answers"] != r["n"] or r["max_probability_diff"] > 1e-4:
                raise RuntimeError(
                    f"ONNX parity failed: {r['identical_answers']}/{r['n']} identical answers, "
                    f"max probability difference {r['max_probability_diff']:.2e}"
                )
        if quantize == "int8":
            progress("quantizing to int8 (dynamic, per channel, 7-bit weights)")
            quantize_int8(tmp)
            if check:
                report["int8"] = parity_report(model_dir, tmp, "model_int8.onnx")
        (tmp / "export_report.json").write_text(json.dumps(report, indent=1))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if check:
        r = report["fp32"]
        progress(
            f"parity: {r['identical_answers']}/{r['n']} identical answers, max probability difference "
            f"{r['max_probability_diff']:.2e} ({r['provider']})"
        )
        if "int8" in report:
            q = report["int8"]
            progress(
                f"int8: {q['identical_answers']}/{q['n']} answers identical to PyTorch fp32, max probability "
                f"difference {q['max_probability_diff']:.2e}"
            )
    return out
