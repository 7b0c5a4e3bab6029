"""Model selection without test leakage, and no reward for gradient masking (study layer)."""

from __future__ import annotations

import optuna
import torch
from _tiny_study import tiny_study
from optuna.trial import TrialState

from robustarch.metrics import WORST_CASE
from robustarch.study import RESCORE_PREFIX, rescore, run_study
from robustarch.study.objective import INVALID_CONSTRAINT
from robustarch.training.data import load_dataset

MASKED_SPACE = """\
name: masked-or-not
input_levels: [0, 5]
stem:
  width: 8
stages:
  - depth: 1
    width: 16
    stride: 2
    cell: plain
training:
  epochs: 3
  lr: 0.1
  batch_size: 128
"""


def _rows(x: torch.Tensor) -> set[bytes]:
    return {r.numpy().tobytes() for r in x.flatten(1)}


def test_objective_values_come_from_validation_samples_disjoint_from_test(tmp_path):
    study, config, _ = tiny_study(tmp_path, "s")
    run_study(study, config, n_trials=2)
    data = load_dataset("digits", seed=0)
    assert not _rows(data.val.x) & _rows(data.test.x)  # no sample in both splits
    assert not _rows(data.val.x) & _rows(data.train.x)
    eps_index = 0  # the tiny suite's grid is (0.05, 0.1): the objective ε is its middle, 0.05
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        a = t.user_attrs
        assert a["selection_split"] == "val"
        assert a["val_n_attacked"] == min(50, len(data.val)) and a["n_attacked"] == min(50, len(data.test))
        assert t.value == a["val_robust_accuracy"][WORST_CASE][eps_index]
        # the test numbers are recorded beside, for the report only
        assert a["robust_accuracy"][WORST_CASE][eps_index] is not None
        assert 0.0 <= a["train_accuracy"] <= 1.0 and t.constraints[INVALID_CONSTRAINT] in (0.0, 1.0)


def test_a_masked_architecture_is_infeasible_and_never_the_best_trial(tmp_path):
    study, config, _ = tiny_study(tmp_path, "m", MASKED_SPACE, sampler="grid")
    run_study(study, config, n_trials=2)
    trials = {t.params["input_levels"]: t for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert set(trials) == {0, 5}
    masked, honest = trials[5], trials[0]
    assert masked.user_attrs["sanity_invalid"], "the 5-level input quantizer must be flagged invalid"
    assert masked.constraints[INVALID_CONSTRAINT] > 0
    assert not honest.user_attrs["sanity_invalid"] and honest.constraints[INVALID_CONSTRAINT] == 0
    assert study.best_trial.number == honest.number
    # TPE reads the same constraint: the infeasible trial is ranked below every feasible one
    assert optuna.samplers._tpe.sampler._get_infeasible_trial_score(masked) > 0


def test_rescoring_reattacks_the_best_models_on_test_and_stores_the_numbers(tmp_path):
    study, config, storage = tiny_study(tmp_path, "r")
    run_study(study, config, n_trials=3, artifacts=tmp_path / "ckpt")
    done = rescore(study, storage, config, 1, artifacts=tmp_path / "ckpt", suite=config.suite)
    assert done, "at least the best trial is rescored"
    for n, r in done.items():
        stored = study.user_attrs[f"{RESCORE_PREFIX}{n}"]
        assert stored["split"] == "test" and stored["robust_accuracy"][WORST_CASE] == r["robust_accuracy"][WORST_CASE]
        # the same suite on the same test samples and seed gives the search's own test numbers back
        assert r["search_robust_accuracy"] == r["robust_accuracy"][WORST_CASE]
    assert rescore(study, storage, config, 1, artifacts=tmp_path / "ckpt", suite=config.suite) == {}


def test_label_noise_replaces_training_labels_only():
    data = load_dataset("digits", seed=0)
    noisy = data.with_label_noise(1.0, seed=0)
    assert torch.equal(noisy.val.y, data.val.y) and torch.equal(noisy.test.y, data.test.y)
    agree = float((noisy.train.y == data.train.y).float().mean())
    assert 0.05 < agree < 0.16  # uniform random labels agree with the true ones ~1 time in 10
    half = data.with_label_noise(0.5, seed=0)
    assert 0.5 < float((half.train.y == data.train.y).float().mean()) < 0.6  # 50% kept + 10% of the rest
    assert torch.equal(half.train.y, data.with_label_noise(0.5, seed=0).train.y)  # seeded
