"""What the command line shows and checks besides parsing: the progress display, one line per
finished trial, writable output paths and GPU lists. Kept apart so that `cli` stays a list of commands.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rich.console import Console

from .errors import UserError

console = Console(stderr=True)


def check_writable(path: Path, what: str, *, make: str = "") -> None:
    """Fail before any work if the file `path` cannot be written. Its folder must exist; `make`
    "folder" creates that folder (its own parent must exist), "folders" the whole chain (for default
    places such as attack-results/). Then a probe file is written (permission bits alone are no proof:
    root passes every os.access check, /proc refuses anyway)."""
    import tempfile

    folder = path.parent
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UserError(f"{what} {path}: cannot write there ({blocker} is a file, not a folder)")
    try:
        if make and not folder.is_dir():
            folder.mkdir(parents=make == "folders")
        elif not folder.is_dir():
            raise UserError(f"{what} {path}: folder {folder} does not exist (create it first)")
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".robustarch-probe-"):
            pass
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and not folder.parent.is_dir():
            raise UserError(f"{what} {path}: folder {folder.parent} does not exist (create it first)") from None
        raise UserError(f"{what} {path}: cannot write there ({exc.strerror or exc})") from None
    if path.is_dir():
        raise UserError(f"{what} {path}: is a folder, expected a file path")


def report_paths(report_dir: Path, names) -> list[Path]:
    """The report file of each study name in `report_dir`, checked writable before any work; the
    folder is created when missing (its parent must exist). File names: `robustarch.names.file_stem`,
    the same that `robustarch report` uses, so no name leaves `report_dir`."""
    from .names import file_stem

    if report_dir.exists() and not report_dir.is_dir():
        raise UserError(f"--report-dir {report_dir}: is a file, expected a folder for the reports")
    paths = [report_dir / f"{file_stem(name)}.html" for name in names]
    for path in paths:
        check_writable(path, "report", make="folder")
    return paths


def attack_dir(out_dir: Path | None, model_name: str, suite_name: str) -> Path:
    """`attack --out`, or attack-results/<model>-<suite>/ (safe names, created), checked writable."""
    from .names import file_stem

    path = out_dir or Path("attack-results") / f"{file_stem(model_name)}-{file_stem(suite_name)}"
    check_writable(path / "curve.csv", "output", make="folder" if out_dir else "folders")
    return path


def check_options(*, threads: int | None = None, timeout: float | None = None, device: str | None = None) -> None:
    """The options several commands share, checked before any work, one line each: `--threads`
    (and $ROBUSTARCH_THREADS) >= 1, `--timeout` > 0 seconds, `--device` known and present."""
    import math
    import os

    if threads is not None and threads < 1:
        raise UserError(f"--threads {threads}: must be >= 1 (CPU threads per worker)")
    env = os.environ.get("ROBUSTARCH_THREADS")
    if threads is None and env:
        try:
            ok = int(env) >= 1
        except ValueError:
            ok = False
        if not ok:
            raise UserError(f"ROBUSTARCH_THREADS={env!r}: must be a whole number >= 1")
    if timeout is not None and not (timeout > 0 and not math.isnan(timeout)):
        raise UserError(f"--timeout {timeout}: must be a number of seconds > 0")
    check_device(device)


def check_device(device: str | None) -> None:
    """`--device`: cpu, cuda or cuda:N with that GPU present (mps where available); else one line."""
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise UserError(f"--device {device!r}: unknown device; use cpu, cuda or cuda:N") from None
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if dev.type == "cuda" and not visible:
        raise UserError(f"--device {device}: no CUDA GPU on this machine; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= visible:
        raise UserError(f"--device {device}: no GPU {dev.index} on this machine ({visible} visible)")
    mps = dev.type == "mps" and torch.backends.mps.is_available()
    if dev.type not in ("cpu", "cuda") and not mps:
        raise UserError(f"--device {device}: not available here; use cpu, cuda or cuda:N")


class _QuietInterrupt(logging.Filter):
    """Drops Optuna's report of a trial stopped by Ctrl-C (a 40-line traceback, then a line about
    its value): the trial records fail_reason 'interrupted' and the CLI says so in one line."""

    interrupted = False

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[0] if record.exc_info else None
        if exc is not None and issubclass(exc, KeyboardInterrupt):
            self.interrupted = True
            return False
        return not (self.interrupted and "failed with value" in record.getMessage())


def quiet_interrupts() -> None:
    """Install a fresh `_QuietInterrupt` where Optuna logs failed trials (one per command run)."""
    logger = logging.getLogger("optuna.study._optimize")
    for old in [f for f in logger.filters if isinstance(f, _QuietInterrupt)]:
        logger.removeFilter(old)
    logger.addFilter(_QuietInterrupt())


def trial_line(study, trial) -> str:
    """One line per finished trial: its architecture and values, or why it did not complete."""
    from optuna.trial import TrialState

    a = trial.user_attrs
    if trial.state == TrialState.COMPLETE:
        names = study.user_attrs.get("objective_names") or ["robust_accuracy"]
        # the objective is measured on validation data (`val_`); the report quotes test numbers
        split = "val_" if a.get("selection_split") == "val" else ""
        values = " ".join(f"{split}{n}={v:.4g}" for n, v in zip(names, trial.values))
        clean = "" if "clean_accuracy" in names else f" {split}clean_accuracy={a.get(f'{split}clean_accuracy', 0):.4g}"
        flags = f" INVALID ({', '.join(a['sanity_invalid'])})" if a.get("sanity_invalid") else ""
        return f"trial {trial.number}: {a.get('arch_summary')}{clean} {values}{flags}"
    reason = a.get("fail_reason") or a.get("rejected") or "see log"
    return f"trial {trial.number}: {trial.state.name.lower()} ({reason})"


def rescore_line(number: int, rescored: dict) -> str:
    """One line per model re-attacked at the end of a search."""
    curve = " ".join(f"{v:.3f}" for v in rescored["robust_accuracy"]["worst_case"])
    drop = (
        ""
        if not rescored.get("n_compared")
        # measured on the test samples the search attacked
        else (
            f"; drop from the search on its {rescored['n_compared']} samples "
            + " ".join("–" if d is None else f"{d:+.3f}" for d in rescored["drop"])
        )
    )
    return (
        f"rescored trial {number} with {rescored['suite']} on test in {rescored['seconds']:.1f} s: "
        f"worst-case robust accuracy per ε {curve}{drop}"
    )


def progress_callback(progress, task, n_trials):
    def on_trial(study, trial):
        from optuna.trial import TrialState

        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        progress.console.print(trial_line(study, trial), markup=False, highlight=False, soft_wrap=True)
        progress.update(task, completed=min(done, n_trials))

    return on_trial


def parse_gpus(gpus: str | None, workers_per_gpu: int = 1, *, visible: int | None = None) -> list[int] | None:
    """`--gpus 0,1` and `--workers-per-gpu N` → one GPU index per local worker (`[0, 0, 1, 1]`), or
    None for no GPU list. A repeated index (`0,0,1,1`) also puts several workers on one GPU;
    `--workers-per-gpu` alone means every visible GPU. `visible`: the CUDA device count (default:
    torch's)."""
    if gpus is None and workers_per_gpu == 1:
        return None
    if visible is None:
        import torch

        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    plural = f"{visible} CUDA device{'s' if visible != 1 else ''} visible"
    if gpus is None:
        if not visible:
            raise UserError(
                f"--workers-per-gpu {workers_per_gpu}: no GPU on this machine ({plural}); on CPU use --workers N"
            )
        gpus = ",".join(str(i) for i in range(visible))
    try:
        ids = [int(g) for g in gpus.split(",") if g.strip()]
    except ValueError:
        raise UserError(
            f"--gpus {gpus!r}: expected GPU indices separated by commas, e.g. 0,1,2 "
            "(repeat an index for several workers on one GPU: 0,0,1,1)"
        ) from None
    if not ids:
        raise UserError("--gpus: give at least one GPU index, e.g. 0,1")
    missing = [g for g in ids if not 0 <= g < visible]
    if missing:
        raise UserError(f"--gpus {gpus}: no GPU {missing[0]} on this machine ({plural})")
    from .study.workers import expand_gpus

    return expand_gpus(ids, workers_per_gpu)


def progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def watch_workers(progress, optuna_study, procs, on_trial) -> bool:
    """Wait for the local worker processes, printing their trials; True when any of them failed."""
    from .study import workers as wk

    def on_exit(i, proc):
        if proc.returncode != 0:
            progress.console.print(
                f"worker {i} (pid {proc.pid}) exited with status {proc.returncode}; "
                "its trial is retried by the other workers (or on resume)",
                markup=False,
            )

    return any(wk.watch(optuna_study, procs, on_trial=on_trial, on_exit=on_exit))


def join_locally(
    optuna_study, storage: str, gpu_ids: list[int], n_trials: int, timeout, threads, artifacts, quiet: bool
) -> int:
    """`robustarch worker --gpus ... / --workers-per-gpu N`: one joining worker process per entry
    of `gpu_ids`; waits for them and returns 1 when any failed, else 0."""
    from .study import workers as wk

    procs = wk.start_local_workers(
        storage,
        optuna_study.study_name,
        len(gpu_ids),
        n_trials=n_trials,
        timeout=timeout,
        gpus=gpu_ids,
        threads=threads,
        artifacts=artifacts,
        quiet=quiet,
        joining=True,
    )
    return int(any(wk.watch(optuna_study, procs)))


def retrain_line(r, eps: float) -> str:
    """`robustarch retrain`'s line per architecture: observed, predicted and retrained robust accuracy."""

    def num(v):
        return "–" if v is None or v != v else f"{v:.3f}"

    return (
        f"#{r.rank} {r.arch_summary} ({r.seeds} seed(s) in the search): robust accuracy at ε={eps:g} observed "
        f"{num(r.observed)} · predicted for fresh seeds {num(r.predicted)} [{num(r.predicted_low)}, "
        f"{num(r.predicted_high)}] · retrained {num(r.retrained)} [{num(r.retrained_low)}, "
        f"{num(r.retrained_high)}] over {r.retrained_seeds} fresh seed(s)"
    )


def space_shape(sp) -> dict:
    """The input and output shape a search space is sized for (`spaces list` / `spaces show`)."""
    from .training import DATASET_SHAPES

    chans, size, classes = DATASET_SHAPES[sp.dataset]
    return {"in_chans": chans, "input_size": size, "num_classes": classes}


def si_count(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e3 else str(n)
