"""robustarch: adversarial robustness versus clean accuracy across neural architectures.

Public API::

    from robustarch import AttackSuite, load_dataset, load_space, build_model   # library pieces
    from robustarch import StudyConfig, open_storage, create_or_resume, run_study  # studies
    from robustarch import robustness_table, trials_table, analyze, write_report   # results
    from robustarch import analyze_table              # findings on a plain table of anyone's models

The stages are subpackages whose imports point one way: `spaces` (YAML search spaces) → `models`
(specs, cells, checkpoints) and `training` (data, training), and `attacks` (suites, verified
results) → `study` (Optuna: the search itself) → `analysis` (tables, statistics; no torch) →
`report` (HTML). Names are resolved on first use, so `import robustarch.analysis` does not
pull in torch.
"""

from __future__ import annotations

import importlib as _importlib
import os as _os

from ._version import __version__

_os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox imports GitPython; git may be absent

# public name → the subpackage that defines it (each subpackage's __init__ lists its own API)
_EXPORTS = {
    "spaces": ("SearchSpace", "load_space"),
    "models": (
        "ArchSpec",
        "StageSpec",
        "build_model",
        "count_flops",
        "count_params",
        "load_checkpoint",
        "save_checkpoint",
    ),
    "training": ("Dataset", "load_dataset", "TrainConfig", "train_model"),
    "attacks": ("AttackResult", "AttackSuite", "SuiteConfig", "load_suite"),
    "errors": ("UserError",),
    "study": ("StudyConfig", "create_or_resume", "open_storage", "run_study"),
    "analysis": ("robustness_table", "trials_table", "analyze", "analyze_table"),
    "report": ("write_report",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = ["__version__", *_WHERE]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'robustarch' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
