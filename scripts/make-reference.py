#!/usr/bin/python3
"""Generate test/fixtures/gpt-reference.safetensors: a PyTorch ground truth
for the TypeScript GPT-2 engine (forward, loss, backward, grad clipping and
two AdamW steps), and the gradient of the mixture loss the engine trains with
(src/ml/countsOdds.ts): mean over targets of -ln(p_gpt(y) + odds).

Run by hand:  /usr/bin/python3 scripts/make-reference.py

Deterministic: fixed seed, float32, one thread. The tiny model has T < n_positions
(so wpe rows past T must get zero gradient) and V not a multiple of 4 (so no
vectorised kernel can silently assume padding).
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_torch import GPT2, GPT2Config, save_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures",
                   "gpt-reference.safetensors")

CONFIG = GPT2Config(vocab_size=67, n_positions=16, n_embd=32, n_layer=2, n_head=4)
B, T = 2, 12
OPT = dict(lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, max_grad_norm=0.05)
SEED = 1234


def init_reference_weights(model):
    """Bigger-than-GPT-2 random values so every gradient is clearly nonzero."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("wte.weight", "wpe.weight")):
                p.copy_(0.2 * torch.randn_like(p))
            elif ".ln_" in name and name.endswith(".weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:  # the four matrices per layer
                p.copy_(0.1 * torch.randn_like(p))


def make_optimizer(model):
    # Weight decay only on tensors with dim >= 2 (wte, wpe, the 4 matrices per
    # layer); biases and LayerNorm params are not decayed.
    params = list(model.parameters())
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": OPT["weight_decay"]},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=OPT["lr"], betas=(OPT["beta1"], OPT["beta2"]), eps=OPT["eps"], foreach=False,
    )


def snapshot(model, prefix, grads=False):
    return {f"{prefix}.{n}": (p.grad if grads else p).detach().clone()
            for n, p in model.named_parameters()}


def train_step(model, opt, ids, targets):
    """One forward/backward/clip/step; returns (logits, loss, pre-clip grad norm)."""
    opt.zero_grad(set_to_none=True)
    logits, loss = model(ids, targets)
    loss.backward()
    grads = snapshot(model, "grad", grads=True)
    # clip_grad_norm_ returns the norm *before* clipping; it scales every
    # gradient by max_norm / (norm + 1e-6) when that is below 1.
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), OPT["max_grad_norm"])
    assert norm.item() > OPT["max_grad_norm"], "clip value must be below the grad norm"
    opt.step()
    return logits.detach(), loss.detach(), norm.detach(), grads


def mixture_grads(model, ids, targets, odds):
    """Gradients of the mixture loss at the current weights (the weights are not changed)."""
    import copy
    m = copy.deepcopy(model)
    logits, _ = m(ids, targets)
    p = torch.softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    loss = -torch.log(p + odds).mean()
    loss.backward()
    return loss.detach(), {f"mixgrad.{n}": q.grad.detach().clone() for n, q in m.named_parameters()}


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)

    model = GPT2(CONFIG)
    init_reference_weights(model)
    ids = torch.randint(0, CONFIG.vocab_size, (B, T))
    targets = torch.randint(0, CONFIG.vocab_size, (B, T))

    out = snapshot(model, "param")
    opt = make_optimizer(model)
    # The counts' odds of each target: none (0) to far ahead of the GPT (drawn after everything
    # above, so the other tensors are those of the fixture's first version).
    odds = torch.exp(2.0 * torch.randn(B, T) - 2.0)
    odds[:, ::4] = 0.0
    mix_loss, mix_grads = mixture_grads(model, ids, targets, odds)
    out.update(mix_grads)

    logits, loss, norm, grads = train_step(model, opt, ids, targets)
    out.update(grads)
    out.update(snapshot(model, "step1"))

    # Same batch again, same optimizer: exercises step-2 bias correction.
    _, loss2, norm2, grads2 = train_step(model, opt, ids, targets)
    # Step-2 gradients too, so the optimizer can be tested on torch's exact gradients: Adam's
    # first steps are ~sign(g), so entries with |g| near float32 noise are ill-conditioned.
    out.update({"grad2." + k[len("grad."):]: v for k, v in grads2.items()})
    out.update(snapshot(model, "step2"))

    out.update({
        "input_ids": ids.to(torch.int32),
        "targets": targets.to(torch.int32),
        "logits": logits,
        "loss": loss.reshape(1),
        "loss2": loss2.reshape(1),
        "grad_norm": norm.reshape(1),
        "grad_norm2": norm2.reshape(1),
        "odds": odds,
        "mix_loss": mix_loss.reshape(1),
    })
    metadata = {
        "config": json.dumps(CONFIG.to_hf_dict()),
        "optimizer": json.dumps(OPT),
        "generator": "scripts/make-reference.py",
        "torch_version": torch.__version__,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_safetensors(OUT, out, metadata)

    n_params = sum(p.numel() for p in model.parameters())
    print(f"wrote {os.path.relpath(OUT)} ({os.path.getsize(OUT)} bytes, {len(out)} tensors)")
    print(f"model: V={CONFIG.vocab_size} n_positions={CONFIG.n_positions} C={CONFIG.n_embd} "
          f"NH={CONFIG.n_head} L={CONFIG.n_layer}, {n_params} params; batch B={B} T={T}")
    print(f"loss  (step 1) = {loss.item():.6f}   grad_norm = {norm.item():.6f}")
    print(f"loss2 (step 2) = {loss2.item():.6f}   grad_norm2 = {norm2.item():.6f}")
    print(f"clip max_norm = {OPT['max_grad_norm']}   torch {torch.__version__}")


if __name__ == "__main__":
    main()
