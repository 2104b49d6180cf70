"""Training-speed benchmark: tokens/s of the default model shape and the fraction of the CPU's
measured matmul peak that training reaches (the bf16 peak when the config trains in bf16 autocast,
as the default does on CPUs with native bf16; the fp32 peak otherwise).

    python bench/train_speed.py [--config configs/default.toml] [--steps 30] [--seq 96]

Peak: a 1024x1024x1024 fp32 matmul on the same thread count (best of 20). Training FLOPs per token:
6 x (non-embedding parameters + output projection) for the dense layers plus 6 x layers x seq x
hidden for attention scores (the usual 6ND estimate); measured on synthetic batches of the given
length so that the number is reproducible.
"""

from __future__ import annotations

import argparse
import time

import torch


def matmul_peak(threads: int, dtype=torch.float32) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024, dtype=dtype), torch.randn(1024, 1024, dtype=dtype)
    best = 0.0
    for _ in range(20):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * 1024**3 / (time.perf_counter() - t))
    return best


def main() -> None:
    from genomicllm_kernel.model import build_model
    from genomicllm_kernel.tokenizer import GenomicLLMTokenizer
    from genomicllm_kernel.training import TrainConfig, use_bf16

    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/default.toml")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--seq", type=int, default=96)
    args = ap.parse_args()
    cfg = TrainConfig.load(args.config)
    torch.set_num_threads(cfg.threads)
    tok = GenomicLLMTokenizer(text_pieces=[f"w{i}" for i in range(cfg.text_vocab)])
    model = build_model(tok, cfg.hidden, cfg.layers, cfg.heads, cfg.ffn, cfg.context)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(10, len(tok), (cfg.batch_size, args.seq))
    bf16 = use_bf16(cfg, "cpu")
    for step in range(args.steps + 3):
        if step == 3:
            t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    tokens_per_s = args.steps * ids.numel() / dt
    n_dense = sum(p.numel() for n, p in model.named_parameters() if "embed" not in n) + model.config.vocab_size * cfg.hidden
    flops_per_token = 6 * n_dense + 6 * cfg.layers * args.seq * cfg.hidden
    achieved = tokens_per_s * flops_per_token
    fp32_peak = matmul_peak(cfg.threads)
    peak = matmul_peak(cfg.threads, torch.bfloat16) if bf16 else fp32_peak
    print(
        f"| model | {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, batch {cfg.batch_size} x {args.seq} tokens, {cfg.threads} thread(s), {'bf16 autocast' if bf16 else 'fp32'} |"
    )
    print(f"| training throughput | {tokens_per_s:,.0f} tokens/s |")
    print(f"| achieved | {achieved / 1e9:.1f} GFLOP/s ({flops_per_token / 1e6:.1f} MFLOP per token) |")
    print(f"| fp32 matmul peak (1024^3, same threads) | {fp32_peak / 1e9:.1f} GFLOP/s |")
    if bf16:
        print(f"| bf16 matmul peak (1024^3, same threads) | {peak / 1e9:.1f} GFLOP/s |")
    print(f"| fraction of peak | {achieved / peak:.0%} |")


if __name__ == "__main__":
    main()
