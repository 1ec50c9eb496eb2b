"""What the three training stages share: settings from the command line, checkpoints that
resume, CPU-time accounting, and batching text into token tensors."""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path

import torch

MODELS_DIR = Path(__file__).resolve().parents[1]
RUNS_DIR = MODELS_DIR / "runs"


def override(settings, argv=None):
    """nanoGPT-style: `--name=value` on the command line overrides a dataclass field."""
    for arg in argv if argv is not None else sys.argv[1:]:
        if not arg.startswith("--") or "=" not in arg:
            raise SystemExit(f"unknown argument {arg!r}: use --name=value with one of "
                             f"{', '.join(f.name for f in fields(settings))}")
        key, value = arg[2:].split("=", 1)
        key = key.replace("-", "_")
        if key not in {f.name for f in fields(settings)}:
            raise SystemExit(f"unknown setting {key!r}; known: {', '.join(f.name for f in fields(settings))}")
        current = getattr(settings, key)
        if isinstance(current, bool):
            value = value.lower() in ("1", "true", "yes")
        elif isinstance(current, (int, float, str)):
            value = type(current)(value)
        elif isinstance(current, tuple):
            value = tuple(type(current[0])(v) for v in value.split(","))
        setattr(settings, key, value)
    return settings


def setup_threads():
    """Two cores: one process, two threads (two jobs at once stall on OpenBLAS contention)."""
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", os.cpu_count() or 2)))


class Clock:
    """Wall and process CPU time, carried across resumes in the checkpoint."""

    def __init__(self, wall=0.0, cpu=0.0):
        self.wall0, self.cpu0 = wall, cpu
        self.t0, self.c0 = time.time(), time.process_time()

    @property
    def wall(self):
        return self.wall0 + time.time() - self.t0

    @property
    def cpu(self):
        return self.cpu0 + time.process_time() - self.c0

    def state(self):
        return {"wall_s": self.wall, "cpu_s": self.cpu}


def save_checkpoint(path: Path, **state):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: an interrupted save never leaves a broken checkpoint


def load_checkpoint(path: Path):
    return torch.load(path, map_location="cpu") if path.exists() else None


def resume(path: Path, module, opt, key: str = "model", extra: dict | None = None):
    """Continue from `path` if it exists: weights (under `key`), optimizer, step, best score and
    clock. Returns (step, best, clock); a fresh run gets (0, -1.0, a new clock). `extra`, if given,
    receives all of the checkpoint's entries (e.g. "ema"), so that the file is read once."""
    ckpt = load_checkpoint(path)
    if not ckpt:
        return 0, -1.0, Clock()
    if extra is not None:
        extra.update(ckpt)
    module.load_state_dict(ckpt[key])
    opt.load_state_dict(ckpt["opt"])
    print(f"resumed from step {ckpt['step']}")
    return ckpt["step"], ckpt.get("best", -1.0), Clock(ckpt["clock"]["wall_s"], ckpt["clock"]["cpu_s"])


class WeightAverage:
    """An exponential moving average of a module's trainable weights (Polyak averaging): one checkpoint
    then stands for the last ~1 / (1 - decay) steps of a noisy run instead of wherever the run stopped."""

    def __init__(self, module, decay: float):
        self.decay = decay
        self.shadow = {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, module):
        for n, p in module.named_parameters():
            if n in self.shadow:
                self.shadow[n].lerp_(p.detach(), 1.0 - self.decay)

    def state_dict(self, module) -> dict:
        """The module's state with the averaged weights in place of the trained ones."""
        return {**module.state_dict(), **self.shadow}


def log_line(path: Path, record: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()), flush=True)


def settings_dict(settings):
    return asdict(settings) if is_dataclass(settings) else dict(settings)


def batch_loader(batches: torch.utils.data.Dataset, workers: int):
    """Batches made ahead by `workers` processes (the data is drawn on the CPU, and on the GPU
    machine it is the bottleneck); each item of `batches` is already a whole batch."""
    extra = {"prefetch_factor": 4, "persistent_workers": True} if workers else {}
    return torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False, num_workers=workers, **extra)


def pack(token_lists, seq_len: int, pad_id: int):
    """Concatenate tokenised texts into rows of seq_len (+1 for the shifted targets).

    Returns input ids [b, seq_len] and targets [b, seq_len], targets -100 on padding."""
    rows, cur = [], []
    for ids in token_lists:
        if cur and len(cur) + len(ids) > seq_len + 1:
            rows.append(cur)
            cur = []
        cur = cur + ids[: seq_len + 1]
    if cur:
        rows.append(cur)
    x = torch.full((len(rows), seq_len + 1), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        x[i, : len(r)] = torch.tensor(r)
    targets = x[:, 1:].clone()
    targets[targets == pad_id] = -100
    return x[:, :-1], targets
