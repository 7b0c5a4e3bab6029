"""Storages: a robustarch study on PostgreSQL opens in the standard Optuna tools with the same URL.

A real PostgreSQL server on loopback (see `_tiny_study.postgres_url`) and a real one-trial study.
"""

from __future__ import annotations

import importlib.util
import os

import optuna
import pytest
from _tiny_study import postgres_url, unique, write_tiny  # noqa: F401
from optuna.trial import TrialState

from robustarch.errors import UserError
from robustarch.study import StudyConfig, create_or_resume, run_study
from robustarch.study import storage as storage_module
from robustarch.study.journal import is_record
from robustarch.study.storage import open_storage


def test_plain_postgresql_url_loads_in_optuna(tmp_path, postgres_url):  # noqa: F811
    """The URL the user gives robustarch is the one `optuna.load_study` (and optuna-dashboard,
    which opens storages the same way) takes: psycopg 3 is SQLAlchemy's driver for it."""
    assert postgres_url.startswith("postgresql://")
    space, suite = write_tiny(tmp_path)
    name = unique("plain-url")
    config = StudyConfig(space=str(space), suite=str(suite), sampler="random", seed=0)
    study, config = create_or_resume(open_storage(postgres_url), name, config)
    run_study(study, config, n_trials=1, threads=1)
    loaded = optuna.load_study(study_name=name, storage=postgres_url)  # no driver named in the URL
    complete = loaded.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 1
    assert complete[0].user_attrs["arch_summary"] == study.get_trials()[0].user_attrs["arch_summary"]
    assert 0.0 <= complete[0].user_attrs["clean_accuracy"] <= 1.0
    assert loaded.user_attrs["n_trials"] == 1


