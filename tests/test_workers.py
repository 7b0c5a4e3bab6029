"""Several worker processes on one study: a whole-study budget, and a worker killed mid-trial.

Real processes, real storages: the journal-file default and a PostgreSQL server on loopback.
"""

from __future__ import annotations

import gc
import os
import signal
import weakref

import pytest
import torch
from _tiny_study import postgres_url, robustarch, tiny_search_args, unique, wait_for, worker_env, write_tiny  # noqa: F401
from optuna.trial import TrialState

from robustarch.errors import UserError
from robustarch.models.checkpoint import load_checkpoint
from robustarch.study import StudyConfig, create_or_resume, download_checkpoint
from robustarch.study.storage import is_journal, open_storage
from robustarch.study.workers import has_slot

N_TRIALS = 4


def _victim_training(study, pid: int | None):
    """A trial of worker `pid` (any worker but the `search` process when None) that has sampled
    its architecture: the worker is mid-trial."""

    def find():
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker_pid = int(t.user_attrs.get("worker", "x:0").split(":")[1])
            if "arch" in t.user_attrs and (worker_pid == pid if pid else worker_pid):
                return t
        return None

    return find


def _assert_exactly_n_complete_and_retried(storage_url: str, name: str, killed, killer_pids):
    trials = create_or_resume(open_storage(storage_url), name, None)[0].get_trials()
    by_state = {s: [t for t in trials if t.state == s] for s in TrialState}
    assert len(by_state[TrialState.COMPLETE]) == N_TRIALS, [(t.number, t.state.name) for t in trials]
    assert not by_state[TrialState.RUNNING]
    lost = trials[killed.number]
    assert lost.state == TrialState.FAIL
    # On PostgreSQL, Optuna's own stale check (run as a trial starts) may fail the trial before ours
    # tags it; the retry always says why.
    assert lost.user_attrs.get("fail_reason") == "worker_lost" or not is_journal(storage_url)
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert [t.state for t in retries] == [TrialState.COMPLETE]
    assert retries[0].params == lost.params and retries[0].user_attrs["retried_from"] == killed.number
    assert retries[0].user_attrs["retry_reason"].startswith("worker_lost")
    assert int(retries[0].user_attrs["worker"].split(":")[1]) in killer_pids
    return by_state[TrialState.COMPLETE]


def test_journal_search_with_two_workers_survives_a_killed_worker(tmp_path):
    """The embedded default: `search --workers 2`; one of its workers is SIGKILLed mid-trial."""
    journal = str(tmp_path / "study.journal")
    search = robustarch(
        *tiny_search_args(tmp_path, "kill", journal, N_TRIALS, "--workers", "2", "--rescore-top", "0"),
        cwd=tmp_path,
    )  # rescoring is tested elsewhere; here ~1 min a model
    try:
        study = wait_for(lambda: os.path.exists(journal) and _load(journal, "kill"), 120, "the study")
        killed = wait_for(_victim_training(study, None), 120, "a worker to start training a trial")
        victim = int(killed.user_attrs["worker"].split(":")[1])
        assert victim != search.pid
        os.kill(victim, signal.SIGKILL)
        out, err = search.communicate(timeout=180)
    finally:
        if search.poll() is None:
            search.kill()
    assert search.returncode == 0, err[-3000:]
    assert f"(pid {victim}) exited with status -9" in err and "report:" in out
    survivors = {int(t.user_attrs["worker"].split(":")[1]) for t in study.get_trials()} - {victim}
    _assert_exactly_n_complete_and_retried(journal, "kill", killed, survivors)


def _load(journal: str, name: str):
    try:
        return create_or_resume(open_storage(journal), name, None)[0]
    except UserError:  # not created yet
        return None


def test_postgres_two_workers_survive_a_killed_worker(tmp_path, postgres_url):  # noqa: F811
    """Two `robustarch worker` processes on PostgreSQL; worker 0 is SIGKILLed mid-trial. Heartbeats
    every 2 s: its trial is failed and re-queued 6 s after the last one."""
    space, suite = write_tiny(tmp_path)
    name = unique("kill")
    config = StudyConfig(space=str(space), suite=str(suite), sampler="random", seed=0)
    study, _ = create_or_resume(open_storage(postgres_url), name, config)
    env = worker_env(ROBUSTARCH_HEARTBEAT_SECONDS="2")
    workers = [
        robustarch(
            "worker",
            "--storage",
            postgres_url,
            "--study",
            name,
            "--n-trials",
            str(N_TRIALS),
            "--artifacts",
            str(tmp_path / "artifacts"),
            "--worker-index",
            str(i),
            cwd=tmp_path,
            env=env,
        )
        for i in range(2)
    ]
    victim, survivor = workers
    try:
        killed = wait_for(_victim_training(study, victim.pid), 120, "worker 0 to start training a trial")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        _, err = survivor.communicate(timeout=180)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
    assert survivor.returncode == 0, err[-2000:]
    complete = _assert_exactly_n_complete_and_retried(postgres_url, name, killed, {survivor.pid})
    # Checkpoints of a study on PostgreSQL: found through the store the study records.
    path = download_checkpoint(postgres_url, name, complete[0].number, tmp_path / "dl")
    assert load_checkpoint(path).info["trial"] == complete[0].number


