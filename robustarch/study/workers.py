"""Workers: run a study's trials until its budget of complete trials is met, alone or side by side.

Every worker — a local process started by `search --workers N`, or `robustarch worker` on another
machine — runs the same loop against the shared storage; the storage is the only coordinator.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..runtime import configure_threads, release_memory
from ..spaces.space import load_space
from .config import StudyConfig
from .objective import TrialFailed, TrialRunner
from .replicates import is_replicate, waiting_replicates
from .samplers import search_grid
from .storage import _optuna, recover_lost_trials, worker_id

POLL_SECONDS = 2.0  # how often an idle worker (or the watching `search`) looks at the storage again


@dataclass
class WorkerSummary:
    """What one worker did: trials it started, and the study's complete count when it stopped."""

    started: int = 0
    complete: int = 0
    stopped_by: str = "budget"  # budget, timeout or attempts
    recovered: list[int] = field(default_factory=list)


def count_states(study) -> tuple[int, int]:
    """(complete, running) trials of the study, read from the storage now; queued replicate seeds
    (study.replicates) run beside the budget and are not counted."""
    State = _optuna().trial.TrialState
    trials = [
        t for t in study.get_trials(deepcopy=False, states=(State.COMPLETE, State.RUNNING)) if not is_replicate(t)
    ]
    complete = sum(t.state == State.COMPLETE for t in trials)
    return complete, len(trials) - complete


def has_slot(study, trial, n_trials: int) -> bool:
    """Whether `trial`, which has claimed a slot (`budget_slot` attribute), may run under a budget
    of `n_trials` complete trials.

    Complete trials and running trials that claimed a slot hold one. A worker claims first and
    counts after, so of two trials racing for the last slot at least one sees both claims and gives
    up (both, when their claims land before either counts): the study never ends with more than
    `n_trials` complete trials. Trial numbers cannot decide such a race, since a re-queued trial
    keeps its old, lower number.
    """
    State = _optuna().trial.TrialState
    trials = study.get_trials(deepcopy=False, states=(State.COMPLETE, State.RUNNING))
    held = sum(
        (t.state == State.COMPLETE or bool(t.user_attrs.get("budget_slot"))) and not is_replicate(t) for t in trials
    )
    return held <= n_trials


def _give_back(study, trial, n_trials: int) -> None:
    """End a trial that found no slot; a queued one (enqueued or retried) goes back to the queue."""
    optuna = _optuna()
    trial.set_user_attr("rejected", f"budget_met: {n_trials} complete or running trials already")
    frozen = study._storage.get_trial(trial._trial_id)
    if "fixed_params" in frozen.system_attrs or "failed_trial" in frozen.system_attrs:
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.WAITING,
                params=frozen.params,
                distributions=frozen.distributions,
                system_attrs=frozen.system_attrs,
                user_attrs={k: v for k, v in frozen.user_attrs.items() if k == "retried_from"},
            )
        )


def _cap_to_grid(config: StudyConfig, n_trials: int) -> int:
    """A grid study holds at most one complete trial per grid point: a larger budget would repeat points."""
    if config.sampler != "grid":
        return n_trials
    size = math.prod(len(v) for v in search_grid(load_space(config.space)).values())
    if n_trials > size:
        warnings.warn(
            f"--n-trials {n_trials} is more than the {size} points of the grid; the study stops after {size}",
            stacklevel=3,
        )
    return min(n_trials, size)


