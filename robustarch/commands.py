"""What `search` and `rescore` do between parsing and printing: run one study to its budget,
rescore its best models, write its report. `cli` stays a thin layer over these and the library.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from . import terminal
from .terminal import console

out = Console()

RESCORE_TOP = 5  # on CUDA; on CPU AutoAttack costs minutes per model, so rescoring is opt-in there


def rescore_default(flag: int | None, recipe, device: str | None) -> int:
    """`--rescore-top`: the flag, else the recipe's, else 5 on CUDA and 0 on CPU."""
    if flag is not None:
        return flag
    if recipe is not None and recipe.rescore_top is not None:
        return recipe.rescore_top
    from .runtime import pick_device

    return RESCORE_TOP if pick_device(device).type == "cuda" else 0


def run_one(storage, name, config, enqueue, n_trials, timeout, gpu_ids, workers, device, threads, artifacts):
    """Create or resume one study and run it to its budget (in this process or local workers)."""
    from . import study as st
    from .study import workers as wk

    n_workers = len(gpu_ids) if gpu_ids and workers == 1 else workers
    optuna_study, config = _open_study(storage, name, config, enqueue)
    worker_failed = False
    expected = n_trials + st.expected_replicates(config, n_trials)  # queued seeds run beside the budget
    with terminal.progress() as progress:
        task = progress.add_task(f"study {name}", total=expected)
        on_trial = terminal.progress_callback(progress, task, expected)
        if n_workers == 1 and not gpu_ids:
            st.run_study(
                optuna_study,
                config,
                n_trials=n_trials,
                timeout=timeout,
                device=device,
                threads=threads,
                artifacts=artifacts,
                on_trial=on_trial,
            )
        else:
            optuna_study.set_user_attr("n_trials", n_trials)
            procs = wk.start_local_workers(
                storage,
                name,
                n_workers,
                n_trials=n_trials,
                timeout=timeout,
                device=device,
                gpus=gpu_ids,
                threads=threads,
                artifacts=artifacts,
            )
            worker_failed = terminal.watch_workers(progress, optuna_study, procs, on_trial)
    complete, _ = wk.count_states(optuna_study)
    if complete < n_trials:
        console.print(
            f"study {name}: {complete} of {n_trials} complete trials (stopped early; run the "
            "same command again to resume)",
            markup=False,
        )
    return optuna_study, config, worker_failed and complete < n_trials


def rescore(
    optuna_study, storage, config, top: int, device, artifacts, suite: str | None = None, threads: int | None = None
) -> None:
    """Re-attack the best models with the AutoAttack-composition suite (on test, for the report),
    best first, with a progress bar over the models and one over the current model's attacks."""
    from . import study as st

    if top <= 0:
        return
    from .study.rescore import pending, rescore_candidates

    if not pending(optuna_study, config, top):
        found = rescore_candidates(optuna_study, config, top)
        console.print(
            f"rescore: every candidate (trial{'s' if len(found) > 1 else ''} {', '.join(map(str, found))}) "
            "is rescored already"
            if found
            else "rescore: no complete trial with a valid evaluation and a stored checkpoint",
            markup=False,
        )
        return
    now = {"trial": None, "stored": 0}
    with terminal.progress() as progress:
        models = progress.add_task("rescore", total=None)
        attacks = progress.add_task("attacks", total=None, visible=False)

        def on_start(n, i, count):
            now["trial"] = n
            progress.update(models, description=f"rescore: trial {n}", completed=i, total=count)
            progress.reset(attacks, total=None, visible=True, description=f"trial {n}: loading")

        def on_attack(label, i, count):
            progress.update(attacks, description=f"trial {now['trial']}: {label}", completed=i, total=count)

        def on_model(n, record):
            now["stored"] += 1
            progress.update(attacks, completed=progress.tasks[attacks].total or 0)
            progress.advance(models)
            progress.console.print(terminal.rescore_line(n, record), markup=False, soft_wrap=True)

        try:
            st.rescore(
                optuna_study,
                storage,
                config,
                top,
                device=device,
                artifacts=artifacts,
                suite=suite,
                threads=threads,
                on_start=on_start,
                on_attack=on_attack,
                on_model=on_model,
            )
        except KeyboardInterrupt:
            progress.console.print(
                f"rescore stopped: {now['stored']} model(s) stored in this run; the "
                "same command continues with the next",
                markup=False,
            )
            raise


