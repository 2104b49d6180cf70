"""Training: exact resume after a stop, and two DDP ranks on gloo ending with identical weights."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from genomicllm_kernel.tokenizer import GenomicLLMTokenizer
from genomicllm_kernel.training import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent


def _cfg(small_corpus, out, steps):
    cfg = TrainConfig.load(ROOT / "configs" / "tiny.toml")
    cfg.data, cfg.out, cfg.max_steps = str(small_corpus), str(out), steps
    return cfg


def test_resume_is_exact(small_corpus, tmp_path):
    straight = train(_cfg(small_corpus, tmp_path / "a", 6), progress=False)
    stopped = _cfg(small_corpus, tmp_path / "b", 6)
    stopped.stop_at_step = 3  # the config field a stage stopped for time carries (as if killed after step 3)
    assert TrainConfig.load(ROOT / "configs" / "cpu_stage6.toml").stop_at_step == 483
    train(stopped, progress=False)
    resumed = train(_cfg(small_corpus, tmp_path / "b", 6), resume=True, progress=False)
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    log = (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()
    assert len(log) == 6 and '"tokens_per_s"' in log[-1]


def test_two_gloo_ranks_end_identical(small_corpus, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(
        "import os, sys\n"
        "from genomicllm_kernel.training import TrainConfig, Trainer\n"
        f"cfg = TrainConfig.load({str(ROOT / 'configs' / 'tiny.toml')!r})\n"
        f"cfg.data = {str(small_corpus)!r}\n"
        "cfg.out = sys.argv[1]\n"
        "cfg.max_steps = 3\n"
        "trainer = Trainer(cfg, progress=False)\n"
        "trainer.train()\n"
        "import torch\n"
        "torch.save({k: v for k, v in trainer.model.state_dict().items()}, os.path.join(sys.argv[1], f'rank{os.environ[\"RANK\"]}.pt'))\n"
    )
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533", str(script), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    w0 = torch.load(out / "rank0.pt", weights_only=True)
    w1 = torch.load(out / "rank1.pt", weights_only=True)
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    assert (out / "checkpoint" / "model.safetensors").exists()


def test_cpu_bf16_setting(small_corpus, tmp_path, monkeypatch):
    from genomicllm_kernel import training
    from genomicllm_kernel.errors import InputError

    cfg = _cfg(small_corpus, tmp_path / "c", 2)
    assert training.use_bf16(cfg, "cuda") and not training.use_bf16(cfg, "cpu")  # fp32 on CPU unless asked
    cfg.cpu_bf16 = "auto"
    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: False)
    assert not training.use_bf16(cfg, "cpu")
    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: True)
    assert training.use_bf16(cfg, "cpu")
    cfg.cpu_bf16 = "yes"
    with pytest.raises(InputError, match="cpu_bf16 must be"):
        training.use_bf16(cfg, "cpu")
    cfg.cpu_bf16, cfg.snapshot_every, cfg.label_loss_weight = True, 1, 5.0  # bf16, snapshots, weighted labels
    train(cfg, progress=False)
    log = (tmp_path / "c" / "train_log.jsonl").read_text().splitlines()
    assert '"bf16": true' in log[-1]
    snaps = sorted(p.name for p in (tmp_path / "c" / "snapshots").iterdir())
    assert snaps == ["step_000001", "step_000002"]
    assert (tmp_path / "c" / "snapshots" / "step_000002" / "model.safetensors").exists()


def test_label_tokens_can_weigh_more_in_the_loss():
    from transformers import LlamaConfig, LlamaForCausalLM

    from genomicllm_kernel.training import weighted_loss

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    ids = torch.randint(10, 50, (2, 8))
    ids[0, 5] = 7  # a "label" token among the answer tokens of row 0
    labels = ids.clone()
    labels[:, :4] = -100
    out = model(input_ids=ids, labels=labels)
    token_weights = torch.ones(50)
    assert torch.allclose(weighted_loss(out.logits, labels, token_weights), out.loss, atol=1e-6)
    ce = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, 50), labels[:, 1:].reshape(-1), reduction="none", ignore_index=-100).view(
        2, 7
    )
    w = (labels[:, 1:] != -100).float()
    w[0, 4] = 10.0  # position 5 is predicted from position 4
    token_weights[7] = 10.0
    assert torch.allclose(weighted_loss(out.logits, labels, token_weights), (ce * w).sum() / w.sum(), atol=1e-6)


def test_answer_token_weights_follow_the_config(small_corpus, tmp_path):
    from genomicllm_kernel.codec import HybridCodec
    from genomicllm_kernel.training import answer_token_weights

    codec = HybridCodec.build(["gene"], item_pointers=True)
    cfg = _cfg(small_corpus, tmp_path / "w", 2)
    assert answer_token_weights(codec, cfg, 0) is None  # all ones: the plain loss, as the first stages trained
    cfg.label_loss_weight, cfg.label_loss_from_step, cfg.pointer_loss_weight = 10.0, 5, 4.0
    early, late = answer_token_weights(codec, cfg, 0), answer_token_weights(codec, cfg, 5)
    label, pointer, dna = codec.vocab["<label:True>"], codec.vocab["<item:1>"], codec.vocab["<dna:ACG>"]
    assert (early[label], early[pointer], early[dna]) == (1.0, 4.0, 1.0)
    assert (late[label], late[pointer], late[dna]) == (10.0, 4.0, 1.0)
    assert late.sum() == len(codec.vocab) + 9 * len(codec.ids_with_prefix("<label:")) + 3 * len(codec.ids_with_prefix("<item:"))


def test_gpu_lease_driver_fills_time_and_packs_transferable_parts(small_corpus, tmp_path, monkeypatch):
    """scripts/gpu_train.py: warmup calibration, max_steps set from the step time (capped by the
    config), resume, and a pack whose tar parts rebuild the exact checkpoint weights."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("gpu_train", ROOT / "scripts" / "gpu_train.py")
    gpu_train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_train)
    cfg_file = tmp_path / "lease.toml"
    cfg_file.write_text(
        (ROOT / "configs" / "tiny.toml")
        .read_text()
        .replace('data = "data/small"', f'data = "{small_corpus}"')
        .replace('out = "runs/tiny"', f'out = "{tmp_path / "run"}"')
        .replace("max_steps = 4", "max_steps = 9")
        .replace("warmup_steps = 1", "warmup_steps = 5")
    )
    monkeypatch.setattr(gpu_train, "seconds_per_step", lambda log, skip: 0.001)  # any time fills the cap
    monkeypatch.setattr(gpu_train, "PART_BYTES", 64 * 1024)
    pack = tmp_path / "pack"
    assert gpu_train.main(["--config", str(cfg_file), "--seconds", "60", "--calibrate-steps", "2", "--pack", str(pack), "--snapshots", "2"]) == 0
    run = tmp_path / "run"
    used = json.loads((run / "checkpoint" / "train_config.json").read_text())
    assert used["max_steps"] == 9 and used["snapshot_every"] == 3
    parts = sorted(pack.glob("final.tar.part*"))
    assert len(parts) > 1 and all(p.stat().st_size <= 64 * 1024 for p in parts)
    back = tmp_path / "back.toml"
    back.write_text(cfg_file.read_text().replace(f'out = "{run}"', f'out = "{tmp_path / "back"}"'))
    assert gpu_train.main(["--config", str(back), "--unpack", str(pack)]) == 0  # here, after the lease
    got = load_file(tmp_path / "back" / "checkpoint" / "model.safetensors")
    want = load_file(run / "checkpoint" / "model.safetensors")
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert json.loads((tmp_path / "back" / "checkpoint" / "run_summary.json").read_text())["step"] == 9
    assert not (tmp_path / "back" / "checkpoint" / "trainer_state.pt").exists()
    assert sorted(p.name for p in (tmp_path / "back" / "snapshots").iterdir()) == ["step_000003", "step_000006"]
    quick = tmp_path / "quick.toml"  # --step-time: no calibration, max_steps from the given step time
    quick.write_text(cfg_file.read_text().replace(f'out = "{run}"', f'out = "{tmp_path / "quick"}"'))
    assert gpu_train.main(["--config", str(quick), "--seconds", "1", "--step-time", "0.001", "--snapshots", "0"]) == 0
    assert json.loads((tmp_path / "quick" / "checkpoint" / "train_config.json").read_text())["max_steps"] == 6
    snaps = sorted(p.name for p in pack.glob("snapshot_*"))
    assert snaps == ["snapshot_step_000003.bf16.safetensors", "snapshot_step_000006.bf16.safetensors"]
    bf = load_file(pack / snaps[1])
    fp = load_file(run / "snapshots" / "step_000006" / "model.safetensors")
    assert all(bf[k].dtype == torch.bfloat16 and torch.allclose(bf[k].float(), fp[k], rtol=1e-2, atol=1e-3) for k in fp)


