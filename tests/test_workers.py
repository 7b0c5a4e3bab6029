"""Several worker processes on one study: a whole-study budget, and a worker killed mid-trial.

Real processes, real storages: the journal-file default and a PostgreSQL server on loopback.
"""
from __future__ import annotations

import os
import signal

import pytest
from _tiny_study import postgres_url, robustarch, unique, wait_for, worker_env, write_tiny  # noqa: F401
from optuna.trial import TrialState

from robustarch.checkpoint import load_checkpoint
from robustarch.storage import open_storage
from robustarch.study import StudyConfig, create_or_resume, download_checkpoint
from robustarch.workers import has_slot

N_TRIALS = 4


def _kill_one_worker_mid_trial(tmp_path, storage_url: str, env: dict):
    """Two workers share a budget of N_TRIALS; worker 0 is SIGKILLed while it trains a trial."""
    space, suite = write_tiny(tmp_path)
    name = unique("kill")
    config = StudyConfig(space=str(space), suite=str(suite), sampler="random", seed=0)
    study, _ = create_or_resume(open_storage(storage_url), name, config)
    artifacts = tmp_path / "artifacts"
    workers = [robustarch("worker", "--storage", storage_url, "--study", name, "--n-trials", str(N_TRIALS),
                          "--artifacts", str(artifacts), "--worker-index", str(i), cwd=tmp_path, env=env)
               for i in range(2)]
    victim, survivor = workers

    def victim_training():  # a trial of the victim that has sampled its architecture: mid-trial
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.user_attrs.get("worker", "").split(":")[1:2] == [str(victim.pid)] and "arch" in t.user_attrs:
                return t
        return None

    try:
        killed = wait_for(victim_training, 120, "worker 0 to start training a trial")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        _, err = survivor.communicate(timeout=180)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
    assert survivor.returncode == 0, err[-2000:]
    trials = open_storage(storage_url) and create_or_resume(open_storage(storage_url), name, None)[0].get_trials()
    by_state = {s: [t for t in trials if t.state == s] for s in TrialState}
    assert len(by_state[TrialState.COMPLETE]) == N_TRIALS, [(t.number, t.state.name) for t in trials]
    assert not by_state[TrialState.RUNNING]
    lost = trials[killed.number]
    assert lost.state == TrialState.FAIL
    assert lost.user_attrs.get("fail_reason") == "worker_lost"
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert [t.state for t in retries] == [TrialState.COMPLETE]
    assert retries[0].params == lost.params and retries[0].user_attrs["retried_from"] == killed.number
    assert retries[0].user_attrs["worker"].split(":")[1] == str(survivor.pid)
    return name, artifacts, by_state[TrialState.COMPLETE]


def test_journal_two_workers_survive_a_killed_worker(tmp_path):
    _kill_one_worker_mid_trial(tmp_path, str(tmp_path / "study.journal"), worker_env())


def test_postgres_two_workers_survive_a_killed_worker(tmp_path, postgres_url):  # noqa: F811
    # Heartbeats every 2 s: the dead worker's trial is failed and re-queued 6 s after its last one.
    name, artifacts, complete = _kill_one_worker_mid_trial(
        tmp_path, postgres_url, worker_env(ROBUSTARCH_HEARTBEAT_SECONDS="2"))
    # Checkpoints of a study on PostgreSQL: found through the store the study records.
    path = download_checkpoint(postgres_url, name, complete[0].number, tmp_path / "dl")
    assert load_checkpoint(path).info["trial"] == complete[0].number


def test_only_the_lowest_numbered_of_two_racing_trials_gets_the_last_slot(tmp_path):
    space, suite = write_tiny(tmp_path)
    study, _ = create_or_resume(open_storage(str(tmp_path / "s.journal")), "race",
                                StudyConfig(space=str(space), suite=str(suite)))
    import optuna

    study.add_trial(optuna.trial.create_trial(value=0.5))
    first, second = study.ask(), study.ask()  # two workers start trials at the same moment
    assert has_slot(study, first, n_trials=2) and not has_slot(study, second, n_trials=2)
    study.tell(second, state=TrialState.FAIL)
    assert has_slot(study, first, n_trials=2)
    study.tell(first, 0.7)
    third = study.ask()
    assert not has_slot(study, third, n_trials=2)