def test_postgres_driver_choice(monkeypatch):
    """psycopg 3 keeps the plain URL; psycopg2 alone is named explicitly; neither is a user error."""
    assert importlib.util.find_spec("psycopg") is not None, "the dev extra installs psycopg 3"
    assert storage_module._postgres_driver("postgresql://u@h/db") == "postgresql://u@h/db"
    assert storage_module._postgres_driver("postgres://u@h/db") == "postgresql://u@h/db"
    real = importlib.util.find_spec

    def only(*present):
        # a driver is "installed" when named here, whatever this environment really has
        return lambda name, *a: (
            (object() if name in present else None) if name in ("psycopg", "psycopg2") else real(name, *a)
        )

    monkeypatch.setattr(importlib.util, "find_spec", only("psycopg2"))
    assert storage_module._postgres_driver("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    monkeypatch.setattr(importlib.util, "find_spec", only())
    with pytest.raises(UserError, match="robustarch\\[postgres\\]"):
        storage_module._postgres_driver("postgresql://u@h/db")


def _journal_study(path, n_trials: int = 3):
    """A journal holding a real study of `n_trials` complete trials (user attributes as robustarch
    stores them, no training)."""
    from _studies import make_study

    make_study(n_trials, name="j", n_failed=0, storage=open_storage(str(path)))
    return path


def _complete_values(path) -> list:
    study = optuna.load_study(study_name="j", storage=open_storage(str(path)))
    return [t.values for t in study.get_trials(states=(TrialState.COMPLETE,))]


def test_a_users_text_file_as_storage_is_refused_untouched(tmp_path, monkeypatch, capsys):
    """`--storage notes.txt`: `search` and `report` say it is not a journal, in one line, exit 2, and
    the file keeps its bytes (no journal line appended). An SQLite file is named as such."""
    from robustarch import cli

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\nline two\n")
    space, suite = write_tiny(tmp_path)
    for args in (
        [
            "search",
            "--study",
            "t",
            "--space",
            str(space),
            "--suite",
            str(suite),
            "--report-dir",
            str(tmp_path / "reports"),
        ],
        ["report", "--study", "t"],
    ):
        monkeypatch.setattr("sys.argv", ["robustarch", *args, "--storage", str(notes)])
        with pytest.raises(SystemExit) as exit_info:
            cli.main()
        err = capsys.readouterr().err
        assert exit_info.value.code == 2
        assert err.splitlines() == [
            f"robustarch: error: storage {str(notes)!r} is not an Optuna journal (its first "
            "line is not a journal record); it was left untouched: give --storage a new or "
            "empty file"
        ], err
        assert notes.read_text() == "my notes\nline two\n"
    database = tmp_path / "x.db"
    optuna.create_study(storage=f"sqlite:///{database}")
    with pytest.raises(UserError, match=f"SQLite database, not a journal: use --storage sqlite:///{database}"):
        open_storage(str(database))


def test_a_damaged_line_in_the_middle_is_refused_naming_it_and_the_backup(tmp_path):
    path = _journal_study(tmp_path / "s.journal")
    lines = path.read_bytes().splitlines(keepends=True)
    damaged = lines[:7] + [lines[7][:20] + b"\n"] + lines[8:]
    path.write_bytes(b"".join(damaged))
    with pytest.raises(UserError, match=r"line 8 is damaged \(.*\); the 7 records before it are intact") as info:
        open_storage(str(path))
    backups = list(tmp_path.glob("s.journal.bak-*-line8"))
    assert len(backups) == 1 and str(backups[0]) in str(info.value)
    assert backups[0].read_bytes() == path.read_bytes() == b"".join(damaged)  # nothing changed


def test_a_tail_torn_by_another_process_is_never_appended_to(tmp_path, caplog):
    """A worker dies mid-append while this process has the journal open: our next write cuts the torn
    bytes off first (backup kept) and lands on a line of its own."""
    path = _journal_study(tmp_path / "s.journal")
    storage = open_storage(str(path))
    kept = _complete_values(path)
    with open(path, "ab") as f:
        f.write(b'{"op_code":5,"worker_id":"dead","trial_id":0,"us')
    optuna.load_study(study_name="j", storage=storage).set_user_attr("after", 1)
    assert all(is_record(line) for line in path.read_bytes().splitlines())
    assert _complete_values(path) == kept
    assert "cut off its torn last record (48 bytes" in caplog.text
    assert len(list(tmp_path.glob("s.journal.bak-*"))) == 1


def test_no_repair_while_another_process_holds_the_journal_lock(tmp_path):
    """A torn-looking tail may be a record another process is writing under the lock: the repair waits
    for the lock, and a record completed meanwhile is kept."""
    import threading

    from optuna.storages.journal import JournalFileSymlinkLock

    from robustarch.study.journal import prepare_journal

    path = _journal_study(tmp_path / "s.journal")
    record = path.read_bytes().splitlines(keepends=True)[-1]
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()  # "another process" appending
    with open(path, "ab") as f:
        f.write(record[:10])
    opener = threading.Thread(target=prepare_journal, args=(path,))
    opener.start()
    opener.join(timeout=1.0)
    assert opener.is_alive() and path.read_bytes().endswith(record[:10])  # waiting, nothing cut
    with open(path, "ab") as f:
        f.write(record[10:])
    lock.release()
    opener.join(timeout=60)
    assert not opener.is_alive()
    assert path.read_bytes().endswith(record + record) and not list(tmp_path.glob("s.journal.bak-*"))


def test_doctor_repairs_a_torn_journal_and_lists_its_studies(tmp_path, monkeypatch, capsys):
    from robustarch import cli

    path = _journal_study(tmp_path / "s.journal", n_trials=4)
    torn = len(path.read_bytes().splitlines()[-1]) + 1 - 9  # the last record without its last 9 bytes
    path.write_bytes(path.read_bytes()[:-9])
    monkeypatch.setattr("sys.argv", ["robustarch", "doctor", "--storage", str(path)])
    cli.main()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"repaired: journal {path}: cut off its torn last record ({torn} bytes")
    assert out[1].startswith(f"journal {path}: ") and out[1].endswith("records, every one a complete journal record")
    assert out[2] == "study 'j': 3 trials: 3 complete"  # the torn record was the 4th trial's
    database = tmp_path / "x.db"
    make_db = optuna.create_study(study_name="d", storage=f"sqlite:///{database}")
    make_db.add_trial(optuna.trial.create_trial(value=1.0))
    monkeypatch.setattr("sys.argv", ["robustarch", "doctor", "--storage", f"sqlite:///{database}"])
    cli.main()
    assert capsys.readouterr().out.splitlines() == ["database sqlite: opened", "study 'd': 1 trials: 1 complete"]
    with pytest.raises(UserError, match="no such SQLite file"):
        from robustarch.study.doctor import doctor

        doctor(f"sqlite:///{tmp_path / 'missing.db'}")


def test_ctrl_c_inside_the_journal_lock_waits_until_the_lock_is_free(tmp_path):
    """Ctrl-C landing while a process holds the journal's lock (appending, or inside Optuna's lock
    release) is delivered only once the lock is released: no torn record, no stale lock, and the
    KeyboardInterrupt is not lost (in Optuna's release it became a FileNotFoundError that failed the
    trial and swallowed the Ctrl-C)."""
    import signal
    import time

    from robustarch.study.journal import locked

    journal = tmp_path / "x.journal"
    journal.write_bytes(b"")
    reached_end = False
    # Python's own handler, whatever pytest inherited: a background job (`pytest &`) starts with
    # SIGINT ignored, and an ignored Ctrl-C raises nothing
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with locked(journal):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # an undeferred SIGINT raises here
                reached_end = True
            time.sleep(1.0)  # the deferred one is delivered here, inside pytest.raises
    finally:
        signal.signal(signal.SIGINT, before)
    assert reached_end
    assert not os.path.lexists(f"{journal}.lock")
