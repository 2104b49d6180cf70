"""``genomicllm export``: Optimum's exporter (text-generation-with-past, one merged model with past
key values), ``onnx.checker``, and a parity check against PyTorch on a fixed prompt set covering all
14 tasks, at export time. ``--quantize int8`` adds ``model_int8.onnx`` made with ONNX Runtime's
dynamic quantization (per channel, 7-bit MatMul weights, the last layer cut to the last position,
each layer's attention fused into ONNX Runtime's MultiHeadAttention), which measured faster here
than Optimum's ORTQuantizer; its agreement with fp32 is reported, not assumed.
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


#: node-name prefix of the fused attention nodes (:func:`fuse_attention`)
FUSED_ATTENTION = "genomicllm/attention_"


def _constant_value(graph, name: str):
    """The value of a Constant node's output or an initializer, as numpy; None otherwise."""
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and name in node.output:
            return numpy_helper.to_array(node.attribute[0].t)
    return None


def _attention_blocks(graph, layers: int) -> list[dict] | None:
    """Each layer's decomposed attention as Optimum exports a Llama (transformers' sdpa path): the
    scaled query and transposed key into MatMul, an additive mask from Where(mask, 0, -inf),
    Softmax, IsNaN -> Where (rows with nothing to attend to become zeros), MatMul with the
    ``present`` value, Transpose and Reshape to [batch, sequence, hidden]. None where any link of
    any layer differs (another architecture, grouped-query heads): the graph is then left alone."""
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def one(name, op):
        found = [n for n in consumers.get(name, []) if n.op_type == op]
        return found[0] if len(found) == 1 else None

    blocks = []
    for i in range(layers):
        try:
            (softmax,) = [n for n in graph.node if n.op_type == "Softmax" and n.name.startswith(f"/model/layers.{i}/self_attn/")]
            (add,) = [producer[softmax.input[0]]]
            scores, where = producer[add.input[0]], producer[add.input[1]]
            q_mul, k_mul = producer[scores.input[0]], producer[scores.input[1]]
            k_t = producer[k_mul.input[0]]
            isnan = one(softmax.output[0], "IsNaN")
            zeroed = one(softmax.output[0], "Where")
            weighted = one(zeroed.output[0], "MatMul")
            transpose = one(weighted.output[0], "Transpose")
            reshape = one(transpose.output[0], "Reshape")
        except (KeyError, ValueError, AttributeError, IndexError):
            return None
        q_scale, k_scale = _constant_value(graph, q_mul.input[1]), _constant_value(graph, k_mul.input[1])
        fill = _constant_value(graph, where.input[2])
        if not (
            add.op_type == "Add"
            and scores.op_type == "MatMul"
            and where.op_type == "Where"
            and q_mul.op_type == "Mul"
            and k_mul.op_type == "Mul"
            and k_t.op_type == "Transpose"
            and k_t.input[0] == f"present.{i}.key"
            and weighted.input[1] == f"present.{i}.value"
            and isnan is not None
            and zeroed.input[0] == isnan.output[0]
            and q_scale is not None
            and k_scale is not None
            and q_scale.size == 1
            and k_scale.size == 1
            and fill is not None
            and fill.size == 1
            and float(fill.ravel()[0]) == float("-inf")
            and list(transpose.attribute[0].ints) == [0, 2, 1, 3]
        ):
            return None
        blocks.append(dict(query=q_mul.input[0], mask=where.input[0], scale=float(q_scale.ravel()[0] * k_scale.ravel()[0]), output=reshape.output[0]))
    return blocks


