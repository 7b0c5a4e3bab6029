"""Deprecated alias, kept for one release: `robustarch.search` was split into `robustarch.spaces`
(search spaces), `robustarch.models` (specs, cells, checkpoints) and `robustarch.training` (data and
training). The search itself is an Optuna study: `robustarch.study`.
"""

from __future__ import annotations

import importlib
import sys
import warnings

warnings.warn(
    "robustarch.search is deprecated: import from robustarch.spaces, robustarch.models or robustarch.training",
    DeprecationWarning,
    stacklevel=2,
)

# old submodule → its new home, so `from robustarch.search.train import ...` keeps working
_MOVED = {
    "arch": "models.arch",
    "cells": "models.cells",
    "checkpoint": "models.checkpoint",
    "data": "training.data",
    "train": "training.train",
    "recipes": "training.recipes",
    "space": "spaces.space",
    "space_schema": "spaces.schema",
}
for _old, _new in _MOVED.items():
    sys.modules[f"{__name__}.{_old}"] = globals()[_old] = importlib.import_module(f"robustarch.{_new}")

from ..models import *  # noqa: E402,F401,F403
from ..spaces import *  # noqa: E402,F401,F403
from ..training import *  # noqa: E402,F401,F403
