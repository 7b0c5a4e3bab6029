"""Helpers for study tests: a tiny search space and attack suite (a trial takes ~1-2 s on one CPU
thread), worker processes, and a real PostgreSQL server (from .ci/run, or started here)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from _postgres import throwaway_postgres, unavailable

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


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL database URL: $ROBUSTARCH_TEST_POSTGRES_URL (set by .ci/run), else a throwaway
    server started here from the installed binaries; skipped, saying why, when there are none."""
    if os.environ.get(POSTGRES_ENV):
        yield os.environ[POSTGRES_ENV]
        return
    why = unavailable()
    if why:
        pytest.skip(f"{why}, and ${POSTGRES_ENV} is unset (.ci/run sets up both)")
    with throwaway_postgres("robustarch_test") as url:
        yield url
