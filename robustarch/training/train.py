"""Training engine: train a model on resident tensors, pick the epoch by (robust) validation accuracy.

The data stay on the device as tensors (no per-sample DataLoader): digits-sized data fit many times
over, and indexing a resident tensor is far cheaper than collating Python objects per step.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..runtime import batch_size_for, release_memory
from .data import Dataset, Split
from .recipes import pgd_accuracy, recipe_loss

OPTIMIZERS = ("sgd", "adamw")
SELECT = ("best", "last")  # keep the best epoch by the selection metric, or the last one
FAIL_REASONS = ("diverged", "oom", "invalid_arch")
ROBUST_VAL_STEPS = 10  # PGD steps of robust validation (Rice et al. 2020 select with PGD-10)
ROBUST_VAL_SAMPLES = 256  # a fixed validation subset: enough to rank epochs, cheap next to an epoch


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe. Training length (`epochs`, or `max_steps` with `patience` off), `lr` and
    `batch_size` are the "temperature-like" knobs; `train_fraction` is the "load-like" one (the
    caller subsets with `Dataset.with_train_fraction`); `label_noise` is the fraction of training
    labels the study layer replaces by random ones (0 to 1; this trainer does not read it);
    `label_smoothing` softens the cross-entropy targets (0: hard labels). `select: last` keeps the
    final weights instead of the best epoch's (a phase diagram measures the model trained N steps).

    `max_steps`: stop after this many optimizer steps (the last epoch may be partial); it replaces
    `epochs` as the length, and the cosine schedule spans exactly those steps.
    `eps` is the L∞ radius of the adversarial recipes in input scale ([0, 1] pixels); `attack_steps`
    the PGD / TRADES inner steps; `trades_beta` TRADES's β. `patience`: stop after this many epochs
    without a better selection metric (None: run all epochs). `compile`: `torch.compile` the model,
    once per architecture shape per process (see `compiled`).
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
    max_steps: int | None = None
    label_noise: float = 0.0
    label_smoothing: float = 0.0
    select: str = "best"

    def __post_init__(self):
        if not 0.0 <= self.label_noise <= 1.0:
            raise ValueError(f"label_noise {self.label_noise!r}: must be between 0 and 1")
        if self.select not in SELECT:
            raise ValueError(f"select {self.select!r}: allowed values are {', '.join(SELECT)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing {self.label_smoothing!r}: must be in [0, 1)")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps {self.max_steps!r}: must be >= 1 (or None)")

    @property
    def adversarial(self) -> bool:
        return self.recipe != "standard" and self.eps > 0

    @property
    def selection_metric(self) -> str:
        """What picks the epoch and decides early stopping: robust validation accuracy for the
        adversarial recipes (Wong et al. 2020, Rice et al. 2020: robust overfitting makes the last
        or the cleanest epoch the wrong one), clean validation accuracy otherwise."""
        return "val_robust_accuracy" if self.adversarial else "val_accuracy"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class TrainingFailed(Exception):
    """Training could not produce a model; `reason` is one of 'diverged', 'oom', 'invalid_arch'."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class TrainResult:
    best_epoch: int
    val_accuracy: float  # clean validation accuracy of the selected epoch
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0  # wall clock of the whole call, validation included
    samples_per_second: float = 0.0  # training samples (clean inputs) per second of that wall clock
    val_robust_accuracy: float | None = None  # PGD validation accuracy of that epoch (adversarial recipes)
    selection_metric: str = "val_accuracy"  # or "val_robust_accuracy": what chose the epoch
    compile_seconds: float = 0.0  # first step of each batch shape + first validation, compiled (0: eager)
    compile_reused: bool = False  # this architecture shape was compiled earlier in this process
    steps: int = 0  # optimizer steps taken


def build_or_fail(spec) -> nn.Module:
    """`build_model(spec)` after one forward pass on a zero input, else `TrainingFailed('invalid_arch')`."""
    from ..models.arch import build_model

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