def fuse_attention(path: Path, layers: int, heads: int) -> bool:
    """Replace each layer's decomposed attention with ONNX Runtime's fused ``MultiHeadAttention``
    (com.microsoft, CPU and CUDA); False, and the file unchanged, where the graph is not the one
    :func:`_attention_blocks` knows.

    Why: at 300 nt (about 110 tokens) and hidden 256 the attention is a small share of the
    arithmetic but, as a dozen separate operators (two batched MatMuls, the mask's Where and Add,
    Softmax, IsNaN and Where, Transposes), about half of an int8 explanation's kernel time on a
    VNNI Xeon (bench/ORT_PROFILE.md). The fused kernel reads the ``present`` keys and values in
    place (BNSH) and takes one additive mask shared by every layer; a padded query's output is
    zeroed as before, so every tensor keeps its value to float rounding (tested). With
    :func:`last_layer_on_last_position` applied first, the last layer's attention also runs for the
    last query only.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    blocks = _attention_blocks(graph, layers)
    if not blocks:
        return False
    last_only = any(n.name.startswith(LAST_LAYER_CUT) for n in graph.node) and LAST_INDEX in {i.name for i in graph.initializer}
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(0.0, np.float32), "genomicllm_bias_open"),
            # finite, so a row with nothing to attend to cannot make NaN (the decomposed graph zeroed it)
            numpy_helper.from_array(np.array(np.finfo(np.float32).min, np.float32), "genomicllm_bias_closed"),
            numpy_helper.from_array(np.array([0, 0, -1], np.int64), "genomicllm_bsd_shape"),
            numpy_helper.from_array(np.array([np.iinfo(np.int64).max], np.int64), "genomicllm_to_end"),
            numpy_helper.from_array(np.array([1], np.int64), "genomicllm_axis_1"),
            numpy_helper.from_array(np.array([2], np.int64), "genomicllm_axis_2"),
        ]
    )
    # [batch, sequence, 1]: 1 where the query position is attended (the new part of attention_mask).
    # A padded query attends to nothing; the decomposed graph made its output zeros, and so does
    # this product, so every tensor of the graph (int8's per-tensor activation scales included)
    # stays what it was
    rows = [
        helper.make_node("Shape", ["input_ids"], ["genomicllm_new_length"], start=1, end=2, name=f"{FUSED_ATTENTION}new_length"),
        helper.make_node("Neg", ["genomicllm_new_length"], ["genomicllm_new_start"], name=f"{FUSED_ATTENTION}new_start"),
        helper.make_node(
            "Slice",
            ["attention_mask", "genomicllm_new_start", "genomicllm_to_end", "genomicllm_axis_1"],
            ["genomicllm_new_mask"],
            name=f"{FUSED_ATTENTION}new_mask",
        ),
        helper.make_node(
            "Cast", ["genomicllm_new_mask"], ["genomicllm_new_mask_float"], to=onnx.TensorProto.FLOAT, name=f"{FUSED_ATTENTION}new_mask_float"
        ),
        helper.make_node(
            "Unsqueeze", ["genomicllm_new_mask_float", "genomicllm_axis_2"], ["genomicllm_query_rows"], name=f"{FUSED_ATTENTION}query_rows"
        ),
    ]
    for k, node in enumerate(rows):
        graph.node.insert(k, node)
    biases: dict = {}  # one additive bias per distinct mask (_mask_key)
    producer = {o: n for n in graph.node for o in n.output}
    for i, block in enumerate(blocks):
        nodes = []
        same = _mask_key(graph, producer, block["mask"])
        if same not in biases:
            name = f"genomicllm_attention_bias_{len(biases)}"
            nodes.append(
                helper.make_node(
                    "Where", [block["mask"], "genomicllm_bias_open", "genomicllm_bias_closed"], [name], name=f"{FUSED_ATTENTION}bias_{len(biases)}"
                )
            )
            biases[same] = name
        bias = biases[same]
        query = f"genomicllm_query_{i}"
        nodes.append(helper.make_node("Transpose", [block["query"]], [query + "_bsnh"], perm=[0, 2, 1, 3], name=f"{FUSED_ATTENTION}query_{i}_bsnh"))
        nodes.append(helper.make_node("Reshape", [query + "_bsnh", "genomicllm_bsd_shape"], [query], name=f"{FUSED_ATTENTION}query_{i}"))
        query_rows = "genomicllm_query_rows"
        if last_only and i == layers - 1:
            nodes.append(helper.make_node("Gather", [query, LAST_INDEX], [query + "_last"], axis=1, name=f"{FUSED_ATTENTION}query_last"))
            nodes.append(helper.make_node("Gather", [bias, LAST_INDEX], [bias + "_last"], axis=2, name=f"{FUSED_ATTENTION}bias_last"))
            nodes.append(helper.make_node("Gather", [query_rows, LAST_INDEX], [query_rows + "_last"], axis=1, name=f"{FUSED_ATTENTION}rows_last"))
            query, bias, query_rows = query + "_last", bias + "_last", query_rows + "_last"
        fused = f"genomicllm_attention_{i}"
        nodes.append(
            helper.make_node(
                "MultiHeadAttention",
                [query, f"present.{i}.key", f"present.{i}.value", "", "", bias],
                [fused + "_all_rows"],
                domain="com.microsoft",
                num_heads=heads,
                scale=block["scale"],
                name=f"{FUSED_ATTENTION}{i}",
            )
        )
        nodes.append(helper.make_node("Mul", [fused + "_all_rows", query_rows], [fused], name=f"{FUSED_ATTENTION}{i}_attended_rows"))
        # after the decomposed output's producer (every input above exists there), then rewire its readers
        at = list(graph.node).index(producer[block["output"]]) + 1
        for k, node in enumerate(nodes):
            graph.node.insert(at + k, node)
        for node in graph.node:
            for j, name in enumerate(node.input):
                if name == block["output"]:
                    node.input[j] = fused
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    _drop_unread(graph)
    onnx.save(model, str(path))
    return True


def _mask_key(graph, producer, mask: str):
    """What makes two layers' attention masks the same tensor: each layer slices the model's one
    [batch, 1, sequence, keys] mask to its own key length, which is the same in every layer of a
    decoder (one past length, one input), so equal slices of the same tensor share one bias."""
    node = producer.get(mask)
    if node is None or node.op_type != "Slice":
        return mask
    consts = [_constant_value(graph, name) for name in node.input[1:] if name]
    starts_axes_steps = [c.tolist() if c is not None else None for k, c in enumerate(consts) if k != 1]
    return (node.input[0], repr(starts_axes_steps))


def _drop_unread(graph) -> None:
    """Remove the nodes and initializers no graph output depends on (the replaced attention)."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)


#: node-name prefix of the per-question head in the exported graph (kept fp32 by quantize_int8)
HEAD_NODES = ("/composition_head/", "/composition_offset_scale/")


def quantize_int8(folder: Path) -> Path:
    """``model_int8.onnx`` beside a folder's exported ``model.onnx``: ONNX Runtime's dynamic
    quantization of the MatMul weights, per channel, over the graph with the last layer cut to the
    last position (:func:`last_layer_on_last_position`), then the attention fused
    (:func:`fuse_attention`). fp32 keeps Optimum's graph: it is the reference.

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
        cfg = json.loads((folder / "config.json").read_text())
        last_layer_on_last_position(cut, cfg["num_hidden_layers"])
        keep = [n.name for n in onnx.load(str(cut), load_external_data=False).graph.node if n.name.startswith(HEAD_NODES)]
        quantize_dynamic(
            str(cut), str(folder / "model_int8.onnx"), per_channel=True, reduce_range=True, weight_type=QuantType.QInt8, nodes_to_exclude=keep
        )
        # after quantizing: the quantizer's shape inference does not know com.microsoft operators
        fuse_attention(folder / "model_int8.onnx", cfg["num_hidden_layers"], cfg["num_attention_heads"])
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