def test_init_from_continues_from_a_model_folder(small_corpus, tmp_path):
    first = train(_cfg(small_corpus, tmp_path / "a", 3), progress=False)
    cfg = _cfg(small_corpus, tmp_path / "b", 0)  # zero steps: the saved weights are the starting weights
    cfg.init_from = str(first)
    again = train(cfg, progress=False)
    a, b = load_file(first / "model.safetensors"), load_file(again / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (again / "vocab.json").read_text() == (first / "vocab.json").read_text()
    # a continuation may switch the item-marker layout; the saved tokenizer carries it
    cfg = _cfg(small_corpus, tmp_path / "c", 1)
    cfg.init_from, cfg.item_marker = str(first), "after_name"
    moved = train(cfg, progress=False)
    assert GenomicLLMTokenizer.from_pretrained(moved).item_marker == "after_name"
    assert GenomicLLMTokenizer.from_pretrained(first).item_marker == "before_name"
    # and may add name keys: new embedding rows, every old row and token id as it was
    cfg = _cfg(small_corpus, tmp_path / "d", 0)
    cfg.init_from, cfg.item_marker, cfg.name_keys = str(first), "after_name", 16
    keyed = train(cfg, progress=False)
    k, name = load_file(keyed / "model.safetensors"), "model.embed_tokens.weight"
    assert k[name].shape[0] == a[name].shape[0] + 16 and torch.equal(k[name][: a[name].shape[0]], a[name])
    assert k[name][a[name].shape[0] :].std() > 0.5 * a[name].std()
    assert GenomicLLMTokenizer.from_pretrained(keyed).name_keys == 16


def test_extend_text_pieces_appends_words_initialised_from_their_old_spelling(small_corpus, tmp_path):
    from genomicllm_kernel.codec import rank_text_pieces
    from genomicllm_kernel.grammar import parse_prompt
    from genomicllm_kernel.training import training_texts

    first = train(_cfg(small_corpus, tmp_path / "a", 1), progress=False)
    old_tok = GenomicLLMTokenizer.from_pretrained(first)
    texts = training_texts(Path(small_corpus) / "train.jsonl")
    want = rank_text_pieces(texts, old_tok.vocab, 8)
    assert len(want) == 8 and not set(want) & set(old_tok.vocab)
    cfg = _cfg(small_corpus, tmp_path / "e", 0)
    cfg.init_from, cfg.extend_text_pieces = str(first), 8
    grown = train(cfg, progress=False)
    tok = GenomicLLMTokenizer.from_pretrained(grown)
    assert [t for t in tok.vocab if t not in old_tok.vocab] == want
    assert all(tok.vocab[t] == i for t, i in old_tok.vocab.items())  # every old id kept
    a, g, name = load_file(first / "model.safetensors"), load_file(grown / "model.safetensors"), "model.embed_tokens.weight"
    n = a[name].shape[0]
    assert g[name].shape[0] == n + 8 and torch.equal(g[name][:n], a[name])
    for piece in want:  # each new row is the mean of its old spelling's rows
        spelled = [old_tok.vocab[t] for t in old_tok.codec.text_tokens(piece)]
        assert len(spelled) > 1 and torch.allclose(g[name][tok.vocab[piece]], a[name][spelled].mean(0))
    # a text with the piece now reads it as one token, and decodes back to the same text
    text = "x" + want[0] + "y"
    assert want[0] in tok.codec.text_tokens(text) and tok.codec._join_text(tok.codec.text_tokens(text)) == text
    prompt = parse_prompt("symbol = BRCA1, description =")
    assert tok.decode_answer(prompt, tok.encode_answer(prompt, "a" + want[0])) == "a" + want[0]


def test_non_finite_steps_are_skipped_and_lasting_divergence_stops(small_corpus, tmp_path, monkeypatch):
    from genomicllm_kernel import training

    real, calls = torch.nn.utils.clip_grad_norm_, []

    def one_bad_step(params, max_norm):
        calls.append(1)
        norm = real(params, max_norm)
        return torch.tensor(float("nan")) if len(calls) == 2 else norm

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", one_bad_step)
    ckpt = train(_cfg(small_corpus, tmp_path / "a", 4), progress=False)
    assert '"skipped_steps": 1' in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()[-1]
    assert all(torch.isfinite(v).all() for v in load_file(ckpt / "model.safetensors").values())
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, max_norm: torch.tensor(float("nan")))
    monkeypatch.setattr(training, "MAX_BAD_STEPS", 3)
    with pytest.raises(training.TrainingDivergedError, match="not finite for 3 steps in a row"):
        train(_cfg(small_corpus, tmp_path / "b", 10), progress=False)


