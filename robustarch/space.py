"""Search spaces over depth and width cells, read from YAML and sampled through Optuna's suggest API.

A value in the YAML is fixed (`3`), a categorical choice (`[plain, basic]`) or a range
(`{min: 16, max: 64, step: 16}` / `{min: 1e-3, max: 1e-1, log: true}`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .arch import ACTIVATIONS, CELL_TYPES, NORMS, ArchSpec, StageSpec
from .errors import UserError
from .presets import Section, load_yaml, resolve
from .train import OPTIMIZERS, RECIPES, TrainConfig


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    step: float | None = None
    log: bool = False
    integer: bool = True


@dataclass(frozen=True)
class Choice:
    values: tuple


Param = Any  # a fixed value, a Range or a Choice


def suggest(trial, name: str, param: Param):
    """Sample `param` through Optuna's `trial.suggest_*` (so every sampler works)."""
    if isinstance(param, Choice):
        return trial.suggest_categorical(name, list(param.values))
    if isinstance(param, Range):
        if param.integer:
            return trial.suggest_int(name, int(param.low), int(param.high), step=int(param.step or 1),
                                     log=param.log)
        return trial.suggest_float(name, param.low, param.high, step=param.step, log=param.log)
    return param


def _values(param: Param) -> list:
    """All values a parameter can take (for counting architectures)."""
    if isinstance(param, Choice):
        return list(param.values)
    if isinstance(param, Range) and param.integer:
        if param.log:
            return list(range(int(param.low), int(param.high) + 1))
        return list(range(int(param.low), int(param.high) + 1, int(param.step or 1)))
    if isinstance(param, Range):
        return [param.low, param.high]
    return [param]


@dataclass(frozen=True)
class StageSpace:
    depth: Param
    width: Param
    stride: int = 1
    cell: Param = "plain"
    kernel_size: Param = 3


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space; `sample(trial, ...)` gives an `ArchSpec` and a `TrainConfig`."""

    name: str
    stages: tuple[StageSpace, ...]
    stem_width: Param = 16
    act: Param = "relu"
    norm: Param = "batchnorm"
    head_dropout: Param = 0.0
    training: dict[str, Param] = field(default_factory=dict)
    max_params: int | None = None
    max_flops: int | None = None
    description: str = ""
    path: str = ""

    def sample(self, trial, *, in_chans: int, num_classes: int, input_size: int) -> tuple[ArchSpec, TrainConfig]:
        stages = []
        for i, st in enumerate(self.stages):
            stages.append(StageSpec(
                depth=suggest(trial, f"stage{i}_depth", st.depth),
                width=suggest(trial, f"stage{i}_width", st.width),
                stride=st.stride,
                cell=suggest(trial, f"stage{i}_cell", st.cell),
                kernel_size=suggest(trial, f"stage{i}_kernel", st.kernel_size)))
        arch = ArchSpec(in_chans=in_chans, num_classes=num_classes, input_size=input_size,
                        stem_width=suggest(trial, "stem_width", self.stem_width), stages=tuple(stages),
                        act=suggest(trial, "act", self.act), norm=suggest(trial, "norm", self.norm),
                        head_dropout=suggest(trial, "head_dropout", self.head_dropout))
        train = {k: suggest(trial, f"train_{k}", v) for k, v in self.training.items()}
        return arch, replace(TrainConfig(), **train)

    def n_architectures(self) -> int:
        """Number of distinct architectures (continuous ranges count their two end points)."""
        total = 1
        for p in (self.stem_width, self.act, self.norm, self.head_dropout):
            total *= len(_values(p))
        for st in self.stages:
            for p in (st.depth, st.width, st.cell, st.kernel_size):
                total *= len(_values(p))
        return total


_TOP = ("name", "description", "stem", "stages", "head", "act", "norm", "training", "constraints")
_STAGE = ("depth", "width", "stride", "cell", "kernel_size")
_TRAIN_FIELDS = tuple(f.name for f in fields(TrainConfig))


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A preset name (`digits-cells`) or a YAML path → a validated `SearchSpace`."""
    path = resolve("search_spaces", name_or_path)
    return parse_space(load_yaml(path), default_name=path.stem)


