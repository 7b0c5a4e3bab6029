"""Fault injection on the real code paths: a journal torn at every byte of its last record, SIGKILL in
the middle of a checkpoint write, a full disk (RLIMIT_FSIZE), and 8 journal workers on one study.

Every case ends in the documented repair or in one line and exit status 2, with the study intact.
The figures (offsets tried, trials kept, workers, journal lines checked) are printed with `-s`.
"""

from __future__ import annotations

import resource
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from _cli import run_cli as _cli
from _tiny_study import robustarch, wait_for, worker_env, write_tiny
from optuna.trial import TrialState

from robustarch import cli
from robustarch.models.checkpoint import load_checkpoint
from robustarch.study import create_or_resume, open_storage
from robustarch.study.journal import is_record
from robustarch.study.storage import recover_lost_trials

NAME = "torn"


def _new_study(folder: Path, journal: Path, name: str = NAME, epochs: int = 2, samples: int = 50) -> None:
    """A new study of the tiny space and suite in `journal` (no trials yet)."""
    from robustarch.study import StudyConfig

    space, suite = write_tiny(folder)
    space.write_text(space.read_text().replace("epochs: 2", f"epochs: {epochs}"))
    suite.write_text(suite.read_text().replace("samples: 50", f"samples: {samples}"))
    config = StudyConfig(space=str(space), suite=str(suite), sampler="random", seed=0)
    create_or_resume(open_storage(str(journal)), name, config)


