"""The search-space YAML schema: validated once, at the edge, into Optuna parameters.

Every error names the file, the line, the field and the allowed values (the CLI exits 2 on them).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..errors import one_of
from ..models.arch import ACTIVATIONS, CELL_TYPES, FAMILIES, NORMS
from ..models.cells import RESNET_STEM_WIDTH
from ..presets import Section
from ..training.data import DATASET_SHAPES
from ..training.recipes import RECIPES
from ..training.train import OPTIMIZERS, SELECT, TrainConfig


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


def values_of(param: Any) -> list:
    """All values a parameter can take (continuous float ranges: their two end points)."""
    if isinstance(param, Choice):
        return list(param.values)
    if isinstance(param, Range) and param.integer:
        return list(range(int(param.low), int(param.high) + 1, 1 if param.log else int(param.step or 1)))
    if isinstance(param, Range) and param.step is not None:
        n = int(round((param.high - param.low) / param.step))
        return [round(param.low + i * param.step, 12) for i in range(n + 1)]
    if isinstance(param, Range):
        return [param.low, param.high]
    return [param]


_TOP = (
    "name",
    "description",
    "family",
    "dataset",
    "stem",
    "stages",
    "head",
    "act",
    "norm",
    "drop_path",
    "depth",
    "cell",
    "kernel_size",
    "se",
    "width_multiplier",
    "match_params",
    "training",
    "constraints",
    "input_levels",
)
_STAGE = ("depth", "width", "stride", "cell", "kernel_size", "se")
_SHARED = ("depth", "cell", "kernel_size", "se")  # top-level defaults a stage may override
_KERNELS = (1, 3, 5, 7)
_RESNET_CELLS = ("basic", "bottleneck")
_TRAIN_INT = ("epochs", "batch_size", "patience", "attack_steps", "max_steps")
_TRAIN_FIELDS = tuple(f.name for f in fields(TrainConfig))


def param(
    sec: Section,
    key: str,
    default: Any,
    *,
    integer: bool,
    choices=None,
    min_value=None,
    max_value=None,
    factor: bool = False,
) -> Any:
    """Parse one searchable field: scalar, list of choices, or {min, max, step | log | factor}."""
    if key not in sec.data or sec.data[key] is None:
        return default
    raw = sec.data[key]
    if isinstance(raw, list):
        if not raw:
            raise sec.error(key, "an empty list of choices")
        for v in raw:
            _check_scalar(sec, key, v, integer, choices, min_value, max_value)
        return Choice(tuple(dict.fromkeys(raw))) if len(set(raw)) > 1 else raw[0]
    if isinstance(raw, dict):
        if choices is not None:
            raise sec.error(key, f"expected one value or a list of {one_of(choices)}, got a mapping")
        return _range(sec, key, integer, min_value, max_value, factor)
    _check_scalar(sec, key, raw, integer, choices, min_value, max_value)
    return raw


def _range(sec: Section, key: str, integer: bool, min_value, max_value, factor: bool):
    sub = sec.section(key)
    sub.check_keys(("min", "max", "step", "log", "factor") if factor else ("min", "max", "step", "log"))
    num = int if integer else (int, float)
    low, high = sub.get("min", num), sub.get("max", num)
    if min_value is not None and low < min_value:
        raise sub.error("min", f"got {low!r}; must be >= {min_value}")
    if max_value is not None and high > max_value:
        raise sub.error("max", f"got {high!r}; must be <= {max_value}")
    if high < low:
        raise sub.error("max", f"got {high!r}; must be >= min ({low!r})")
    log, step = sub.get("log", bool, False), sub.get("step", num, None, min=0)
    mult = sub.get("factor", (int, float), None, min=1.01) if factor else None
    if sum(x not in (None, False) for x in (log, step, mult)) > 1:
        raise sub.error(None, "use at most one of step, log: true or factor")
    if step is not None and step <= 0:
        raise sub.error("step", f"got {step!r}; must be > 0")
    if (log or mult) and low <= 0:
        raise sub.error("min", "must be > 0 with log: true or factor")
    if mult is not None:  # geometric steps: min, min·f, min·f², ... up to max
        values, v = [], float(low)
        while v <= high + 1e-9:
            values.append(int(round(v)) if integer else v)
            v *= mult
        return Choice(tuple(dict.fromkeys(values))) if len(values) > 1 else values[0]
    return Range(low, high, step, log, integer=integer)


def _check_scalar(sec, key, v, integer, choices, min_value, max_value):
    if choices is not None:
        if v not in choices or isinstance(v, bool) != any(isinstance(c, bool) for c in choices):
            raise sec.error(key, f"got {v!r}; allowed values are {one_of(choices)}")
        return
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok:
        raise sec.error(
            key,
            f"expected {'an integer' if integer else 'a number'}, a list of them or {{min, max, step, log}}, got {v!r}",
        )
    if min_value is not None and v < min_value:
        raise sec.error(key, f"got {v!r}; must be >= {min_value}")
    if max_value is not None and v > max_value:
        raise sec.error(key, f"got {v!r}; must be <= {max_value}")


def _shared_field(sec: Section, key: str, default: Any, family: str) -> Any:
    if key == "depth":
        return param(sec, key, default, integer=True, min_value=1)
    if key == "cell":
        return param(sec, key, default, integer=False, choices=_RESNET_CELLS if family == "timm-resnet" else CELL_TYPES)
    if key == "kernel_size":
        return param(sec, key, default, integer=True, choices=_KERNELS)
    return param(sec, key, default, integer=False, min_value=0, max_value=1)  # se ratio


def parse_space(doc: Section, default_name: str, stage_type) -> dict:
    """The keyword arguments of `SearchSpace` for the YAML mapping `doc`."""
    doc.check_keys(_TOP)
    family = doc.get("family", str, "cells", choices=tuple(FAMILIES))
    resnet = family == "timm-resnet"
    params: dict[str, Any] = {}
    _parse_shared(doc, resnet, family, params)
    stages = _parse_stages(doc, resnet, family, params, stage_type)
    if params["depth"] is None:
        del params["depth"]
    if resnet and params["kernel_size"] != 3:
        raise doc.error("kernel_size", "timm-resnet blocks use 3x3 convolutions; allowed values are 3")

    if "width_multiplier" in doc and "match_params" in doc:
        raise doc.error("match_params", "cannot be combined with width_multiplier (it sets the widths)")
    if "width_multiplier" in doc:
        params["width_multiplier"] = param(doc, "width_multiplier", 1.0, integer=False, min_value=0.01)
    if "match_params" in doc:
        params["match_params"] = param(doc, "match_params", None, integer=True, min_value=100)

    training = doc.section("training", {})
    training.check_keys(_TRAIN_FIELDS)
    for key in training.data:
        params[f"train_{key}"] = _train_field(training, key)
    constraints = doc.section("constraints", {})
    constraints.check_keys(("max_params", "max_flops"))
    return dict(
        name=doc.get("name", str, default_name),
        family=family,
        stages=tuple(stages),
        params=params,
        training=tuple(training.data),
        dataset=doc.get("dataset", str, "digits", choices=tuple(DATASET_SHAPES)),
        max_params=constraints.get("max_params", int, None, min=1),
        max_flops=constraints.get("max_flops", int, None, min=1),
        description=doc.get("description", str, ""),
        path=str(doc.file),
    )


def _parse_shared(doc: Section, resnet: bool, family: str, params: dict[str, Any]) -> None:
    """Stem, activation, norm, head and the fields every stage shares unless it sets its own."""
    stem = doc.section("stem", {})
    stem.check_keys(("width",) if resnet else ("width", "kernel_size", "stride"))
    if resnet:
        stem.get("width", int, RESNET_STEM_WIDTH, choices=(RESNET_STEM_WIDTH,))
    params["stem_width"] = (
        RESNET_STEM_WIDTH if resnet else param(stem, "width", 16, integer=True, min_value=1, factor=True)
    )
    params["stem_kernel"] = param(stem, "kernel_size", 3, integer=True, choices=_KERNELS)
    params["stem_stride"] = stem.get("stride", int, 1, choices=(1, 2))
    params["act"] = param(doc, "act", "relu", integer=False, choices=ACTIVATIONS)
    params["norm"] = param(doc, "norm", "batchnorm", integer=False, choices=NORMS)
    head = doc.section("head", {})
    head.check_keys(("dropout",))
    params["head_dropout"] = param(head, "dropout", 0.0, integer=False, min_value=0, max_value=0.95)
    params["drop_path"] = param(doc, "drop_path", 0.0, integer=False, min_value=0, max_value=0.95)
    params["input_levels"] = param(doc, "input_levels", 0, integer=True, min_value=0)  # 0: off
    shared_defaults = {"depth": None, "cell": "basic" if resnet else "plain", "kernel_size": 3, "se": 0.0}
    for key, default in shared_defaults.items():
        params[key] = _shared_field(doc, key, default, family)


def _parse_stages(doc: Section, resnet: bool, family: str, params: dict[str, Any], stage_type) -> list:
    """One `stage_type` per YAML stage, naming its Optuna parameters (`stage0_width`, ...)."""
    stage_secs = doc.sections("stages")
    if resnet and len(stage_secs) != 4:
        raise doc.error("stages", f"timm-resnet has exactly 4 stages (timm's layer1..layer4), got {len(stage_secs)}")
    stages = []
    for i, sec in enumerate(stage_secs):
        sec.check_keys(("depth", "width") if resnet else _STAGE)
        names = {}
        for key in _SHARED:
            if sec.data.get(key) is not None:  # `key:` left empty (null) falls back to the top-level default
                names[key] = f"stage{i}_{key}"
                params[names[key]] = _shared_field(sec, key, None, family)
            else:
                names[key] = key
        if params[names["depth"]] is None:
            raise sec.error("depth", "missing (required here or as a top-level default)")
        if sec.data.get("width") is None:
            raise sec.error("width", "missing (required)")
        params[f"stage{i}_width"] = param(sec, "width", None, integer=True, min_value=1, factor=True)
        stride = (1 if i == 0 else 2) if resnet else sec.get("stride", int, 1, choices=(1, 2))
        stages.append(
            stage_type(
                depth=names["depth"],
                width=f"stage{i}_width",
                cell=names["cell"],
                kernel_size=names["kernel_size"],
                se=names["se"],
                stride=stride,
            )
        )
    return stages


def _train_field(sec: Section, key: str) -> Any:
    if key == "recipe":
        return param(sec, key, "standard", integer=False, choices=RECIPES)
    if key == "optimizer":
        return param(sec, key, "sgd", integer=False, choices=OPTIMIZERS)
    if key == "select":
        return param(sec, key, "best", integer=False, choices=SELECT)
    if key == "compile":
        return param(sec, key, False, integer=False, choices=(False, True))
    if key in _TRAIN_INT:
        return param(sec, key, None, integer=True, min_value=1)
    if key == "train_fraction":
        return param(sec, key, None, integer=False, min_value=0.01, max_value=1.0)
    if key == "label_noise":
        return param(sec, key, None, integer=False, min_value=0.0, max_value=1.0)
    if key == "label_smoothing":
        return param(sec, key, None, integer=False, min_value=0.0, max_value=0.9)
    return param(sec, key, None, integer=False, min_value=0)
