"""Presets resolve by name from the source tree and from a plain (non-editable) wheel install."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from robustarch.errors import UserError
from robustarch.presets import preset_names, resolve

ROOT = Path(__file__).resolve().parent.parent


def test_every_preset_file_is_listed_and_resolves():
    for kind in ("search_spaces", "attacks"):
        files = sorted(p.stem for p in (ROOT / kind).glob("*.yaml"))
        assert files and preset_names(kind) == files
        for name in files:
            assert resolve(kind, name).name == f"{name}.yaml"


def test_unknown_preset_names_the_allowed_ones():
    with pytest.raises(UserError, match=r"unknown attack suite 'nope'.*'quick'"):
        resolve("attacks", "nope")


def test_presets_by_name_after_a_plain_wheel_install(tmp_path):
    """Build the wheel as `pip install .` would and import from it, outside the source tree."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("robustarch-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    assert (site / "robustarch" / "_presets" / "attacks" / "quick.yaml").is_file()
    code = (
        "from robustarch.attacks import load_suite; from robustarch.spaces.space import load_space; "
        "import robustarch.presets as p; print(p.preset_dir('attacks')); "
        "print(load_suite('quick').name, load_space('digits-cells').name)"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "GIT_PYTHON_REFRESH": "quiet"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    folder, names = proc.stdout.splitlines()
    assert Path(folder).is_relative_to(site)
    assert names == "quick digits-cells"
