#!/usr/bin/python3
"""PyTorch peer for `npm run bench:train`: the same GPT-2 (scripts/gpt2_torch.py), batch and
optimizer, trained on the same tokens, timed the same way. Prints one JSON line.

    /usr/bin/python3 scripts/bench_torch.py --data RUN/data/train.bin --vocab 10000 \
        --n-embd 256 --n-layer 4 --n-head 8 --context 128 --batch 8 --steps 20 --threads 1

Refuses to run (exit 3, with the reason) when torch is not using OpenBLAS: Debian's torch falls
back to the reference BLAS without libopenblas0-pthread and is ~25x slower, which would make any
comparison meaningless.
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_torch import GPT2, GPT2Config  # noqa: E402


def loaded_blas():
    """Path of the BLAS library actually mapped into this process (after a matmul ran)."""
    torch.randn(64, 64) @ torch.randn(64, 64)
    with open("/proc/self/maps", encoding="utf-8") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.split()[-1].lower()}
    return sorted(libs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--n-embd", type=int, required=True)
    ap.add_argument("--n-layer", type=int, required=True)
    ap.add_argument("--n-head", type=int, required=True)
    ap.add_argument("--context", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    blas = loaded_blas()
    if not any("openblas" in p for p in blas):
        print(json.dumps({"error": f"torch is not using OpenBLAS (loaded: {blas or 'none found'}); "
                                   "install libopenblas0-pthread for a fair comparison"}))
        sys.exit(3)

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=args.vocab, n_positions=args.context, n_embd=args.n_embd,
                     n_layer=args.n_layer, n_head=args.n_head)
    model = GPT2(cfg)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    tokens = np.fromfile(args.data, dtype=np.uint16).astype(np.int64)
    B, T = args.batch, args.context
    if len(tokens) < B * (T + 1) + 1:
        print(json.dumps({"error": f"{args.data} has too few tokens"}))
        sys.exit(2)
    rng = np.random.default_rng(0)

    def batch():
        starts = rng.integers(0, len(tokens) - T - 1, size=B)
        x = np.stack([tokens[s:s + T] for s in starts])
        y = np.stack([tokens[s + 1:s + T + 1] for s in starts])
        return torch.from_numpy(x), torch.from_numpy(y)

    losses = []
    t_start = None
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            t_start = time.perf_counter()
        x, y = batch()
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    elapsed = time.perf_counter() - t_start
    print(json.dumps({
        "threads": args.threads,
        "tokens_per_s": args.steps * B * T / elapsed,
        "ms_per_step": 1000 * elapsed / args.steps,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "params": sum(p.numel() for p in model.parameters()),
        "blas": blas,
        "torch": torch.__version__,
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }))


if __name__ == "__main__":
    main()
