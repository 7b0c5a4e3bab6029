"""The input contract of `AttackSuite`: what a caller hands over (images (n, C, H, W) within `bounds`,
integer labels, a float32 model, per-channel mean/std), checked before any attack runs, each failure
one line naming what was expected; the clean-accuracy check against the caller's own numbers; and the
suite adapted to a model with too few classes for the DLR losses.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import torch
from torch import nn

from ..errors import UserError
from .apgd import APGDT
from .registry import native_attack
from .spec import SuiteConfig

# How far the model's clean accuracy may stray from the caller's expectation: one point.
ACCURACY_TOLERANCE = 0.01
# Classes the DLR losses need (Croce & Hein 2020): the untargeted ratio divides by z_π1 − z_π3, the
# targeted one by z_π1 − (z_π3 + z_π4)/2.
DLR_CLASSES, TARGETED_DLR_CLASSES = 3, 4
_CHANNELS = (1, 3, 4)  # channel counts of real images (grey, RGB, RGBA): a tell for channels-last input


def checked_bounds(bounds) -> tuple[float, float]:
    """`bounds` as two finite floats (low, high) with low < high."""
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise UserError(f"AttackSuite: bounds must be two numbers (low, high), got {bounds!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise UserError(f"AttackSuite: bounds must be finite (low, high) with low < high, got {bounds!r}")
    return lo, hi


def checked_channels(name: str, values, positive: bool) -> list[float] | None:
    """A per-channel `mean` or `std` as a list of finite floats (None stays None); `std` must be > 0."""
    if values is None:
        return None
    try:
        flat = [float(v) for v in torch.as_tensor(values, dtype=torch.float64).flatten()]
    except (TypeError, ValueError, RuntimeError):
        raise UserError(f"AttackSuite: {name}= must be a number or one number per channel, got {values!r}") from None
    if not flat or not all(math.isfinite(v) for v in flat) or (positive and min(flat) <= 0):
        need = "finite numbers > 0" if positive else "finite numbers"
        raise UserError(f"AttackSuite: {name}= must be {need}, one per channel (or one for all), got {values!r}")
    return flat


def checked_device(device) -> torch.device | None:
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"AttackSuite: unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"AttackSuite: device {device!r} asked for, but torch sees no CUDA device here")
    return dev


def checked_labels(y, n: int) -> torch.Tensor:
    """Labels as int64 class indices: integers, or whole-valued floats; never truncated."""
    try:
        y = torch.as_tensor(y)
    except (TypeError, ValueError, RuntimeError):
        raise UserError(f"labels must be a tensor or array of integer class indices, got {type(y).__name__}") from None
    if y.dtype == torch.bool or y.is_complex():
        raise UserError(f"labels must be integer class indices, got dtype {y.dtype}")
    if y.is_floating_point():
        bad = y[~(torch.isfinite(y) & (y == y.round()))]
        if len(bad):
            raise UserError(
                f"labels must be integers (class indices), got {float(bad[0]):g} (dtype {y.dtype}); "
                f"labels are never rounded"
            )
    if y.ndim != 1 or len(y) != n:
        raise UserError(f"labels must be one class index per input: expected shape ({n},), got {tuple(y.shape)}")
    return y.to(torch.int64)


def checked_images(x) -> torch.Tensor:
    """Inputs as a float32 (n, C, H, W) tensor; flat and channels-last batches are refused by name."""
    try:
        x = torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError):
        raise UserError(f"inputs must be a tensor or array of numbers, got {type(x).__name__}") from None
    if x.dtype == torch.bool or x.is_complex() or x.numel() == 0:
        raise UserError(
            f"inputs must be a non-empty real tensor (n, C, H, W), got dtype {x.dtype}, shape {tuple(x.shape)}"
        )
    if x.ndim != 4:
        raise UserError(
            f"inputs must be images laid out as (n, C, H, W), got shape {tuple(x.shape)}; reshape "
            f"flat inputs, e.g. x.reshape(n, 1, 28, 28), and let the model flatten them"
        )
    n, c, h, w = x.shape
    if w in _CHANNELS and c not in _CHANNELS and h == c:
        raise UserError(
            f"inputs look channels-last (n, H, W, C) = {tuple(x.shape)}; the suite expects "
            f"(n, C, H, W): pass x.permute(0, 3, 1, 2)"
        )
    return x.to(torch.float32)


def check_model_dtype(model: nn.Module) -> None:
    """Attacks compute in float32: a model held in another floating dtype is refused by name."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and tensor.dtype != torch.float32:
            raise UserError(
                f"the model's {name!r} is {tensor.dtype}, but the suite attacks float32 inputs "
                f"(gradients in low precision are too coarse to trust): pass model.float()"
            )


def check_normalization(mean: list[float] | None, std: list[float] | None, channels: int) -> None:
    for name, values in (("mean", mean), ("std", std)):
        if values is not None and len(values) not in (1, channels):
            raise UserError(
                f"AttackSuite: {name}= has {len(values)} values but the inputs (n, C, H, W) have "
                f"C = {channels} channels: give 1 or {channels}"
            )


