"""Helpers for study tests: a tiny search space and attack suite (a trial takes ~1-2 s on one CPU
thread), worker processes, and a real PostgreSQL server (from .ci/run, or started here)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

TINY_SPACE = """\
name: tiny
stem:
  width: 8
stages:
  - depth: 1
    width: [8, 16]
    stride: 2
    cell: [plain, basic]
training:
  epochs: 2
  lr: [0.05, 0.1]
  batch_size: 128
"""

TINY_SUITE = """\
name: tiny
threat_model: linf
eps: [0.05, 0.1]
samples: 50
attacks:
  - attack: FGSM
"""

POSTGRES_ENV = "ROBUSTARCH_TEST_POSTGRES_URL"


def write_tiny(folder: Path) -> tuple[Path, Path]:
    space, suite = folder / "tiny-space.yaml", folder / "tiny-suite.yaml"
    space.write_text(TINY_SPACE)
    suite.write_text(TINY_SUITE)
    return space, suite


def tiny_search_args(folder: Path, study: str, storage: str, n_trials: int, *extra: str) -> list[str]:
    """`robustarch search` arguments for a random-sampler study of the tiny suite on the tiny space,
    reporting into `folder/reports`; `extra` adds flags (workers, replicates, ...)."""
    space, suite = write_tiny(folder)
    return [
        "search",
        *("--study", study, "--storage", storage, "--space", str(space), "--suite", str(suite)),
        *("--sampler", "random", "--n-trials", str(n_trials), "--report-dir", str(folder / "reports")),
        *extra,
    ]


def tiny_study(folder: Path, name: str, space_text: str | None = None, sampler: str = "random"):
    """A new study of the tiny suite on the tiny space (or on the space `space_text`), stored in the
    journal `folder/<name>.journal`: `(study, config, storage)`."""
    from robustarch.study import StudyConfig, create_or_resume, open_storage

    space, suite = write_tiny(folder)
    if space_text is not None:
        space = folder / f"{name}-space.yaml"
        space.write_text(space_text)
    config = StudyConfig(space=str(space), suite=str(suite), sampler=sampler, seed=0)
    storage = str(folder / f"{name}.journal")
    return create_or_resume(open_storage(storage), name, config)[0], config, storage


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def worker_env(**extra: str) -> dict:
    """Environment of worker processes: this tree importable, one torch thread, fast heartbeats."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env.update({"ROBUSTARCH_THREADS": "1", "GIT_PYTHON_REFRESH": "quiet", **extra})
    return env


def robustarch(*args: str, cwd: Path, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "robustarch", *args],
        cwd=cwd,
        env=env or worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def wait_for(predicate, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(versions[-1]).parent if versions else None


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL database URL: $ROBUSTARCH_TEST_POSTGRES_URL (set by .ci/run), else a throwaway
    server started here from the installed binaries; skipped, saying why, when there are none."""
    if os.environ.get(POSTGRES_ENV):
        yield os.environ[POSTGRES_ENV]
        return
    pg_bin = _pg_bin()
    if pg_bin is None:
        pytest.skip(f"PostgreSQL is not installed and ${POSTGRES_ENV} is unset (.ci/run sets up both)")
    as_user: list[str] = []
    data = Path(tempfile.mkdtemp(prefix="robustarch-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(data, "postgres")
    port = _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True)  # noqa: E731
    run(str(pg_bin / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres")
    run(
        str(pg_bin / "pg_ctl"),
        "-D",
        str(data / "db"),
        "-l",
        str(data / "log"),
        "-w",
        "-o",
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
        "start",
    )
    try:
        run(str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "robustarch_test")
        yield f"postgresql://postgres@127.0.0.1:{port}/robustarch_test"
    finally:
        subprocess.run(
            [*as_user, str(pg_bin / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(data, ignore_errors=True)
