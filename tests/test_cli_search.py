"""`robustarch search` / `worker` as a user runs them: Ctrl-C then resume, and storages that fail."""

from __future__ import annotations

import os
import signal

import pytest
from _cli import run_cli as _cli
from _tiny_study import robustarch, tiny_search_args, wait_for, write_tiny
from optuna.trial import TrialState

from robustarch.study import create_or_resume
from robustarch.study.storage import open_storage


@pytest.mark.parametrize("command", ["search", "worker"])
def test_unreachable_storage_is_one_clear_line_and_exit_2(monkeypatch, capsys, tmp_path, command):
    url = "postgresql://robustarch@127.0.0.1:9/studies"  # port 9 (discard): nothing listens
    code, err = (
        _cli(monkeypatch, capsys, command, "--study", "s", "--storage", url, "--report-dir", str(tmp_path))
        if command == "search"
        else _cli(monkeypatch, capsys, command, "--study", "s", "--storage", url)
    )
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"robustarch: error: cannot open storage '{url}'"), err
    assert "Traceback" not in err


def test_pruner_on_a_multi_objective_study_is_refused(monkeypatch, capsys, tmp_path):
    code, err = _cli(
        monkeypatch,
        capsys,
        "search",
        "--storage",
        str(tmp_path / "s.journal"),
        "--objective",
        "clean+robust",
        "--pruner",
        "median",
        "--report-dir",
        str(tmp_path),
    )
    assert code == 2 and err.count("\n") == 1 and "cannot prune multi-objective" in err, err


def test_gpus_that_do_not_exist_are_refused(monkeypatch, capsys, tmp_path):
    import torch

    missing = torch.cuda.device_count() if torch.cuda.is_available() else 0
    code, err = _cli(
        monkeypatch,
        capsys,
        "search",
        "--storage",
        str(tmp_path / "s.journal"),
        "--gpus",
        f"0,{missing}",
        "--report-dir",
        str(tmp_path),
    )
    assert code == 2 and f"no GPU {missing} on this machine" in err, err


def test_worker_for_a_missing_study_names_the_existing_ones(monkeypatch, capsys, tmp_path):
    journal = str(tmp_path / "s.journal")
    space, suite = write_tiny(tmp_path)
    from robustarch.study import StudyConfig

    create_or_resume(open_storage(journal), "present", StudyConfig(space=str(space), suite=str(suite)))
    code, err = _cli(monkeypatch, capsys, "worker", "--study", "absent", "--storage", journal)
    assert code == 2 and "no study named 'absent'" in err and "'present'" in err, err


def test_ctrl_c_marks_the_running_trial_failed_and_the_same_command_resumes(monkeypatch, capsys, tmp_path):
    journal = str(tmp_path / "study.journal")
    args = tiny_search_args(tmp_path, "cc", journal, 3)
    # trials long enough that the signal lands inside one (between trials there is none to mark)
    space = tmp_path / "tiny-space.yaml"
    space.write_text(space.read_text().replace("epochs: 2", "epochs: 400"))
    # SIGINT back to its default in the child: under a background job (`pytest &`) it is inherited
    # ignored, and Python then installs no KeyboardInterrupt handler at all
    first = robustarch(*args, cwd=tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    study = None

    def training():
        nonlocal study
        if not os.path.exists(journal) or os.path.getsize(journal) == 0:
            return None
        study = study or create_or_resume(open_storage(journal), "cc", None)[0]
        return [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if "arch" in t.user_attrs]

    try:
        wait_for(training, 150, "a worker to start training", step=0.1)
        first.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = first.communicate(timeout=90)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, err[-6000:]
    # only our line: no Optuna traceback of the interrupted trial, no KeyboardInterrupt
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.lstrip().startswith("study cc")]
    assert lines == ["robustarch: interrupted; the study storage is intact"], err[-6000:]
    stopped = study.get_trials()
    interrupted = [t for t in stopped if t.user_attrs.get("fail_reason") == "interrupted"]
    assert interrupted and all(t.state == TrialState.FAIL for t in interrupted), [
        (t.number, t.state.name, t.user_attrs.get("fail_reason")) for t in stopped
    ] + [err[-3000:]]
    assert not [t for t in stopped if t.state == TrialState.RUNNING]

    monkeypatch.setenv("ROBUSTARCH_THREADS", "1")
    space.write_text(space.read_text().replace("epochs: 400", "epochs: 2"))  # short trials to finish
    code, err = _cli(monkeypatch, capsys, *args)  # the same command again resumes the study
    assert code == 0, err[-2000:]
    resumed = create_or_resume(open_storage(journal), "cc", None)[0].get_trials()
    assert len([t for t in resumed if t.state == TrialState.COMPLETE]) == 3
    assert [(t.number, t.state) for t in resumed[: len(stopped)]] == [(t.number, t.state) for t in stopped]
    assert (tmp_path / "reports" / "cc.html").is_file()