def test_augmented_views_keep_the_answer():
    """Reverse complements for strand-symmetric tasks, item orders for reading comprehension; other
    tasks are never changed (a promoter or splice site has a strand)."""
    import random

    from genomicllm_kernel.grammar import parse_prompt
    from genomicllm_kernel.training import views

    rng = random.Random(0)
    tf = parse_prompt("AACCGGTTTG, transcription factor binding site =")
    assert [v.sequence for v in views(tf, rng, 6)] == ["AACCGGTTTG", "CAAACCGGTT"]
    # frames: both strands, 1 and 2 nt trimmed, so every 3-mer chunking of a motif is seen
    assert [v.sequence for v in views(tf, rng, 6, frames=True)] == ["AACCGGTTTG", "CAAACCGGTT", "ACCGGTTTG", "CCGGTTTG", "AAACCGGTT", "AACCGGTT"]
    assert len(views(parse_prompt("AACCGGTTTG, core promoter ="), rng, 6, frames=True)) == 1
    assert len(views(parse_prompt("AACCGGTTTG, core promoter ="), rng, 6)) == 1
    rc = parse_prompt("symbol = OCLN, chromosome = 5, map location = 5q13.2, reading comprehension: map location =")
    out = views(rc, rng, 6)
    assert len(out) == 6 and len({v.items for v in out}) == 6 and all(set(v.items) == set(rc.items) for v in out)
    from genomicllm_kernel.codec import HybridCodec
    from genomicllm_kernel.grammar import AnnotationItem

    places = []
    for v in out:
        k = HybridCodec.pointed_item(v, "5q13.2")
        item = [i for i in v.items if isinstance(i, AnnotationItem)][k - 1]
        assert (item.name, item.value) == ("map location", "5q13.2")
        places.append(k)
    assert len(set(places)) > 1  # the pointer answer moves with the item


