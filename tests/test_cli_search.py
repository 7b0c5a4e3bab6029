"""`robustarch search` / `worker` as a user runs them: Ctrl-C then resume, and storages that fail."""
from __future__ import annotations

import os
import signal
import sys

import pytest
from _tiny_study import robustarch, wait_for, write_tiny
from optuna.trial import TrialState

from robustarch import cli
from robustarch.study.storage import open_storage
from robustarch.study import create_or_resume


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """Run the command line in this process (no second torch import): exit status and stderr."""
    monkeypatch.setattr(sys, "argv", ["robustarch", *args])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("command", ["search", "worker"])
def test_unreachable_storage_is_one_clear_line_and_exit_2(monkeypatch, capsys, tmp_path, command):
    url = "postgresql://robustarch@127.0.0.1:9/studies"  # port 9 (discard): nothing listens
    code, err = _cli(monkeypatch, capsys, command, "--study", "s", "--storage", url,
                     "--report-dir", str(tmp_path)) if command == "search" else \
        _cli(monkeypatch, capsys, command, "--study", "s", "--storage", url)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"robustarch: error: cannot open storage '{url}'"), err
    assert "Traceback" not in err


def test_pruner_on_a_multi_objective_study_is_refused(monkeypatch, capsys, tmp_path):
    code, err = _cli(monkeypatch, capsys, "search", "--storage", str(tmp_path / "s.journal"),
                     "--objective", "clean+robust", "--pruner", "median", "--report-dir", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "cannot prune multi-objective" in err, err


def test_gpus_that_do_not_exist_are_refused(monkeypatch, capsys, tmp_path):
    import torch

    missing = torch.cuda.device_count() if torch.cuda.is_available() else 0
    code, err = _cli(monkeypatch, capsys, "search", "--storage", str(tmp_path / "s.journal"),
                     "--gpus", f"0,{missing}", "--report-dir", str(tmp_path))
    assert code == 2 and f"no GPU {missing} on this machine" in err, err


def test_worker_for_a_missing_study_names_the_existing_ones(monkeypatch, capsys, tmp_path):
    journal = str(tmp_path / "s.journal")
    space, suite = write_tiny(tmp_path)
    from robustarch.study import StudyConfig

    create_or_resume(open_storage(journal), "present", StudyConfig(space=str(space), suite=str(suite)))
    code, err = _cli(monkeypatch, capsys, "worker", "--study", "absent", "--storage", journal)
    assert code == 2 and "no study named 'absent'" in err and "'present'" in err, err


def test_ctrl_c_marks_the_running_trial_failed_and_the_same_command_resumes(monkeypatch, capsys, tmp_path):
    space, suite = write_tiny(tmp_path)
    # trials long enough that the signal lands inside one (between trials there is none to mark)
    space.write_text(space.read_text().replace("epochs: 2", "epochs: 40"))
    journal = str(tmp_path / "study.journal")
    args = ["search", "--study", "cc", "--storage", journal, "--space", str(space), "--suite", str(suite),
            "--sampler", "random", "--n-trials", "3", "--report-dir", str(tmp_path / "reports")]
    first = robustarch(*args, cwd=tmp_path)
    study = None

    def training():
        nonlocal study
        if not os.path.exists(journal) or os.path.getsize(journal) == 0:
            return None
        study = study or create_or_resume(open_storage(journal), "cc", None)[0]
        return [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if "arch" in t.user_attrs]

    try:
        wait_for(training, 150, "a worker to start training", step=0.1)
        first.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = first.communicate(timeout=90)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, err[-6000:]
    assert "interrupted; the study storage is intact" in err
    stopped = study.get_trials()
    interrupted = [t for t in stopped if t.user_attrs.get("fail_reason") == "interrupted"]
    assert interrupted and all(t.state == TrialState.FAIL for t in interrupted), \
        [(t.number, t.state.name, t.user_attrs.get("fail_reason")) for t in stopped] + [err[-3000:]]
    assert not [t for t in stopped if t.state == TrialState.RUNNING]

    monkeypatch.setenv("ROBUSTARCH_THREADS", "1")
    space.write_text(space.read_text().replace("epochs: 40", "epochs: 2"))  # short trials to finish
    code, err = _cli(monkeypatch, capsys, *args)  # the same command again resumes the study
    assert code == 0, err[-2000:]
    resumed = create_or_resume(open_storage(journal), "cc", None)[0].get_trials()
    assert len([t for t in resumed if t.state == TrialState.COMPLETE]) == 3
    assert [(t.number, t.state) for t in resumed[:len(stopped)]] == [(t.number, t.state) for t in stopped]
    assert (tmp_path / "reports" / "cc.html").is_file()