def accuracy(
    model: nn.Module, split: Split, device: torch.device, batch_size: int | None = None, fast: bool | None = None
) -> float:
    """Top-1 accuracy of `model` (in eval mode) on `split` (`fast`: bf16 autocast, default on CUDA).
    `batch_size` None: as large as the free memory allows (`runtime.batch_size_for`)."""
    fast = _fast_path(device) if fast is None else fast
    was_training = model.training
    model.eval()
    if batch_size is None:
        batch_size = batch_size_for(model, split.x[0], device) if len(split) else 1
    correct = torch.zeros((), dtype=torch.long, device=device)  # counted on the device: one sync
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
        for i in range(0, len(split), batch_size):
            xb = split.x[i : i + batch_size].to(device, non_blocking=True)
            yb = split.y[i : i + batch_size].to(device, non_blocking=True)
            correct += (model(xb).argmax(1) == yb).sum()
    model.train(was_training)
    return int(correct) / max(len(split), 1)


def augment(
    x: torch.Tensor,
    kind: str,
    generator: torch.Generator,
    pad: int = 4,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
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


# Architecture shapes compiled in this process. Dynamo keys its code cache on the module's structure
# and treats parameters as graph inputs (torch >= 2.5 inlines nn.Modules), so a fresh model of a
# shape seen before runs the compiled code with its own weights: nothing to keep but the count.
_COMPILED: dict[tuple, int] = {}
COMPILE_BACKEND = os.environ.get("ROBUSTARCH_COMPILE_BACKEND", "inductor")


def compiled(model: nn.Module, key: tuple) -> tuple[nn.Module, bool]:
    """`torch.compile(model)` and whether `key` (shape, device, precision) was compiled before here.

    Dynamo's recompile limit (8 per code object by default) would silently fall back to eager after
    8 architectures in one worker, since every net shares the cells' `forward` code: raise it with
    the number of shapes seen.
    """
    import torch._dynamo

    reused = key in _COMPILED
    _COMPILED.setdefault(key, len(_COMPILED))
    limit = max(64, 4 * len(_COMPILED))
    for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit", "accumulated_cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, max(getattr(torch._dynamo.config, name), limit))
    return torch.compile(model, backend=COMPILE_BACKEND), reused


def train_model(
    model: nn.Module,
    data: Dataset,
    config: TrainConfig,
    *,
    device: torch.device,
    seed: int = 0,
    on_epoch=None,
    fast_path: bool | None = None,
    shape_key: tuple | None = None,
) -> TrainResult:
    """Train `model` in place; at the end it holds the weights of the selected epoch (best clean
    validation accuracy, or best robust validation accuracy for the adversarial recipes).

    `on_epoch(epoch, value)` is called after every epoch with the selection metric's value (the
    study uses it for pruning). Raises `TrainingFailed('diverged')` on a non-finite loss and
    `TrainingFailed('oom')` when CUDA runs out of memory (after releasing what this call allocated).
    Same seed on CPU → same result. `fast_path` (default: on for CUDA) trains in channels_last with
    bf16 autocast. `shape_key` names the architecture for the compile cache (default: the module
    tree's repr, the input shape, device and precision).
    Example: `train_model(build_model(spec), load_dataset("digits"), TrainConfig(epochs=3), device=cpu)`.
    """
    device = torch.device(device)
    try:
        fast = _fast_path(device) if fast_path is None else fast_path
        return _train(model, data, config, device, seed, on_epoch, fast, shape_key)
    except torch.cuda.OutOfMemoryError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else "CUDA out of memory"
    # Outside the except block the traceback, and the activations its frames hold, are gone; the
    # optimizer and the compiled wrapper were locals of _train, so only the model's grads remain.
    model.zero_grad(set_to_none=True)
    release_memory(device)
    raise TrainingFailed("oom", detail)


def _resident(data: Dataset, device: torch.device, memory_format) -> tuple[Split, Split]:
    """Training and validation splits on the device: one host→device copy per run, not per batch;
    in channels_last on the fast path (cuDNN's fastest tensor-core convolutions read NHWC)."""

    def move(split: Split) -> Split:
        return Split(split.x.to(device).contiguous(memory_format=memory_format), split.y.to(device))

    return move(data.train), move(data.val)


