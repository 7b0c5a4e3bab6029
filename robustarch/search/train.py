"""Training engine: train a model on resident tensors, pick the epoch by validation accuracy.

The data stay on the device as tensors (no per-sample DataLoader): digits-sized data fit many times
over, and indexing a resident tensor is far cheaper than collating Python objects per step.
"""
from __future__ import annotations

import contextlib
import gc
import math
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .data import Dataset, Split
from .recipes import recipe_loss

OPTIMIZERS = ("sgd", "adamw")
FAIL_REASONS = ("diverged", "oom", "invalid_arch")


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe. `lr` and `batch_size` are the "temperature-like" knobs; `train_fraction` is
    the "load-like" one (the caller subsets with `Dataset.with_train_fraction`).

    `eps` is the L∞ radius of the adversarial recipes in input scale ([0, 1] pixels); `attack_steps`
    the PGD / TRADES inner steps; `trades_beta` TRADES's β. `patience`: stop after this many epochs
    without a better validation accuracy (None: run all epochs). `compile`: `torch.compile` the model.
    """

    recipe: str = "standard"
    epochs: int = 15
    lr: float = 0.05
    batch_size: int = 64
    weight_decay: float = 5e-4
    optimizer: str = "sgd"
    momentum: float = 0.9
    train_fraction: float = 1.0
    patience: int | None = None
    eps: float = 0.1
    attack_steps: int = 5
    trades_beta: float = 6.0
    compile: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class TrainingFailed(Exception):
    """Training could not produce a model; `reason` is one of 'diverged', 'oom', 'invalid_arch'."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class TrainResult:
    best_epoch: int
    val_accuracy: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0  # wall clock of the whole call, validation included
    samples_per_second: float = 0.0  # training samples (clean inputs) per second of that wall clock


def build_or_fail(spec) -> nn.Module:
    """`build_model(spec)` after one forward pass on a zero input, else `TrainingFailed('invalid_arch')`."""
    from .arch import build_model

    try:
        model = build_model(spec)
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, spec.in_chans, spec.input_size, spec.input_size))
    except Exception as exc:  # any builder or shape error: the spec, not the program, is at fault
        raise TrainingFailed("invalid_arch", f"{type(exc).__name__}: {exc}") from None
    return model


def _fast_path(device: torch.device) -> bool:
    return device.type == "cuda"


def accuracy(model: nn.Module, split: Split, device: torch.device, batch_size: int = 1024,
             fast: bool | None = None) -> float:
    """Top-1 accuracy of `model` (in eval mode) on `split` (`fast`: bf16 autocast, default on CUDA)."""
    fast = _fast_path(device) if fast is None else fast
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
        for i in range(0, len(split), batch_size):
            xb = split.x[i:i + batch_size].to(device, non_blocking=True)
            yb = split.y[i:i + batch_size].to(device, non_blocking=True)
            correct += int((model(xb).argmax(1) == yb).sum())
    model.train(was_training)
    return correct / max(len(split), 1)


