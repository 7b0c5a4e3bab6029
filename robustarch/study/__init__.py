"""The Optuna side: what a study is, the trial objective, storages and crash recovery, workers,
and checkpoints as artifacts. The only stage that imports Optuna.

    study, config = create_or_resume(open_storage("robustarch.journal"), "s1", StudyConfig())
    run_study(study, config, n_trials=12)
"""
from .artifacts import download_checkpoint
from .config import OBJECTIVES, ROBUST_METRICS, StudyConfig, objective_eps
from .enqueue import load_enqueue_file
from .objective import TrialFailed, TrialRunner
from .resume import create_or_resume
from .samplers import PRUNERS, SAMPLERS, search_grid
from .storage import DEFAULT_STORAGE, default_artifacts, open_storage
from .workers import WorkerSummary, run_study

__all__ = ["DEFAULT_STORAGE", "OBJECTIVES", "PRUNERS", "ROBUST_METRICS", "SAMPLERS", "StudyConfig",
           "TrialFailed", "TrialRunner", "WorkerSummary", "create_or_resume", "default_artifacts",
           "download_checkpoint", "load_enqueue_file", "objective_eps", "open_storage", "run_study",
           "search_grid"]
