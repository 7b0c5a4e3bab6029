"""End to end through the real CLI: a whole `robustarch search` as a subprocess, its report and
tables, and every bad-input case ending in one clear line with exit status 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
from _cli import run_cli_output

from robustarch.study import open_storage

ENV = {**os.environ, "GIT_PYTHON_REFRESH": "quiet", "ROBUSTARCH_THREADS": "1"}


def robustarch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robustarch", *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600
    )


def assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit status 2, no traceback, and one line on stderr naming the problem."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A real two-trial default study (digits, digits-cells, quick suite) run as a subprocess."""
    work = tmp_path_factory.mktemp("search")
    proc = robustarch("search", "--n-trials", "2", "--study", "e2e", cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, proc


def test_search_writes_report_and_stores_trials(searched):
    work, proc = searched
    match = re.search(r"report: (\S+\.html)", proc.stdout)
    assert match, proc.stdout
    report = work / match.group(1)
    html = report.read_text()
    assert report.parent == work / "reports"
    assert "e2e" in html and "<svg" in html and html.count("<circle") >= 4  # 2 trials × 2 scatter plots
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "report must not load anything remotely"
    study = optuna.load_study(study_name="e2e", storage=open_storage(str(work / "robustarch.journal")))
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 2
    for t in complete:
        a = t.user_attrs
        assert {
            "arch",
            "params",
            "flops",
            "depth",
            "width",
            "clean_accuracy",
            "robust_accuracy",
            "train_seconds",
            "attack_seconds",
            "checkpoint_artifact",
        } <= set(a)
        assert a["clean_accuracy"] > 0.8  # digits is easy: a trained net is far above chance (0.1)
        wc = a["robust_accuracy"]["worst_case"]
        for attack, curve in a["robust_accuracy"].items():
            assert all(w <= c + 1e-12 for w, c in zip(wc, curve)), attack  # worst case ≤ each attack
        # the objective is measured on validation samples; test numbers are for the report only
        val_wc = a["val_robust_accuracy"]["worst_case"]
        assert a["selection_split"] == "val" and t.value == pytest.approx(val_wc[(len(a["eps"]) - 1) // 2], abs=1e-6)
    assert not [k for k in study.user_attrs if k.startswith("rescore:")]  # CPU: rescoring is opt-in


def test_export_tidy_table_and_report_command(searched, tmp_path):
    work, _ = searched
    out = tmp_path / "robust.csv"
    proc = robustarch("export", "--study", "e2e", "--out", str(out), cwd=work)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    # one row per trial × attack × ε: 2 trials × (4 attacks + worst case) × 6 ε in the quick suite
    assert len(table) == 2 * 5 * 6
    assert set(table["attack"]) == {"FGSM", "LinfPGD", "LInfFMNAttack", "square", "worst_case"}
    proc = robustarch("export", "--study", "e2e", "--table", "trials", "--out", str(tmp_path / "t.parquet"), cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_parquet(tmp_path / "t.parquet")) == 2
    html_path = tmp_path / "again.html"
    proc = robustarch("report", "--study", "e2e", "--out", str(html_path), cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "e2e" in html_path.read_text()


def test_attack_command_on_a_stored_checkpoint(searched, tmp_path):
    work, _ = searched
    from robustarch.study import download_checkpoint

    path = download_checkpoint(str(work / "robustarch.journal"), "e2e", 0, tmp_path)
    proc = robustarch("attack", str(path), "--suite", "quick", "--out", str(tmp_path / "tables"), cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "worst_case" in proc.stdout
    assert (tmp_path / "tables" / "curve.csv").is_file()
    # rescoring later (here with the quick suite, to keep the test short) stores the numbers beside
    proc = robustarch("rescore", "--study", "e2e", "--top", "1", "--suite", "quick", cwd=work)
    assert proc.returncode == 0, proc.stderr
    study = optuna.load_study(study_name="e2e", storage=open_storage(str(work / "robustarch.journal")))
    assert [k for k in study.user_attrs if k.startswith("rescore:")] and "rescored trial" in proc.stderr + proc.stdout
    # another split seed would put training samples into the test split: refused
    proc = robustarch("attack", "--study", "e2e", "--trial", "0", "--seed", "1", "--suite", "quick", cwd=work)
    assert_user_error(proc, "e2e-trial-0", "does not match", "split_seed 1 (trained with 0)")


def test_errors_leave_the_stored_study_intact(searched, tmp_path, monkeypatch, capsys):
    """Every bad input ends in one line and exit 2, and the stored study keeps its trials. The cases run
    in this process (each real process costs a torch import, ~4 s); the last two run as real processes."""
    work, _ = searched
    monkeypatch.chdir(work)

    def fails(*args: str) -> subprocess.CompletedProcess:
        code, out, err = run_cli_output(list(args), monkeypatch, capsys)
        return subprocess.CompletedProcess(args, code, out, err)

    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    bad_suite = tmp_path / "bad_attack.yaml"
    bad_suite.write_text("threat_model: linf\neps: [0.1]\nattacks:\n  - attack: NoSuchAttack\n")
    cases = [
        (("--space", str(tmp_path / "missing.yaml")), ("missing.yaml", "no such")),
        (("--suite", "nosuch"), ("unknown attack suite 'nosuch'", "'quick'")),
        (("--space", "no-such-space"), ("unknown search space", "'digits-cells'")),
        (("--suite", str(bad_suite)), ("bad_attack.yaml:4", "attacks[0].attack", "NoSuchAttack")),
        (("--report-dir", str(blocker / "reports")), ("cannot write", "blocker")),
        (("--report-dir", "/proc/forbidden"), ("cannot write",)),
        (("--storage", str(tmp_path / "no" / "dir" / "x.journal")), ("does not exist",)),
        (("--storage", "postgresql://nobody@127.0.0.1:9/none"), ("cannot open storage",)),
        (("--study", "e2e", "--suite", "standard"), ("already exists with other settings", "suite")),
        (("--study", "e2e", "--sampler", "foo"), ("unknown sampler 'foo'", "'tpe'")),
    ]
    for args, needles in cases:
        assert_user_error(fails("search", *args), *needles)
    bad_recipe = tmp_path / "recipe.yaml"
    bad_recipe.write_text("dataset: digits\nsampler: random\nn_trials: 3\ntraining:\n  epochz: 3\n")
    assert_user_error(fails("search", "--config", str(bad_recipe)), "recipe.yaml:5", "training.epochz", "'epochs'")
    assert_user_error(fails("search", "--config", "nosuch"), "unknown study recipe 'nosuch'", "'cubuk2017-digits'")
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("name: x\nstages: [\n  - depth: 1\n")
    assert_user_error(fails("search", "--space", str(malformed)), "malformed.yaml", "line")
    assert_user_error(robustarch("report", "--study", "nope", cwd=work), "no study named 'nope'")  # a real process
    usage = robustarch("search", "--n-trials", "many", cwd=work)  # click's usage error: exit 2 too
    assert usage.returncode == 2 and "Traceback" not in usage.stderr and "--n-trials" in usage.stderr
    study = optuna.load_study(study_name="e2e", storage=open_storage(str(work / "robustarch.journal")))
    assert len([t for t in study.trials if t.state.name == "COMPLETE"]) == 2


def test_a_command_that_fails_before_its_first_trial_leaves_no_study(tmp_path):
    """A new user's first mistake (CIFAR-10 without --data-dir) must not block the default command."""
    proc = robustarch("search", "--dataset", "cifar10", "--report-dir", str(tmp_path), cwd=tmp_path)
    assert_user_error(proc, "cifar10", "--data-dir")
    journal = tmp_path / "robustarch.journal"
    assert not journal.exists() or optuna.get_all_study_names(open_storage(str(journal))) == []


def test_ctrl_c_inside_a_string_exec_still_exits_130_under_python_m(tmp_path):
    """CPython marks a KeyboardInterrupt that left a string `exec` as unhandled even when caught, and
    `python -m` then dies by SIGINT at exit (status -2): `main` must clear that mark (seen in CI)."""
    (tmp_path / "interrupted_cli.py").write_text(
        "import sys\nfrom robustarch import cli\n\n"
        "def app(standalone_mode):\n    exec('raise KeyboardInterrupt')\n\n"
        "cli.app = app\nsys.argv = ['robustarch']\ncli.main()\n"
    )
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), ENV.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "interrupted_cli"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 130, (proc.returncode, proc.stderr)
    assert proc.stderr == "robustarch: interrupted; the study storage is intact\n"
