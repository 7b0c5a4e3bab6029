"""The HTML report: one self-contained file (inline SVG plots, inline CSS/JS, no network links), and
the export of every table behind it as JSON or CSV.

Plots are SVG drawn by our template rather than by a JS charting library so that the page stays
small and renders without scripts; a few lines of inline script add hover text and table sorting.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from ..analysis.analyzer import MIN_TRIALS_FOR_STATS, Analysis, analyze
from ..analysis.errorrates import error_rate_lines
from ..analysis.powerlaw import MAX_ERROR
from ..analysis.record import snapshot
from ..analysis.stats import N_BOOT
from ..analysis.summary import ols_sentence, selection_text, sentences
from ..analysis.verdicts import PATH_NAMES
from ..errors import UserError
from .figures import all_figures, eps_label, left_out
from .pager import digits, is_long, table_json, trial_rows

TRIAL_COLUMNS = [
    ("trial", "trial"),
    ("state", "state"),
    ("arch_summary", "architecture"),
    ("sanity", "sanity"),
    ("params", "params"),
    ("flops", "FLOPs"),
    ("depth", "depth"),
    ("width", "width"),
    ("clean_accuracy", "clean"),
    ("robust_accuracy", "robust"),
    ("val_accuracy", "val clean"),
    ("val_robust_accuracy", "val robust"),
    ("train_accuracy", "train acc"),
    ("robust_auc", "AUC"),
    ("power_law_slope", "power-law slope"),
    ("median_min_eps", "median min ε"),
    ("lr", "lr"),
    ("batch_size", "batch"),
    ("train_fraction", "train fraction"),
    ("label_noise", "label noise"),
    ("epochs", "epochs"),
    ("max_steps", "max steps"),
    ("train_seconds", "train s"),
    ("attack_seconds", "attack s"),
    ("fail_reason", "fail reason"),
    ("pareto", "Pareto"),
]
TEXT_COLUMNS = ("state", "arch_summary", "sanity", "fail_reason")
FORMATS = ("html", "json", "csv")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("robustarch.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
    )
    env.globals.update(is_long=is_long, table_json=table_json, digits=digits, ci=_ci, path_names=PATH_NAMES)
    return env


def _fmt(value, digits: int = 3) -> str:
    """A table cell: short numbers, empty for missing values."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if value.is_integer() and abs(value) >= 1:
            return str(int(value))
        return f"{value:.{digits}g}" if abs(value) >= 1e4 or (value and abs(value) < 1e-3) else f"{value:.{digits}f}"
    return str(value)


def _ci(low, high) -> str:
    """An interval cell: "[low, high]", "undefined" where neither end is (never a bare "[, ]")."""
    lo, hi = _fmt(low), _fmt(high)
    if not lo and not hi:
        return "undefined"
    return f"[{lo or 'undefined'}, {hi or 'undefined'}]"


def _objective_text(study, attrs: dict, eps) -> str:
    names = attrs.get("objective_names")
    if names:
        dirs = [d.name.lower() for d in study.directions]
        return ", ".join(f"{d} {n}" for n, d in zip(names, dirs)) + f" (robust accuracy at ε={eps:g})"
    cfg = attrs.get("robustarch_config", {})
    return f"{cfg.get('objective', 'robust')}: maximize worst-case robust accuracy at ε={_fmt(eps)}"


# TrainConfig fields only some training recipes read (robustarch.training.recipes): a standard recipe's
# stored `eps` is a default it never used, and Methods must not list it as a setting.
RECIPE_ONLY = {"eps": ("fgsm-rs", "pgd", "trades"), "attack_steps": ("pgd", "trades"), "trades_beta": ("trades",)}


def _used_settings(config: dict) -> dict:
    recipe = config.get("recipe", "standard")
    return {k: v for k, v in config.items() if k not in RECIPE_ONLY or recipe in RECIPE_ONLY[k]}


