"""The documentation is tested like code: every ```python block of docs/*.md and README.md runs (one
fresh namespace per page, its blocks in order, on the built-in digits data), every `robustarch ...`
command line of a bash block parses against the real CLI, and the site builds with
`mkdocs build --strict` (broken links and missing references fail it).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)


def blocks(page: Path, language: str) -> list[tuple[int, str]]:
    """(line number, code) of every fenced block of `language` in `page`."""
    text = page.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(2)) for m in FENCE.finditer(text) if m.group(1) == language]


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=_page_id)
def test_python_examples_run(page, tmp_path, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)  # examples write journals and reports: keep them out of the checkout
    torch.set_num_threads(1)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for line, code in blocks(page, "python"):
        started = time.perf_counter()
        try:
            exec(compile(code, f"{_page_id(page)}:{line}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{_page_id(page)}, the python block at line {line} failed: {exc!r}") from exc
        print(f"{_page_id(page)}:{line}: {time.perf_counter() - started:.1f} s")


def _command_lines(code: str) -> list[str]:
    """Each `robustarch ...` invocation of a bash block, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in code.replace("\\\n", " ").splitlines():
        for part in re.split(r"(?:&&|;|&|\|)", raw.split(" #", 1)[0]):
            words = part.strip().split()
            if words and words[0] in ("do", "then"):
                words = words[1:]
            if words and Path(words[0]).name == "robustarch":
                current = " ".join(words[1:])
                lines.append(current)
    return lines


COMMANDS = [(page, line, cmd) for page in PAGES for line, code in blocks(page, "bash") for cmd in _command_lines(code)]


@pytest.mark.parametrize(
    ("page", "line", "command"),
    COMMANDS,
    ids=[f"{_page_id(p)}:{n}:{c.split()[0] if c else ''}" for p, n, c in COMMANDS],
)
def test_documented_command_lines_parse(page, line, command):
    import typer

    from robustarch.cli import app

    cli = typer.main.get_command(app)
    args = shlex.split(command.replace("$g", "0"))
    # make_context parses and converts every argument and option (unknown options, bad numbers and
    # missing values fail) without running the command
    try:
        command_obj, ctx = cli, None
        while hasattr(command_obj, "list_commands"):  # a group (robustarch, robustarch spaces): take its subcommand
            ctx = command_obj.context_class(command_obj, info_name=args[0] if ctx else "robustarch", parent=ctx)
            assert args, "a command is missing"
            name, args = args[0], args[1:]
            command_obj = command_obj.get_command(ctx, name)
            assert command_obj is not None, f"unknown command {name!r}"
        command_obj.make_context(name, args, parent=ctx)
    except Exception as exc:
        raise AssertionError(f"{_page_id(page)}:{line}: `robustarch {command}` does not parse: {exc}") from exc


def test_site_builds_strictly(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    assert mkdocs, "mkdocs is missing: pip install -e '.[dev]'"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def test_readme_links_point_to_files():
    """README.md is read on GitHub and PyPI, outside the site: its relative links and images must exist."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    missing = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert targets and not missing, f"README.md links to missing files: {missing}"
