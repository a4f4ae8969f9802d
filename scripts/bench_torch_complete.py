#!/usr/bin/python3
"""PyTorch peer for `npm run bench:complete`: replays the exact completion work recorded by the
TypeScript benchmark — same checkpoint, same prompt windows, same number of prefilled and decoded
tokens — with a KV cache, one thread, and prints per-request latencies as JSON.

    /usr/bin/python3 scripts/bench_torch_complete.py --checkpoint DIR --trace trace.json
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_torch import gelu_tanh, load_checkpoint  # noqa: E402


class KVModel:
    """GPT-2 forward over new tokens with a per-layer key/value cache (what a server would run)."""

    def __init__(self, model):
        self.m = model
        self.cfg = model.config
        self.reset()

    def reset(self):
        L = self.cfg.n_layer
        self.k = [None] * L
        self.v = [None] * L
        self.length = 0

    def truncate(self, n):
        self.k = [None if k is None else k[:, :, :n] for k in self.k]
        self.v = [None if v is None else v[:, :, :n] for v in self.v]
        self.length = n

    @torch.no_grad()
    def forward(self, ids):
        """ids: list of new token ids at positions length.. ; returns logits of the last one."""
        tr = self.m.transformer
        T = len(ids)
        C, NH = self.cfg.n_embd, self.cfg.n_head
        hs = C // NH
        pos = torch.arange(self.length, self.length + T)
        x = tr.wte(torch.tensor(ids)) + tr.wpe(pos)  # [T, C]
        for l, block in enumerate(tr.h):
            h = block.ln_1(x)
            q, k, v = block.attn.c_attn(h).split(C, dim=1)
            q, k, v = (t.view(T, NH, hs).transpose(0, 1).unsqueeze(0) for t in (q, k, v))  # [1,NH,T,hs]
            if self.k[l] is not None:
                k = torch.cat([self.k[l], k], dim=2)
                v = torch.cat([self.v[l], v], dim=2)
            self.k[l], self.v[l] = k, v
            S = k.shape[2]
            att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)  # [1,NH,T,S]
            mask = torch.ones(T, S, dtype=torch.bool).tril(diagonal=S - T)
            att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            y = (att @ v).squeeze(0).transpose(0, 1).reshape(T, C)
            x = x + block.attn.c_proj(y)
            x = x + block.mlp.c_proj(gelu_tanh(block.mlp.c_fc(block.ln_2(x))))
        self.length += T
        last = tr.ln_f(x[-1:])
        return (last @ tr.wte.weight.t())[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--trace", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_checkpoint(args.checkpoint)
    kv = KVModel(model)
    with open(args.trace, encoding="utf-8") as f:
        trace = json.load(f)
    out = []
    for req in trace:
        window, reused, generated, steps = req["window"], req["reused"], req["generated"], req["decodeSteps"]
        # Same state as ours before the request: the cache holds window[:reused].
        kv.reset()
        if reused > 0:
            kv.forward(window[:reused])
        t0 = time.perf_counter()
        logits = kv.forward(window[reused:])
        nxt = int(torch.argmax(logits))
        for i in range(steps):
            logits = kv.forward([generated[i]])
            nxt = int(torch.argmax(logits))
        out.append(1000 * (time.perf_counter() - t0))
    print(json.dumps({"ms": out, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
