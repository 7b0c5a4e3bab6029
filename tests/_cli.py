"""Running the command line inside the test process (no second torch import)."""
from __future__ import annotations

import sys

from robustarch import cli


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """`robustarch ARGS` in this process: its exit status and what it wrote to stderr."""
    monkeypatch.setattr(sys, "argv", ["robustarch", *args])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err
