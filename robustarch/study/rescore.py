"""The end of a study: the best models (chosen on validation) and the clean/robust Pareto front
are re-attacked with the AutoAttack-composition suite on the test split. A search suite is cheap by
design; the report quotes the rescored numbers beside the search ones, and the drop between them,
measured on the same test samples.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..attacks.config import load_suite
from ..attacks.result import AttackResult, robust_fraction
from ..attacks.spec import SuiteConfig
from ..attacks.suite import AttackSuite
from ..metrics import WORST_CASE, pareto_front
from ..models.checkpoint import load_checkpoint
from ..runtime import configure_threads, pick_device
from ..training.data import load_dataset
from .artifacts import download_checkpoint
from .config import StudyConfig, objective_eps_index
from .evaluate import curves
from .provenance import provenance

RESCORE_PREFIX = "rescore:"  # study user attribute `rescore:<trial number>`


def _val_point(trial, eps_index: int) -> tuple[float, float] | None:
    a = trial.user_attrs
    robust = (a.get("val_robust_accuracy") or {}).get(WORST_CASE)
    if robust is None or a.get("val_clean_accuracy") is None:
        return None
    return float(a["val_clean_accuracy"]), float(robust[eps_index])


def rescore_candidates(study, config: StudyConfig, k: int) -> list[int]:
    """Trial numbers to rescore, best first: the `k` best by validation robust accuracy at the
    objective ε, plus the validation clean/robust Pareto front; complete trials with a valid
    evaluation only. Best first, so that a rescore stopped early has the models that matter most."""
    eps_index = objective_eps_index(config, load_suite(config.suite))
    points = {}
    for t in study.get_trials(deepcopy=False):
        if (
            t.state.name == "COMPLETE"
            and not t.user_attrs.get("sanity_invalid")
            and "checkpoint_artifact" in t.user_attrs
        ):
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
    # validation robust accuracy first, clean accuracy on ties, then the earlier trial
    return sorted(set(best) | set(front), key=lambda n: (-points[n][1], -points[n][0], n))


def pending(study, config: StudyConfig, k: int) -> list[int]:
    """The candidates not rescored yet (no `rescore:<n>` study attribute), best first."""
    return [n for n in rescore_candidates(study, config, k) if f"{RESCORE_PREFIX}{n}" not in study.user_attrs]


def same_sample_comparison(result: AttackResult, search_attrs: dict) -> dict:
    """The drop on the samples both runs attacked. The search attacked the first `n_attacked` test
    samples with the same split, the rescore the first `len(result.per_sample)` (at least as many,
    see `_covering`): its worst case over the first `n_attacked` is the number to set against the
    search's. `drop` (search − rescore) per rescore ε, None where the search measured no such ε."""
    n = search_attrs.get("n_attacked")
    if not n or n > len(result.per_sample):
        return {"n_compared": None, "compared_robust_accuracy": None, "drop": None}
    worst = result.per_sample["min_adversarial_eps"].to_numpy(dtype=float)[:n]
    compared = [round(robust_fraction(worst, e)[0], 6) for e in result.suite.eps]
    search = dict(zip(search_attrs.get("eps") or [], (search_attrs.get("robust_accuracy") or {}).get(WORST_CASE) or []))
    before = [next((v for s, v in search.items() if math.isclose(s, e)), None) for e in result.suite.eps]
    drop = [None if b is None else round(b - c, 6) for b, c in zip(before, compared)]
    return {"n_compared": int(n), "compared_robust_accuracy": compared, "drop": drop}


def _covering(suite_config: SuiteConfig, trials: dict, todo: list[int]) -> SuiteConfig:
    """The rescore suite, its sample count raised where needed to cover every sample the search
    attacked on test (both take the first samples of the same test split)."""
    searched = max((trials[n].user_attrs.get("n_attacked") or 0 for n in todo), default=0)
    if suite_config.samples is None or suite_config.samples >= searched:
        return suite_config
    return dataclasses.replace(suite_config, samples=searched)


def rescore(
    study,
    storage: str,
    config: StudyConfig,
    k: int,
    *,
    device: str | None = None,
    artifacts: str | Path | None = None,
    on_model: Callable[[int, dict], None] | None = None,
    suite: str | None = None,
    threads: int | None = None,
    on_start: Callable[[int, int, int], None] | None = None,
    on_attack: Callable[[str, int, int], None] | None = None,
) -> dict[int, dict]:
    """Rescore the candidates not rescored yet, best first, with `suite` (default: the dataset's
    autoattack preset); store each as study attribute `rescore:<n>` as soon as it is done, so that
    an interrupted rescore continues with the next model when run again. `threads`: torch's CPU
    threads (default $ROBUSTARCH_THREADS, else the idle cores). Progress: `on_start(n, i, count)`
    before the `i`-th of `count` models (trial `n`), `on_attack(label, i, count)` before each attack
    (see `AttackSuite.run`), `on_model(n, record)` after each model.

    >>> rescore(study, "robustarch.journal", config, 3, suite="autoattack")  # doctest: +SKIP
    """
    todo = pending(study, config, k)
    if not todo:
        return {}
    configure_threads(threads)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    suite_config = _covering(load_suite(suite or config.rescore_suite), trials, todo)
    dev = pick_device(device)
    data = load_dataset(config.dataset, data_dir=config.data_dir, seed=config.seed)
    attack_suite = AttackSuite(suite_config, bounds=data.bounds, device=dev)
    done = {}
    for i, n in enumerate(todo):
        if on_start is not None:
            on_start(n, i, len(todo))
        with tempfile.TemporaryDirectory() as tmp:
            path = download_checkpoint(storage, study.study_name, n, tmp, artifacts)
            model = load_checkpoint(path, device=dev).model
        # the seed the search attacked this trial's test samples with (derived, in a study with replicates)
        seed = ((trials[n].user_attrs.get("provenance") or {}).get("seeds") or {}).get("attack", config.seed + n)
        result = attack_suite.run(model, data.test.x, data.test.y, seed=seed, on_attack=on_attack)
        done[n] = _record(result, trials[n].user_attrs, config, seed, dev)
        study.set_user_attr(f"{RESCORE_PREFIX}{n}", done[n])
        if on_model is not None:
            on_model(n, done[n])
    return done


def _record(result: AttackResult, search_attrs: dict, config: StudyConfig, seed: int, device) -> dict:
    """What a rescore stores: its numbers on all the samples it attacked, the search's, the drop on
    the samples both attacked, and its provenance."""
    suite_config = result.suite
    return {
        "suite": suite_config.name,
        "split": "test",
        "eps": list(suite_config.eps),
        "robust_accuracy": curves(result),
        "clean_accuracy": result.clean_accuracy,
        "n_attacked": len(result.per_sample),
        "seconds": round(result.seconds, 3),
        "sanity_invalid": result.invalid_checks,
        "search_suite": config.suite,
        "search_eps": search_attrs.get("eps"),
        "search_robust_accuracy": (search_attrs.get("robust_accuracy") or {}).get(WORST_CASE),
        **same_sample_comparison(result, search_attrs),
        "provenance": provenance(device, {"data_split": config.seed, "attack": seed}, suite_config.to_dict()),
    }
