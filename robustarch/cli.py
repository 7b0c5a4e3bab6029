"""The `robustarch` command line: parse, call the library, print. Bad input exits 2 with one line."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import typer
from rich.console import Console

from . import commands, terminal
from .errors import StorageFull, UserError, wrapped_error

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Adversarial robustness versus clean accuracy across neural architectures.",
)
spaces_app = typer.Typer(no_args_is_help=True, help="List and show search spaces.")
app.add_typer(spaces_app, name="spaces")
console = terminal.console
out = Console()

STORAGE_HELP = "Optuna storage: a journal file (default robustarch.journal) or an SQLAlchemy URL (sqlite:///x.db, postgresql://...)"


@app.command()
def search(
    config_file: str | None = typer.Option(
        None,
        "--config",
        help="Study recipe: a preset of studies/ (e.g. cubuk2017-digits) or a YAML path. Flags given here override it.",
    ),
    study: str | None = typer.Option(
        None, help="Study name (same name + storage = resume); default: the recipe's, else robustarch-digits."
    ),
    storage: str = typer.Option("robustarch.journal", help=STORAGE_HELP),
    dataset: str | None = typer.Option(
        None, help="digits (built in, the default), mnist, fashion-mnist, cifar10 or svhn."
    ),
    data_dir: str | None = typer.Option(None, help="Folder with the torchvision dataset files."),
    space: str | None = typer.Option(None, help="Search space: preset name or YAML path (default digits-cells)."),
    suite: str | None = typer.Option(
        None, help="Attack suite: preset name or YAML path (default: the dataset's, quick or quick-cifar)."
    ),
    n_trials: int | None = typer.Option(
        None, min=1, help="Complete trials the study should hold in total, across all workers (default 12)."
    ),
    timeout: float | None = typer.Option(None, help="Stop starting new trials after this many seconds."),
    objective: str | None = typer.Option(
        None, help="robust (one value, the default), clean+robust or clean+robust+size (Pareto front)."
    ),
    robust_metric: str | None = typer.Option(
        None, help="The robust term: eps (worst case at --objective-eps, the default) or auc (area under the ε-curve)."
    ),
    objective_eps: float | None = typer.Option(None, help="ε of the objective (default: middle of the suite's grid)."),
    sampler: str | None = typer.Option(
        None,
        help="tpe (the default; finds the most robust), random or qmc (a fair sample of the space, for correlations), nsgaii, gp or grid.",
    ),
    pruner: str | None = typer.Option(
        None, help="none (the default), median or hyperband: prune on validation accuracy (single objective only)."
    ),
    replicates: int | None = typer.Option(
        None,
        help="Seeds per replicated architecture (default 1): each seed is its own trial, beside the --n-trials architectures.",
    ),
    replicate_share: float | None = typer.Option(
        None,
        help="Share of architectures trained with --replicates seeds, drawn at random (default 1: all); e.g. 0.25 with --replicates 3 costs +50%.",
    ),
    enqueue: Path | None = typer.Option(None, help="YAML/JSON list of parameter mappings to run first (baselines)."),
    seed: int | None = typer.Option(None, help="Seed for data splits, sampler and training (default 0)."),
    rescore_top: int | None = typer.Option(
        None,
        min=0,
        help="At the end, re-attack the K best models (chosen on validation) and the Pareto front with the dataset's autoattack suite on the test split (default 5 on CUDA, 0 on CPU: see `robustarch rescore`).",
    ),
    workers: int | None = typer.Option(
        None, min=1, help="Local worker processes (default: the recipe's, else one per --gpus entry, else 1)."
    ),
    gpus: str | None = typer.Option(
        None,
        help="GPU indices for the local workers, e.g. 0,1,2,3: one worker per GPU (repeat an index, 0,0,1,1, for several).",
    ),
    workers_per_gpu: int = typer.Option(
        1,
        min=1,
        help="Local workers on each GPU of --gpus (default: all visible GPUs); small candidates leave a GPU idle otherwise.",
    ),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1 ... (default: CUDA if available)."),
    threads: int | None = typer.Option(
        None, help="CPU threads per worker (default: $ROBUSTARCH_THREADS or the cores divided among workers)."
    ),
    report_dir: Path = typer.Option(Path("reports"), help="Where the HTML report is written."),
    artifacts: Path | None = typer.Option(None, help="Checkpoint store (default: beside the journal file)."),
):
    """Run (or resume) an architecture search study, or a study recipe, and write its HTML report."""
    from . import study as st

    terminal.check_options(threads=threads, timeout=timeout, device=device)
    recipe = st.load_recipe(config_file) if config_file else None
    runs = st.plan(
        recipe,
        study,
        {
            "dataset": dataset,
            "space": space,
            "suite": suite,
            "objective": objective,
            "robust_metric": robust_metric,
            "objective_eps": objective_eps,
            "sampler": sampler,
            "seed": seed,
            "data_dir": data_dir,
            "pruner": pruner,
            "replicates": replicates,
            "replicate_share": replicate_share,
        },
    )
    st.check_runs(runs)  # every study of the recipe, data too, before the first is created
    commands.check_claims(runs)
    budget = n_trials or (recipe.n_trials if recipe else None) or 12
    timeout = timeout if timeout is not None else (recipe.timeout if recipe else None)
    top = commands.rescore_default(rescore_top, recipe, device)
    gpu_ids = terminal.parse_gpus(gpus, workers_per_gpu)
    paths = terminal.report_paths(report_dir, [name for name, _ in runs])
    artifacts = artifacts or st.default_artifacts(storage)
    opened, failed = [], False
    for (name, config), path in zip(runs, paths):
        optuna_study, config, worker_failed = commands.run_one(
            storage,
            name,
            config,
            enqueue,
            budget,
            timeout,
            gpu_ids,
            workers or (recipe.workers if recipe else None) or 1,
            device,
            threads,
            artifacts,
        )
        commands.rescore(optuna_study, storage, config, top, device, artifacts, threads=threads)
        commands.write_search_report(optuna_study, config, path)
        opened.append(optuna_study)
        failed = failed or worker_failed
    if recipe is not None and recipe.compare:
        commands.write_comparison_report(runs, opened, report_dir)
    if failed:
        raise typer.Exit(1)  # every worker gave up on errors: say so in the exit status too


@app.command()
def worker(
    study: str = typer.Option(..., help="Name of an existing study to join."),
    storage: str = typer.Option("robustarch.journal", help=STORAGE_HELP),
    n_trials: int | None = typer.Option(
        None, min=1, help="Budget of complete trials for the whole study (default: the one `search` stored)."
    ),
    timeout: float | None = typer.Option(None, help="Stop starting new trials after this many seconds."),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1 ... (default: CUDA if available)."),
    threads: int | None = typer.Option(None, help="CPU threads for torch (default: $ROBUSTARCH_THREADS or all cores)."),
    gpus: str | None = typer.Option(
        None, help="Run one worker process per entry here, e.g. 0,1 or 0,0,1,1 (several on one GPU)."
    ),
    workers_per_gpu: int = typer.Option(
        1, min=1, help="Worker processes on each GPU of --gpus (default: all visible GPUs)."
    ),
    artifacts: Path | None = typer.Option(
        None, help="Checkpoint store (default: the study's, else beside the journal file)."
    ),
    worker_index: int | None = typer.Option(None, hidden=True, help="Set by `search --workers`."),
    quiet: bool = typer.Option(False, help="Print nothing per trial (`search --workers` prints for all)."),
):
    """Join an existing study from any machine and run its trials until its budget is met."""
    from . import study as st

    terminal.check_options(threads=threads, timeout=timeout, device=device)
    optuna_study, config = st.create_or_resume(st.open_existing(storage), study, None)
    budget = n_trials or optuna_study.user_attrs.get("n_trials")
    if budget is None:
        raise UserError(f"study {study!r} has no stored trial budget; pass --n-trials")
    store = artifacts or optuna_study.user_attrs.get("artifact_store") or st.default_artifacts(storage)

    def on_trial(s, t):
        if not quiet:
            console.print(terminal.trial_line(s, t), markup=False, highlight=False, soft_wrap=True)

    if len(gpu_ids := terminal.parse_gpus(gpus, workers_per_gpu) or []) > 1:  # a joining process per entry
        raise typer.Exit(terminal.join_locally(optuna_study, storage, gpu_ids, budget, timeout, threads, store, quiet))
    device = f"cuda:{gpu_ids[0]}" if gpu_ids else device
    summary = st.run_study(
        optuna_study,
        config,
        n_trials=budget,
        timeout=timeout,
        device=device,
        threads=threads,
        artifacts=store,
        worker_index=worker_index,
        on_trial=on_trial,
    )
    if not quiet:
        console.print(
            f"worker done: {summary.started} trials started here; study has "
            f"{summary.complete} of {budget} complete ({summary.stopped_by})",
            markup=False,
        )


@app.command()
def report(
    study: str | None = typer.Option(None, help="Study name (default: the storage's only study)."),
    storage: str = typer.Option("robustarch.journal", help=STORAGE_HELP),
    out_path: Path | None = typer.Option(
        None,
        "--out",
        help="Output: HTML file (default reports/<study>.html); with --format json a "
        ".json file, with --format csv a folder.",
    ),
    eps: float | None = typer.Option(None, help="Headline ε (default: the study's objective ε)."),
    include_flagged: bool = typer.Option(
        False,
        "--include-flagged",
        help="Use models that failed an attack sanity check in the statistics "
        "(default: shown, but left out of correlations and fits).",
    ),
    fmt: str = typer.Option("html", "--format", help="html (the page), json or csv (every table behind it)."),
    compare: tuple[str, str] | None = typer.Option(
        None, help="Compare two studies of the same storage: --compare A B (e.g. standard vs adversarial training)."
    ),
):
    """Write the HTML report of a study (or of two, with --compare), or export its tables."""
    from . import report as rp
    from . import study as st

    if fmt not in rp.FORMATS:
        raise UserError(f"unknown --format {fmt!r}: allowed values are 'html', 'json' or 'csv'")
    if compare is None and study is None:  # a storage of one study needs no name
        names = st.study_names(st.open_existing(storage))
        if len(names) != 1:
            held = f"{len(names)} studies: {', '.join(names)}" if names else "no study"
            raise UserError(f"give --study NAME (or --compare A B): {storage} holds {held}")
        study = names[0]
    if compare is not None:
        if fmt != "html":
            raise UserError("--compare writes an HTML page; use --format json/csv with --study for tables")
        if compare[0] == compare[1]:
            raise UserError(f"--compare {compare[0]} {compare[1]}: give two different studies")
        path = out_path or rp.comparison_path(*compare)
        terminal.check_writable(path, "report", make="" if out_path else "folder")
        store = st.open_existing(storage)
        studies = [st.create_or_resume(store, name, None)[0] for name in compare]
        out.print(f"report: {rp.write_comparison(*studies, path, eps=eps, include_flagged=include_flagged)}")
        return
    out.print(f"report: {commands.study_report(storage, study, out_path, eps, include_flagged, fmt)}")


@app.command()
def analyze(
    table: Path = typer.Argument(
        ...,
        help="Models (.csv/.parquet), a row each: clean_accuracy, robust_accuracy@EPS "
        "(a column per ε); optional params, flops, depth, width, val_robust_accuracy@EPS, "
        "n_attacked or *_se (evaluation SEs), family (related models).",
    ),
    samples: Path | None = typer.Option(None, help="Per-sample table: model, min_eps (empty: never broken), margin."),
    out_path: Path | None = typer.Option(None, "--out", help="As for report (default reports/<table>.html)."),
    eps: float | None = typer.Option(None, help="Headline ε (default: chosen on the validation columns)."),
    fmt: str = typer.Option("html", "--format", help="html (the page), json or csv (every table behind it)."),
    claims: str | None = typer.Option(
        None, help="Comma-separated claims to test (default: every claim whose columns are there)."
    ),
):
    """Findings and report for results robustarch did not produce: a table of models (and per-sample ε)."""
    out.print(f"report: {commands.analyze_table_report(table, samples, out_path, eps, fmt, claims)}")


@app.command()
def export(
    study: str = typer.Option(..., help="Study name."),
    storage: str = typer.Option("robustarch.journal", help=STORAGE_HELP),
    out_path: Path = typer.Option(..., "--out", help="Table file: .csv, .json or .parquet."),
    table: str = typer.Option(
        "robustness",
        help="robustness (trial × attack × ε, tidy), trials (one row per "
        "trial), samples (per attacked sample), rescore (search vs autoattack), provenance (versions, "
        "device, threads, seeds per trial), or any "
        "table of the report (findings, correlations, power_law, depth_pairs, ...).",
    ),
    include_flagged: bool = typer.Option(False, "--include-flagged", help="As for report."),
):
    """Export one of a study's tables (CSV, JSON or Parquet)."""
    from . import study as st
    from .analysis import export_table, provenance_table, rescore_table, robustness_table, samples_table, trials_table

    raw = {
        "robustness": robustness_table,
        "trials": trials_table,
        "samples": samples_table,
        "rescore": rescore_table,
        "provenance": provenance_table,
    }
    terminal.check_writable(out_path, "table")
    optuna_study, _ = st.create_or_resume(st.open_existing(storage), study, None)
    if table in raw:
        frame = raw[table](optuna_study)
    else:
        from .analysis import analyze
        from .analysis.record import snapshot
        from .errors import one_of
        from .report import analysis_tables

        tables = analysis_tables(analyze(snapshot(optuna_study), include_flagged=include_flagged))
        if table not in tables:
            raise UserError(f"unknown table {table!r}: allowed values are {one_of(sorted(set(raw) | set(tables)))}")
        frame = tables[table]
    out.print(f"table: {export_table(frame, out_path)}")


