"""`robustarch doctor`: check a study storage and say what it holds. A journal file is read line by
line and a torn tail repaired (with a backup); a database is opened and listed. Nothing is recovered
silently: trials still marked running are only counted (the next worker recovers lost ones).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..errors import UserError
from .storage import _optuna, is_journal, open_storage


def check_journal(path: Path) -> list[str]:
    """Lines saying what the journal at `path` holds; repairs a torn tail first (see `journal.py`) and
    raises a one-line `UserError` for a damaged record in the middle (with the backup to keep)."""
    from .journal import check_is_journal, locked, refuse_damaged, repair_tail

    if not path.is_file():
        raise UserError(f"storage {str(path)!r}: no such journal file")
    lines = []
    if path.stat().st_size:
        check_is_journal(path)
        with locked(path):  # a repair waits for any process that is appending
            repaired = repair_tail(path)
        lines.append(f"repaired: {repaired}" if repaired else f"journal {path}: the last record is complete")
        refuse_damaged(path)
    with open(path, "rb") as f:
        records = sum(1 for _ in f)
    lines.append(f"journal {path}: {records} records, every one a complete journal record")
    return lines


def study_lines(storage) -> list[str]:
    """One line per study: its trials by state."""
    optuna = _optuna()
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    if not summaries:
        return ["no studies in this storage"]
    lines = []
    for summary in sorted(summaries, key=lambda s: s.study_name):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        states = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
        counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "no trials"
        note = " (running trials whose worker is gone are recovered by the next worker)" if states["running"] else ""
        lines.append(f"study {summary.study_name!r}: {sum(states.values())} trials: {counts}{note}")
    return lines


def doctor(url: str) -> list[str]:
    """Check the storage `url` (a journal file or a database URL); returns the lines to print.

    >>> print("\\n".join(doctor("robustarch.journal")))  # doctest: +SKIP
    """
    if is_journal(url):
        path = Path(url.removeprefix("journal:")).expanduser()
        lines = check_journal(path)
    else:
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
            raise UserError(f"storage {url!r}: no such SQLite file (doctor opens existing storages only)")
        lines = [f"database {url.split('://')[0]}: opened"]
    return lines + study_lines(open_storage(url))