def write_search_report(optuna_study, config, path: Path) -> None:
    from . import study as st
    from .report import write_report

    advice = st.eps_advice(optuna_study, config)
    if advice:
        console.print(f"warning: {advice}", markup=False, soft_wrap=True)
    out.print(f"report: {write_report(optuna_study, path)}")


def write_comparison_report(runs, opened, report_dir: Path) -> None:
    """A recipe's two studies side by side (`compare: true`)."""
    from .report import comparison_path, write_comparison

    path = comparison_path(*(name for name, _ in runs), report_dir)
    terminal.check_writable(path, "report", make="folder")
    out.print(f"comparison: {write_comparison(*opened, path)}")


def _open_study(storage: str, name: str, config, enqueue: Path | None):
    """Create or resume the study; queue the `--enqueue` baselines (checked before anything is stored)."""
    from . import study as st
    from .spaces import load_space

    baselines = st.load_enqueue_file(enqueue, load_space(config.space)) if enqueue is not None else []
    optuna_study, config = st.create_or_resume(st.open_storage(storage), name, config)
    for params in baselines:
        optuna_study.enqueue_trial(params, skip_if_exists=True)
    return optuna_study, config


def analyze_table_report(
    table: Path, samples: Path | None, out_path: Path | None, eps, fmt: str, claims: str | None = None
) -> Path:
    """`robustarch analyze`: the report (or its tables) of a plain table of models."""
    from .analysis import analyze_table
    from .errors import UserError
    from .report import FORMATS, default_path, write_analysis

    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}: allowed values are 'html', 'json' or 'csv'")
    path = out_path or default_path(table.stem, fmt)
    names = [c.strip() for c in claims.split(",") if c.strip()] if claims else None
    with new_folders_undone(path if fmt != "csv" else path / "trials.csv"):
        terminal.check_writable(
            path if fmt != "csv" else path / "trials.csv",
            "report",
            make="folder" if fmt == "csv" or out_path is None else "",
        )
        return write_analysis(analyze_table(table, samples, eps=eps, claims=names), path, fmt)


def study_report(storage: str, study: str, out_path: Path | None, eps, include_flagged: bool, fmt: str) -> Path:
    """`robustarch report --study`: the page (or its tables) of a stored study; nothing written on failure."""
    from . import report as rp
    from . import study as st

    path = out_path or rp.default_path(study, fmt)
    probe = path if fmt != "csv" else path / "trials.csv"
    with new_folders_undone(probe):
        terminal.check_writable(probe, "report", make="folder" if fmt == "csv" or out_path is None else "")
        optuna_study, _ = st.create_or_resume(st.open_existing(storage), study, None)
        return rp.write_report(optuna_study, path, eps=eps, include_flagged=include_flagged, fmt=fmt)


@contextmanager
def new_folders_undone(path: Path):
    """A failed command writes nothing: the folders made for `path` (checked writable before the work,
    e.g. the `--format csv` folder) are removed again when the work fails, if they are still empty."""
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for folder in missing:  # innermost first
            try:
                folder.rmdir()
            except OSError:  # not made by us after all, or no longer empty: leave it
                break
        raise


def check_claims(runs) -> None:
    """Every claim a recipe names is in the findings' registry (a UserError naming the known ones),
    checked before the first study is created: the study itself stores the names unchecked."""
    from .analysis.claims import resolve

    for _, config in runs:
        if config.claims is not None:
            resolve(config.claims)


