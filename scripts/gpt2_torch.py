#!/usr/bin/python3
"""Reference GPT-2 in PyTorch for Workspace LM checkpoints.

This is the Python twin of the TypeScript engine: same architecture, same
tensor names and layouts (Hugging Face GPT-2), so a checkpoint written by the
extension (config.json + model.safetensors) loads here and gives the same
logits. It needs only torch, numpy and the standard library -- no
`transformers`, no `safetensors` package.

Usage:
    /usr/bin/python3 scripts/gpt2_torch.py logits --checkpoint DIR --ids 1,2,3
    /usr/bin/python3 scripts/gpt2_torch.py logits --checkpoint DIR --ids-file ids.json

Prints {"logits": [[V floats] per position]} as one line of JSON. The floats
are the exact float32 values (written as doubles), so a consumer can compare
bit-for-bit if it wants to.
"""

import argparse
import json
import math
import os
import struct
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class CheckpointError(ValueError):
    """A checkpoint or safetensors file that does not match what we expect."""


# --------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length N, N bytes of JSON header,
# then the raw little-endian tensor data. Offsets are relative to the data.
# --------------------------------------------------------------------------

# safetensors dtype name -> numpy dtype (explicitly little-endian).
_NP_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
    # numpy has no bfloat16; we read the raw 16 bits and widen to float32.
    "BF16": np.dtype("<u2"),
}
_DTYPE_NAMES = {
    np.dtype(v).newbyteorder("="): k for k, v in _NP_DTYPES.items() if k != "BF16"
}


def _to_torch(arr, dtype_name):
    if dtype_name == "BF16":
        # bfloat16 is the top half of a float32.
        return torch.from_numpy((arr.astype(np.uint32) << 16).view(np.float32))
    if dtype_name == "U16":
        # torch 1.13 has no uint16; int32 holds every uint16 value exactly.
        return torch.from_numpy(arr.astype(np.int32))
    return torch.from_numpy(arr.astype(arr.dtype.newbyteorder("=")))


def load_safetensors(path):
    """Read a .safetensors file -> ({name: torch.Tensor}, {str: str} metadata)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise CheckpointError(f"{path}: too short to be a safetensors file")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if 8 + header_len > len(blob):
        raise CheckpointError(f"{path}: header length {header_len} exceeds file size {len(blob)}")
    try:
        header = json.loads(blob[8 : 8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: header is not valid JSON: {e}") from None
    data = memoryview(blob)[8 + header_len :]

    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, info in header.items():
        dtype_name = info.get("dtype")
        if dtype_name not in _NP_DTYPES:
            raise CheckpointError(
                f"{path}: tensor {name!r} has unknown dtype {dtype_name!r} "
                f"(supported: {', '.join(sorted(_NP_DTYPES))})"
            )
        np_dtype = _NP_DTYPES[dtype_name]
        shape = [int(d) for d in info["shape"]]
        begin, end = info["data_offsets"]
        count = math.prod(shape)
        if not (0 <= begin <= end <= len(data)) or end - begin != count * np_dtype.itemsize:
            raise CheckpointError(
                f"{path}: tensor {name!r} data_offsets [{begin}, {end}] do not fit "
                f"shape {shape} of {dtype_name} in {len(data)} data bytes"
            )
        arr = np.frombuffer(data[begin:end], dtype=np_dtype, count=count).reshape(shape)
        tensors[name] = _to_torch(arr, dtype_name)
    return tensors, metadata


def save_safetensors(path, tensors, metadata=None):
    """Write {name: torch.Tensor | np.ndarray} (+ optional {str: str} metadata).

    Tensors are stored in the given order, back to back, so the data section
    has no holes (the official reader rejects holes).
    """
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"metadata must map str -> str, got {k!r}: {type(v).__name__}")
        header["__metadata__"] = dict(metadata)
    chunks, offset = [], 0
    for name, t in tensors.items():
        arr = t.detach().cpu().contiguous().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        dtype_name = _DTYPE_NAMES.get(arr.dtype.newbyteorder("="))
        if dtype_name is None:
            raise TypeError(f"tensor {name!r}: dtype {arr.dtype} cannot be stored in safetensors")
        raw = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype_name, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Pad with spaces so the data section starts 8-byte aligned.
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for raw in chunks:
            f.write(raw)


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

# GPT-2's layernorm epsilon (config.json's layer_norm_epsilon, also the default when it is absent).
# Must equal LAYERNORM_EPS in src/ml/constants.ts, which the TypeScript layers and the WASM kernels use.
LAYER_NORM_EPSILON = 1e-5


@dataclass
class GPT2Config:
    vocab_size: int
    n_positions: int
    n_embd: int
    n_layer: int
    n_head: int
    layer_norm_epsilon: float = LAYER_NORM_EPSILON

    @classmethod
    def from_dict(cls, d):
        """Build from an HF-style config.json dict; unrelated keys are ignored."""
        missing = [k for k in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head") if k not in d]
        if missing:
            raise CheckpointError(f"config is missing {', '.join(missing)}")
        act = d.get("activation_function", "gelu_new")
        if act not in ("gelu_new", "gelu_pytorch_tanh"):
            raise CheckpointError(f"config activation_function {act!r}: only the tanh GELU is supported")
        cfg = cls(
            vocab_size=int(d["vocab_size"]),
            n_positions=int(d["n_positions"]),
            n_embd=int(d["n_embd"]),
            n_layer=int(d["n_layer"]),
            n_head=int(d["n_head"]),
            layer_norm_epsilon=float(d.get("layer_norm_epsilon", LAYER_NORM_EPSILON)),
        )
        if cfg.n_embd % cfg.n_head != 0:
            raise CheckpointError(f"config n_embd {cfg.n_embd} is not divisible by n_head {cfg.n_head}")
        return cfg

    def to_hf_dict(self):
        """The config.json we write next to model.safetensors."""
        return {
            "model_type": "gpt2",
            "architectures": ["GPT2LMHeadModel"],
            "vocab_size": self.vocab_size,
            "n_positions": self.n_positions,
            "n_embd": self.n_embd,
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "activation_function": "gelu_new",
            "tie_word_embeddings": True,
        }


def gelu_tanh(x):
    # GPT-2's "gelu_new": the tanh approximation, written out so there is no
    # doubt about which variant we mean.
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


class Conv1D(nn.Module):
    """HF GPT-2's linear layer: weight is [in, out] and y = x @ W + b."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x):
        return x @ self.weight + self.bias


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = Conv1D(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = Conv1D(cfg.n_embd, cfg.n_embd)
        # Opt-in (train_torch.py sets it on GPUs): the same attention through PyTorch 2's fused
        # kernel. Off by default so the written-out version below is what gives our logits.
        self.fused = False

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
        # [B, T, C] -> [B, NH, T, hs]: head h owns columns h*hs:(h+1)*hs.
        q, k, v = (t.view(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, v))
        if self.fused:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)  # heads back in order
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c_fc = Conv1D(cfg.n_embd, 4 * cfg.n_embd)
        self.c_proj = Conv1D(4 * cfg.n_embd, cfg.n_embd)

    def forward(self, x):
        return self.c_proj(gelu_tanh(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    """GPT-2 LM with the head tied to wte; state_dict keys are the HF names."""

    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        # A ModuleDict named "transformer" gives "transformer.wte.weight" etc.
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
            wpe=nn.Embedding(cfg.n_positions, cfg.n_embd),
            h=nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)]),
            ln_f=nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon),
        ))
        for emb in (self.transformer.wte, self.transformer.wpe):
            nn.init.normal_(emb.weight, std=0.02)

    def forward(self, ids, targets=None):
        """ids: [B, T] int64 -> (logits [B, T, V], mean cross-entropy or None).

        Targets of -1 are ignored (padding: the mean is over the others), as in our engine.
        """
        T = ids.shape[1]
        if T > self.config.n_positions:
            raise ValueError(f"sequence length {T} exceeds n_positions {self.config.n_positions}")
        tr = self.transformer
        pos = torch.arange(T, device=ids.device)
        x = tr.wte(ids) + tr.wpe(pos)
        for block in tr.h:
            x = block(x)
        logits = tr.ln_f(x) @ tr.wte.weight.t()
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1)
        return logits, loss