def test_augmented_bank_samples_views(small_corpus, tmp_path):
    import random

    from genomicllm_kernel.training import ExampleBank, build_tokenizer

    cfg = _cfg(small_corpus, tmp_path / "a", 2)
    tok = build_tokenizer(cfg)
    plain = ExampleBank(tok, small_corpus / "train.jsonl", 160, {})
    aug = ExampleBank(tok, small_corpus / "train.jsonl", 160, {}, augment=True, orders=4)
    assert all(len(v) == 1 for ex in plain.examples.values() for v in ex)
    if "tf_binding" in aug.examples:
        assert all(len(v) == 2 for v in aug.examples["tf_binding"])
    assert any(len(v) > 1 for v in aug.examples.get("reading_comprehension", []))
    framed = ExampleBank(tok, small_corpus / "train.jsonl", 160, {}, augment=True, orders=4, frames=True)
    if "tf_binding" in framed.examples:
        assert all(len(v) == 6 for v in framed.examples["tf_binding"])
    assert all(len(v) == 1 for v in aug.examples.get("promoter", []))
    rows = aug.sample(random.Random(0), 200, 160)
    assert all(len(r) == 4 for r in rows)
    # exclude_sources drops one source's rows and keeps the task's others
    import json

    from genomicllm_kernel.grammar import parse_prompt

    sources = {}
    for line in open(small_corpus / "train.jsonl"):
        ex = json.loads(line)
        prompt = parse_prompt(ex["prompt"])
        if len(tok.encode_prompt(prompt)) + len(tok.encode_answer(prompt, ex["answer"])) <= 160:
            sources.setdefault(ex["task"], []).append(ex["source"])
    task = next(t for t, v in sorted(sources.items()) if len(set(v)) > 1)
    dropped = sorted(set(sources[task]))[0]
    without = ExampleBank(tok, small_corpus / "train.jsonl", 160, {}, exclude_sources=(dropped,))
    kept = sum(not s.startswith(dropped) for s in sources[task])
    assert len(without.examples[task]) == kept < len(plain.examples[task])


def test_every_config_in_the_repo_loads_and_its_stages_chain():
    """The configs README and release_model.sh name must load (no unknown keys), use known
    architectures and marker layouts, and a stage's init_from must be another config's run."""
    from genomicllm_kernel.codec import ITEM_MARKER_LAYOUTS
    from genomicllm_kernel.model import ARCHITECTURES

    configs = {f.name: TrainConfig.load(f) for f in sorted((ROOT / "configs").glob("*.toml"))}
    assert {"gpu.toml", "cpu_finetune.toml", "cpu_stage3.toml", "tiny.toml"} <= set(configs)
    outs = {c.out for c in configs.values()}
    for name, cfg in configs.items():
        assert cfg.architecture in ARCHITECTURES and cfg.item_marker in ("", *ITEM_MARKER_LAYOUTS), name
        if cfg.init_from:
            assert Path(cfg.init_from).name == "checkpoint" and Path(cfg.init_from).parent.as_posix() in outs, name


def test_a_trainable_composition_layer_leaves_every_other_weight_and_answer_unchanged(small_corpus, tmp_path):
    """Stage 8's recipe (configs/cpu_stage8_adapter.toml): over a frozen model only the composition
    layer trains, so generation answers are bit-identical and only classification can move."""
    from genomicllm_kernel.engine import GenomicLLM
    from genomicllm_kernel.registry import TASKS

    first = train(_cfg(small_corpus, tmp_path / "a", 2), progress=False)
    cfg = _cfg(small_corpus, tmp_path / "b", 4)
    cfg.init_from, cfg.composition, cfg.trainable, cfg.lr = str(first), [4, 5], ["composition."], 0.05
    cfg.task_weights = {t: (1.0 if task.labels else 0.0) for t, task in TASKS.items()}
    adapted = train(cfg, progress=False)
    a, b = load_file(first / "model.safetensors"), load_file(adapted / "model.safetensors")
    assert set(b) - set(a) == {"composition.weight"}
    assert b["composition.weight"].abs().sum() > 0
    for k in a:
        assert torch.equal(a[k], b[k]), k
    before, after = GenomicLLM.from_pretrained(first, "torch"), GenomicLLM.from_pretrained(adapted, "torch")
    generation = [
        "ACGTTGCAGGCTTAACG, reverse complementary sequence =",
        "ATGGCTTGCAAATAG, protein sequence =",
        "symbol = BRCA1, chromosome = 17, reading comprehension: chromosome =",
        "GGCCAATATA, GC content =",
    ]
    assert [x.answer for x in before.ask(generation)] == [x.answer for x in after.ask(generation)]
    label = "TTGACATATAAAGGCGCGCGTATAAT" * 3 + ", core promoter ="
    p0, p1 = before.ask([label])[0].labels, after.ask([label])[0].labels
    assert p0 != p1  # the classification answer is the one that moved

    cfg = _cfg(small_corpus, tmp_path / "c", 1)
    cfg.trainable = ["no_such_layer."]
    with pytest.raises(Exception, match="names no parameter"):
        train(cfg, progress=False)


