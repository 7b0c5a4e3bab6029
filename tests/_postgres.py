"""A throwaway PostgreSQL server on 127.0.0.1 from the installed binaries (initdb and pg_ctl on a
temp folder, as .ci/run does), shared by the storage tests (`_tiny_study.postgres_url`) and
benchmarks/stored_scale.py. No pytest here: the fixture skips, the benchmark exits, on the reason."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path | None:
    """The folder of the newest installed initdb (on PATH first, then Debian's versioned folders)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(versions[-1]).parent if versions else None


def unavailable() -> str | None:
    """Why no server can be started here, or None."""
    if pg_bin() is None:
        return "PostgreSQL is not installed (apt-get install -y postgresql)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start PostgreSQL"
    return None


@contextmanager
def throwaway_postgres(database: str) -> Iterator[str]:
    """A fresh server with one empty `database`, yielding its URL; stopped and deleted on exit.
    Check `unavailable()` first."""
    why = unavailable()
    if why:
        raise RuntimeError(why)
    binaries = pg_bin()
    assert binaries is not None
    as_user: list[str] = []
    data = Path(tempfile.mkdtemp(prefix="robustarch-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(data, "postgres")
    port = free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True)  # noqa: E731
    try:
        run(str(binaries / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres")
        run(
            str(binaries / "pg_ctl"),
            "-D",
            str(data / "db"),
            "-l",
            str(data / "log"),
            "-w",
            "-o",
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
            "start",
        )
        run(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database)
        yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run(
            [*as_user, str(binaries / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)