def load_checkpoint(directory):
    """Load DIR/config.json + DIR/model.safetensors into a GPT2 (eval mode)."""
    with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
        cfg = GPT2Config.from_dict(json.load(f))
    tensors, _ = load_safetensors(os.path.join(directory, "model.safetensors"))
    model = GPT2(cfg)
    expected = model.state_dict()

    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if missing:
        raise CheckpointError(f"model.safetensors is missing tensors: {', '.join(missing)}")
    if unexpected:
        raise CheckpointError(f"model.safetensors has unexpected tensors: {', '.join(unexpected)}")
    for name, want in expected.items():
        got = tensors[name]
        if tuple(got.shape) != tuple(want.shape):
            raise CheckpointError(
                f"tensor {name!r} has shape {list(got.shape)}, config implies {list(want.shape)}"
            )
        if got.dtype != torch.float32:
            raise CheckpointError(f"tensor {name!r} has dtype {got.dtype}, expected float32 (F32)")
    model.load_state_dict(tensors, strict=True)
    return model.eval()


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def _parse_ids(args):
    if args.ids is not None:
        try:
            return [int(s) for s in args.ids.split(",") if s.strip()]
        except ValueError:
            raise CheckpointError(f"--ids must be comma-separated integers, got {args.ids!r}") from None
    with open(args.ids_file, encoding="utf-8") as f:
        ids = json.load(f)
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise CheckpointError(f"{args.ids_file}: expected a JSON array of integers")
    return ids


def cmd_logits(args):
    torch.set_num_threads(1)  # deterministic summation order
    model = load_checkpoint(args.checkpoint)
    ids = _parse_ids(args)
    cfg = model.config
    if not 1 <= len(ids) <= cfg.n_positions:
        raise CheckpointError(f"need 1..{cfg.n_positions} ids, got {len(ids)}")
    bad = [i for i in ids if not 0 <= i < cfg.vocab_size]
    if bad:
        raise CheckpointError(f"ids out of range [0, {cfg.vocab_size}): {bad}")
    with torch.no_grad():
        logits, _ = model(torch.tensor([ids], dtype=torch.long))
    # .tolist() turns each float32 into the double with the same value.
    json.dump({"logits": logits[0].tolist()}, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("logits", help="print logits for one sequence as JSON")
    p.add_argument("--checkpoint", required=True, help="dir with config.json + model.safetensors")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ids", help="comma-separated token ids, e.g. 1,2,3")
    src.add_argument("--ids-file", help="JSON file holding an array of token ids")
    p.set_defaults(func=cmd_logits)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (CheckpointError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
