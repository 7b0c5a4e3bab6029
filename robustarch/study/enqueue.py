"""Known architectures to run first (`--enqueue baselines.yaml`), checked against the space."""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from ..errors import UserError, one_of
from ..spaces.schema import Choice
from ..spaces.space import SearchSpace


def load_enqueue_file(path: str | Path, space: SearchSpace) -> list[dict]:
    """Known architectures to run first: a YAML or JSON list of parameter mappings named as the
    space's parameters (`stage0_depth`, `stage0_width`, ...); parameters left out are sampled."""
    path = Path(path)
    try:
        items = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"--enqueue {path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"--enqueue {path}: malformed YAML/JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise UserError(
            f"--enqueue {path}: expected a non-empty list of parameter mappings "
            "(e.g. - {stage0_depth: 2, stage0_width: 32})"
        )
    allowed = sorted(space.searched())
    for n, item in enumerate(items):
        unknown = sorted(set(item) - set(allowed))
        if unknown:
            raise UserError(
                f"--enqueue {path}: entry {n}: unknown parameter {unknown[0]!r}; "
                f"space {space.name!r} searches {one_of(allowed)}"
            )
        for key, value in item.items():
            allowed_here = _outside(value, space.params[key])
            if allowed_here:
                raise UserError(
                    f"--enqueue {path}: entry {n}: {key}: {value!r} is outside space "
                    f"{space.name!r}, which allows {allowed_here}"
                )
    return items


def _outside(value, param) -> str:
    """'' when `value` is one `param` can take (so Optuna would sample it too), else what it allows."""
    if isinstance(param, Choice):
        ok = any(value == v and isinstance(value, bool) == isinstance(v, bool) for v in param.values)
        return "" if ok else one_of(param.values)
    kind = "whole numbers" if param.integer else "numbers"
    step = f" in steps of {param.step}" if param.step else ""
    text = f"{kind} from {param.low} to {param.high}{step}"
    number = (int,) if param.integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, number) or not param.low <= value <= param.high:
        return text
    if param.step and not math.isclose(
        (value - param.low) / param.step, round((value - param.low) / param.step), abs_tol=1e-9
    ):
        return text
    return ""