def test_the_frozen_prefix_shortcut_gives_the_full_pass_loss_and_gradient(small_corpus, tmp_path):
    from genomicllm_kernel.registry import TASKS
    from genomicllm_kernel.composition_model import per_question_blocks
    from genomicllm_kernel.training import Trainer, _collate, weighted_loss

    first = train(_cfg(small_corpus, tmp_path / "a", 1), progress=False)
    cfg = _cfg(small_corpus, tmp_path / "b", 1)
    cfg.init_from, cfg.composition, cfg.trainable = str(first), [4, 5], ["composition"]
    cfg.composition_blocks, cfg.composition_head_rank = "per_question", 4  # stage 8b's per-question head
    cfg.task_weights = {t: (1.0 if task.labels else 0.0) for t, task in TASKS.items()}
    trainer = Trainer(cfg, progress=False)
    assert trainer.prefix_is_frozen and trainer.model.config.composition_blocks == per_question_blocks()
    torch.nn.init.normal_(trainer.model.composition.weight, std=0.1)
    torch.nn.init.normal_(trainer.model.composition_head[1].weight, std=0.1)
    batch = trainer.next_batch(trainer.max_len())
    ids, mask, labels, pos = _collate(batch, trainer.tokenizer.pad_token_id)
    blocks = trainer.model.config.composition_blocks
    feats = {"dna_features": torch.from_numpy(trainer.tokenizer.codec.composition_features([p for _, p, _, _ in batch], (4, 5), blocks))}
    weights = torch.ones(len(trainer.tokenizer.codec.vocab))
    grads = []
    for shortcut in (False, True):
        trainer.model.zero_grad(set_to_none=True)
        if shortcut:
            loss = trainer.loss_after_frozen_prefix(ids, mask, labels, pos, feats, weights, batch)
        else:
            loss = weighted_loss(trainer.model(input_ids=ids, attention_mask=mask, position_ids=pos, **feats).logits, labels, weights)
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for n, p in trainer.model.named_parameters() if n.startswith("composition")]))
    trainer.close()
    (full, g_full), (short, g_short) = grads
    assert abs(full - short) < 1e-5 and len(g_full) == 3 and all(g.abs().sum() > 0 for g in g_full)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g_full, g_short))