def _recipes(study) -> list[str]:
    """The training recipes used: each one in full when few, else what varied and over which range."""
    configs = [
        _used_settings(t.user_attrs["train_config"])
        for t in study.get_trials(deepcopy=False)
        if t.user_attrs.get("train_config")
    ]
    seen = list(dict.fromkeys(", ".join(f"{k}={v}" for k, v in c.items()) for c in configs))
    if len(seen) <= 5:
        return seen
    parts = []
    for key in dict.fromkeys(k for c in configs for k in c):
        values = [c.get(key) for c in configs]
        distinct = list(dict.fromkeys(json.dumps(v) for v in values))
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(distinct) == 1:
            parts.append(f"{key}={values[0]}")
        elif len(numbers) == len(values) and len(distinct) > 6:
            parts.append(f"{key} from {min(numbers):.3g} to {max(numbers):.3g} ({len(distinct)} values)")
        elif len(numbers) == len(values):
            parts.append(f"{key} in {{{', '.join(f'{v:g}' for v in sorted(set(numbers)))}}}")
        else:
            parts.append(f"{key} in {{{', '.join(sorted(distinct))}}}")
    return [f"{len(seen)} distinct recipes: " + "; ".join(parts)]


def build_report(
    study,
    *,
    eps: float | None = None,
    include_flagged: bool = False,
    analysis: Analysis | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> str:
    """The report's HTML for `study` (an Optuna study), or for `analysis` alone (`study=None`, e.g.
    from `analyze_table`): the sections that need the study (search, recipes, suite) then say so."""
    study = snapshot(study)  # one bulk read; every table below reads the trials again
    a = analysis or analyze(study, eps=eps, include_flagged=include_flagged, n_boot=n_boot, seed=seed)
    n_boot = a.attrs.get("n_boot", n_boot)  # the resamples the analysis drew, where it says
    from .._version import __version__

    attrs = a.attrs
    trials = a.tables["trials"]
    sanity_names = (
        sorted({k for t in study.get_trials(deepcopy=False) for k in (t.user_attrs.get("sanity") or {})})
        if study is not None
        else []
    )
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            a=a,
            tables=a.tables,
            ols=a.fits.get("ols") or {},
            summary=sentences(a),
            figures=all_figures(a),
            left_out=left_out(a),
            trials=[] if is_long(trials) else trials.to_dict("records"),
            trial_columns=TRIAL_COLUMNS,
            text_cols=TEXT_COLUMNS,
            eps_label=eps_label,
            trial_json=trial_rows(trials, _fmt, TRIAL_COLUMNS, TEXT_COLUMNS) if is_long(trials) else None,
            generated=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            version=__version__,
            config=attrs.get("robustarch_config", {}),
            dataset=attrs.get("dataset_info", {}),
            suite=attrs.get("suite_config", {}),
            space_path=attrs.get("space_path"),
            objectives=_objective_text(study, attrs, a.eps) if a.eps is not None and study is not None else "?",
            recipes=_recipes(study) if study is not None else [],
            sanity_names=sanity_names,
            min_trials=MIN_TRIALS_FOR_STATS,
            n_boot=n_boot,
            seed=seed,
            max_error=MAX_ERROR,
            fmt=_fmt,
            ols_text=ols_sentence(a),
            selection=selection_text(a),
            findings=a.tables["findings"].to_dict("records") if a.enough else [],
            error_rates=error_rate_lines(a.tables["findings"].to_dict("records"), a.n_used) if a.enough else [],
            provenance=_provenance(study),
        )
    )


def _provenance(study) -> dict | None:
    """Versions, device, threads and seeds the trials recorded (Methods), None without a study."""
    if study is None:
        return None
    from ..analysis.provenance import provenance_lines, provenance_table

    return provenance_lines(provenance_table(study), len(study.get_trials(deepcopy=False)))


def default_path(study_name: str, fmt: str = "html", folder: str | Path = "reports") -> Path:
    """`reports/<study>.html`, or the folder `reports/<study>-tables/` for csv, `.json` for json
    (`<study>`: the study's safe file name, `robustarch.names.file_stem`)."""
    name = _safe_name(study_name)
    return Path(folder) / {"html": f"{name}.html", "json": f"{name}.json", "csv": f"{name}-tables"}[fmt]


def comparison_path(name_a: str, name_b: str, folder: str | Path = "reports") -> Path:
    """`reports/compare-<A>-vs-<B>.html`."""
    return Path(folder) / f"compare-{_safe_name(name_a)}-vs-{_safe_name(name_b)}.html"


