"""Where studies live: Optuna storages by URL, and recovering trials whose worker died.

A journal file (the default) is safe for several processes on one machine; an SQLAlchemy URL
(PostgreSQL) serves workers on many machines and has Optuna's heartbeats. See README "Running on
many GPUs".
"""

from __future__ import annotations

import os
import re
import socket
import warnings
from datetime import datetime
from pathlib import Path

from ..errors import UserError

DEFAULT_STORAGE = "robustarch.journal"
# RDB heartbeats: a running trial whose worker has been silent for GRACE seconds is failed and retried.
HEARTBEAT_SECONDS = int(os.environ.get("ROBUSTARCH_HEARTBEAT_SECONDS", "20"))
GRACE_SECONDS = 3 * HEARTBEAT_SECONDS
MAX_RETRIES = 3
# A journal trial that never recorded its worker (killed within milliseconds of starting) is lost
# when it is this old: a live worker records itself before anything else.
UNCLAIMED_SECONDS = 60.0


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress display says what matters
    return optuna


def is_journal(url: str | None) -> bool:
    url = url or DEFAULT_STORAGE
    return url.startswith("journal:") or url.endswith(".journal") or "://" not in url


def open_storage(url: str | None = None):
    """An Optuna storage from a URL: any SQLAlchemy URL Optuna accepts (`sqlite:///x.db`,
    `postgresql://user@host/db`), or a journal file (`journal:PATH` or a path ending in `.journal`).

    A journal file must be missing, empty or a journal; a torn last record (a crash mid-write) is cut
    off, keeping a backup, and said in one warning line (see `journal.py`).

    RDB storages get heartbeats: a trial whose worker dies (SIGKILL, lost machine) is failed after
    `GRACE_SECONDS` by the next worker that looks, and re-queued with the same parameters.

    >>> storage = open_storage("postgresql://robustarch@db-host/studies")  # doctest: +SKIP
    """
    optuna = _optuna()
    url = url or DEFAULT_STORAGE
    shown = re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)  # never print a password
    try:
        if is_journal(url):
            path = Path(url.removeprefix("journal:")).expanduser()
            if path.parent and not path.parent.exists():
                raise UserError(f"storage {url!r}: folder {path.parent} does not exist")
            if path.is_dir():
                raise UserError(f"storage {url!r}: {path} is a folder, not a journal file")
            from .journal import open_journal

            return open_journal(path)  # a foreign file refused, a torn tail repaired, before any write
        engine_kwargs: dict = {"pool_pre_ping": True}
        if url.startswith("postgres"):
            url = _postgres_driver(url)
            # An unreachable server should fail in seconds, not after the OS's TCP timeout.
            engine_kwargs["connect_args"] = {"connect_timeout": 10}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
                heartbeat_stale_trial_callback=retry_callback(),
            )
    except UserError:
        raise
    except Exception as exc:  # SQLAlchemy, driver and file errors: one line for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot open storage {shown!r}: {first}") from None


def open_existing(url: str | None = None):
    """`open_storage` for commands that read or join a study (report, export, worker, rescore,
    retrain): a journal or SQLite file that does not exist is refused in one line, instead of being
    created empty by a command that only meant to read it."""
    url = url or DEFAULT_STORAGE
    path = Path(url.removeprefix("journal:")).expanduser() if is_journal(url) else None
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///")).expanduser()
    if path is not None and not path.is_file():
        raise UserError(f"storage {url!r}: {path} does not exist; give the file a study was run with (--storage)")
    return open_storage(url)


def study_names(storage) -> list[str]:
    """The names of the studies a storage holds, sorted."""
    return sorted(s.study_name for s in _optuna().storages.get_storage(storage).get_all_studies())


def _postgres_driver(url: str) -> str:
    """`postgresql://` means psycopg 3 to SQLAlchemy 2.1+, which our `postgres` extra installs, so
    the same URL works in `optuna.load_study` and `optuna-dashboard`. Only when psycopg 3 is missing
    and psycopg2 is present do we name psycopg2 (an older install keeps working)."""
    scheme, sep, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres") or not sep:
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is not None:
        return f"postgresql://{rest}"
    if importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql+psycopg2://{rest}"
    raise UserError(
        f'storage {scheme}://...: no PostgreSQL driver installed; pip install "robustarch[postgres]" (psycopg 3)'
    )


