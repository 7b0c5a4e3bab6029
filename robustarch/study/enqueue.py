"""Known architectures to run first (`--enqueue baselines.yaml`), checked against the space."""
from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import UserError, one_of
from ..search.space import SearchSpace


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
        raise UserError(f"--enqueue {path}: expected a non-empty list of parameter mappings "
                        "(e.g. - {stage0_depth: 2, stage0_width: 32})")
    allowed = sorted(space.searched())
    for n, item in enumerate(items):
        unknown = sorted(set(item) - set(allowed))
        if unknown:
            raise UserError(f"--enqueue {path}: entry {n}: unknown parameter {unknown[0]!r}; "
                            f"space {space.name!r} searches {one_of(allowed)}")
    return items