@app.command()
def attack(
    checkpoint: Path | None = typer.Argument(
        None, help="A robustarch checkpoint (.safetensors); or use --study/--trial."
    ),
    suite: str = typer.Option("standard", help="Attack suite: quick, standard, thorough or a YAML path."),
    study: str | None = typer.Option(None, help="Attack a trial of this study (with --trial)."),
    trial: int | None = typer.Option(None, help="Trial number within --study."),
    storage: str = typer.Option("robustarch.journal", help=STORAGE_HELP),
    artifacts: Path | None = typer.Option(
        None, help="Checkpoint store of the study (default: beside the journal file)."
    ),
    dataset: str | None = typer.Option(None, help="Dataset (default: the one the model was trained on)."),
    data_dir: str | None = typer.Option(None, help="Folder with the torchvision dataset files."),
    seed: int | None = typer.Option(
        None,
        help="Seed of the data splits and of the attacks (default: the split seed the checkpoint was trained with, else 0).",
    ),
    samples: int | None = typer.Option(None, min=1, help="Test samples to attack (default: the suite's)."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... (default: CUDA if available)."),
    threads: int | None = typer.Option(None, help="CPU threads for torch (default: $ROBUSTARCH_THREADS or all cores)."),
    out_dir: Path | None = typer.Option(
        None, "--out", help="Folder for the tables (default: attack-results/<model>-<suite>)."
    ),
    adversarials: bool = typer.Option(
        False, "--adversarials", help="Also save the adversarial examples (adversarials.pt)."
    ),
):
    """Run an attack suite on a saved checkpoint (or a study's trial); print the ε-table, write the tables."""
    import dataclasses
    import tempfile

    from .attacks import AttackSuite, load_suite
    from .models.checkpoint import check_split, load_checkpoint
    from .runtime import configure_threads, pick_device
    from .training import load_dataset

    if (checkpoint is None) == (study is None):
        raise UserError("give either a CHECKPOINT file or --study NAME --trial N")
    if study is not None and trial is None:
        raise UserError("--study needs --trial N (the trial number whose checkpoint to attack)")
    config = load_suite(suite)
    if samples is not None:
        config = dataclasses.replace(config, samples=samples)
    model_name = checkpoint.stem if checkpoint is not None else f"{study}-trial-{trial}"
    terminal.check_options(threads=threads, device=device)
    out_dir = terminal.attack_dir(out_dir, model_name, config.name)
    configure_threads(threads)
    dev = pick_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        if study is not None:
            from .study import download_checkpoint

            checkpoint = download_checkpoint(storage, study, trial, tmp, artifacts)
        ckpt = load_checkpoint(checkpoint, device=dev)
    seed = seed if seed is not None else int(ckpt.info.get("split_seed", 0))
    data = load_dataset(dataset or ckpt.info.get("dataset", "digits"), data_dir=data_dir, seed=seed)
    check_split(ckpt.info, data.split_info(), model_name)
    bounds = tuple(ckpt.info.get("bounds", data.bounds))
    result = AttackSuite(config, bounds=bounds, device=dev).run(
        ckpt.model, data.test.x, data.test.y, seed=seed, keep_adversarials=adversarials
    )
    out.print(
        f"{model_name}: suite {config.name!r} ({config.threat_model}), {len(result.per_sample)} test samples, "
        f"clean accuracy {result.clean_accuracy:.4f}, {result.seconds:.1f} s",
        markup=False,
        soft_wrap=True,
    )
    out.print("robust accuracy per ε (columns: attacks; worst_case = per-sample worst case over attacks)")
    out.print(
        result.curve_table().to_string(float_format=lambda v: f"{v:.4f}"), markup=False, highlight=False, soft_wrap=True
    )  # a table must not wrap at the terminal width
    out.print(f"median minimal adversarial ε: {result.median_min_eps:.4g}")
    for name, check in result.sanity.items():
        verdict = "ok" if check["ok"] else f"FAILED ({check.get('severity', 'invalid')})"
        out.print(f"sanity {name}: {verdict}", markup=False, highlight=False)
    for p in result.save(out_dir):
        out.print(f"table: {p}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def rescore(
    study: str = typer.Option(..., help="Study name."),
    storage: str = typer.Option("robustarch.journal", help=STORAGE_HELP),
    top: int = typer.Option(
        5, min=1, help="How many of the best models (chosen on validation) to rescore, plus the Pareto front."
    ),
    suite: str | None = typer.Option(None, help="Attack suite (default: the dataset's autoattack suite)."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... (default: CUDA if available)."),
    artifacts: Path | None = typer.Option(None, help="Checkpoint store of the study (default: the study's)."),
    threads: int | None = typer.Option(
        None, help="CPU threads for torch (default: $ROBUSTARCH_THREADS or the idle cores)."
    ),
):
    """Re-attack a study's best models with AutoAttack's composition on the test split (for its report),
    best first; the drop is measured on the test samples the search attacked; a stopped run resumes."""
    from . import study as st
    from .report import default_path

    terminal.check_options(threads=threads, device=device)
    optuna_study, config = st.create_or_resume(st.open_existing(storage), study, None)
    commands.rescore(optuna_study, storage, config, top, device, artifacts, suite=suite, threads=threads)
    commands.write_search_report(optuna_study, config, default_path(study))


app.command("retrain")(commands.retrain_command)  # its options and body: commands.retrain_command


@app.command()
def doctor(storage: str = typer.Option("robustarch.journal", help=STORAGE_HELP)):
    """Check a study storage: repair a journal's torn last record (keeping a backup), list studies and trials."""
    from .study.doctor import doctor as check

    out.print("\n".join(check(storage)), markup=False, highlight=False, soft_wrap=True)


@spaces_app.command("list")
def spaces_list():
    """List the search-space presets: architectures and parameter range of each."""
    from .presets import preset_names
    from .spaces import load_space

    for name in preset_names("search_spaces"):
        sp = load_space(name)
        low, high, _, exact = sp.param_range(**terminal.space_shape(sp), samples=16)
        span = f"{terminal.si_count(low)}-{terminal.si_count(high)} params{'' if exact else ' (sampled)'}"
        out.print(
            f"{name:18s} {sp.n_architectures():>9d} architectures  {span:28s} {sp.description}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@spaces_app.command("show")
def spaces_show(name: str = typer.Argument(..., help="Preset name or YAML path.")):
    """Show one search space: every parameter, its values, the architecture count and size range."""
    from .spaces import load_space
    from .spaces.schema import Choice, Range, values_of

    sp = load_space(name)
    shape = terminal.space_shape(sp)
    low, high, n_built, exact = sp.param_range(**shape)
    lines = [
        f"{sp.name} ({sp.path})",
        sp.description,
        f"family {sp.family}; sized for {sp.dataset} "
        f"({shape['in_chans']}x{shape['input_size']}x{shape['input_size']}, {shape['num_classes']} classes)",
        f"stages: {len(sp.stages)} with strides {[s.stride for s in sp.stages]}",
        f"architectures: {sp.n_architectures()}",
        f"parameters: {low:,} to {high:,} ({'all architectures' if exact else f'over {n_built} sampled, corners included'})",
    ]
    limits = [
        f"max_params {sp.max_params:,}" if sp.max_params else "",
        f"max_flops {sp.max_flops:,}" if sp.max_flops else "",
    ]
    lines.append("constraints: " + (", ".join(x for x in limits if x) or "none"))
    lines.append("parameters (Optuna name: values):")
    for key, p in sp.params.items():
        if isinstance(p, Range):
            kind = "log " if p.log else ""
            step = f" step {p.step}" if p.step else ""
            text = f"{kind}range {p.low}..{p.high}{step}"
        elif isinstance(p, Choice):
            text = "one of " + ", ".join(map(str, values_of(p)))
        else:
            text = f"{p} (fixed)"
        lines.append(f"  {key:22s} {text}")
    out.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


def main() -> None:
    """Entry point: one clear line and exit status 2 for bad input, no traceback."""
    terminal.quiet_interrupts()  # Ctrl-C: our one line, not Optuna's traceback of the trial
    try:
        status = app(standalone_mode=False)
        if status == 130:  # typer turns Ctrl-C into a returned 130 when not standalone
            raise KeyboardInterrupt
        if isinstance(status, int) and status:
            sys.exit(status)
    except (UserError, StorageFull) as exc:
        # Plain write, not rich: one line however narrow the terminal (rich would wrap it).
        sys.stderr.write(f"robustarch: error: {' '.join(str(exc).split())}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while we stop: no traceback
        # CPython 3.11/3.12 marks a KeyboardInterrupt that left a string exec/eval as unhandled even when
        # caught, and `python -m` then dies by SIGINT at exit (-2, not 130); a string exec clears the mark
        exec("None")
        sys.stderr.write("robustarch: interrupted; the study storage is intact\n")
        sys.exit(130)
    except Exception as exc:  # click's own usage errors arrive here in non-standalone mode
        # Typer may vendor its own copy of click (typer._click): recognise both by class name.
        names = {cls.__name__ for cls in type(exc).__mro__}
        if "NoArgsIsHelpError" in names:  # a bare `robustarch` (or group): the help, as asked for
            exc.show()
            sys.exit(2)
        if "ClickException" in names:  # a usage error: one line too, as for our own errors
            sys.stderr.write(f"robustarch: error: {' '.join(exc.format_message().split())}\n")
            sys.exit(2)
        if "Exit" in names:
            sys.exit(exc.exit_code)
        if "Abort" in names:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for KeyboardInterrupt above
            sys.exit(130)
        if (hidden := wrapped_error(exc)) is not None:  # Optuna raised while handling ours (a full disk)
            sys.stderr.write(f"robustarch: error: {' '.join(str(hidden).split())}\n")
            sys.exit(2)
        raise
