"""The Optuna side: what a study is, the trial objective, storages and crash recovery, workers,
and checkpoints as artifacts. The only stage that imports Optuna.

    study, config = create_or_resume(open_storage("robustarch.journal"), "s1", StudyConfig())
    run_study(study, config, n_trials=12)
"""

from .advice import eps_advice
from .artifacts import download_checkpoint
from .config import DEFAULT_SUITES, OBJECTIVES, ROBUST_METRICS, StudyConfig, objective_eps, validate_config
from .enqueue import load_enqueue_file
from .objective import TrialFailed, TrialRunner
from .recipe import StudyRecipe, check_runs, load_recipe, plan
from .replicates import arch_key, derive_seed, expected_replicates
from .rescore import RESCORE_PREFIX, rescore
from .resume import create_or_resume
from .samplers import PRUNERS, SAMPLERS, search_grid
from .storage import DEFAULT_STORAGE, default_artifacts, open_existing, open_storage, study_names
from .workers import WorkerSummary, run_study

__all__ = [
    "DEFAULT_STORAGE",
    "DEFAULT_SUITES",
    "OBJECTIVES",
    "PRUNERS",
    "RESCORE_PREFIX",
    "ROBUST_METRICS",
    "SAMPLERS",
    "StudyConfig",
    "StudyRecipe",
    "TrialFailed",
    "TrialRunner",
    "WorkerSummary",
    "arch_key",
    "check_runs",
    "create_or_resume",
    "default_artifacts",
    "derive_seed",
    "expected_replicates",
    "download_checkpoint",
    "eps_advice",
    "load_enqueue_file",
    "load_recipe",
    "objective_eps",
    "open_existing",
    "open_storage",
    "plan",
    "rescore",
    "run_study",
    "search_grid",
    "study_names",
    "validate_config",
]