def augment(x: torch.Tensor, kind: str, generator: torch.Generator, pad: int = 4,
            memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """Random crop (zero padding `pad`) and, for 'crop-flip', horizontal flip — on the batch's device."""
    if kind == "none":
        return x
    n, _, h, w = x.shape
    shifts = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=x.device)
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    rows = (torch.arange(h, device=x.device)[None, :] + shifts[0][:, None])[:, :, None]
    cols = (torch.arange(w, device=x.device)[None, :] + shifts[1][:, None])[:, None, :]
    # one gather for the whole batch: advanced indexing puts (n, h, w) first, channels last
    out = padded[torch.arange(n, device=x.device)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
    if kind == "crop-flip":
        flip = torch.rand(n, generator=generator, device=x.device) < 0.5
        out = torch.where(flip[:, None, None, None], out.flip(3), out)
    return out.contiguous(memory_format=memory_format)


def train_model(model: nn.Module, data: Dataset, config: TrainConfig, *, device: torch.device,
                seed: int = 0, on_epoch=None, fast_path: bool | None = None) -> TrainResult:
    """Train `model` in place; at the end it holds the weights of the best validation epoch.

    `on_epoch(epoch, val_accuracy)` is called after every epoch (the study uses it for pruning).
    Raises `TrainingFailed('diverged')` on a non-finite loss and `TrainingFailed('oom')` when CUDA
    runs out of memory (after releasing what this call allocated). Same seed on CPU → same result.
    `fast_path` (default: on for CUDA) trains in channels_last with bf16 autocast.
    Example: `train_model(build_model(spec), load_dataset("digits"), TrainConfig(epochs=3), device=cpu)`.
    """
    device = torch.device(device)
    try:
        fast = _fast_path(device) if fast_path is None else fast_path
        return _train(model, data, config, device, seed, on_epoch, fast)
    except torch.cuda.OutOfMemoryError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else "CUDA out of memory"
    # Outside the except block the traceback, and the activations its frames hold, are gone.
    model.zero_grad(set_to_none=True)
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    raise TrainingFailed("oom", detail)


def _resident(data: Dataset, device: torch.device, memory_format) -> tuple[Split, Split]:
    """Training and validation splits on the device: one host→device copy per run, not per batch;
    in channels_last on the fast path (cuDNN's fastest tensor-core convolutions read NHWC)."""
    def move(split: Split) -> Split:
        return Split(split.x.to(device).contiguous(memory_format=memory_format), split.y.to(device))
    return move(data.train), move(data.val)


def _optimizer(model: nn.Module, config: TrainConfig, steps_per_epoch: int):
    """timm's optimizer factory and a per-step cosine schedule with one warm-up epoch."""
    from timm.optim import create_optimizer_v2
    from timm.scheduler import CosineLRScheduler

    opt_kwargs = {"momentum": config.momentum} if config.optimizer == "sgd" else {}
    optimizer = create_optimizer_v2(model, config.optimizer, lr=config.lr,
                                    weight_decay=config.weight_decay, **opt_kwargs)
    scheduler = CosineLRScheduler(optimizer, t_initial=config.epochs * steps_per_epoch,
                                  warmup_t=steps_per_epoch, warmup_lr_init=config.lr * 0.1,
                                  t_in_epochs=False)
    return optimizer, scheduler


def _train(model: nn.Module, data: Dataset, config: TrainConfig, device: torch.device, seed: int,
           on_epoch, fast: bool) -> TrainResult:
    torch.manual_seed(seed)  # dropout and drop-path draw from the global generator
    order_gen = torch.Generator(device="cpu").manual_seed(seed)
    device_gen = torch.Generator(device=device).manual_seed(seed + 1)  # augmentation, attack starts
    memory_format = torch.channels_last if fast else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    train, val = _resident(data, device, memory_format)
    x_train, y_train = train.x, train.y
    net = torch.compile(model) if config.compile else model
    n = len(y_train)
    steps_per_epoch = max(1, math.ceil(n / config.batch_size))
    optimizer, scheduler = _optimizer(model, config, steps_per_epoch)
    loss_kwargs = dict(eps=config.eps, steps=config.attack_steps, beta=config.trades_beta,
                       bounds=data.bounds, generator=device_gen)
    # bf16 autocast only on the fast path; the CPU path enters no autocast context at all
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if fast else contextlib.nullcontext())
    best_acc, best_epoch, best_state = -1.0, 0, None
    history, seen, step = [], 0, 0
    start = time.perf_counter()
    train_seconds = 0.0  # the training steps alone, without validation
    for epoch in range(config.epochs):
        epoch_start = time.perf_counter()
        net.train()
        order = torch.randperm(n, generator=order_gen).to(device)
        epoch_loss = torch.zeros((), device=device)
        for i in range(0, n, config.batch_size):
            idx = order[i:i + config.batch_size]
            # augmentation on the device: no host round trip, no per-sample Python
            xb = augment(x_train[idx], data.augment, device_gen, memory_format=memory_format)
            # bf16 autocast: tensor-core matmuls at full fp32 range, so no loss scaling is needed
            with autocast:
                loss = recipe_loss(config.recipe, net, xb, y_train[idx], **loss_kwargs)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            scheduler.step_update(step)
            epoch_loss += loss.detach().float()
            seen += len(idx)
        mean_loss = float(epoch_loss) / steps_per_epoch  # one sync per epoch, not per step
        train_seconds += time.perf_counter() - epoch_start
        if not math.isfinite(mean_loss):
            raise TrainingFailed("diverged", f"non-finite training loss at epoch {epoch}")
        val_acc = accuracy(net, val, device, fast=fast)
        history.append({"epoch": epoch, "loss": mean_loss, "val_accuracy": val_acc,
                        "seconds": round(time.perf_counter() - start, 4),
                        "train_seconds": round(train_seconds, 4)})
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if on_epoch is not None:
            on_epoch(epoch, val_acc)
        if config.patience is not None and epoch - best_epoch >= config.patience:
            break  # early stopping on validation accuracy
    seconds = time.perf_counter() - start
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(best_epoch=best_epoch, val_accuracy=best_acc, history=history, seconds=seconds,
                       samples_per_second=seen / max(seconds, 1e-9))
