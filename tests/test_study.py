"""Studies through the Python API: objectives, samplers, pruning, baselines, recovery of lost trials."""

from __future__ import annotations

import socket

import pytest
from _tiny_study import write_tiny
from optuna.trial import TrialState

from robustarch.errors import UserError
from robustarch.metrics import robust_auc
from robustarch.spaces.space import load_space
from robustarch.study import SAMPLERS, StudyConfig, create_or_resume, load_enqueue_file, run_study, search_grid
from robustarch.study.storage import open_storage, recover_lost_trials, worker_id


@pytest.fixture
def tiny(tmp_path):
    space, suite = write_tiny(tmp_path)
    return tmp_path, StudyConfig(space=str(space), suite=str(suite), sampler="random", seed=0)


def _study(folder, config, name="s"):
    return create_or_resume(open_storage(str(folder / "study.journal")), name, config)[0]


def test_clean_robust_size_study_has_a_pareto_front_of_three_values(tiny):
    folder, base = tiny
    config = StudyConfig(**{**base.to_dict(), "objective": "clean+robust+size", "sampler": "nsgaii"})
    study = _study(folder, config)
    summary = run_study(study, config, n_trials=3, artifacts=folder / "ckpt")
    assert summary.complete == 3 and summary.stopped_by == "budget"
    assert study.user_attrs["objective_names"] == ["clean_accuracy", "robust_accuracy", "params"]
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MAXIMIZE", "MINIMIZE"]
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 3
    for t in complete:
        clean, robust, params = t.values
        # selected on validation: the clean objective is validation accuracy, not the test number
        assert clean == t.user_attrs["val_clean_accuracy"] and params == t.user_attrs["params"]
        assert 0.0 <= robust <= 1.0
    assert 1 <= len(study.best_trials) <= 3


def test_grid_auc_study_with_pruner_runs_the_baseline_first_then_distinct_points(tiny):
    folder, base = tiny
    config = StudyConfig(**{**base.to_dict(), "sampler": "grid", "pruner": "median", "robust_metric": "auc"})
    baselines = folder / "baselines.yaml"
    baselines.write_text("- {stage0_width: 16, stage0_cell: basic, train_lr: 0.05}\n")
    study = _study(folder, config)
    for params in load_enqueue_file(baselines, load_space(config.space)):
        study.enqueue_trial(params)
    run_study(study, config, n_trials=3)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 3
    assert done[0].params == {"stage0_width": 16, "stage0_cell": "basic", "train_lr": 0.05}
    grid = search_grid(load_space(config.space))
    assert len({tuple(sorted(t.params.items())) for t in done}) == 3
    assert all(t.params[k] in grid[k] for t in done for k in grid)
    for t in done:
        a = t.user_attrs
        # the objective: area under the validation curve; `robust_auc` is the test one (report)
        val = robust_auc(a["val_attacked_clean_accuracy"], a["eps"], a["val_robust_accuracy"]["worst_case"])
        test = robust_auc(a["attacked_clean_accuracy"], a["eps"], a["robust_accuracy"]["worst_case"])
        assert t.value == pytest.approx(val, abs=1e-6) and a["robust_auc"] == pytest.approx(test, abs=1e-6)
        # the pruner saw validation accuracy after every epoch
        assert sorted(t.intermediate_values) == [0, 1]
        assert max(t.intermediate_values.values()) == a["val_accuracy"]


def test_every_sampler_builds_and_proposes(tiny):
    folder, base = tiny
    for sampler in SAMPLERS:
        study = _study(folder, StudyConfig(**{**base.to_dict(), "sampler": sampler}), name=sampler)
        trial = study.ask()
        assert trial.suggest_categorical("stage0_width", [8, 16]) in (8, 16)


