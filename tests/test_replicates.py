"""Replicate seeds as a study design (study.replicates): derived seeds, the reliability subsample,
replicate trials queued beside the budget, grouping under two workers, resuming mid-replicates, and
samplers that see repeated parameters."""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter

import optuna
import pytest
from _tiny_study import robustarch, tiny_search_args, tiny_study

from robustarch.errors import UserError
from robustarch.study import create_or_resume, open_storage, run_study
from robustarch.study.config import validate_config
from robustarch.study.replicates import (
    arch_key,
    derive_seed,
    duplicate_count,
    enqueue_replicates,
    in_share,
    retrain_seed,
)
from robustarch.study.samplers import make_sampler


def test_seeds_derive_from_study_seed_architecture_and_replicate():
    key = arch_key({"w": 8, "cell": "plain"})
    assert key == arch_key({"cell": "plain", "w": 8})  # order does not matter
    assert derive_seed(0, key, 3, 1) == derive_seed(0, key, 3, 1)  # deterministic
    seeds = {
        derive_seed(s, k, o, r) for s in (0, 1) for k in (key, arch_key({"w": 16})) for o in (3, 4) for r in range(3)
    }
    assert len(seeds) == 24  # every part changes the seed
    assert retrain_seed(0, key, 0) not in {derive_seed(0, key, o, r) for o in range(50) for r in range(5)}


def test_the_reliability_subsample_is_a_random_share():
    picked = [in_share(0, arch_key({"i": i}), 0.25) for i in range(4000)]
    assert 0.23 < sum(picked) / len(picked) < 0.27
    assert picked == [in_share(0, arch_key({"i": i}), 0.25) for i in range(4000)]  # the same in every worker


def test_replicate_settings_are_checked(tmp_path):
    _, config, _ = tiny_study(tmp_path, "check")
    for bad in ({"replicates": 0}, {"replicate_share": 0.0}, {"replicate_share": 1.5}):
        with pytest.raises(UserError, match="replicate"):
            validate_config(dataclasses.replace(config, **bad))


def _groups(study) -> dict[str, list]:
    out: dict[str, list] = {}
    for t in study.get_trials(deepcopy=False):
        if t.state.name == "COMPLETE":
            out.setdefault(t.user_attrs["arch_key"], []).append(t)
    return out


def _check_seeds(study, config) -> None:
    for key, trials in _groups(study).items():
        for t in trials:
            seeds = t.user_attrs["provenance"]["seeds"]
            expected = derive_seed(config.seed, key, t.user_attrs["replicate_of"], t.user_attrs["replicate"])
            assert seeds["training"] == seeds["attack"] == expected and seeds["arch_key"] == key


def test_a_study_resumed_mid_replicates_runs_each_replicate_once(tmp_path):
    _, config, storage = tiny_study(tmp_path, "base")
    config = dataclasses.replace(config, replicates=3, replicate_share=1.0)
    study, config = create_or_resume(open_storage(storage), "mid", config)
    first = run_study(study, config, n_trials=2, timeout=0.5)  # stops after its first trial or two
    assert first.stopped_by == "timeout"
    waiting = [t.user_attrs["replicate"] for t in study.get_trials() if t.state.name == "WAITING"]
    done = [t.user_attrs["replicate"] for t in study.get_trials() if t.state.name == "COMPLETE"]
    # how many ran before the timeout depends on the machine's speed; what was queued and not run waits
    assert waiting and sorted(done + waiting) == [0, 1, 2], (done, waiting)
    run_study(study, config, n_trials=2)  # the resume
    groups = _groups(study)
    assert sum(len(v) for v in groups.values()) == 6
    for trials in groups.values():
        assert Counter(t.user_attrs["replicate"] for t in trials) == {0: 1, 1: 1, 2: 1}
    _check_seeds(study, config)


def test_replicates_are_grouped_under_two_workers(tmp_path):
    journal = str(tmp_path / "two.journal")
    replicated = ("--replicates", "2", "--replicate-share", "1", "--workers", "2", "--rescore-top", "0")
    proc = robustarch(
        *tiny_search_args(tmp_path, "two", journal, 3, *replicated),
        cwd=tmp_path,
    )
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    study, config = create_or_resume(open_storage(journal), "two", None)
    assert config.replicates == 2
    primaries = [t for t in study.get_trials() if t.state.name == "COMPLETE" and t.user_attrs["replicate"] == 0]
    assert len(primaries) == 3  # the budget counts architectures
    for _key, trials in _groups(study).items():
        assert len({t.user_attrs["provenance"]["seeds"]["training"] for t in trials}) == len(trials)
        assert Counter(t.user_attrs["replicate"] for t in trials)[1] == 1  # one queued replicate per architecture
    assert len({t.user_attrs["worker"] for t in study.get_trials()}) == 2
    _check_seeds(study, config)
    assert "Architecture or luck" in (tmp_path / "reports" / "two.html").read_text()


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_samplers_neither_crash_nor_stall_on_repeated_parameters(sampler):
    """Every proposal queues two more seeds of it: TPE and GP then see each point three times."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=make_sampler(sampler, 0), direction="maximize")

    def objective(trial):
        x = trial.suggest_int("x", 0, 3)
        cell = trial.suggest_categorical("cell", ["plain", "basic"])
        if trial.user_attrs.get("replicate", 0) == 0:
            enqueue_replicates(trial, arch_key(trial.params), 3)
        return x + (cell == "basic") + 0.1 * trial.number % 0.3

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=24, timeout=120)
    assert len(study.trials) == 24 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert len({arch_key(t.params) for t in study.trials}) >= 2  # kept proposing, not stuck


def test_a_duplicate_proposal_counts_as_a_free_replicate():
    Trial = optuna.trial.create_trial
    dist = {"x": optuna.distributions.IntDistribution(0, 3)}
    trials = [
        Trial(
            params={"x": x}, distributions=dist, value=0.0, user_attrs={"arch_key": arch_key({"x": x}), "replicate": r}
        )
        for x, r in ((1, 0), (2, 0), (1, 0), (1, 1), (1, 0))
    ]
    for n, t in enumerate(trials):
        t.number = n
    assert duplicate_count(trials) == 2  # two later proposals of x=1; the queued replicate is not free