def _one_line(code: int, err: str, *needles: str) -> str:
    """Exit status 2 and one line on stderr naming the problem, no traceback."""
    assert code == 2, (code, err)
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("robustarch: error: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def _tiny_search(tmp_path, *args: str) -> list[str]:
    space, suite = write_tiny(tmp_path)
    return [
        "search",
        "--space",
        str(space),
        "--suite",
        str(suite),
        "--sampler",
        "random",
        "--storage",
        str(tmp_path / "s.journal"),
        *args,
    ]


def test_a_study_name_is_one_safe_file_name_everywhere(monkeypatch, capsys, tmp_path):
    """`search` and `report` write the same file for a name with `/`; `../../evil` and a 500-character
    name stay inside the reports folder, capped; the name is kept as given in the storage."""
    from robustarch.names import MAX_STEM, file_stem

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROBUSTARCH_THREADS", "1")
    code, err = _cli(
        monkeypatch, capsys, *_tiny_search(tmp_path, "--study", "a/b", "--n-trials", "1", "--report-dir", "reports")
    )
    assert code == 0, err[-3000:]
    written = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert written == [f"{file_stem('a/b')}.html"] and file_stem("a/b") != file_stem("a_b")
    journal = str(tmp_path / "s.journal")
    for name, fmt in (("a/b", "html"), ("a/b", "json"), ("../../evil", "html"), ("x" * 500, "html")):
        if name != "a/b":
            create_or_resume(open_storage(journal), name, _tiny_config(tmp_path))
        code, err = _cli(monkeypatch, capsys, "report", "--study", name, "--storage", journal, "--format", fmt)
        assert code == 0, err[-3000:]
    names = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert names == sorted(
        {
            f"{file_stem(n)}.{f}"
            for n, f in (("a/b", "html"), ("a/b", "json"), ("../../evil", "html"), ("x" * 500, "html"))
        }
    )
    assert all(len(n) <= MAX_STEM + 14 and not n.startswith(".") for n in names)
    assert not list(tmp_path.parent.glob("*evil*")) and not list(tmp_path.glob("*evil*"))


def _tiny_config(folder):
    from robustarch.study import StudyConfig

    space, suite = write_tiny(folder)
    return StudyConfig(space=str(space), suite=str(suite), sampler="random")


@pytest.mark.parametrize(
    "args, env, needles",
    [
        (("--study", ""), {}, ("--study", "must not be empty")),
        (("--threads", "0"), {}, ("--threads 0", ">= 1")),
        (("--threads", "-1"), {}, ("--threads -1", ">= 1")),
        (("--timeout", "-1"), {}, ("--timeout -1", "> 0")),
        (("--timeout", "nan"), {}, ("--timeout nan", "> 0")),
        ((), {"ROBUSTARCH_THREADS": "many"}, ("ROBUSTARCH_THREADS='many'",)),
        (("--device", "foo"), {}, ("--device 'foo'", "cpu, cuda or cuda:N")),
        (("--dataset", "foo"), {}, ("unknown dataset 'foo'", "'mnist'")),
        (("--seed", "-1"), {}, ("seed -1", "from 0 to")),
        (("--n-trials", "0"), {}, ("--n-trials",)),
    ],
)
def test_bad_search_options_are_one_line_before_anything_is_stored(monkeypatch, capsys, tmp_path, args, env, needles):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, err = _cli(monkeypatch, capsys, *_tiny_search(tmp_path, "--report-dir", str(tmp_path / "r"), *args))
    _one_line(code, err, *needles)
    assert not (tmp_path / "s.journal").exists()


def test_a_device_that_is_not_there_is_refused_before_use(monkeypatch, capsys, tmp_path):
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = "cuda" if not visible else f"cuda:{visible}"
    for command in (
        _tiny_search(tmp_path),
        ["worker", "--study", "s", "--storage", str(tmp_path / "s.journal")],
        ["rescore", "--study", "s", "--storage", str(tmp_path / "s.journal")],
    ):
        code, err = _cli(monkeypatch, capsys, *command, "--device", device)
        _one_line(code, err, f"--device {device}", "no " + ("CUDA GPU" if not visible else f"GPU {visible}"))
    assert not (tmp_path / "s.journal").exists()


def test_outputs_need_an_existing_folder_and_report_dir_must_be_a_folder(monkeypatch, capsys, tmp_path):
    journal = str(tmp_path / "s.journal")
    create_or_resume(open_storage(journal), "t", _tiny_config(tmp_path))
    missing = tmp_path / "nonexistent"
    code, err = _cli(
        monkeypatch, capsys, "report", "--study", "t", "--storage", journal, "--out", str(missing / "x.html")
    )
    _one_line(code, err, str(missing), "does not exist")
    code, err = _cli(
        monkeypatch, capsys, "export", "--study", "t", "--storage", journal, "--out", str(missing / "deeper" / "x.csv")
    )
    _one_line(code, err, "does not exist")
    assert not missing.exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    code, err = _cli(monkeypatch, capsys, *_tiny_search(tmp_path, "--study", "t", "--report-dir", str(a_file)))
    _one_line(code, err, f"--report-dir {a_file}", "is a file")
    assert a_file.read_text() == "mine"
    code, err = _cli(monkeypatch, capsys, "report", "--compare", "t", "t", "--storage", journal)
    _one_line(code, err, "--compare t t", "two different studies")
    assert create_or_resume(open_storage(journal), "t", None)[0].trials == []


def test_enqueued_parameters_must_lie_in_the_space(monkeypatch, capsys, tmp_path):
    baselines = tmp_path / "baselines.yaml"
    for entry, needles in (
        ("{stage0_depth: 9}", ("entry 1", "stage0_depth: 9", "from 1 to 3")),
        ("{stage0_width: 12}", ("stage0_width: 12", "in steps of 8")),
        ("{stage0_cell: wide}", ("stage0_cell: 'wide'", "'plain' or 'basic'")),
        ("{stage0_depth: true}", ("stage0_depth: True",)),
        ("{stage0_depth: 2.5}", ("stage0_depth: 2.5",)),
    ):
        baselines.write_text(f"- {{stage0_depth: 2, stage0_width: 16}}\n- {entry}\n")
        code, err = _cli(
            monkeypatch,
            capsys,
            "search",
            "--storage",
            str(tmp_path / "s.journal"),
            "--enqueue",
            str(baselines),
            "--report-dir",
            str(tmp_path / "r"),
        )
        _one_line(code, err, *needles)
        assert not (tmp_path / "s.journal").exists() or os.path.getsize(tmp_path / "s.journal") == 0
    from robustarch.spaces import load_space
    from robustarch.study import load_enqueue_file

    baselines.write_text("- {stage0_depth: 3, stage0_width: 48, stage0_cell: basic, stem_width: 8}\n")
    assert load_enqueue_file(baselines, load_space("digits-cells"))[0]["stage0_depth"] == 3


def test_objective_eps_equal_to_the_stored_default_resumes(monkeypatch, capsys, tmp_path):
    """A study stored with the default ε (the middle of the grid, 0.05 for the tiny suite) resumes when
    the same ε is named; another ε is refused naming the stored value, not None."""
    import dataclasses

    journal = str(tmp_path / "s.journal")
    config = _tiny_config(tmp_path)
    create_or_resume(open_storage(journal), "t", config)
    _, resumed = create_or_resume(open_storage(journal), "t", dataclasses.replace(config, objective_eps=0.05))
    assert resumed == config
    code, err = _cli(
        monkeypatch,
        capsys,
        *_tiny_search(tmp_path, "--study", "t", "--objective-eps", "0.1", "--report-dir", str(tmp_path / "r")),
    )
    _one_line(code, err, "objective_eps=0.1 (stored 0.05)")