def test_cached_head_stage_refits_only_the_head_and_reuses_its_cache(small_corpus, tmp_path, monkeypatch):
    """Stage 8c's recipe (configs/cpu_stage8c_fit.toml): over a stage-8b-like model, method =
    "cached_head" fits the per-question head on cached <ans> states with wider k-mers; every other
    tensor is the init model's (so are generation answers), and a second fit reuses the states."""
    from genomicllm_kernel import head_fit
    from genomicllm_kernel.engine import GenomicLLM
    from genomicllm_kernel.registry import TASKS

    first = train(_cfg(small_corpus, tmp_path / "a", 1), progress=False)
    cfg = _cfg(small_corpus, tmp_path / "b", 1)
    cfg.init_from, cfg.composition, cfg.trainable = str(first), [4, 5], ["composition"]
    cfg.composition_blocks, cfg.composition_head_rank = "per_question", 4
    cfg.task_weights = {t: (1.0 if task.labels else 0.0) for t, task in TASKS.items()}
    headed = train(cfg, progress=False)
    fit = _cfg(small_corpus, tmp_path / "c", 1)
    fit.init_from, fit.method, fit.composition, fit.composition_head_rank = str(headed), "cached_head", [3, 4, 5, 6], 4
    fit.task_weights, fit.head_fit_examples, fit.head_fit_epochs = cfg.task_weights, 200, 5
    refit = train(fit, progress=False)
    a, b = load_file(headed / "model.safetensors"), load_file(refit / "model.safetensors")
    assert set(a) == set(b)
    for k in a:
        if not k.startswith("composition"):
            assert torch.equal(a[k], b[k]), k
    from genomicllm_kernel.composition_model import per_question_blocks

    assert b["composition_head.0.weight"].shape[1] == len(per_question_blocks()) * (64 + 256 + 1024 + 4096)
    assert torch.equal(b["composition.weight"][:, 64 : 64 + 1280], a["composition.weight"])
    assert not b["composition.weight"][:, :64].any() and not b["composition.weight"][:, 64 + 1280 :].any()
    epochs = [json.loads(x) for x in (tmp_path / "c" / "train_log.jsonl").read_text().splitlines()]
    assert epochs and all({"step", "loss", "held_out_loss", "tokens_seen"} <= set(e) for e in epochs)
    generation = ["ACGTTGCAGGCTTAACG, reverse complementary sequence =", "GGCCAATATA, GC content ="]
    before, after = GenomicLLM.from_pretrained(headed, "torch"), GenomicLLM.from_pretrained(refit, "torch")
    assert [x.answer for x in before.ask(generation)] == [x.answer for x in after.ask(generation)]

    def no_forward_passes(*args, **kwargs):
        raise AssertionError("the cached states should have been reused")

    real_answer_states = head_fit.answer_states
    monkeypatch.setattr(head_fit, "answer_states", no_forward_passes)
    fit.composition_head_rank = 2  # other head settings: the same states
    train(fit, progress=False)
    # the convex solver (head_convex.py) over the same states, choosing where the thirds go
    convex = dataclasses.replace(fit, out=str(tmp_path / "e"), head_fit_solver="convex", composition_head_rank=16, head_fit_ridges=[1.0])
    convex.composition_bins, convex.composition_bin_ks, convex.head_fit_reuse = 3, [3], [str(tmp_path / "c" / "states.npz")]
    written = train(convex, progress=False)
    fitted = json.loads((written / "train_config.json").read_text())["fitted"]
    config = json.loads((written / "config.json").read_text())
    assert fitted["solver"] == "convex" and set(fitted["blocks"]) <= set(config["composition_blocks"])
    reads_thirds = sorted(b for b, c in fitted["blocks"].items() if c["part"] == "positional")
    assert sorted(config.get("composition_bin_blocks") or []) == reads_thirds and bool(config.get("composition_bins")) == bool(reads_thirds)
    assert [x.answer for x in GenomicLLM.from_pretrained(written, "torch").ask(generation)] == [x.answer for x in before.ask(generation)]
    with pytest.raises(Exception, match='head_fit_solver must be "adamw" or "convex"'):
        train(dataclasses.replace(convex, head_fit_solver="sgd"), progress=False)

    # head_keep: refit one block and keep the others from the convex fit above. Each block's fit reads
    # its own rows only, so the refitted block comes out as the full fit made it, and so does the model
    biggest = max(fitted["blocks"], key=lambda name: fitted["blocks"][name]["rows"])
    one = dataclasses.replace(convex, out=str(tmp_path / "k"), head_fit_blocks=[biggest], head_fit_keep=str(written))
    kept = train(one, progress=False)
    whole, part = load_file(written / "model.safetensors"), load_file(kept / "model.safetensors")
    # equal but for the float32 rounding of the label basis the refitted block is written against
    assert set(whole) == set(part) and all(torch.allclose(whole[k], part[k], rtol=1e-5, atol=1e-6) for k in whole)
    assert all(torch.equal(whole[k], part[k]) for k in whole if k != "composition_head.0.weight")
    refitted = json.loads((kept / "train_config.json").read_text())["fitted"]
    assert refitted["examples"] == fitted["blocks"][biggest]["rows"] < fitted["examples"]
    assert [n for n, c in refitted["blocks"].items() if "kept_from" not in c] == [biggest]
    assert json.loads((kept / "config.json").read_text()) == config
    with pytest.raises(Exception, match="head_fit_blocks and head_fit_keep go together"):
        train(dataclasses.replace(one, head_fit_keep=""), progress=False)
    with pytest.raises(Exception, match="not composition blocks"):
        train(dataclasses.replace(one, head_fit_blocks=["no such question"]), progress=False)
    with pytest.raises(Exception, match="has no per-question composition head"):
        train(dataclasses.replace(one, head_fit_keep=str(first)), progress=False)
    fit.method = "adam"
    with pytest.raises(Exception, match='method must be "sgd" or "cached_head"'):
        train(fit, progress=False)

    # a wider selection (stage 8d over 8c) runs the model only on the rows no earlier cache has
    computed = []

    def counted(model, codec, encoded, **kw):
        computed.append(len(encoded))
        return real_answer_states(model, codec, encoded, **kw)

    monkeypatch.setattr(head_fit, "answer_states", counted)
    wider = dataclasses.replace(
        fit, method="cached_head", out=str(tmp_path / "d"), head_fit_examples=100_000, head_fit_reuse=[str(tmp_path / "c" / "states.npz")]
    )
    train(wider, progress=False)
    old, new = np.load(tmp_path / "c" / "states.npz"), np.load(tmp_path / "d" / "states.npz")

    def by_prompt(z):
        cuts = np.concatenate([[0], np.cumsum(z["lengths"])])
        return {z["ids"][cuts[i] : cuts[i + 1]].tobytes(): z["states"][i] for i in range(len(z["lengths"]))}

    old_states, new_states = by_prompt(old), by_prompt(new)
    assert len(new_states) > len(old_states) and set(old_states) <= set(new_states)
    assert sum(computed) == len(new["lengths"]) - len(old["lengths"])
    assert all(np.array_equal(old_states[k], new_states[k]) for k in old_states)
    # a partial refit on a machine without the earlier caches runs the model on its block's rows only,
    # and fits the same head as the refit that reused the full cache
    computed.clear()
    fresh = train(dataclasses.replace(one, out=str(tmp_path / "f"), head_fit_reuse=[]), progress=False)
    assert sum(computed) == refitted["examples"]
    again = load_file(fresh / "model.safetensors")
    assert set(again) == set(part) and all(torch.allclose(again[k], part[k], rtol=1e-4, atol=1e-5) for k in part)
    partial = np.load(tmp_path / "f" / "states.npz")
    assert np.isnan(partial["states"][:, 0]).sum() == len(partial["lengths"]) - refitted["examples"] > 0
    # ...and a full fit never reads that cache as its own, nor reuses its missing rows
    assert str(partial["key"]) != str(np.load(tmp_path / "c" / "states.npz")["key"])
    cuts = np.concatenate([[0], np.cumsum(partial["lengths"])])
    rows = [(partial["ids"][cuts[i] : cuts[i + 1]].tolist(), "promoter", 0, "") for i in range(len(cuts) - 1)]
    reuse = dataclasses.replace(fit, head_fit_reuse=[str(tmp_path / "f" / "states.npz")])
    states, _ = head_fit._reused_states(reuse, rows, partial["states"].shape[1])
    done = ~np.isnan(partial["states"][:, 0])
    assert np.array_equal(states[done], partial["states"][done]) and np.isnan(states[:, 0]).any()
    wider.init_from = str(first)  # a cache over other weights is refused, not silently mixed in
    with pytest.raises(Exception, match="cached over other weights"):
        head_fit._reused_states(wider, [([1, 2, 3], "promoter", 0, "")], 8)