def write_report(
    study,
    out: str | Path | None = None,
    *,
    eps: float | None = None,
    include_flagged: bool = False,
    fmt: str = "html",
    n_boot: int | None = None,
) -> Path:
    """Write the report (`fmt="html"`), or every table behind it: `json` (one file, table name →
    list of records) or `csv` (a folder, one file per table). Returns the path written. `n_boot`:
    bootstrap resamples (default `analysis.table.boot_size` of the study's complete trials)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown report format {fmt!r}: allowed values are 'html', 'json' or 'csv'")
    path = Path(out) if out else default_path(study.study_name, fmt)
    study = snapshot(study)
    if n_boot is None:
        from ..analysis.table import boot_size

        n_boot = boot_size(sum(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)))
    a = analyze(study, eps=eps, include_flagged=include_flagged, n_boot=n_boot)
    return write_analysis(a, path, fmt, study=study, n_boot=n_boot)


def write_analysis(a: Analysis, path: str | Path, fmt: str = "html", *, study=None, n_boot: int = N_BOOT) -> Path:
    """Write an analysis as the page (`html`) or its tables (`json`, `csv`); `study`: the Optuna
    study it came from, None for a table from elsewhere (`robustarch analyze`)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown report format {fmt!r}: allowed values are 'html', 'json' or 'csv'")
    path = Path(path)
    try:
        if fmt == "html":
            html = build_report(study, analysis=a, n_boot=n_boot)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(html, encoding="utf-8")
        else:
            export_tables(a, path, fmt)
    except OSError as exc:
        raise UserError(f"{path}: cannot write the report ({exc.strerror})") from None
    return path


def analysis_tables(a: Analysis) -> dict[str, pd.DataFrame]:
    """Every table behind the page, plus `summary` (the sentences) and `info` (headline settings)."""
    tables = dict(a.tables)
    tables["summary"] = pd.DataFrame({"sentence": sentences(a)})
    tables["info"] = pd.DataFrame(
        [
            {
                "study": a.study_name,
                "eps": a.eps,
                "eps_grid": json.dumps(a.eps_grid),
                "include_flagged": a.include_flagged,
                "n_total": a.n_total,
                "n_complete": a.n_complete,
                "n_flagged": a.n_flagged,
                "n_used": a.n_used,
                "enough_for_statistics": a.enough,
                "eps_choice": a.eps_choice,
                "source": a.source,
                "notes": json.dumps(a.notes),
            }
        ]
    )
    return tables


def export_tables(a: Analysis, path: str | Path, fmt: str) -> Path:
    """`json`: one file {table: [records]}; `csv`: folder with <table>.csv for each table."""
    path = Path(path)
    tables = analysis_tables(a)
    if fmt == "json":
        doc = {name: json.loads(t.to_json(orient="records")) for name, t in tables.items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
    elif fmt == "csv":
        path.mkdir(parents=True, exist_ok=True)
        for name, t in tables.items():
            t.to_csv(path / f"{name}.csv", index=False)
    else:
        raise UserError(f"unknown table format {fmt!r}: allowed values are 'json' or 'csv'")
    return path


def _safe_name(name: str) -> str:
    from ..names import file_stem

    return file_stem(name)


def build_comparison(
    study_a, study_b, *, eps: float | None = None, include_flagged: bool = False, n_boot: int = N_BOOT
) -> str:
    """The HTML page comparing two studies (see robustarch.compare)."""
    from .._version import __version__
    from ..analysis.compare import analyze_pair, compare_tables, identical
    from .compare_figures import compare_plots

    a, b = analyze_pair(study_a, study_b, eps=eps, include_flagged=include_flagged, n_boot=n_boot)
    tables = compare_tables(a, b, n_boot=n_boot)
    return (
        _env()
        .get_template("compare.html.j2")
        .render(
            a=a,
            b=b,
            tables=tables,
            figures=compare_plots(a, b, tables["pairs"]),
            identical=identical(a, b, tables["pairs"]),
            summary_a=sentences(a),
            summary_b=sentences(b),
            n_boot=n_boot,
            version=__version__,
            generated=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            fmt=_fmt,
            methods=[
                (
                    x,
                    x.attrs.get("robustarch_config", {}),
                    x.attrs.get("suite_config", {}),
                    x.attrs.get("dataset_info", {}),
                )
                for x in (a, b)
            ],
        )
    )


def write_comparison(
    study_a, study_b, out: str | Path, *, eps: float | None = None, include_flagged: bool = False, n_boot: int = N_BOOT
) -> Path:
    """Write the comparison page of two studies to `out` and return its path."""
    path = Path(out)
    html = build_comparison(study_a, study_b, eps=eps, include_flagged=include_flagged, n_boot=n_boot)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot write the report ({exc.strerror})") from None
    return path