def test_bad_settings_fail_with_one_clear_message(tiny):
    folder, base = tiny
    with pytest.raises(UserError, match="cannot prune multi-objective"):
        _study(folder, StudyConfig(**{**base.to_dict(), "objective": "clean+robust", "pruner": "median"}))
    with pytest.raises(UserError, match="unknown sampler 'cmaes'"):
        _study(folder, StudyConfig(**{**base.to_dict(), "sampler": "cmaes"}))
    bad = folder / "bad.yaml"
    bad.write_text("- {stage0_depht: 2}\n")
    with pytest.raises(UserError, match="unknown parameter 'stage0_depht'"):
        load_enqueue_file(bad, load_space(base.space))
    continuous = folder / "continuous.yaml"
    continuous.write_text((folder / "tiny-space.yaml").read_text().replace("[0.05, 0.1]", "{min: 0.01, max: 0.1}"))
    with pytest.raises(UserError, match="'train_lr' is a continuous range"):
        _study(folder, StudyConfig(**{**base.to_dict(), "sampler": "grid", "space": str(continuous)}))
    _study(folder, base, name="kept")
    with pytest.raises(UserError, match="already exists with other settings: sampler='tpe'"):
        _study(folder, StudyConfig(**{**base.to_dict(), "sampler": "tpe"}), name="kept")


def test_robust_auc_is_the_normalised_area_under_the_worst_case_curve():
    assert robust_auc(1.0, [0.1, 0.2], [0.5, 0.0]) == pytest.approx(0.5)
    assert robust_auc(0.8, [0.05, 0.1], [0.8, 0.8]) == pytest.approx(0.8)


def test_journal_recovery_fails_and_requeues_only_trials_of_dead_workers(tiny):
    folder, base = tiny
    study = _study(folder, base)
    dead, live = study.ask(), study.ask()
    for trial in (dead, live):
        trial.suggest_categorical("stage0_width", [8, 16])
    dead.set_user_attr("worker", f"{socket.gethostname()}:999999999:1")  # no such process
    live.set_user_attr("worker", worker_id())  # this test process
    assert recover_lost_trials(study) == [dead.number]
    trials = study.trials
    assert trials[dead.number].state == TrialState.FAIL
    assert trials[dead.number].user_attrs["fail_reason"] == "worker_lost"
    assert trials[live.number].state == TrialState.RUNNING
    (retry,) = [t for t in trials if t.state == TrialState.WAITING]
    assert retry.params == trials[dead.number].params and retry.user_attrs["retried_from"] == dead.number
    assert recover_lost_trials(study) == []  # recovered once only


def test_searched_training_fraction_trains_on_that_share_of_the_training_split(tmp_path):
    """The "load-like" knob: a trial sampling train_fraction f trains on f of the training split."""
    from _tiny_study import TINY_SPACE

    space = tmp_path / "fraction.yaml"
    space.write_text(TINY_SPACE.replace("  batch_size: 128\n", "  batch_size: 128\n  train_fraction: [0.25, 1.0]\n"))
    _, suite = write_tiny(tmp_path)
    config = StudyConfig(space=str(space), suite=str(suite), sampler="random", seed=0)
    study = _study(tmp_path, config)
    for fraction in (0.25, 1.0):  # the other parameters are sampled
        study.enqueue_trial({"train_train_fraction": fraction})
    run_study(study, config, n_trials=2)
    seen = {}
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        seen[t.user_attrs["train_config"]["train_fraction"]] = t.user_attrs["n_train"]
    assert set(seen) == {0.25, 1.0}, seen
    assert seen[0.25] == pytest.approx(0.25 * seen[1.0], abs=2)


def test_grid_budget_larger_than_the_grid_runs_each_point_once(tiny):
    folder, base = tiny
    config = StudyConfig(**{**base.to_dict(), "sampler": "grid"})
    grid = search_grid(load_space(config.space))
    size = 1
    for values in grid.values():
        size *= len(values)
    study = _study(folder, config)
    with pytest.warns(UserWarning, match=f"the study stops after {size}"):
        run_study(study, config, n_trials=size + 3)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == size
    assert len({tuple(sorted(t.params.items())) for t in done}) == size