def _param(sec: Section, key: str, default: Param, *, integer: bool, choices=None, min_value=None) -> Param:
    """Parse one searchable field: scalar, list of choices, or {min, max, step, log}."""
    if key not in sec.data or sec.data[key] is None:
        return default
    raw = sec.data[key]
    allowed = f"; allowed values are {', '.join(map(repr, choices))}" if choices else ""
    if isinstance(raw, list):
        if not raw:
            raise sec.error(key, "an empty list of choices")
        for v in raw:
            _check_scalar(sec, key, v, integer, choices, min_value, allowed)
        return Choice(tuple(raw)) if len(raw) > 1 else raw[0]
    if isinstance(raw, dict):
        sub = sec.section(key)
        sub.check_keys(("min", "max", "step", "log"))
        num = int if integer else (int, float)
        low = sub.get("min", num)
        high = sub.get("max", num)
        if min_value is not None and low < min_value:
            raise sub.error("min", f"got {low!r}; must be >= {min_value}")
        if high < low:
            raise sub.error("max", f"got {high!r}; must be >= min ({low!r})")
        log = sub.get("log", bool, False)
        step = sub.get("step", num, None)
        if log and step is not None:
            raise sub.error("step", "cannot be combined with log: true")
        if log and low <= 0:
            raise sub.error("min", "must be > 0 with log: true")
        return Range(low, high, step, log, integer=integer)
    _check_scalar(sec, key, raw, integer, choices, min_value, allowed)
    return raw


def _check_scalar(sec, key, v, integer, choices, min_value, allowed):
    if choices is not None:
        if v not in choices:
            raise sec.error(key, f"got {v!r}{allowed}")
        return
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok:
        raise sec.error(key, f"expected {'an integer' if integer else 'a number'}, a list of them or "
                             f"{{min, max, step, log}}, got {v!r}")
    if min_value is not None and v < min_value:
        raise sec.error(key, f"got {v!r}; must be >= {min_value}")


def parse_space(doc: Section, default_name: str = "space") -> SearchSpace:
    doc.check_keys(_TOP)
    stem = doc.section("stem", {})
    stem.check_keys(("width",))
    head = doc.section("head", {})
    head.check_keys(("dropout",))
    stages = []
    for sec in doc.sections("stages"):
        sec.check_keys(_STAGE)
        stages.append(StageSpace(
            depth=_param(sec, "depth", 1, integer=True, min_value=1),
            width=_param(sec, "width", None, integer=True, min_value=1) if "width" in sec
            else _raise(sec.error("width", "missing (required)")),
            stride=sec.get("stride", int, 1, choices=(1, 2)),
            cell=_param(sec, "cell", "plain", integer=False, choices=CELL_TYPES),
            kernel_size=_param(sec, "kernel_size", 3, integer=True, choices=(1, 3, 5, 7))))
    training = doc.section("training", {})
    training.check_keys(_TRAIN_FIELDS)
    train: dict[str, Param] = {}
    for key in training.data:
        if key == "recipe":
            train[key] = _param(training, key, "standard", integer=False, choices=RECIPES)
        elif key == "optimizer":
            train[key] = _param(training, key, "sgd", integer=False, choices=OPTIMIZERS)
        elif key in ("epochs", "batch_size", "patience"):
            train[key] = _param(training, key, None, integer=True, min_value=1)
        else:
            train[key] = _param(training, key, None, integer=False, min_value=0)
    constraints = doc.section("constraints", {})
    constraints.check_keys(("max_params", "max_flops"))
    return SearchSpace(
        name=doc.get("name", str, default_name), stages=tuple(stages),
        stem_width=_param(stem, "width", 16, integer=True, min_value=1),
        act=_param(doc, "act", "relu", integer=False, choices=ACTIVATIONS),
        norm=_param(doc, "norm", "batchnorm", integer=False, choices=NORMS),
        head_dropout=_param(head, "dropout", 0.0, integer=False, min_value=0),
        training=train, max_params=constraints.get("max_params", int, None, min=1),
        max_flops=constraints.get("max_flops", int, None, min=1),
        description=doc.get("description", str, ""), path=str(doc.file))


def _raise(exc: Exception):
    raise exc