def _worker_args(journal: Path, n_trials: int) -> list[str]:
    """`robustarch worker` on the study: the same trial loop as `search`, without its report."""
    return ["worker", "--study", NAME, "--storage", str(journal), "--n-trials", str(n_trials), "--threads", "1"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A journal of a 2-trial study written by a worker process that has ended (so a trial it left
    running belongs to a dead worker, as after a crash)."""
    folder = tmp_path_factory.mktemp("finished")
    journal = folder / "study.journal"
    _new_study(folder, journal)
    proc = robustarch(*_worker_args(journal, 2), cwd=folder)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return journal


def _complete_trials(journal: Path) -> list:
    study = optuna.load_study(study_name=NAME, storage=open_storage(str(journal)))
    return study.get_trials(states=(TrialState.COMPLETE,))


def _complete(storage) -> dict[int, tuple]:
    study = optuna.load_study(study_name=NAME, storage=storage)
    return {t.number: tuple(t.values) for t in study.get_trials(states=(TrialState.COMPLETE,))}


def test_torn_tail_at_every_byte_offset_is_cut_off_with_a_backup(finished, tmp_path):
    """The journal cut at every byte offset 0..L-1 of its last record (L bytes, newline included):
    each open cuts the torn bytes off (backup kept), keeps every complete record, and the next write
    lands on a clean line. Offset 0 (a cut exactly between records) needs no repair."""
    data = finished.read_bytes()
    last = data.splitlines(keepends=True)[-1]
    intact = data[: -len(last)]
    journal = tmp_path / "cut.journal"
    journal.write_bytes(intact)
    kept = _complete(open_storage(str(journal)))
    assert kept, "the study before its last record holds a complete trial"
    for offset in range(len(last)):
        for old in tmp_path.glob("cut.journal.bak-*"):
            old.unlink()
        journal.write_bytes(intact + last[:offset])
        storage = open_storage(str(journal))
        assert journal.read_bytes() == intact, offset
        backups = list(tmp_path.glob("cut.journal.bak-*"))
        assert [b.read_bytes() for b in backups] == ([intact + last[:offset]] if offset else []), offset
        assert _complete(storage) == kept, offset
    optuna.load_study(study_name=NAME, storage=storage).set_user_attr("after_repair", True)
    lines = journal.read_bytes().splitlines(keepends=True)
    assert all(line.endswith(b"\n") and is_record(line) for line in lines)
    print(
        f"\nfault injection: torn tail at {len(last)} offsets (0..{len(last) - 1}) of a {len(last)}-byte "
        f"last record; {len(kept)} complete trial(s) kept each time; {len(lines)} journal lines checked"
    )


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_resume_after_a_torn_tail_meets_the_budget(finished, tmp_path, monkeypatch, capsys, caplog, where):
    """Running the study again (`robustarch worker`, the trial loop of `search`) resumes a journal torn at
    the start (1 byte), middle or end (all but the newline) of its last record: one warning line, no
    traceback, every complete trial kept, the budget met."""
    monkeypatch.setenv("ROBUSTARCH_THREADS", "1")
    data = finished.read_bytes()
    last = data.splitlines(keepends=True)[-1]
    offset = {"start": 1, "middle": len(last) // 2, "end": len(last) - 1}[where]
    journal = tmp_path / "study.journal"
    journal.write_bytes(data[: -len(last)] + last[:offset])
    before = _complete(open_storage(str(journal)))
    code, err = _cli(monkeypatch, capsys, *_worker_args(journal, 3))
    assert code == 0, err[-3000:]
    assert "Traceback" not in err and "JSONDecodeError" not in err, err[-3000:]
    said = [r.getMessage() for r in caplog.records if "torn last record" in r.getMessage()]
    assert len(said) == 1 and "\n" not in said[0], said  # one line (on stderr outside pytest)
    after = _complete(open_storage(str(journal)))
    assert {n: after[n] for n in before} == before  # every complete trial kept, unchanged
    assert len(after) == 3
    assert all(is_record(line) for line in journal.read_bytes().splitlines())


def test_a_damaged_stored_checkpoint_is_refused_naming_the_file(finished, tmp_path):
    """A complete trial records its checkpoint's SHA-256; fetching it back checks it: intact, it loads;
    one flipped byte in the store, and the fetch is refused, naming the stored file."""
    from robustarch.errors import UserError
    from robustarch.study import download_checkpoint

    folder = tmp_path / "copy"
    shutil.copytree(finished.parent, folder)
    journal = folder / finished.name
    trial = _complete_trials(journal)[0]
    assert len(trial.user_attrs["checkpoint_sha256"]) == 64
    root = folder / "study-artifacts"
    load_checkpoint(download_checkpoint(str(journal), NAME, trial.number, tmp_path / "a", root))
    stored = root / trial.user_attrs["checkpoint_artifact"]
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF
    stored.write_bytes(bytes(data))
    with pytest.raises(UserError, match=f"{stored}: checkpoint of trial {trial.number} .* damaged or replaced"):
        download_checkpoint(str(journal), NAME, trial.number, tmp_path / "b", root)


KILLED_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    import optuna
    from robustarch.models.arch import ArchSpec, StageSpec, build_model
    from robustarch.training.train import TrainConfig
    from robustarch.study import open_storage
    from robustarch.study.artifacts import store_checkpoint
    from robustarch.study.storage import worker_id
    storage, root = sys.argv[1], Path(sys.argv[2])
    study = optuna.load_study(study_name="ckpt", storage=open_storage(storage))
    trial = study.ask()
    trial.set_user_attr("worker", worker_id())
    arch = ArchSpec(in_chans=1, num_classes=10, input_size=8, stem_width=8, stages=(StageSpec(1, 512, 1, "basic"),))
    model = build_model(arch)
    print("writing", flush=True)
    for i in range(100):  # the parent kills us during one of these writes
        store_checkpoint(trial, root, model, arch, TrainConfig(), {"round": i})
""")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # renamed into place meanwhile
        return 0


