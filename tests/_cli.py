"""Running the command line inside the test process (no second torch import)."""

from __future__ import annotations

import signal
import sys

from robustarch import cli


def run_cli_output(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """`robustarch ARGV` in this process: its exit status, stdout and stderr."""
    monkeypatch.setattr(sys, "argv", ["robustarch", *argv])
    sigint = signal.getsignal(signal.SIGINT)  # an interrupted command ignores Ctrl-C while it exits
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    finally:
        signal.signal(signal.SIGINT, sigint)
    out = capsys.readouterr()
    return code, out.out, out.err


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """`robustarch ARGS` in this process: its exit status and what it wrote to stderr."""
    code, _, err = run_cli_output(list(args), monkeypatch, capsys)
    return code, err
