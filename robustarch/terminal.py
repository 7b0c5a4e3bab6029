"""What the command line shows and checks besides parsing: the progress display, one line per
finished trial, writable output paths and GPU lists. Kept apart so that `cli` stays a list of commands.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.console import Console

from .errors import UserError

console = Console(stderr=True)


def check_writable(path: Path, what: str) -> None:
    """Fail before any work if the file `path` cannot be written: create its folder and a probe file
    (permission bits alone are no proof: root passes every os.access check, /proc refuses anyway)."""
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".robustarch-probe-"):
            pass
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot write there ({exc.strerror or exc})") from None
    if path.is_dir():
        raise UserError(f"{what} {path}: is a folder, expected a file path")


def trial_line(study, trial) -> str:
    """One line per finished trial: its architecture and values, or why it did not complete."""
    from optuna.trial import TrialState

    a = trial.user_attrs
    if trial.state == TrialState.COMPLETE:
        names = study.user_attrs.get("objective_names") or ["robust_accuracy"]
        values = " ".join(f"{n}={v:.4g}" for n, v in zip(names, trial.values))
        clean = "" if "clean_accuracy" in names else f" clean_accuracy={a.get('clean_accuracy', 0):.4g}"
        return f"trial {trial.number}: {a.get('arch_summary')}{clean} {values}"
    reason = a.get("fail_reason") or a.get("rejected") or "see log"
    return f"trial {trial.number}: {trial.state.name.lower()} ({reason})"


def progress_callback(progress, task, n_trials):
    def on_trial(study, trial):
        from optuna.trial import TrialState

        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        progress.console.print(trial_line(study, trial), markup=False, highlight=False, soft_wrap=True)
        progress.update(task, completed=min(done, n_trials))
    return on_trial


def parse_gpus(gpus: Optional[str]) -> Optional[list[int]]:
    if gpus is None:
        return None
    try:
        ids = [int(g) for g in gpus.split(",") if g.strip()]
    except ValueError:
        raise UserError(f"--gpus {gpus!r}: expected GPU indices separated by commas, e.g. 0,1,2") from None
    if not ids:
        raise UserError("--gpus: give at least one GPU index, e.g. 0,1")
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    missing = [g for g in ids if not 0 <= g < count]
    if missing:
        raise UserError(f"--gpus {gpus}: no GPU {missing[0]} on this machine "
                        f"({count} CUDA device{'s' if count != 1 else ''} visible)")
    return ids


def progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


def watch_workers(progress, optuna_study, procs, on_trial) -> bool:
    """Wait for the local worker processes, printing their trials; True when any of them failed."""
    from .study import workers as wk

    def on_exit(i, proc):
        if proc.returncode != 0:
            progress.console.print(f"worker {i} (pid {proc.pid}) exited with status {proc.returncode}; "
                                   "its trial is retried by the other workers (or on resume)", markup=False)
    return any(wk.watch(optuna_study, procs, on_trial=on_trial, on_exit=on_exit))