def retrain(optuna_study, config, top: int, seeds: int, device, threads, artifacts) -> None:
    """Retrain the `top` architectures (shrunken validation robust accuracy) with `seeds` fresh seeds
    each, best first, with a progress bar; print observed against predicted against retrained."""
    from .study.retrain import pending_retrains
    from .study.retrain import retrain as run

    eps = optuna_study.user_attrs.get("objective_eps")
    if eps is None:
        from .errors import UserError

        raise UserError(f"study {optuna_study.study_name!r} has no stored objective ε: nothing was scored yet")
    targets = retrain_targets(optuna_study, eps, top, config.seed)
    if not targets:
        console.print("retrain: no complete trial with a valid evaluation on validation", markup=False)
        return
    now = {"stored": 0}
    if pending_retrains(optuna_study, targets, seeds):
        with terminal.progress() as progress:
            task = progress.add_task("retrain", total=None)

            def on_start(key, r, i, count):
                progress.update(task, description=f"retrain: {key} seed {r + 1}", completed=i, total=count)

            def on_model(key, r, record):
                now["stored"] += 1
                progress.advance(task)

            try:
                run(
                    optuna_study,
                    config,
                    targets,
                    seeds,
                    device=device,
                    threads=threads,
                    artifacts=artifacts,
                    on_start=on_start,
                    on_model=on_model,
                )
            except KeyboardInterrupt:
                progress.console.print(
                    f"retrain stopped: {now['stored']} seed(s) stored in this run; the same "
                    "command continues with the next",
                    markup=False,
                )
                raise
    else:
        console.print(f"retrain: every seed of the top {len(targets)} architecture(s) is trained already", markup=False)
    print_retrain(optuna_study, eps, top, config.seed)


def retrain_targets(optuna_study, eps: float, top: int, seed: int) -> list[tuple[str, int]]:
    """The architectures a retrain works on, best first: those a previous run chose (study attribute
    `retrain_targets`, so a resumed retrain finishes the same ones while the search goes on), then the
    next best on the shrunken validation robust accuracy up to `top`."""
    from .analysis import robustness_table, trials_table
    from .analysis.retrained import candidates

    chosen = [(str(k), int(n)) for k, n in optuna_study.user_attrs.get("retrain_targets") or []]
    if len(chosen) < top:
        best, _ = candidates(trials_table(optuna_study), robustness_table(optuna_study), eps, top, seed=seed)
        new = [(k, int(str(trials).split(",")[0])) for k, trials in zip(best["arch_key"], best["trials"])]
        chosen += [t for t in new if t[0] not in {k for k, _ in chosen}][: top - len(chosen)]
        optuna_study.set_user_attr("retrain_targets", [list(t) for t in chosen])
    return chosen[:top]


def print_retrain(optuna_study, eps: float, top: int, seed: int) -> None:
    """One line per retrained architecture: search observed, predicted for fresh seeds, retrained."""
    from .analysis import robustness_table, trials_table
    from .analysis.retrained import candidates, retrain_comparison, retrain_rows

    # every architecture ranked now (its rank may move while the search goes on); rows: the retrained ones
    best, comps = candidates(trials_table(optuna_study), robustness_table(optuna_study), eps, 10**9, seed=seed)
    within = comps["test"].estimate["msw"] if comps.get("test") is not None else float("nan")
    table = retrain_comparison(best, retrain_rows(dict(optuna_study.user_attrs), eps), within)
    for r in table.itertuples(index=False):
        out.print(terminal.retrain_line(r, eps), markup=False, highlight=False, soft_wrap=True)


def retrain_command(
    study: str = typer.Option(..., help="Study name."),
    storage: str = typer.Option("robustarch.journal", help="Optuna storage: a journal file or an SQLAlchemy URL."),
    top: int = typer.Option(
        3, min=1, help="How many of the best architectures (shrunken validation robust accuracy) to retrain."
    ),
    seeds: int = typer.Option(3, min=1, help="Fresh training seeds per architecture."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... (default: CUDA if available)."),
    threads: int | None = typer.Option(
        None, help="CPU threads for torch (default: $ROBUSTARCH_THREADS or the idle cores)."
    ),
):
    """Retrain a study's best architectures with fresh seeds, score them with its suite, and rewrite its
    report with observed against predicted; a stopped run resumes with the next seed."""
    from . import study as st
    from .report import default_path

    terminal.check_options(threads=threads, device=device)
    optuna_study, config = st.create_or_resume(st.open_existing(storage), study, None)
    retrain(optuna_study, config, top, seeds, device, threads, None)
    write_search_report(optuna_study, config, default_path(study))
