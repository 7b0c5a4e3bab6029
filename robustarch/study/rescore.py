"""The end of a study: the best models (chosen on validation) and the clean/robust Pareto front
are re-attacked with the AutoAttack-composition suite on the test split. A search suite is cheap by
design; the report quotes the rescored numbers beside the search ones, and the drop between them.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from ..attacks.config import load_suite
from ..attacks.suite import AttackSuite
from ..metrics import WORST_CASE, pareto_front
from ..runtime import pick_device
from ..search.checkpoint import load_checkpoint
from ..search.data import load_dataset
from .artifacts import download_checkpoint
from .config import StudyConfig, objective_eps_index
from .evaluate import curves

RESCORE_PREFIX = "rescore:"  # study user attribute `rescore:<trial number>`


def _val_point(trial, eps_index: int) -> tuple[float, float] | None:
    a = trial.user_attrs
    robust = (a.get("val_robust_accuracy") or {}).get(WORST_CASE)
    if robust is None or a.get("val_clean_accuracy") is None:
        return None
    return float(a["val_clean_accuracy"]), float(robust[eps_index])


def rescore_candidates(study, config: StudyConfig, k: int) -> list[int]:
    """Trial numbers to rescore: the `k` best by validation robust accuracy at the objective ε, plus
    the validation clean/robust Pareto front; complete trials with a valid evaluation only."""
    eps_index = objective_eps_index(config, load_suite(config.suite))
    points = {}
    for t in study.get_trials(deepcopy=False):
        if t.state.name == "COMPLETE" and not t.user_attrs.get("sanity_invalid") and "checkpoint_artifact" in t.user_attrs:
            point = _val_point(t, eps_index)
            if point is not None:
                points[t.number] = point
    if not points or k <= 0:
        return []
    numbers = list(points)
    clean = np.array([points[n][0] for n in numbers])
    robust = np.array([points[n][1] for n in numbers])
    best = [numbers[i] for i in np.lexsort((-clean, -robust))[:k]]
    front = [n for n, on_front in zip(numbers, pareto_front(clean, robust)) if on_front]
    return sorted(set(best) | set(front))


def rescore(study, storage: str, config: StudyConfig, k: int, *, device: str | None = None,
            artifacts: str | Path | None = None, on_model: Callable[[int, dict], None] | None = None,
            suite: str | None = None) -> dict[int, dict]:
    """Rescore the candidates not rescored yet with `suite` (default: the dataset's autoattack
    preset); store each as study attribute `rescore:<n>`."""
    todo = [n for n in rescore_candidates(study, config, k) if f"{RESCORE_PREFIX}{n}" not in study.user_attrs]
    if not todo:
        return {}
    suite_config = load_suite(suite or config.rescore_suite)
    dev = pick_device(device)
    data = load_dataset(config.dataset, data_dir=config.data_dir, seed=config.seed)
    attack_suite = AttackSuite(suite_config, bounds=data.bounds, device=dev)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    done = {}
    for n in todo:
        with tempfile.TemporaryDirectory() as tmp:
            path = download_checkpoint(storage, study.study_name, n, tmp, artifacts)
            model = load_checkpoint(path, device=dev).model
        result = attack_suite.run(model, data.test.x, data.test.y, seed=config.seed + n)
        search = trials[n].user_attrs.get("robust_accuracy", {}).get(WORST_CASE)
        done[n] = {"suite": suite_config.name, "split": "test", "eps": list(suite_config.eps),
                   "robust_accuracy": curves(result), "clean_accuracy": result.clean_accuracy,
                   "n_attacked": len(result.per_sample), "seconds": round(result.seconds, 3),
                   "sanity_invalid": result.invalid_checks, "search_suite": config.suite,
                   "search_eps": trials[n].user_attrs.get("eps"), "search_robust_accuracy": search}
        study.set_user_attr(f"{RESCORE_PREFIX}{n}", done[n])
        if on_model is not None:
            on_model(n, done[n])
    return done