def _optimizer(model: nn.Module, config: TrainConfig, steps_per_epoch: int, total_steps: int, device: torch.device):
    """timm's optimizer factory and a per-step cosine schedule over `total_steps`, with a warm-up
    of one epoch (at most a fifth of the run)."""
    from timm.optim import create_optimizer_v2
    from timm.scheduler import CosineLRScheduler

    kwargs = {"momentum": config.momentum} if config.optimizer == "sgd" else {}
    if device.type == "cuda":
        kwargs["fused"] = True  # one kernel for the whole update instead of one per tensor
    optimizer = create_optimizer_v2(model, config.optimizer, lr=config.lr, weight_decay=config.weight_decay, **kwargs)
    scheduler = CosineLRScheduler(
        optimizer,
        t_initial=total_steps,
        warmup_t=min(steps_per_epoch, max(1, total_steps // 5)),
        warmup_lr_init=config.lr * 0.1,
        t_in_epochs=False,
    )
    return optimizer, scheduler


def _shape_key(model: nn.Module, data: Dataset, device: torch.device, fast: bool) -> tuple:
    # the module tree's repr names every layer with its shape, stride, kernel and activation
    return (repr(model), tuple(data.train.x.shape[1:]), str(device), fast)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _FirstCallTimer:
    """Wraps the training step to time its first call with each batch shape (synchronised), which
    is where torch.compile compiles: the first batch and the smaller last one of an epoch."""

    def __init__(self, fn, device: torch.device, enabled: bool):
        self.fn, self.device, self.enabled = fn, device, enabled
        self.shapes: set = set()
        self.seconds = 0.0

    def __call__(self, x: torch.Tensor, *args):
        if not self.enabled or x.shape in self.shapes:
            return self.fn(x, *args)
        self.shapes.add(x.shape)
        _sync(self.device)
        start = time.perf_counter()
        out = self.fn(x, *args)
        _sync(self.device)
        self.seconds += time.perf_counter() - start
        return out


def _stepper(
    net: nn.Module,
    optimizer,
    scheduler,
    config: TrainConfig,
    data: Dataset,
    generator: torch.Generator,
    fast: bool,
    memory_format,
):
    """One optimizer step on a batch; returns the loss as a device tensor (never read here: a
    `.item()` per step would stall the GPU queue)."""
    loss_kwargs = dict(
        eps=config.eps,
        steps=config.attack_steps,
        beta=config.trades_beta,
        bounds=data.bounds,
        generator=generator,
        label_smoothing=config.label_smoothing,
    )

    def step(xb: torch.Tensor, yb: torch.Tensor, number: int) -> torch.Tensor:
        # augmentation on the device: no host round trip, no per-sample Python
        xb = augment(xb, data.augment, generator, memory_format=memory_format)
        # bf16 autocast: tensor-core matmuls at full fp32 range, so no loss scaling is needed; the
        # CPU path enters no autocast context at all
        with torch.autocast(device_type=xb.device.type, dtype=torch.bfloat16, enabled=fast):
            loss = recipe_loss(config.recipe, net, xb, yb, **loss_kwargs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step_update(number)
        return loss.detach().float()

    return step


def _validator(
    net: nn.Module, model: nn.Module, val: Split, config: TrainConfig, bounds, device: torch.device, fast: bool
):
    """Validation after each epoch: clean accuracy on the whole split and, for the adversarial
    recipes, PGD-`ROBUST_VAL_STEPS` accuracy at the recipe's ε on a fixed subset of it."""
    # sized once with the eager model: a probe through the compiled one would compile another shape
    batch = batch_size_for(model, val.x[0], device) if len(val) else 1
    pick = torch.randperm(len(val), generator=torch.Generator().manual_seed(0))[:ROBUST_VAL_SAMPLES]
    x_sub, y_sub = val.x[pick.to(device)], val.y[pick.to(device)]

    def validate() -> dict:
        row = {"val_accuracy": accuracy(net, val, device, batch_size=batch, fast=fast), "val_robust_accuracy": None}
        if config.adversarial:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
                robust = pgd_accuracy(
                    net,
                    x_sub,
                    y_sub,
                    eps=config.eps,
                    steps=ROBUST_VAL_STEPS,
                    bounds=bounds,
                    seed=0,
                    batch_size=ROBUST_VAL_SAMPLES,
                )
            row["val_robust_accuracy"] = float(robust)
        return row

    return validate


def _train(
    model: nn.Module,
    data: Dataset,
    config: TrainConfig,
    device: torch.device,
    seed: int,
    on_epoch,
    fast: bool,
    shape_key: tuple | None,
) -> TrainResult:
    torch.manual_seed(seed)  # dropout and drop-path draw from the global generator
    order_gen = torch.Generator(device="cpu").manual_seed(seed)
    device_gen = torch.Generator(device=device).manual_seed(seed + 1)  # augmentation, attack starts
    memory_format = torch.channels_last if fast else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    train, val = _resident(data, device, memory_format)
    n, bs = len(train), config.batch_size
    steps_per_epoch = max(1, math.ceil(n / bs))
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    optimizer, scheduler = _optimizer(model, config, steps_per_epoch, total_steps, device)
    net, reused = model, False
    if config.compile:
        net, reused = compiled(model, shape_key or _shape_key(model, data, device, fast))
    step_fn = _FirstCallTimer(
        _stepper(net, optimizer, scheduler, config, data, device_gen, fast, memory_format),
        device,
        enabled=config.compile,
    )
    validate = _validator(net, model, val, config, data.bounds, device, fast)
    metric, start, train_seconds = config.selection_metric, time.perf_counter(), 0.0
    best, history, step, seen, compile_seconds = (-1.0, 0, None), [], 0, 0, 0.0
    for epoch in range(math.ceil(total_steps / steps_per_epoch)):
        epoch_start = time.perf_counter()
        net.train()
        order = torch.randperm(n, generator=order_gen).to(device)
        epoch_loss = torch.zeros((), device=device)
        batches = range(0, n, bs)[: total_steps - step]  # max_steps may end mid-epoch
        for i in batches:
            idx = order[i : i + bs]
            step, seen = step + 1, seen + len(idx)
            epoch_loss += step_fn(train.x[idx], train.y[idx], step)
        mean_loss = float(epoch_loss) / len(batches)  # one sync per epoch, not per step
        train_seconds += time.perf_counter() - epoch_start
        if not math.isfinite(mean_loss):
            raise TrainingFailed("diverged", f"non-finite training loss at epoch {epoch}")
        val_start = time.perf_counter()
        row = {"epoch": epoch, "loss": mean_loss, **validate(), "steps": step, "lr": optimizer.param_groups[0]["lr"]}
        if config.compile and epoch == 0:  # the eval graphs compile in the first validation
            compile_seconds += time.perf_counter() - val_start
        history.append(
            {**row, "seconds": round(time.perf_counter() - start, 4), "train_seconds": round(train_seconds, 4)}
        )  # train_seconds: steps only
        if config.select == "last" or row[metric] > best[0]:
            best = (
                row[metric],
                epoch,
                None if config.select == "last" else {k: v.detach().clone() for k, v in model.state_dict().items()},
            )
        if on_epoch is not None:
            on_epoch(epoch, row[metric])
        if config.patience is not None and epoch - best[1] >= config.patience:
            break  # early stopping on the selection metric
    if best[2] is not None:
        model.load_state_dict(best[2])
    model.eval()
    seconds = time.perf_counter() - start
    return TrainResult(
        best_epoch=best[1],
        val_accuracy=history[best[1]]["val_accuracy"],
        history=history,
        seconds=seconds,
        samples_per_second=seen / max(seconds, 1e-9),
        val_robust_accuracy=history[best[1]]["val_robust_accuracy"],
        selection_metric=metric,
        compile_seconds=compile_seconds + step_fn.seconds,
        compile_reused=reused,
        steps=step,
    )