def test_sigkill_during_a_checkpoint_write_leaves_no_partial_file(tmp_path):
    """A worker SIGKILLed while it writes a ~19 MB checkpoint into the store (after two complete ones): no partial file ever appears under a
    final name (every artifact there loads), and the study opens, its trial recoverable."""
    journal, root = tmp_path / "ckpt.journal", tmp_path / "artifacts"
    optuna.create_study(study_name="ckpt", storage=open_storage(str(journal)))
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(journal), str(root)],
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def uploading():  # a write into the store itself, after two complete ones
            if not root.is_dir() or len([p for p in root.iterdir() if not p.name.startswith(".")]) < 2:
                return []
            return [p for p in root.glob(".*.tmp-*") if _size(p) > 0]

        temp = wait_for(uploading, 240, "a checkpoint write in progress", step=0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-2000:]
    finals = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
    assert len(finals) >= 2
    for path in finals:  # every artifact under its final name is complete
        assert load_checkpoint(path).arch.stages[0].width == 512
    study = optuna.load_study(study_name="ckpt", storage=open_storage(str(journal)))
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING]
    assert recover_lost_trials(study) == [0]  # its worker is gone: failed, and re-queued
    print(
        f"\nfault injection: SIGKILL while {temp[0].name} was being written "
        f"({_size(temp[0])} bytes); {len(finals)} complete "
        "artifact(s) under final names, all loadable"
    )


def _limit_file_size(limit: int):
    def apply():  # in the child: writes past `limit` bytes fail with EFBIG instead of killing it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_ends_in_one_line_and_the_study_is_intact(finished, tmp_path, monkeypatch, capsys):
    """A worker resuming a study with a file size limit just above the journal's size (RLIMIT_FSIZE,
    SIGXFSZ ignored: EFBIG, as on a full disk): one line, exit status 2; the journal ends on a complete
    record and `doctor` finds it intact, every complete trial kept; with room again, it resumes."""
    journal = tmp_path / "study.journal"
    shutil.copyfile(finished, journal)
    before = _complete(open_storage(str(journal)))
    size = journal.stat().st_size
    proc = subprocess.Popen(
        [sys.executable, "-m", "robustarch", *_worker_args(journal, 4)],
        cwd=tmp_path,
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limit_file_size(size + 2000),
    )
    _, err = proc.communicate(timeout=300)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 2, err[-3000:]
    assert len(lines) == 1 and lines[0].startswith("robustarch: error: cannot write"), err[-3000:]
    assert "disk full" in lines[0]
    assert journal.stat().st_size <= size + 2000
    assert journal.read_bytes().endswith(b"\n")
    assert _complete(open_storage(str(journal))) == before
    monkeypatch.setattr(sys, "argv", ["robustarch", "doctor", "--storage", str(journal)])
    cli.main()
    doctor = capsys.readouterr().out
    assert "the last record is complete" in doctor and f"study '{NAME}'" in doctor, doctor
    monkeypatch.setenv("ROBUSTARCH_THREADS", "1")
    code, err = _cli(monkeypatch, capsys, *_worker_args(journal, 3))  # room again: the same command resumes
    assert code == 0, err[-3000:]
    after = _complete(open_storage(str(journal)))
    assert len(after) == 3 and {n: after[n] for n in before} == before
    print(
        f"\nfault injection: full disk at {size + 2000} bytes: {lines[0][:90]}...; {len(before)} complete trial(s) kept"
    )


WORKERS = 8


def test_eight_journal_workers_meet_the_budget_exactly(tmp_path):
    """8 local worker processes (as `search --workers 8` starts them) on one journal, tiny trials (one
    epoch, 20 samples): exactly the budget of complete trials, no duplicate trial numbers, every line
    of the journal a complete record."""
    from robustarch.study.workers import start_local_workers

    journal = tmp_path / "many.journal"
    _new_study(tmp_path, journal, name="many", epochs=1, samples=20)
    procs = start_local_workers(
        str(journal), "many", WORKERS, n_trials=WORKERS, device="cpu", threads=1, artifacts=tmp_path / "artifacts"
    )
    try:
        codes = [proc.wait(timeout=600) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert codes == [0] * WORKERS
    trials = create_or_resume(open_storage(str(journal)), "many", None)[0].get_trials()
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == WORKERS
    workers = {t.user_attrs.get("worker") for t in trials}
    lines = journal.read_bytes().splitlines(keepends=True)
    assert all(line.endswith(b"\n") and is_record(line) for line in lines)
    print(
        f"\nfault injection: {WORKERS} workers ({len(workers)} ran trials), {len(trials)} trials, "
        f"{WORKERS} complete, {len(lines)} journal lines checked"
    )
