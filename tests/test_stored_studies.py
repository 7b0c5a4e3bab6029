"""A study stored by an earlier robustarch (tests/data/pre-move-study, written before the package
layout moved) still reports, resumes and has its checkpoints attacked by today's code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pandas as pd
import pytest
from test_cli import robustarch

from robustarch.study import open_storage

STORED = Path(__file__).parent / "data" / "pre-move-study"


@pytest.fixture()
def old_study(tmp_path) -> Path:
    shutil.copytree(STORED, tmp_path / "old")
    return tmp_path / "old"


def _trials(folder: Path):
    study = optuna.load_study(study_name="pre-move", storage=open_storage(str(folder / "robustarch.journal")))
    return [t for t in study.trials if t.state.name == "COMPLETE"]


def test_an_old_study_reports_its_stored_numbers(old_study):
    proc = robustarch("report", "--study", "pre-move", "--format", "json", "--out", "old.json", cwd=old_study)
    assert proc.returncode == 0, proc.stderr
    tables = json.loads((old_study / "old.json").read_text())
    rows = {r["trial"]: r for r in tables["trials"]}
    stored = _trials(old_study)
    assert len(stored) == 2
    for t in stored:
        assert rows[t.number]["clean_accuracy"] == pytest.approx(t.user_attrs["clean_accuracy"])
        assert rows[t.number]["robust_accuracy"] == pytest.approx(t.values[0])


def test_an_old_study_resumes_with_the_default_command(old_study):
    before = {t.number: t.values for t in _trials(old_study)}
    proc = robustarch(
        "search", "--study", "pre-move", "--n-trials", "3", "--artifacts", "robustarch-artifacts", cwd=old_study
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = _trials(old_study)
    assert len(after) == 3
    assert {t.number: t.values for t in after if t.number in before} == before  # old trials untouched
    assert (old_study / "reports" / "pre-move.html").is_file()


def test_an_old_checkpoint_is_attacked(old_study):
    proc = robustarch(
        "attack",
        "--study",
        "pre-move",
        "--trial",
        "1",
        "--artifacts",
        "robustarch-artifacts",
        "--suite",
        "quick",
        "--samples",
        "40",
        "--out",
        "res",
        cwd=old_study,
    )
    assert proc.returncode == 0, proc.stderr
    curve = pd.read_csv(old_study / "res" / "curve.csv")
    assert set(curve["attack"]) == {"FGSM", "LinfPGD", "LInfFMNAttack", "square", "worst_case"}
    assert curve["robust_accuracy"].between(0, 1).all()


def test_an_old_study_reports_one_seed_each_and_says_why_there_are_no_components(old_study):
    proc = robustarch("report", "--study", "pre-move", "--format", "json", "--out", "old.json", cwd=old_study)
    assert proc.returncode == 0, proc.stderr
    tables = json.loads((old_study / "old.json").read_text())
    assert tables["variance_components"] == []
    assert [r["sentence"] for r in tables["noise_summary"]] == [
        "One seed per architecture: no variance components, no shrunken winner — seed noise cannot be told from "
        "architecture without replicates (run with --replicates 3 --replicate-share 0.25). Parameters and FLOPs "
        "have reliability 1 (they do not depend on the seed or the test sample)."
    ]
    assert {r["arch_key"] for r in tables["trials"]} == {None}  # stored before replicates: one seed each