def test_two_trials_racing_for_the_last_slot_cannot_both_run(tmp_path):
    space, suite = write_tiny(tmp_path)
    study, _ = create_or_resume(
        open_storage(str(tmp_path / "s.journal")), "race", StudyConfig(space=str(space), suite=str(suite))
    )
    import optuna

    study.add_trial(optuna.trial.create_trial(value=0.5))  # one complete trial; budget 2
    first, second = study.ask(), study.ask()  # two workers start trials at the same moment
    first.set_user_attr("budget_slot", True)
    assert has_slot(study, first, n_trials=2)  # claimed and counted before the other claimed
    second.set_user_attr("budget_slot", True)
    assert not has_slot(study, second, n_trials=2)  # sees both claims: gives up
    study.tell(second, state=TrialState.PRUNED)
    assert has_slot(study, first, n_trials=2)
    study.tell(first, 0.7)
    third = study.ask()
    third.set_user_attr("budget_slot", True)
    assert not has_slot(study, third, n_trials=2)  # budget met


def test_local_workers_get_one_gpu_each_and_share_the_cores(monkeypatch):
    from robustarch.study.workers import local_devices, threads_per_worker, worker_command

    assert local_devices(3, None, [2, 5]) == ["cuda:2", "cuda:5", "cuda:2"]
    assert local_devices(2, "cpu", [0]) == ["cpu", "cpu"]
    monkeypatch.delenv("ROBUSTARCH_THREADS", raising=False)
    assert threads_per_worker(None, 2) == max(1, (os.cpu_count() or 1) // 2)
    assert threads_per_worker(3, 2) == 3
    cmd = worker_command("x.journal", "s", n_trials=5, device="cuda:1", threads=2, worker_index=1)
    assert cmd[1:4] == ["-m", "robustarch", "worker"]
    assert cmd[4:] == [
        "--storage",
        "x.journal",
        "--study",
        "s",
        "--n-trials",
        "5",
        "--device",
        "cuda:1",
        "--threads",
        "2",
        "--worker-index",
        "1",
    ]


def test_several_workers_per_gpu_split_the_cpu_threads(monkeypatch):
    """`--gpus 0,1 --workers-per-gpu 2` and `--gpus 0,0,1,1` plan the same four workers, two per
    GPU, and the cores are divided among all four (not among the GPUs)."""
    from robustarch import terminal
    from robustarch.study.workers import expand_gpus, local_devices, threads_per_worker

    planned = terminal.parse_gpus("0,1", 2, visible=2)
    assert planned == [0, 0, 1, 1] == terminal.parse_gpus("0,0,1,1", visible=2)
    assert local_devices(len(planned), None, planned) == ["cuda:0", "cuda:0", "cuda:1", "cuda:1"]
    assert terminal.parse_gpus(None, 3, visible=1) == [0, 0, 0]  # every visible GPU
    assert terminal.parse_gpus(None, 1, visible=4) is None and expand_gpus(None, 4) is None
    with pytest.raises(UserError, match="--workers-per-gpu 2: no GPU on this machine"):
        terminal.parse_gpus(None, 2, visible=0)
    with pytest.raises(UserError, match="no GPU 2 on this machine"):
        terminal.parse_gpus("0,2", 2, visible=2)
    monkeypatch.delenv("ROBUSTARCH_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert threads_per_worker(None, len(planned)) == 4
    assert threads_per_worker(None, len(terminal.parse_gpus("0", 4, visible=1))) == 4
    assert threads_per_worker(None, 32) == 1


class _OutOfMemoryOnce(torch.nn.Module):
    """A real model whose training forward raises CUDA's out-of-memory error after computing its
    activations, as a net too big for the GPU does (this error type can be raised on CPU)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        out = self.net(x)
        if self.training:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return out


def test_an_oom_trial_is_stored_as_failed_and_its_memory_released_before_the_next(tmp_path, monkeypatch):
    """With automatic garbage collection off, the failed trial's model survives (a traceback cycle
    holds it) unless the worker releases it before starting the next trial."""
    from robustarch.study import objective, run_study

    space, suite = write_tiny(tmp_path)
    study, config = create_or_resume(
        open_storage(str(tmp_path / "s.journal")),
        "oom",
        StudyConfig(space=str(space), suite=str(suite), sampler="random"),
    )
    real_build, built, alive_at_start = objective.build_or_fail, [], []

    def build(arch):
        alive_at_start.append([ref() is not None for ref in built])
        model = real_build(arch)
        if not built:  # the first trial's net does not fit
            model = _OutOfMemoryOnce(model)
        built.append(weakref.ref(model))
        return model

    monkeypatch.setattr(objective, "build_or_fail", build)
    gc.disable()
    try:
        summary = run_study(study, config, n_trials=1, threads=1)
    finally:
        gc.enable()
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[0].user_attrs["fail_reason"] == "oom"
    assert "Tried to allocate" in trials[0].user_attrs["fail_detail"]
    assert summary.started == 2 and summary.complete == 1
    assert alive_at_start == [[], [False]]  # the OOM trial's model was gone when trial 1 started
