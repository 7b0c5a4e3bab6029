"""The package version, in a module of its own so that any stage can print it without importing
the package's public API (and with it torch)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

__version__ = "0.1.0"


@functools.cache
def full_version() -> str:
    """`__version__`, plus the git commit when running from a checkout (`0.1.0+gf49f903`, with
    `.dirty` when tracked files differ from it): two trials of one version string but different
    source are then told apart, as PEP 440 local versions do."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return __version__
    try:
        git = lambda *args: subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,  # noqa: E731
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        commit = git("rev-parse", "--short", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):  # no git installed, not a repository, a slow disk
        return __version__
    return f"{__version__}+g{commit}{'.dirty' if dirty else ''}"
