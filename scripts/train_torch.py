#!/usr/bin/python3
"""Train the Workspace LM model with PyTorch, on one machine or many (DDP).

This script is copied into every bundle that `workspace-lm export` writes, next to
gpt2_torch.py (the model: GPT-2, pre-LN, tanh GELU, tied head, no dropout -- the same
network, tensor names and layouts as the TypeScript engine). The bundle holds:

    train.bin, val.bin   uint16 token ids (nanoGPT layout), files joined by <|endoftext|>
    meta.json            what the dataset is (vocab size, token counts, held-out files)
    config.json          Hugging Face GPT-2 config of the model
    tokenizer.json       Hugging Face tokenizers file (copied into every checkpoint)
    train_config.json    the workspace-lm run's hyperparameters (this script's defaults)
    model.safetensors    optional: the weights to continue from (absent: a fresh model)

It writes checkpoints in workspace-lm's layout, which `workspace-lm import OUT` installs
as the served model:

    OUT/checkpoints/step-NNNNNNN/{model.safetensors, config.json, tokenizer.json,
                                   torch_state.json, torch_optimizer.safetensors}
    OUT/{model.safetensors, config.json, tokenizer.json, torch_state.json}   (newest)

Launching (see README.md in the bundle):
    python3 train_torch.py --out out                          one process (CPU or one GPU)
    python3 train_torch.py --nproc-per-node 8 --out out       8 processes, started here
    torchrun --standalone --nproc-per-node 8 train_torch.py --out out
    torchrun --nnodes 2 --node-rank R --master-addr HOST --master-port 29500 \\
             --nproc-per-node 8 train_torch.py --out out      several machines

Under a launcher (RANK/WORLD_SIZE/LOCAL_RANK in the environment) it joins that process
group: NCCL on CUDA, gloo on CPU. Without one, `--nproc-per-node N` starts N processes
itself with torch.multiprocessing.spawn (useful where torchrun is unavailable or broken).

Batches: --batch-size is per process and per micro-step; one optimizer step sees
batch_size * grad_accum * world_size windows of --block-size tokens. The windows of a step
are a pure function of (seed, step), split across ranks, so DDP with W processes of batch
B sees exactly the batch one process of batch W*B would (same losses, up to rounding),
and --resume continues the data order where it stopped.
"""

import argparse
import contextlib
import json
import math
import os
import shutil
import socket
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_torch import (  # noqa: E402
    GPT2, Attention, CheckpointError, GPT2Config, load_checkpoint, load_safetensors, save_safetensors,
)

STATE_FORMAT = "workspace-lm/torch-train-state"
MODEL, CONFIG, TOKENIZER, STATE, OPTIMIZER = (
    "model.safetensors", "config.json", "tokenizer.json", "torch_state.json", "torch_optimizer.safetensors")
# What train_torch.py wrote before the optimizer was stored as safetensors: a pickle, which
# --resume never loads (unpickling a file can run any code it names; torch 1.13's
# weights_only unpickler cannot read an optimizer's state: it has no floats).
LEGACY_OPTIMIZER = "optimizer.pt"
OPTIMIZER_FORMAT = "workspace-lm/torch-optimizer"
# The workspace-lm defaults (src/ml/config.ts), used when the bundle has no train_config.json.
DEFAULTS = dict(batch_size=8, learning_rate=1e-3, min_lr_ratio=0.1, warmup_fraction=0.05,
                warmup_max_steps=200, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1,
                grad_clip=1.0, epochs=1, eval_every=100, eval_batches=8, checkpoint_every=200,
                keep_checkpoints=2, seed=1337)


class BundleError(ValueError):
    """The bundle or the command line is not usable; the message says why."""


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def read_tokens(path):
    if not os.path.isfile(path):
        raise BundleError(f"missing {path}")
    return np.memmap(path, dtype=np.uint16, mode="r")


