"""robustarch: adversarial robustness versus clean accuracy across neural architectures.

Public API::

    from robustarch import AttackSuite, load_dataset, load_space, build_model   # library pieces
    from robustarch import StudyConfig, open_storage, create_or_resume, run_study  # studies
    from robustarch import robustness_table, trials_table, analyze, write_report   # results
"""
from __future__ import annotations

import os as _os

_os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox imports GitPython; git may be absent

from .arch import ArchSpec, StageSpec, build_model, count_flops, count_params  # noqa: E402
from .attack import AttackResult, AttackSuite  # noqa: E402
from .checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from .data import Dataset, load_dataset  # noqa: E402
from .errors import UserError  # noqa: E402
from .space import SearchSpace, load_space  # noqa: E402
from .suite import SuiteConfig, load_suite  # noqa: E402
from .train import TrainConfig, train_model  # noqa: E402
from .record import robustness_table, trials_table  # noqa: E402
from .study import StudyConfig, create_or_resume, open_storage, run_study  # noqa: E402
from .analysis import analyze  # noqa: E402
from .report import write_report  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ArchSpec", "StageSpec", "build_model", "count_flops", "count_params", "AttackResult",
           "AttackSuite", "load_checkpoint", "save_checkpoint", "Dataset", "load_dataset", "UserError",
           "SearchSpace", "load_space", "SuiteConfig", "load_suite", "TrainConfig", "train_model",
           "robustness_table", "trials_table", "StudyConfig", "create_or_resume", "open_storage",
           "run_study", "analyze", "write_report"]