def run_study(
    study,
    config: StudyConfig,
    *,
    n_trials: int,
    timeout: float | None = None,
    device: str | None = None,
    artifacts: str | Path | None = None,
    threads: int | None = None,
    workers: int = 1,
    worker_index: int | None = 0,
    on_trial: Callable[[object, object], None] | None = None,
) -> WorkerSummary:
    """Run trials until the study holds `n_trials` complete trials — a budget for the whole study,
    shared by every worker — or `timeout` seconds pass. Failed trials keep their reason and the
    study goes on. Safe to run in many processes at once on one storage.

    `workers` is how many local workers share this machine's cores; `worker_index` 0 keeps the
    sampler's seed, any other (or None, a worker joining from elsewhere) reseeds it so that workers
    do not propose the same architectures.

    >>> run_study(study, config, n_trials=50, artifacts="ckpts")  # doctest: +SKIP
    """
    optuna = _optuna()
    n_trials = _cap_to_grid(config, n_trials)
    configure_threads(threads, workers=workers)
    runner = TrialRunner(config, device=device, artifacts=artifacts)
    for key, value in runner.study_attrs().items():
        study.set_user_attr(key, value)
    study.set_user_attr("n_trials", n_trials)
    if artifacts is not None:
        study.set_user_attr("artifact_store", str(Path(artifacts).resolve()))
    if worker_index != 0:
        study.sampler.reseed_rng()
        runner.sampler_seed = None  # reseeded from OS entropy: the trials' provenance says so
    gave_up: list[int] = []
    failed: list[str] = []
    objective = _budgeted(study, runner, n_trials, gave_up, failed)
    callbacks = [on_trial] if on_trial is not None else []
    summary = WorkerSummary()
    deadline = None if timeout is None else time.monotonic() + timeout
    # A guard against a space where every trial fails: at most this many trials from this worker.
    max_attempts = 3 * n_trials * config.replicates + 10
    while True:
        step = _next_step(study, summary, n_trials, deadline, max_attempts)
        if step == "stop":
            break
        if step == "wait":
            # Every remaining slot is taken by a running trial: wait, since one may still fail or
            # lose its worker (then it is re-queued and someone must run it).
            time.sleep(POLL_SECONDS if deadline is None else max(0.0, min(POLL_SECONDS, deadline - time.monotonic())))
            continue
        summary.started += 1
        try:
            study.optimize(objective, n_trials=1, catch=(TrialFailed,), callbacks=callbacks)
        except optuna.exceptions.UpdateFinishedTrialError:
            # Another worker failed our trial as stale (we missed heartbeats, e.g. a frozen
            # machine); it has been re-queued, so carry on with the next one.
            continue
        finally:
            if failed:  # before the next trial: the failed one's model, optimizer and activations go
                failed.clear()
                release_memory(runner.device)
        if gave_up:  # lost a race for the last slot: back off a random while so racers desynchronise
            gave_up.clear()
            summary.started -= 1
            time.sleep(random.uniform(0.2, POLL_SECONDS))
    return summary


def _budgeted(study, runner: TrialRunner, n_trials: int, gave_up: list[int], failed: list[str]):
    """The objective with the budget's claim-then-count (see `has_slot`) and the worker recorded;
    appends to `failed` the reason of a trial that failed or was pruned (its memory is then released)."""
    optuna = _optuna()
    me = worker_id()

    def objective(trial):
        try:
            trial.set_user_attr("worker", me)  # first: a trial without a live worker is recoverable
            if is_replicate(trial):  # a queued seed of an architecture already in the budget
                return runner(trial)
            trial.set_user_attr("budget_slot", True)  # claim, then count (see has_slot)
            if not has_slot(study, trial, n_trials):
                _give_back(study, trial, n_trials)
                gave_up.append(trial.number)
                raise optuna.TrialPruned("the study's budget of complete trials is already taken")
            return runner(trial)
        except (TrialFailed, optuna.TrialPruned) as exc:  # a pruned trial's traceback holds its model too
            failed.append(getattr(exc, "reason", "pruned"))
            raise
        except KeyboardInterrupt:  # Ctrl-C: Optuna marks the trial failed; say why before it does
            if "fail_reason" not in trial.user_attrs:
                trial.set_user_attr("fail_reason", "interrupted")
                trial.set_user_attr("fail_detail", "stopped by Ctrl-C (SIGINT)")
            raise

    return objective


def _next_step(study, summary: WorkerSummary, n_trials: int, deadline: float | None, max_attempts: int) -> str:
    """'run' another trial, 'wait' for running ones, or 'stop' (`summary.stopped_by` says why);
    recovers lost trials first, so that their slots count as free again."""
    summary.recovered += recover_lost_trials(study)
    complete, running = count_states(study)
    summary.complete = complete
    queued = waiting_replicates(study)  # Optuna runs queued trials first: these seeds come next
    for stopped_by, done in (
        ("budget", complete >= n_trials and not queued),
        ("timeout", deadline is not None and time.monotonic() >= deadline),
        ("attempts", summary.started >= max_attempts),
    ):
        if done:
            summary.stopped_by = stopped_by
            return "stop"
    return "wait" if complete + running >= n_trials and not queued else "run"