class TrainWindows:
    """Non-overlapping windows of T+1 tokens, visited in a seeded random order per epoch.

    Global window k (k = 0, 1, 2, ... over the whole run) is window order(k // n)[k % n]
    of epoch k // n: a pure function of (seed, k), so every rank can pick its share of a
    step without talking to the others, and a resumed run sees the same batches.
    """

    def __init__(self, tokens, T, seed):
        L = len(tokens)
        if L < T + 1:
            raise BundleError(f"train.bin has {L} tokens, fewer than one window of {T + 1} "
                              "(use a smaller --block-size)")
        self.tokens, self.T, self.seed = tokens, T, seed
        whole = (L - 1) // T
        # One window fewer than fit, so each later epoch can shift the grid by up to T-1
        # tokens (the model sees other boundaries) with the same number of windows.
        self.n = whole - 1 if whole >= 2 else 1
        self.max_offset = (L - 1) - self.n * T
        self._epoch, self._order, self._offset = None, None, 0

    def _epoch_order(self, epoch):
        if epoch != self._epoch:
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch * 7919) % (2**63))
            span = min(self.T - 1, self.max_offset)
            offset = 0 if epoch == 0 or span == 0 else int(torch.randint(0, span + 1, (1,), generator=g))
            self._order = torch.randperm(self.n, generator=g).numpy()
            self._epoch, self._offset = epoch, offset
        return self._order, self._offset

    def batch(self, first, count):
        """Windows first .. first+count-1 as (ids, targets) int64 arrays [count, T]."""
        T = self.T
        x = np.empty((count, T), dtype=np.int64)
        y = np.empty((count, T), dtype=np.int64)
        for i in range(count):
            k = first + i
            order, offset = self._epoch_order(k // self.n)
            start = offset + int(order[k % self.n]) * T
            chunk = np.asarray(self.tokens[start:start + T + 1], dtype=np.int64)
            x[i], y[i] = chunk[:-1], chunk[1:]
        return x, y


def validation_batches(tokens, B, T, max_batches):
    """The same fixed windows as workspace-lm's validationBatches (src/ml/dataset.ts):
    evenly spaced, non-overlapping; missing rows have targets -1. Same windows, same model
    -> the same validation loss as the run that was exported."""
    windows = (len(tokens) - 1) // T
    if windows < 1:
        return []
    want = min(windows, max_batches * B)
    n_batches = max(1, want // B)
    stride = windows / (n_batches * B)
    out = []
    for k in range(n_batches):
        ids = np.zeros((B, T), dtype=np.int64)
        targets = np.full((B, T), -1, dtype=np.int64)
        for b in range(B):
            w = math.floor((k * B + b) * stride)
            if w >= windows:
                continue
            chunk = np.asarray(tokens[w * T:w * T + T + 1], dtype=np.int64)
            ids[b], targets[b] = chunk[:-1], chunk[1:]
        out.append((ids, targets))
    return out


# --------------------------------------------------------------------------
# Schedule, evaluation, checkpoints
# --------------------------------------------------------------------------

def warmup_steps_for(args, max_steps):
    if args.warmup_steps is not None:
        return max(1, args.warmup_steps)
    return max(1, min(args.warmup_max_steps, math.floor(args.warmup_fraction * max_steps + 0.5)))


def learning_rate(args, step, max_steps, warmup):
    """Linear warmup, then cosine decay to lr * min_lr_ratio (as in src/ml/adamw.ts)."""
    if step < warmup:
        return args.lr * (step + 1) / warmup
    min_lr = args.lr * args.min_lr_ratio
    warm_frac = warmup / max_steps
    p = min(1.0, max(0.0, (step / max_steps - warm_frac) / max(1e-9, 1 - warm_frac)))
    return min_lr + 0.5 * (args.lr - min_lr) * (1 + math.cos(math.pi * p))


@torch.no_grad()
def evaluate(model, batches, device, autocast, rank, world):
    """Mean over batches of each batch's mean loss; the batches are shared out across ranks."""
    model.eval()
    total = torch.zeros(1, dtype=torch.float64, device=device)
    for i in range(rank, len(batches), world):
        ids, targets = batches[i]
        with autocast():
            _, loss = model(torch.from_numpy(ids).to(device), torch.from_numpy(targets).to(device))
        total += loss.double()
    if world > 1:
        dist.all_reduce(total)
    model.train()
    return total.item() / max(1, len(batches))


def _fsync(path):
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; rename is still atomic there


def checkpoint_dirs(out):
    root = os.path.join(out, "checkpoints")
    names = sorted(n for n in os.listdir(root) if n.startswith("step-") and n[5:].isdigit()) \
        if os.path.isdir(root) else []
    return [os.path.join(root, n) for n in reversed(names)]


def save_optimizer(path, optimizer, scaler):
    """The optimizer's and the loss scaler's state as safetensors: the per-parameter tensors
    (state.<index>.<name>, e.g. exp_avg) and, as JSON in the metadata, the parameter groups,
    any non-tensor per-parameter values and the scaler's numbers. Data only: reading it back
    runs no code (a torch.save pickle can)."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in sd["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().cpu()
            else:
                scalars[f"{index}.{name}"] = value
    save_safetensors(path, tensors, {
        "format": OPTIMIZER_FORMAT, "version": "1",
        "param_groups": json.dumps(sd["param_groups"]),
        "scalars": json.dumps(scalars),
        "scaler": json.dumps(scaler.state_dict()),
    })


def load_optimizer(path, optimizer, scaler, device):
    """Restores what save_optimizer wrote, checking it against this optimizer's parameters."""
    try:
        tensors, meta = load_safetensors(path)
    except FileNotFoundError:
        legacy = os.path.join(os.path.dirname(path), LEGACY_OPTIMIZER)
        if os.path.lexists(legacy):
            raise BundleError(f"{legacy} is a pickle written by an older train_torch.py, which --resume does not "
                              "load (unpickling can run code): train on from its model.safetensors instead "
                              "(copy it into the bundle, no --resume)") from None
        raise BundleError(f"missing {path}: cannot --resume without the optimizer's state") from None
    except CheckpointError as e:
        raise BundleError(str(e)) from None
    if meta.get("format") != OPTIMIZER_FORMAT or meta.get("version") != "1":
        raise BundleError(f"{path}: not a train_torch.py optimizer state (format {meta.get('format')!r})")
    try:
        groups = json.loads(meta["param_groups"])
        scalars = json.loads(meta.get("scalars", "{}"))
        scaler_state = json.loads(meta.get("scaler", "{}"))
    except (KeyError, ValueError) as e:
        raise BundleError(f"{path}: damaged metadata ({e})") from None
    ours = optimizer.param_groups
    if not isinstance(groups, list) or len(groups) != len(ours) or not all(
            isinstance(g, dict) and isinstance(g.get("params"), list) and len(g["params"]) == len(o["params"])
            for g, o in zip(groups, ours)):
        raise BundleError(f"{path}: parameter groups do not match this model")
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    params = {i: p for g, o in zip(groups, ours) for i, p in zip(g["params"], o["params"])}
    state = {}
    for name, t in tensors.items():
        parts = name.split(".")
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit() or int(parts[1]) not in params:
            raise BundleError(f"{path}: unexpected tensor {name!r}")
        index, key = int(parts[1]), parts[2]
        if key in ("exp_avg", "exp_avg_sq") and tuple(t.shape) != tuple(params[index].shape):
            raise BundleError(f"{path}: {name} has shape {list(t.shape)}, the parameter {list(params[index].shape)}")
        state.setdefault(index, {})[key] = t.to(device)
    if not isinstance(scalars, dict) or not isinstance(scaler_state, dict):
        raise BundleError(f"{path}: damaged metadata")
    for key, value in scalars.items():
        index, _, name = key.partition(".")
        if not index.isdigit() or int(index) not in params or not isinstance(value, (int, float, bool)):
            raise BundleError(f"{path}: unexpected value {key!r}")
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    scaler.load_state_dict(scaler_state)


def save_checkpoint(out, step, model, optimizer, scaler, bundle, state, keep):
    """Writes checkpoints/step-NNNNNNN under a temporary name, fsyncs, renames it into place,
    then mirrors its files at the top of OUT and keeps the newest `keep` (rank 0 only)."""
    root = os.path.join(out, "checkpoints")
    os.makedirs(root, exist_ok=True)
    name = f"step-{step:07d}"
    final = os.path.join(root, name)
    tmp = os.path.join(root, f".tmp-{name}-{os.getpid()}-{int(time.time() * 1000)}")
    os.mkdir(tmp)
    try:
        weights = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
        save_safetensors(os.path.join(tmp, MODEL), weights,
                         {"format": "pt", "producer": "workspace-lm train_torch.py", "step": str(step)})
        shutil.copyfile(os.path.join(bundle, CONFIG), os.path.join(tmp, CONFIG))
        shutil.copyfile(os.path.join(bundle, TOKENIZER), os.path.join(tmp, TOKENIZER))
        save_optimizer(os.path.join(tmp, OPTIMIZER), optimizer, scaler)
        with open(os.path.join(tmp, STATE), "w", encoding="utf-8") as f:
            json.dump(state, f, indent=1)
            f.write("\n")
        for f in os.listdir(tmp):
            _fsync(os.path.join(tmp, f))
        _fsync(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        _fsync(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for f in (MODEL, CONFIG, TOKENIZER, STATE):  # hard links, each swapped in by rename
        link = os.path.join(out, f".{f}.tmp-{os.getpid()}")
        if os.path.lexists(link):
            os.remove(link)
        try:
            os.link(os.path.join(final, f), link)
        except OSError:
            shutil.copyfile(os.path.join(final, f), link)
        os.replace(link, os.path.join(out, f))
    for old in checkpoint_dirs(out)[max(1, keep):]:
        shutil.rmtree(old, ignore_errors=True)
    return final


# --------------------------------------------------------------------------
# Setup
# --------------------------------------------------------------------------

def load_json(path, what):
    if not os.path.isfile(path):
        raise BundleError(f"missing {path} ({what})")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise BundleError(f"{path}: not valid JSON: {e}") from None


def init_weights(model, seed):
    """GPT-2 initialisation, as src/ml/gpt.ts: N(0, 0.02) matrices, residual projections
    N(0, 0.02/sqrt(2L)), zero biases, LayerNorm weight 1. (Our engine draws from its own
    RNG, so the numbers differ; the distribution is the same.)"""
    g = torch.Generator().manual_seed(seed)
    proj_std = 0.02 / math.sqrt(2 * model.config.n_layer)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * (proj_std if name.endswith("c_proj.weight") else 0.02))
            elif "ln_" in name and name.endswith(".weight"):
                p.fill_(1.0)
            else:
                p.zero_()


def pick_device(args, local_rank):
    want = args.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda":
        if not torch.cuda.is_available():
            raise BundleError("--device cuda, but PyTorch sees no CUDA device")
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def pick_dtype(args, device):
    """Autocast dtype: bf16 where the GPU has it, else fp16 (with loss scaling); float32 on CPU."""
    if device.type != "cuda":
        if args.dtype not in ("auto", "float32"):
            raise BundleError(f"--dtype {args.dtype} needs a GPU; on CPU the model trains in float32")
        return torch.float32
    if args.dtype == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Train the Workspace LM GPT-2 on an exported bundle (DDP when launched so).")
    p.add_argument("--data", default=os.path.dirname(os.path.abspath(__file__)),
                   help="the bundle folder (default: this script's folder)")
    p.add_argument("--out", default="out", help="where checkpoints go (default: ./out)")
    p.add_argument("--max-steps", type=int, help="optimizer steps (default: --epochs over train.bin)")
    p.add_argument("--epochs", type=float, help="passes over train.bin when --max-steps is not given (default: the run's)")
    p.add_argument("--batch-size", type=int, help="windows per process per micro-step (default: the run's, 8)")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-steps per optimizer step (default 1)")
    p.add_argument("--block-size", type=int, help="tokens per window (default: the run's context)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the run's)")
    p.add_argument("--min-lr-ratio", type=float, help="cosine decays to lr * this (default 0.1)")
    p.add_argument("--warmup-steps", type=int, help="linear warmup steps (default: 5%% of the steps, at most 200)")
    p.add_argument("--weight-decay", type=float, help="AdamW decay on matrices (default 0.1)")
    p.add_argument("--grad-clip", type=float, help="global gradient-norm clip (default 1.0)")
    p.add_argument("--eval-every", type=int, help="validate every N steps (default: the run's); 0 = only at the end")
    p.add_argument("--eval-batches", type=int, help="validation batches (default: the run's, 8)")
    p.add_argument("--checkpoint-every", type=int, help="save every N steps and at the end (default 200)")
    p.add_argument("--keep", type=int, help="checkpoints kept in OUT/checkpoints (default 2)")
    p.add_argument("--seed", type=int, help="data order and fresh initialisation (default: the run's)")
    p.add_argument("--from-scratch", action="store_true", help="ignore the bundle's model.safetensors")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--eval-only", action="store_true",
                   help="print the validation loss of the starting weights and exit")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto",
                   help="autocast dtype on GPU (auto: bf16 if supported, else fp16)")
    p.add_argument("--threads", type=int, help="CPU threads per process (default: cores / local processes)")
    p.add_argument("--nproc-per-node", "--nproc_per_node", dest="nproc_per_node", type=int, default=1,
                   help="without a launcher: start N processes on this machine (DDP)")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    args = p.parse_args(argv)

    bundle = os.path.abspath(args.data)
    args.data = bundle
    cfg_json = load_json(os.path.join(bundle, CONFIG), "the model's Hugging Face GPT-2 config")
    train_cfg = dict(DEFAULTS)
    tc_path = os.path.join(bundle, "train_config.json")
    if os.path.isfile(tc_path):
        train_cfg.update({k: v for k, v in load_json(tc_path, "").items() if v is not None})
    args.train_config = train_cfg

    def default(name, key):
        if getattr(args, name) is None:
            setattr(args, name, train_cfg[key])

    default("batch_size", "batch_size")
    default("lr", "learning_rate")
    default("min_lr_ratio", "min_lr_ratio")
    default("weight_decay", "weight_decay")
    default("grad_clip", "grad_clip")
    default("eval_every", "eval_every")
    default("eval_batches", "eval_batches")
    default("checkpoint_every", "checkpoint_every")
    default("keep", "keep_checkpoints")
    default("seed", "seed")
    default("epochs", "epochs")
    args.warmup_fraction = train_cfg["warmup_fraction"]
    args.warmup_max_steps = train_cfg["warmup_max_steps"]
    args.betas = (train_cfg["beta1"], train_cfg["beta2"])
    args.adam_eps = train_cfg["eps"]
    # Validation uses the exported run's batch shape, so its losses compare with the run's.
    args.eval_batch_size = int(train_cfg["batch_size"])
    try:
        args.config = GPT2Config.from_dict(cfg_json)
    except CheckpointError as e:
        raise BundleError(f"{os.path.join(bundle, CONFIG)}: {e}") from None
    if args.block_size is None:
        args.block_size = int(train_cfg.get("block_size") or args.config.n_positions)
    for name in ("batch_size", "grad_accum", "block_size", "nproc_per_node", "keep"):
        if getattr(args, name) < 1:
            raise BundleError(f"--{name.replace('_', '-')} must be at least 1")
    if args.block_size > args.config.n_positions:
        raise BundleError(f"--block-size {args.block_size} exceeds the model's context {args.config.n_positions}")
    if args.max_steps is not None and args.max_steps < 1:
        raise BundleError("--max-steps must be at least 1")
    return args


class Log:
    def __init__(self, enabled, as_json):
        self.enabled, self.as_json = enabled, as_json

    def __call__(self, event, text, **fields):
        if not self.enabled:
            return
        if self.as_json:
            print(json.dumps({"event": event, **fields}), flush=True)
        else:
            print(text, flush=True)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

def run(args):
    """One process's work: joins the process group if there is one, trains, checkpoints."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(min(world, args.nproc_per_node) or 1)))
    device = pick_device(args, local_rank)
    distributed = world > 1
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    try:
        return train(args, world, rank, local_world, device)
    finally:
        if distributed:
            dist.destroy_process_group()


def train(args, world, rank, local_world, device):
    master = rank == 0
    log = Log(master, args.json)
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // max(1, local_world)))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    dtype = pick_dtype(args, device)

    bundle, cfg, T = args.data, args.config, args.block_size
    meta = load_json(os.path.join(bundle, "meta.json"), "the dataset's description")
    if int(meta.get("vocab_size", cfg.vocab_size)) != cfg.vocab_size:
        raise BundleError(f"meta.json says vocab_size {meta.get('vocab_size')}, config.json {cfg.vocab_size}: "
                          "the dataset was encoded for another model")
    if not os.path.isfile(os.path.join(bundle, TOKENIZER)):
        raise BundleError(f"missing {os.path.join(bundle, TOKENIZER)} (copied into every checkpoint)")
    train_tokens = read_tokens(os.path.join(bundle, "train.bin"))
    val_tokens = read_tokens(os.path.join(bundle, "val.bin"))
    windows = TrainWindows(train_tokens, T, args.seed)
    val_batches = validation_batches(val_tokens, args.eval_batch_size, T, args.eval_batches)

    # ---- the starting weights: a checkpoint of ours (--resume), the bundle's, or fresh ----
    out = os.path.abspath(args.out)
    if os.path.isfile(os.path.join(out, "trainer_state.json")):
        raise BundleError(f"--out {out} is a workspace-lm run folder: write to a new folder, "
                          "then `workspace-lm import` it into the run")
    start_step, resumed = 0, None
    if args.resume and checkpoint_dirs(out):
        src = checkpoint_dirs(out)[0]
        model = load_checkpoint(src)
        resumed = load_json(os.path.join(src, STATE), "the checkpoint's training state")
        start_step, init = int(resumed["step"]), f"resume:{src}"
    elif os.path.isfile(os.path.join(bundle, MODEL)) and not args.from_scratch:
        model = load_checkpoint(bundle)  # checks names, shapes and dtypes against config.json
        init = "bundle"
    else:
        model = GPT2(cfg)
        init_weights(model, args.seed)
        init = "scratch"
    if world > 1:
        # Every process must start from the same step (with --resume on several machines, --out
        # must be a folder they all see).
        t = torch.tensor([start_step, -start_step], dtype=torch.int64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        if int(t[0]) != -int(t[1]):
            raise BundleError(f"the processes disagree on the starting step (from {-int(t[1])} to {int(t[0])}): "
                              f"with --resume on several machines, --out ({out}) must be a shared folder")
    model.to(device).train()
    if device.type == "cuda" and hasattr(torch.nn.functional, "scaled_dot_product_attention"):
        for m in model.modules():
            if isinstance(m, Attention):
                m.fused = True
    params = sum(p.numel() for p in model.parameters())

    def autocast():
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=dtype)

    exported_val = args.train_config.get("val_loss")
    if args.eval_only:
        v = evaluate(model, val_batches, device, autocast, rank, world)
        log("eval", f"val loss {v:.6f} on {len(val_batches)} batches of {args.eval_batch_size}x{T}"
            + (f" (the exported run's: {exported_val:.6f})" if init == "bundle" and exported_val is not None else ""),
            step=start_step, val_loss=v, batches=len(val_batches), init=init,
            exported_val_loss=exported_val if init == "bundle" else None)
        return 0

    global_batch = args.batch_size * args.grad_accum * world
    if args.max_steps is not None:
        max_steps = args.max_steps
    else:
        max_steps = max(1, math.ceil(args.epochs * windows.n / global_batch))
    if start_step >= max_steps:
        raise BundleError(f"the checkpoint in {out} is at step {start_step}, not before --max-steps {max_steps}")
    warmup = warmup_steps_for(args, max_steps)

    decay = [p for p in model.parameters() if p.dim() >= 2]  # embeddings and matrices
    no_decay = [p for p in model.parameters() if p.dim() < 2]  # biases and LayerNorm
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=args.betas, eps=args.adam_eps)
    # Loss scaling only for fp16 (bf16 has float32's range); a no-op otherwise.
    if hasattr(torch.amp, "GradScaler"):
        scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    else:
        scaler = torch.cuda.amp.GradScaler(enabled=dtype == torch.float16)
    if resumed is not None:
        load_optimizer(os.path.join(checkpoint_dirs(out)[0], OPTIMIZER), optimizer, scaler, device)
    ddp_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None) if world > 1 else model

    log("start", f"{init} | {params / 1e6:.2f}M params | {world} process(es) on {device.type} ({str(dtype)[6:]}) | "
        f"batch {args.batch_size}x{args.grad_accum}x{world} = {global_batch} windows of {T} tokens | "
        f"steps {start_step}->{max_steps} | lr {args.lr:g}",
        init=init, params=params, world_size=world, device=device.type, dtype=str(dtype)[6:],
        global_batch=global_batch, block_size=T, start_step=start_step, max_steps=max_steps, lr=args.lr)

    history = list(resumed.get("history", [])) if resumed else []
    evals = list(resumed.get("evals", [])) if resumed else []
    tokens_seen = int(resumed.get("tokens_seen", 0)) if resumed else 0
    last_loss, last_val = (resumed.get("train_loss"), resumed.get("val_loss")) if resumed else (None, None)

    def do_eval(step):
        nonlocal last_val
        if not val_batches:
            return
        last_val = evaluate(model, val_batches, device, autocast, rank, world)
        evals.append({"step": step, "val_loss": last_val})
        note = f" (the exported run's: {exported_val:.6f})" if step == 0 and init == "bundle" and exported_val is not None else ""
        log("eval", f"step {step:6d} | val loss {last_val:.6f}{note}", step=step, val_loss=last_val,
            exported_val_loss=exported_val if step == 0 and init == "bundle" else None)

    def do_checkpoint(step):
        if master:
            state = {
                "format": STATE_FORMAT, "version": 1, "step": step, "max_steps": max_steps,
                "tokens_seen": tokens_seen, "train_loss": last_loss, "val_loss": last_val,
                "world_size": world, "global_batch": global_batch, "block_size": T, "init": init,
                "seed": args.seed, "history": history[-2000:], "evals": evals,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            d = save_checkpoint(out, step, model, optimizer, scaler, bundle, state, args.keep)
            log("checkpoint", f"step {step:6d} | saved {d}", step=step, dir=d)
        if world > 1:
            dist.barrier()  # nobody reads or exits before the files are in place

    if start_step == 0 and args.eval_every > 0:
        do_eval(0)  # continuing from the bundle's weights starts at the exported run's loss
    t0 = time.time()
    tokens_at_t0 = tokens_seen
    step = start_step
    saved_at = -1
    while step < max_steps:
        lr = learning_rate(args, step, max_steps, warmup)
        for g in optimizer.param_groups:
            g["lr"] = lr
        loss_sum = torch.zeros((), device=device)
        for micro in range(args.grad_accum):
            first = ((step * args.grad_accum + micro) * world + rank) * args.batch_size
            x, y = windows.batch(first, args.batch_size)
            x, y = torch.from_numpy(x).to(device, non_blocking=True), torch.from_numpy(y).to(device, non_blocking=True)
            sync = world == 1 or micro == args.grad_accum - 1
            with (contextlib.nullcontext() if sync else ddp_model.no_sync()):
                with autocast():
                    _, loss = ddp_model(x, y)
                loss = loss / args.grad_accum
                scaler.scale(loss).backward()  # DDP averages the gradients across ranks
            loss_sum += loss.detach()
        scaler.unscale_(optimizer)
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if world > 1:
            dist.all_reduce(loss_sum)
            loss_sum /= world
        step += 1
        tokens_seen += global_batch * T
        last_loss = loss_sum.item()
        if not math.isfinite(last_loss):
            raise BundleError(f"loss became {last_loss} at step {step}: training diverged (try a lower --lr)")
        elapsed = time.time() - t0
        tps = (tokens_seen - tokens_at_t0) / max(1e-9, elapsed)
        history.append({"step": step, "loss": last_loss, "lr": lr})
        log("step", f"step {step:6d}/{max_steps} | loss {last_loss:.4f} | lr {lr:.2e} | norm {float(norm):.3f} | "
            f"{tps:,.0f} tok/s", step=step, max_steps=max_steps, loss=last_loss, lr=lr,
            grad_norm=float(norm), tokens_per_s=tps, elapsed_s=elapsed)
        if (args.eval_every > 0 and step % args.eval_every == 0) or step == max_steps:
            do_eval(step)
        if step % args.checkpoint_every == 0 or step == max_steps:
            do_checkpoint(step)
            saved_at = step
    if saved_at != step:
        do_checkpoint(step)
    log("done", f"done | {step} steps | train loss {last_loss:.4f} | val loss "
        f"{'-' if last_val is None else f'{last_val:.4f}'} | {out}\n"
        f"install it: workspace-lm import {out} --out <run folder>",
        steps=step, train_loss=last_loss, val_loss=last_val, out=out)
    return 0


def _spawned(local_rank, nprocs, args):
    os.environ.update(RANK=str(local_rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(nprocs),
                      LOCAL_WORLD_SIZE=str(nprocs))
    try:
        run(args)
    except (BundleError, CheckpointError) as e:
        if local_rank == 0:
            print(f"train_torch.py: error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None):
    try:
        args = parse_args(argv)
        launched = "RANK" in os.environ and "WORLD_SIZE" in os.environ
        if launched or args.nproc_per_node == 1 or args.eval_only:
            if args.eval_only and not launched:
                os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
            return run(args)
    except (BundleError, CheckpointError) as e:
        print(f"train_torch.py: error: {e}", file=sys.stderr)
        return 1
    # No launcher: start the processes here (what torchrun --standalone would do).
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))
    try:
        mp.spawn(_spawned, args=(args.nproc_per_node, args), nprocs=args.nproc_per_node, join=True)
    except mp.ProcessExitedException as e:
        print(f"train_torch.py: a worker process failed (exit code {e.exit_code})", file=sys.stderr)
        return 1
    except mp.ProcessRaisedException as e:
        print(f"train_torch.py: a worker process failed:\n{e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
