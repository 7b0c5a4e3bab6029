"""Training engine: train a model on resident tensors, pick the epoch by validation accuracy.

The data stay on the device as tensors (no per-sample DataLoader): digits-sized data fit many times
over, and indexing a resident tensor is far cheaper than collating Python objects per step.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .data import Dataset, Split

RECIPES = ("standard",)
OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe. `lr` and `batch_size` are the "temperature-like" knobs; `train_fraction` is
    the "load-like" one (applied when the data are loaded)."""

    recipe: str = "standard"
    epochs: int = 15
    lr: float = 0.05
    batch_size: int = 64
    weight_decay: float = 5e-4
    optimizer: str = "sgd"
    momentum: float = 0.9
    train_fraction: float = 1.0
    patience: int | None = None  # stop after this many epochs without a better validation accuracy

    def to_dict(self) -> dict:
        return asdict(self)


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
    seconds: float = 0.0
    samples_per_second: float = 0.0


def accuracy(model: nn.Module, split: Split, device: torch.device, batch_size: int = 1024) -> float:
    """Top-1 accuracy of `model` (in eval mode) on `split`."""
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(split), batch_size):
            xb = split.x[i:i + batch_size].to(device, non_blocking=True)
            yb = split.y[i:i + batch_size].to(device, non_blocking=True)
            correct += int((model(xb).argmax(1) == yb).sum())
    model.train(was_training)
    return correct / max(len(split), 1)


def train_model(model: nn.Module, data: Dataset, config: TrainConfig, *, device: torch.device,
                seed: int = 0, on_epoch=None) -> TrainResult:
    """Train `model` in place; at the end it holds the weights of the best validation epoch.

    `on_epoch(epoch, val_accuracy)` is called after every epoch (the study uses it for pruning).
    Raises `TrainingFailed('diverged')` on a non-finite loss.
    """
    from timm.optim import create_optimizer_v2
    from timm.scheduler import CosineLRScheduler

    generator = torch.Generator(device="cpu").manual_seed(seed)
    model.to(device)
    x_train = data.train.x.to(device)
    y_train = data.train.y.to(device)
    n = len(y_train)
    steps_per_epoch = max(1, math.ceil(n / config.batch_size))
    opt_kwargs = {"momentum": config.momentum} if config.optimizer == "sgd" else {}
    optimizer = create_optimizer_v2(model, config.optimizer, lr=config.lr,
                                    weight_decay=config.weight_decay, **opt_kwargs)
    scheduler = CosineLRScheduler(optimizer, t_initial=config.epochs * steps_per_epoch,
                                  warmup_t=steps_per_epoch, warmup_lr_init=config.lr * 0.1,
                                  t_in_epochs=False)
    loss_fn = nn.CrossEntropyLoss()
    best = (-1.0, 0, copy.deepcopy(model.state_dict()))
    history, seen, step = [], 0, 0
    start = time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        epoch_loss = torch.zeros((), device=device)
        for i in range(0, n, config.batch_size):
            idx = order[i:i + config.batch_size]
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            scheduler.step_update(step)
            epoch_loss += loss.detach()
            seen += len(idx)
        mean_loss = float(epoch_loss) / steps_per_epoch  # one sync per epoch, not per step
        if not math.isfinite(mean_loss):
            raise TrainingFailed("diverged", f"non-finite training loss at epoch {epoch}")
        val_acc = accuracy(model, data.val, device)
        history.append({"epoch": epoch, "loss": mean_loss, "val_accuracy": val_acc})
        if val_acc > best[0]:
            best = (val_acc, epoch, copy.deepcopy(model.state_dict()))
        if on_epoch is not None:
            on_epoch(epoch, val_acc)
        if config.patience is not None and epoch - best[1] >= config.patience:
            break
    seconds = time.perf_counter() - start
    model.load_state_dict(best[2])
    model.eval()
    return TrainResult(best_epoch=best[1], val_accuracy=best[0], history=history, seconds=seconds,
                       samples_per_second=seen / max(seconds, 1e-9))