def worker_command(
    storage: str,
    study_name: str,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    device: str | None = None,
    threads: int | None = None,
    artifacts: str | Path | None = None,
    worker_index: int | None = None,
    quiet: bool = False,
) -> list[str]:
    """The `robustarch worker` command line that joins a study (what `search --workers` starts)."""
    cmd = [sys.executable, "-m", "robustarch", "worker", "--storage", storage, "--study", study_name]
    for flag, value in (
        ("--n-trials", n_trials),
        ("--timeout", timeout),
        ("--device", device),
        ("--threads", threads),
        ("--artifacts", artifacts),
        ("--worker-index", worker_index),
    ):
        if value is not None:
            cmd += [flag, str(value)]
    return cmd + (["--quiet"] if quiet else [])


def expand_gpus(gpus: list[int] | None, workers_per_gpu: int = 1) -> list[int] | None:
    """One entry per local worker: each GPU index `workers_per_gpu` times (`[0, 1]`, 2 →
    `[0, 0, 1, 1]`). Small candidates leave most of a GPU idle (kernel launches, the Python loop,
    validation), so several workers per GPU raise complete trials per hour; `--gpus 0,0,1,1` says
    the same by repeating indices."""
    if not gpus:
        return gpus
    return [g for g in gpus for _ in range(max(1, workers_per_gpu))]


def local_devices(n_workers: int, device: str | None, gpus: list[int] | None) -> list[str | None]:
    """One device per local worker: the given one, else the GPUs in turn (a repeated index puts
    several workers on that GPU), else CPU (None)."""
    if device is not None:
        return [device] * n_workers
    if gpus:
        return [f"cuda:{gpus[i % len(gpus)]}" for i in range(n_workers)]
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i % count}" if count else None for i in range(n_workers)]


def threads_per_worker(threads: int | None, n_workers: int) -> int:
    """CPU threads for each of `n_workers` local processes — all of them, also those sharing a GPU:
    the cores divided among them, so that N workers never oversubscribe the CPU that feeds the GPUs."""
    if threads is not None:
        return threads
    env = os.environ.get("ROBUSTARCH_THREADS")
    return int(env) if env else max(1, (os.cpu_count() or 1) // max(1, n_workers))


def start_local_workers(
    storage: str,
    study_name: str,
    n_workers: int,
    *,
    n_trials: int,
    timeout: float | None = None,
    device: str | None = None,
    gpus: list[int] | None = None,
    threads: int | None = None,
    artifacts: str | Path | None = None,
    quiet: bool = True,
    joining: bool = False,
) -> list[subprocess.Popen]:
    """Start `n_workers` worker processes on this machine: one per entry of `gpus` (see
    `expand_gpus` for several per GPU), else on `device` or the visible GPUs in turn. `joining`:
    workers of `robustarch worker` (another machine): every one reseeds its sampler."""
    per_worker = threads_per_worker(threads, n_workers)
    return [
        subprocess.Popen(
            worker_command(
                storage,
                study_name,
                n_trials=n_trials,
                timeout=timeout,
                device=dev,
                threads=per_worker,
                artifacts=artifacts,
                worker_index=None if joining else i,
                quiet=quiet,
            )
        )
        for i, dev in enumerate(local_devices(n_workers, device, gpus))
    ]


def watch(
    study,
    procs: list[subprocess.Popen],
    on_trial: Callable[[object, object], None] | None = None,
    on_exit: Callable[[int, subprocess.Popen], None] | None = None,
) -> list[int]:
    """Wait for local workers, calling `on_trial(study, trial)` once per newly finished trial and
    `on_exit(index, proc)` as each worker ends; returns their exit codes. Ctrl-C reaches the workers
    too (same process group): each fails its running trial and stops, and we wait for them."""
    State = _optuna().trial.TrialState
    finished = lambda t: t.state not in (State.RUNNING, State.WAITING)  # noqa: E731
    seen = {t.number for t in study.get_trials(deepcopy=False) if finished(t)}  # announced before
    pending = dict(enumerate(procs))

    def report():
        for t in study.get_trials(deepcopy=False):
            if finished(t) and t.number not in seen:
                seen.add(t.number)
                if on_trial is not None:
                    on_trial(study, t)

    try:
        while pending:
            time.sleep(POLL_SECONDS / 2)
            for i, proc in list(pending.items()):
                if proc.poll() is not None:
                    del pending[i]
                    if on_exit is not None:
                        on_exit(i, proc)
            report()
    except KeyboardInterrupt:
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.terminate()
        raise
    return [proc.returncode for proc in procs]