def test_head_fit_rows_of_split_tasks_come_from_headfit_only(small_corpus, tmp_path):
    """``head_fit_split_tasks``: those tasks' head rows are headfit.jsonl's (tiles the language model
    never trains on), every other task's are train.jsonl's, and a corpus without the file is refused."""
    from genomicllm_kernel import head_fit
    from genomicllm_kernel.codec import HybridCodec
    from genomicllm_kernel.grammar import parse_prompt

    codec = HybridCodec.from_pretrained(ROOT / "models" / "default")
    cfg = _cfg(small_corpus, tmp_path / "a", 1)
    cfg.head_fit_split_tasks, cfg.head_fit_examples = ["orf"], 100_000
    held = [json.loads(x) for x in (small_corpus / "headfit.jsonl").read_text().splitlines()]
    assert held and {r["split"] for r in held} == {"headfit"} and {r["task"] for r in held} == {"orf", "sequence_direction", "gene_biotype"}
    encoded = lambda rows: {tuple(codec.encode_prompt(parse_prompt(r["prompt"]))) for r in rows}  # noqa: E731
    train_rows = [json.loads(x) for x in (small_corpus / "train.jsonl").read_text().splitlines()]
    orf_held = encoded([r for r in held if r["task"] == "orf"])
    orf_train = encoded([r for r in train_rows if r["task"] == "orf"])
    picked = head_fit.select_examples(cfg, codec)
    orf = {tuple(e) for e, task, *_ in picked if task == "orf"}
    assert orf and orf <= orf_held and not orf & orf_train
    assert any(task == "sequence_direction" for _, task, *_ in picked)  # not named: from train.jsonl
    # a named task's rows carry their transcript (the unit its held-out tenth is drawn by), others none
    assert all(r[4].startswith("chr") for r in picked if r[1] == "orf") and not any(r[4] for r in picked if r[1] != "orf")
    for task in ("sequence_direction", "gene_biotype"):  # in headfit.jsonl too, but not named: train.jsonl's rows
        assert {tuple(e) for e, t, *_ in picked if t == task} <= encoded([r for r in train_rows if r["task"] == task])
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "train.jsonl").write_text((small_corpus / "train.jsonl").read_text())
    cfg.data = str(bare)
    with pytest.raises(Exception, match="headfit.jsonl not found"):
        head_fit.select_examples(cfg, codec)


