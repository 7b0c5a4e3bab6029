"""Search spaces over depth and width cells, read from YAML and sampled through Optuna's suggest API.

A value in the YAML is fixed (`3`), a categorical choice (`[plain, basic]`) or a range
(`{min: 16, max: 64, step: 16}`, `{min: 8, max: 64, log: true}`, `{min: 8, max: 64, factor: 2}`).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from ..models.arch import ArchSpec, StageSpec, build_model, count_params
from ..models.cells import layer_fn, make_cell
from .schema import Choice, Range, parse_space, values_of

__all__ = ["Choice", "Range", "SearchSpace", "StageSpace", "load_space", "suggest"]

Param = Any  # a fixed value, a Range or a Choice


def suggest(trial, name: str, param: Param):
    """Sample `param` through Optuna's `trial.suggest_*` (so every sampler works)."""
    if isinstance(param, Choice):
        return trial.suggest_categorical(name, list(param.values))
    if isinstance(param, Range):
        if param.integer:
            return trial.suggest_int(name, int(param.low), int(param.high), step=int(param.step or 1), log=param.log)
        return trial.suggest_float(name, param.low, param.high, step=param.step, log=param.log)
    return param


@dataclass(frozen=True)
class StageSpace:
    """One stage's searchable fields, as Optuna parameter names (`stage0_depth`, or a shared `depth`)."""

    depth: str
    width: str
    cell: str
    kernel_size: str
    se: str
    stride: int = 1


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space; `sample(trial, ...)` gives an `ArchSpec` and a `TrainConfig`.

    Every knob lives in `params` under its Optuna parameter name, so sampling, counting and the grid
    of `GridSampler` (`grid()`) all read one table.
    """

    name: str
    family: str
    stages: tuple[StageSpace, ...]
    params: dict[str, Param]
    training: tuple[str, ...] = ()  # TrainConfig fields set by this space (params `train_<field>`)
    dataset: str = "digits"  # the dataset the space is sized for (`spaces show` builds for it)
    max_params: int | None = None
    max_flops: int | None = None  # FLOPs of one forward pass (1 multiply-add = 2 FLOPs)
    description: str = ""
    path: str = ""
    _range_cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def sample(self, trial, *, in_chans: int, num_classes: int, input_size: int):
        """Suggest every parameter through `trial` → `(ArchSpec, TrainConfig)`.

        Example: `arch, cfg = load_space("digits-cells").sample(optuna.trial.FixedTrial({...}), ...)`.
        """
        values = {name: suggest(trial, name, p) for name, p in self.params.items()}
        return self._arch(values, in_chans, num_classes, input_size), self._train(values)

    def _arch(self, v: dict, in_chans: int, num_classes: int, input_size: int) -> ArchSpec:
        stages = tuple(
            StageSpec(
                depth=v[s.depth],
                width=v[s.width],
                stride=s.stride,
                cell=v[s.cell],
                kernel_size=v[s.kernel_size],
                se=float(v[s.se]),
            )
            for s in self.stages
        )
        arch = ArchSpec(
            in_chans=in_chans,
            num_classes=num_classes,
            input_size=input_size,
            stem_width=v["stem_width"],
            stages=stages,
            act=v["act"],
            norm=v["norm"],
            head_dropout=float(v["head_dropout"]),
            family=self.family,
            stem_kernel=v["stem_kernel"],
            stem_stride=v["stem_stride"],
            drop_path=float(v["drop_path"]),
            input_levels=int(v["input_levels"]),
        )
        if v.get("width_multiplier", 1) != 1:
            arch = _scale_widths(arch, float(v["width_multiplier"]))
        if v.get("match_params"):
            arch = match_params(arch, int(v["match_params"]))
        return arch

    def _train(self, v: dict):
        from ..training.train import TrainConfig

        return replace(TrainConfig(), **{k: v[f"train_{k}"] for k in self.training})

    def grid(self) -> dict[str, list]:
        """The `search_space` dict of `optuna.samplers.GridSampler` (every searched parameter).

        Example: `optuna.create_study(sampler=GridSampler(space.grid()))`.
        """
        out = {}
        for name, p in self.params.items():
            if isinstance(p, Range) and not p.integer and p.step is None:
                raise UserError(
                    f"{self.path or self.name}: parameter {name!r} is a continuous range; "
                    "a grid needs lists or ranges with a step"
                )
            if isinstance(p, (Range, Choice)):
                out[name] = values_of(p)
        return out

    def searched(self) -> dict[str, Param]:
        """The parameters that vary (ranges and choices), by Optuna name."""
        return {k: p for k, p in self.params.items() if isinstance(p, (Range, Choice))}

    def n_architectures(self) -> int:
        """Number of distinct architectures (training knobs excluded; a continuous range counts its
        two end points)."""
        total = 1
        for name, p in self.searched().items():
            if not name.startswith("train_"):
                total *= len(values_of(p))
        return total

    def param_range(
        self, *, in_chans: int, num_classes: int, input_size: int, samples: int = 48, seed: int = 0
    ) -> tuple[int, int, int, bool]:
        """`(min, max, n_built, exhaustive)`: parameter counts over every architecture when there are
        at most `samples`, else over the two corner points plus a seeded random sample."""
        key = (in_chans, num_classes, input_size, samples, seed)
        if key in self._range_cache:
            return self._range_cache[key]
        arch_params = {k: p for k, p in self.searched().items() if not k.startswith("train_")}
        choices = {k: values_of(p) for k, p in arch_params.items()}
        exhaustive = self.n_architectures() <= samples
        if exhaustive:
            import itertools

            points = [dict(zip(choices, combo)) for combo in itertools.product(*choices.values())]
        else:
            rng = random.Random(seed)
            points = [{k: c[0] for k, c in choices.items()}, {k: c[-1] for k, c in choices.items()}]
            points += [{k: rng.choice(c) for k, c in choices.items()} for _ in range(samples - 2)]
        fixed = {k: p for k, p in self.params.items() if k not in arch_params}
        counts = []
        for point in points:
            arch = self._arch({**fixed, **point}, in_chans, num_classes, input_size)
            counts.append(meta_params(arch))
        result = (min(counts), max(counts), len(points), exhaustive)
        self._range_cache[key] = result
        return result


def meta_params(arch: ArchSpec) -> int:
    """Parameter count of `arch` without allocating weights.

    For the `cells` family: the sum of its cells' counts, each cell built once (cached) on PyTorch's
    meta device — bisection in `match_params` and `param_range` ask for thousands of nets.
    Other families are built whole on the meta device.
    """
    if arch.family != "cells":
        with torch.device("meta"):
            return count_params(build_model(arch))
    total = _stem_params(arch.in_chans, arch.stem_width, arch.stem_kernel, arch.norm, arch.act)
    cin = arch.stem_width
    for st in arch.stages:
        for i in range(st.depth):
            total += _cell_params(
                st.cell, cin, st.width, st.stride if i == 0 else 1, st.kernel_size, st.se, arch.norm, arch.act
            )
            cin = st.width
    return total + (cin + 1) * arch.num_classes  # linear head


@functools.lru_cache(maxsize=8192)
def _cell_params(kind, cin, cout, stride, kernel_size, se, norm, act) -> int:
    with torch.device("meta"):
        cell = make_cell(
            kind, cin, cout, stride=stride, kernel_size=kernel_size, layers=layer_fn(norm, act, se), drop_path=0.0
        )
    return count_params(cell)


@functools.lru_cache(maxsize=1024)
def _stem_params(in_chans, width, kernel_size, norm, act) -> int:
    with torch.device("meta"):
        return count_params(layer_fn(norm, act, 0.0).conv_norm_act(in_chans, width, kernel_size))


def _scale_widths(arch: ArchSpec, multiplier: float) -> ArchSpec:
    stages = tuple(replace(s, width=max(1, round(s.width * multiplier))) for s in arch.stages)
    return replace(arch, stages=stages)


def match_params(arch: ArchSpec, target: int) -> ArchSpec:
    """Scale every stage width by one common factor so the parameter count is closest to `target`.

    Used by `depth-width-grid`: deep-and-thin and wide-and-shallow nets compared at equal size.
    The stage widths in the YAML then give only the ratios between stages.
    """
    low, high = 1 / 64, 64.0
    for _ in range(14):  # bisection on log(multiplier) to ~0.2%: parameters grow with width
        mid = (low * high) ** 0.5
        if meta_params(_scale_widths(arch, mid)) < target:
            low = mid
        else:
            high = mid
    best = min((_scale_widths(arch, m) for m in (low, high)), key=lambda a: abs(meta_params(a) - target))
    # Integer widths (and timm rounding inner widths to multiples of 8) leave steps of several percent
    # in thin nets: nudge single stages by ±1 channel while that gets closer.
    for _ in range(8):
        nudged = [
            replace(best, stages=best.stages[:i] + (replace(s, width=s.width + d),) + best.stages[i + 1 :])
            for i, s in enumerate(best.stages)
            for d in (-1, 1)
            if s.width + d >= 1
        ]
        closest = min(nudged, key=lambda a: abs(meta_params(a) - target))
        if abs(meta_params(closest) - target) >= abs(meta_params(best) - target):
            break
        best = closest
    return best


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A preset name (`digits-cells`) or a YAML path → a validated `SearchSpace`."""
    from ..presets import load_yaml, resolve

    path = resolve("search_spaces", name_or_path)
    return SearchSpace(**parse_space(load_yaml(path), default_name=path.stem, stage_type=StageSpace))