def check_clean_accuracy(logits: torch.Tensor, y: torch.Tensor, expected_clean_accuracy=None, predictions=None) -> None:
    """Refuse to attack when the model's clean accuracy on the given inputs (`logits`, `y`) strays
    more than `ACCURACY_TOLERANCE` from the caller's `expected_clean_accuracy` (a fraction), or its
    predictions from the caller's `predictions` (class indices, or one row of scores per input)."""
    n = len(y)
    model_pred = logits.argmax(1)
    accuracy = float((model_pred == y).float().mean())
    cause = "inputs normalized twice, or not at all? Give un-normalized inputs within `bounds` and the model's mean/std"
    if expected_clean_accuracy is not None:
        expected = expected_clean_accuracy
        if isinstance(expected, bool) or not isinstance(expected, (int, float)) or not 0 <= expected <= 1:
            raise UserError(f"expected_clean_accuracy= must be a fraction in [0, 1] (e.g. 0.97), got {expected!r}")
        if abs(accuracy - expected) > ACCURACY_TOLERANCE + 1e-9:
            raise UserError(
                f"refusing to attack: the model's clean accuracy on these {n} inputs is {accuracy:.1%}, "
                f"but expected_clean_accuracy is {expected:.1%} (allowed: ±1 point); {cause}"
            )
    if predictions is not None:
        given = _predicted_classes(predictions, n)
        differ = int((given != model_pred.cpu()).sum())
        if differ > ACCURACY_TOLERANCE * n + 1e-9:
            raise UserError(
                f"refusing to attack: the model's predictions on these {n} inputs differ from the given "
                f"predictions on {differ} ({differ / n:.1%}; allowed: 1 point); its clean accuracy "
                f"is {accuracy:.1%}; {cause}"
            )


def _predicted_classes(predictions, n: int) -> torch.Tensor:
    """The caller's predictions as class indices: integer labels, or (n, classes) scores → argmax."""
    try:
        pred = torch.as_tensor(predictions).cpu()
    except (TypeError, ValueError, RuntimeError):
        raise UserError(
            f"predictions= must be class indices or (n, classes) scores, got {type(predictions).__name__}"
        ) from None
    if pred.ndim == 2 and len(pred) == n and pred.shape[1] >= 2:
        return pred.argmax(1)
    if pred.ndim != 1 or len(pred) != n:
        raise UserError(
            f"predictions= must be one class index per input, shape ({n},), or scores of shape "
            f"({n}, classes); got {tuple(pred.shape)}"
        )
    return checked_labels(pred, n)


def warn_if_near_chance(logits: torch.Tensor, y: torch.Tensor) -> None:
    """Warn when the clean accuracy is near chance (a tenth of the way from chance to perfect, or
    closer): far more often a preprocessing mismatch than a model that bad."""
    num_classes = logits.shape[1]
    chance = max(1.0 / num_classes, float(torch.bincount(y).max()) / len(y))
    accuracy = float((logits.argmax(1) == y).float().mean())
    if accuracy <= chance + 0.1 * (1.0 - chance):
        warnings.warn(
            f"clean accuracy {accuracy:.1%} on these {len(y)} inputs is near chance ({chance:.1%} for "
            f"{num_classes} classes): the inputs are likely normalized twice, or not at all (give "
            f"un-normalized inputs within `bounds` and the model's mean/std); pass "
            f"expected_clean_accuracy= to make this an error",
            stacklevel=3,
        )


def for_num_classes(cfg: SuiteConfig, num_classes: int) -> SuiteConfig:
    """The suite adapted to a model with `num_classes` outputs: with fewer than 4 classes, APGD-T
    (targeted DLR) becomes untargeted DLR APGD (3 classes) or is dropped (2), and APGD on the DLR loss
    is dropped with 2; said in one warning line. With 4 or more classes the suite is unchanged."""
    if num_classes >= TARGETED_DLR_CLASSES:
        return cfg
    attacks, changes = [], []
    for acfg in cfg.attacks:
        native = native_attack(acfg.attack) if acfg.engine == "native" else None
        cls, threat = native if native is not None else (None, None)
        if cls is not None and issubclass(cls, APGDT):
            if num_classes >= DLR_CLASSES:
                kwargs = {k: v for k, v in acfg.kwargs.items() if k not in ("n_target_classes", "sweep_steps")}
                attacks.append(
                    dataclasses.replace(acfg, attack=_UNTARGETED_APGD[threat], kwargs={**kwargs, "loss": "dlr"})
                )
                changes.append(f"{acfg.label} runs as untargeted DLR APGD")
            else:
                changes.append(f"{acfg.label} (targeted DLR) dropped")
        elif cls is not None and acfg.kwargs.get("loss") == "dlr" and num_classes < DLR_CLASSES:
            changes.append(f"{acfg.label} (DLR loss) dropped")
        else:
            attacks.append(acfg)
    if not changes:
        return cfg
    what = f"{num_classes}-class model: the DLR loss needs >= 3 classes, targeted DLR >= 4; " + ", ".join(changes)
    if not attacks:
        raise UserError(
            f"suite {cfg.name!r}: no attack left for a {what}; add attacks without the DLR loss "
            f"(APGD-CE, PGD, FMN, Square)"
        )
    warnings.warn(f"suite {cfg.name!r} on a {what}; the other attacks run as configured", stacklevel=3)
    return dataclasses.replace(cfg, attacks=tuple(attacks))


_UNTARGETED_APGD = {"linf": "LinfAPGD", "l2": "L2APGD"}