def test_sorted_row_order_makes_the_draws_independent_of_the_file_order(small_corpus, tmp_path):
    """``head_fit_row_order = "sorted"``: a corpus rebuilt with its rows in another order (rows added
    anywhere reshuffle train.jsonl) gives every block the same rows in the same order, so the same
    capped sample and held-out tenth; train.jsonl's own order ("file", the default) does not."""
    import random

    from genomicllm_kernel import head_fit
    from genomicllm_kernel.codec import HybridCodec

    codec = HybridCodec.from_pretrained(ROOT / "models" / "default")
    lines = (small_corpus / "train.jsonl").read_text().splitlines()
    random.Random(5).shuffle(lines)
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    (shuffled / "train.jsonl").write_text("\n".join(lines) + "\n")
    cfg = _cfg(small_corpus, tmp_path / "a", 1)
    cfg.head_fit_examples = 20  # small blocks' rows are all taken; larger ones are drawn
    picks = {}
    for order in ("file", "sorted"):
        for data in (small_corpus, shuffled):
            cfg.data, cfg.head_fit_row_order = str(data), order
            picks[order, data.name] = [(tuple(e), task, label, block) for e, task, label, block, _ in head_fit.select_examples(cfg, codec)]
    assert picks["sorted", "small"] == picks["sorted", "shuffled"]
    assert picks["file", "small"] != picks["file", "shuffled"]
    assert sorted(picks["sorted", "small"]) != sorted(picks["file", "small"])  # the cap drew other rows, from the sorted order
    cfg.head_fit_row_order = "random"
    with pytest.raises(Exception, match='head_fit_row_order must be "file" or "sorted"'):
        head_fit.select_examples(cfg, codec)


def test_a_block_with_its_own_cap_takes_more_rows_and_every_other_block_keeps_its_rows(small_corpus, tmp_path):
    """``head_fit_examples_by_block``: the named block gets up to its own cap (all its rows here), each
    other block exactly the rows the plain cap gave it (the shared draw is unchanged), and an unknown
    block name is refused."""
    from collections import Counter

    from genomicllm_kernel import head_fit
    from genomicllm_kernel.codec import HybridCodec

    codec = HybridCodec.from_pretrained(ROOT / "models" / "default")
    cfg = _cfg(small_corpus, tmp_path / "a", 1)
    cfg.head_fit_examples = 10**9
    everything = Counter(r[3] for r in head_fit.select_examples(cfg, codec))
    big = [b for b, n in everything.most_common() if n > 4][:2]
    assert len(big) == 2
    cfg.head_fit_examples = 4
    plain = head_fit.select_examples(cfg, codec)
    cfg.head_fit_examples_by_block = {big[0]: 10**9}
    wide = head_fit.select_examples(cfg, codec)
    by_block = lambda rows: {b: [tuple(r[0]) for r in rows if r[3] == b] for b in everything}  # noqa: E731
    p, w = by_block(plain), by_block(wide)
    assert len(p[big[0]]) == 4 and len(w[big[0]]) == everything[big[0]]
    assert all(p[b] == w[b] for b in everything if b != big[0])
    cfg.head_fit_examples_by_block = {big[0]: 5}
    assert len(by_block(head_fit.select_examples(cfg, codec))[big[0]]) == 5
    cfg.head_fit_examples_by_block = {"no such block": 5}
    with pytest.raises(Exception, match="no such block"):
        head_fit.select_examples(cfg, codec)


def test_offset_grid_scales_split_blocks_by_choice_and_fixed_blocks_by_the_config():
    """head_fit.offset_grid: the blocks of head_fit_split_tasks try head_fit_offset_scales; a block named
    in head_fit_offset_fixed is read at its one factor; a name that is no block, a split block, or a
    factor outside 0-1 is refused."""
    from genomicllm_kernel import head_fit

    names = ["open reading frame", "core promoter", "promoter"]
    cfg = TrainConfig()
    assert head_fit.offset_grid(cfg, names) is None
    cfg.head_fit_split_tasks, cfg.head_fit_offset_scales = ["orf"], [0.0, 0.5, 1.0]
    cfg.head_fit_offset_fixed = {"core promoter": 0.0}
    assert head_fit.offset_grid(cfg, names) == {"open reading frame": (0.0, 0.5, 1.0), "core promoter": (0.0,)}
    cfg.head_fit_offset_choice = ["promoter"]  # a taught block tried at x1 and x0 on one held-out draw
    assert head_fit.offset_grid(cfg, names)["promoter"] == (1.0, 0.0)
    for choice in (["enhancer"], ["core promoter"], ["open reading frame"]):
        cfg.head_fit_offset_choice = choice
        with pytest.raises(Exception, match="not a composition block|already chosen"):
            head_fit.offset_grid(cfg, names)
    cfg.head_fit_offset_choice = []
    for fixed, words in (
        ({"enhancer": 0.0}, "not a composition block"),
        ({"open reading frame": 0.0}, "held-out rows choose"),
        ({"promoter": 2}, "from 0 to 1"),
    ):
        cfg.head_fit_offset_fixed = fixed
        with pytest.raises(Exception, match=words):
            head_fit.offset_grid(cfg, names)