def default_artifacts(storage_url: str | None) -> Path:
    """Checkpoints go beside a journal file (`x.journal` → `x-artifacts/`), else ./robustarch-artifacts."""
    url = storage_url or DEFAULT_STORAGE
    if is_journal(url):
        path = Path(url.removeprefix("journal:"))
        return path.with_name(path.stem + "-artifacts")
    return Path("robustarch-artifacts")


def retry_callback(max_retry: int = MAX_RETRIES):
    """Optuna's `RetryHeartbeatStaleTrialCallback` (re-queue a lost trial's parameters, with system
    attributes `failed_trial` and `retry_history`), minus the dead trial's user attributes: a retry
    records its own worker and results (a stale `worker` would make it look lost again) and says
    `retried_from` and `retry_reason`."""
    import copy

    optuna = _optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        class _Retry(RetryHeartbeatStaleTrialCallback):
            def __call__(self, study, trial) -> None:
                clean = copy.copy(trial)
                clean.user_attrs = {
                    "retried_from": trial.system_attrs.get("failed_trial", trial.number),
                    "retry_reason": f"worker_lost: trial {trial.number} lost its worker",
                }
                super().__call__(study, clean)

        return _Retry(max_retry=max_retry)


def has_heartbeat(storage) -> bool:
    """Whether Optuna heartbeats guard this storage's running trials (RDB storages opened here)."""
    interval = getattr(storage, "get_heartbeat_interval", None)
    return interval is not None and interval() is not None


def worker_id() -> str:
    """`host:pid:start` — the start time (Linux clock ticks) tells a live worker from a reused pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{_process_start(os.getpid()) or 0}"


def _process_start(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(worker: str) -> bool | None:
    """True/False for a worker on this host, None when it runs elsewhere (we cannot tell)."""
    host, _, rest = worker.partition(":")
    pid_text, _, start_text = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if Path("/proc").is_dir():
        start = _process_start(pid)
        return start is not None and (start_text in ("", "0") or str(start) == start_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_lost_trials(study) -> list[int]:
    """Fail and re-queue running trials whose worker is gone; returns their numbers.

    RDB storages: Optuna's heartbeats (`fail_stale_trials` + `retry_callback`). Journal files have
    no heartbeats, so a trial is lost when its worker process (recorded in the `worker` attribute)
    no longer exists on this machine, or when it never recorded one within `UNCLAIMED_SECONDS`.
    Workers on other machines sharing a journal file cannot be checked: use PostgreSQL for those.
    """
    optuna = _optuna()
    State = optuna.trial.TrialState
    storage = study._storage
    if has_heartbeat(storage):
        # Say why before Optuna fails them (a failed trial cannot take attributes). Optuna's own check
        # at the start of each trial can get there first; then only the retry says `retry_reason`.
        try:
            for trial_id in storage._get_stale_trial_ids(study._study_id):
                storage.set_trial_user_attr(trial_id, "fail_reason", "worker_lost")
                storage.set_trial_user_attr(trial_id, "fail_detail", f"no heartbeat for {GRACE_SECONDS} s")
        except Exception:  # a private Optuna API, or the trial finished meanwhile: only the reason is lost
            pass
        before = {t.number for t in study.get_trials(deepcopy=False, states=(State.FAIL,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        return sorted({t.number for t in study.get_trials(deepcopy=False, states=(State.FAIL,))} - before)
    lost = []
    now = datetime.now()
    for t in study.get_trials(deepcopy=False, states=(State.RUNNING,)):
        worker = t.user_attrs.get("worker")
        if worker is not None:
            if _alive(worker) is not False:
                continue
            reason = f"worker {worker} is gone"
        elif t.datetime_start is None or (now - t.datetime_start).total_seconds() < UNCLAIMED_SECONDS:
            continue
        else:
            reason = "no worker recorded"
        try:
            storage.set_trial_user_attr(t._trial_id, "fail_reason", "worker_lost")
            storage.set_trial_user_attr(t._trial_id, "fail_detail", reason)
            if not storage.set_trial_state_values(t._trial_id, state=State.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker recovered it first
        lost.append(t.number)
        retry_callback()(study, storage.get_trial(t._trial_id))
    return lost
