"""The training-side twin of `rescore`: the top architectures (chosen on validation) are trained
again with fresh seeds and scored with the study's suite, so the report can set what the search
observed and what the shrinkage predicted against what a fresh seed gives.

Each retrained seed is stored as study attribute `retrain:<arch_key>:<replicate>` as soon as it is
done; a stopped retrain continues with the next seed when run again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..models.arch import ArchSpec
from ..runtime import configure_threads
from ..training.train import TrainConfig, TrainingFailed, build_or_fail, train_model
from .config import StudyConfig
from .evaluate import evaluate, report_attrs, val_attrs
from .objective import TrialRunner
from .replicates import retrain_seed

RETRAIN_PREFIX = "retrain:"  # study user attribute `retrain:<arch_key>:<replicate>`


def retrain_attr(key: str, replicate: int) -> str:
    return f"{RETRAIN_PREFIX}{key}:{replicate}"


def pending_retrains(study, targets: list[tuple[str, int]], seeds: int) -> list[tuple[str, int, int]]:
    """(arch_key, source trial, replicate) still to train, best architecture first."""
    done = study.user_attrs
    return [(key, n, r) for key, n in targets for r in range(seeds) if retrain_attr(key, r) not in done]


def retrain(
    study,
    config: StudyConfig,
    targets: list[tuple[str, int]],
    seeds: int,
    *,
    device: str | None = None,
    threads: int | None = None,
    artifacts: str | Path | None = None,
    on_start: Callable[[str, int, int, int], None] | None = None,
    on_model: Callable[[str, int, dict], None] | None = None,
) -> dict[str, dict]:
    """Train each architecture of `targets` ((arch_key, a trial of it), best first) with `seeds`
    fresh seeds (study.replicates.retrain_seed: never a seed the search used), score it with the
    study's suite on validation and test, and store it. Progress: `on_start(key, r, i, count)` before
    the `i`-th of `count` trainings, `on_model(key, r, record)` after each.

    >>> retrain(study, config, [("3f2a9c0d1b7e", 12)], 3)  # doctest: +SKIP
    """
    todo = pending_retrains(study, targets, seeds)
    if not todo:
        return {}
    configure_threads(threads)
    runner = TrialRunner(config, device=device, artifacts=artifacts)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    done = {}
    for i, (key, n, r) in enumerate(todo):
        if on_start is not None:
            on_start(key, r, i, len(todo))
        record = _train_one(runner, trials[n].user_attrs, key, n, r)
        done[retrain_attr(key, r)] = record
        study.set_user_attr(retrain_attr(key, r), record)
        if on_model is not None:
            on_model(key, r, record)
    return done


def _train_one(runner: TrialRunner, attrs: dict, key: str, trial_number: int, replicate: int) -> dict:
    """One fresh-seed training of the architecture a trial stored, scored as the search scores."""
    seed = retrain_seed(runner.config.seed, key, replicate)
    arch = ArchSpec.from_dict(attrs["arch"])
    train_config = TrainConfig.from_dict(attrs["train_config"])
    head = {"arch_key": key, "replicate": replicate, "trial": trial_number, "seed": seed}
    torch.manual_seed(seed)
    data = runner._trial_data(train_config)
    try:
        model = build_or_fail(arch)
        result = train_model(model, data, train_config, device=runner.device, seed=seed)
    except TrainingFailed as exc:  # stored as failed, so a rerun does not train it again
        return {**head, "fail_reason": exc.reason, "fail_detail": str(exc)[:500]}
    val, val_clean, test, test_clean = evaluate(runner.suite, model, data, runner.device, seed)
    numbers = {**val_attrs(val, val_clean), **report_attrs(test, test_clean)}
    keep = (
        "val_clean_accuracy",
        "val_robust_accuracy",
        "val_n_attacked",
        "clean_accuracy",
        "robust_accuracy",
        "attacked_clean_accuracy",
        "n_attacked",
    )
    return {
        **head,
        "eps": list(runner.suite_config.eps),
        "val_accuracy": result.val_accuracy,
        **{k: numbers[k] for k in keep},
        "train_seconds": round(result.seconds, 3),
        "provenance": runner.provenance(_Numbered(trial_number), seed, {"arch_key": key, "retrain": replicate}),
    }


class _Numbered:
    """The one thing `TrialRunner.provenance` reads of a trial."""

    def __init__(self, number: int):
        self.number = number
