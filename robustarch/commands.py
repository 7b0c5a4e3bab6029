"""What `search` and `rescore` do between parsing and printing: run one study to its budget,
rescore its best models, write its report. `cli` stays a thin layer over these and the library.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

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


def run_one(storage, name, config, enqueue, n_trials, timeout, gpu_ids, workers, device, threads,
             artifacts):
    """Create or resume one study and run it to its budget (in this process or local workers)."""
    from . import study as st
    from .study import workers as wk

    n_workers = len(gpu_ids) if gpu_ids and workers == 1 else workers
    optuna_study, config = _open_study(storage, name, config, enqueue)
    worker_failed = False
    with terminal.progress() as progress:
        task = progress.add_task(f"study {name}", total=n_trials)
        on_trial = terminal.progress_callback(progress, task, n_trials)
        if n_workers == 1 and not gpu_ids:
            st.run_study(optuna_study, config, n_trials=n_trials, timeout=timeout, device=device,
                         threads=threads, artifacts=artifacts, on_trial=on_trial)
        else:
            optuna_study.set_user_attr("n_trials", n_trials)
            procs = wk.start_local_workers(storage, name, n_workers, n_trials=n_trials, timeout=timeout,
                                           device=device, gpus=gpu_ids, threads=threads,
                                           artifacts=artifacts)
            worker_failed = terminal.watch_workers(progress, optuna_study, procs, on_trial)
    complete, _ = wk.count_states(optuna_study)
    if complete < n_trials:
        console.print(f"study {name}: {complete} of {n_trials} complete trials (stopped early; run the "
                      "same command again to resume)", markup=False)
    return optuna_study, config, worker_failed and complete < n_trials


def rescore(optuna_study, storage, config, top: int, device, artifacts, suite: str | None = None) -> None:
    """Re-attack the best models with the AutoAttack-composition suite (on test, for the report)."""
    from . import study as st

    if top > 0:
        st.rescore(optuna_study, storage, config, top, device=device, artifacts=artifacts, suite=suite,
                   on_model=lambda n, r: console.print(terminal.rescore_line(n, r), markup=False, soft_wrap=True))


def write_search_report(optuna_study, config, path: Path) -> None:
    from . import study as st
    from .report import write_report

    advice = st.eps_advice(optuna_study, config)
    if advice:
        console.print(f"warning: {advice}", markup=False, soft_wrap=True)
    out.print(f"report: {write_report(optuna_study, path)}")


def _open_study(storage: str, name: str, config, enqueue: Optional[Path]):
    """Create or resume the study; queue the `--enqueue` baselines (checked before anything is stored)."""
    from . import study as st
    from .search import load_space

    baselines = st.load_enqueue_file(enqueue, load_space(config.space)) if enqueue is not None else []
    optuna_study, config = st.create_or_resume(st.open_storage(storage), name, config)
    for params in baselines:
        optuna_study.enqueue_trial(params, skip_if_exists=True)
    return optuna_study, config


