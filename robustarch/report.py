"""The HTML report: one self-contained file (inline SVG plots, inline CSS/JS, no network links).

Plots are drawn as SVG by our template rather than by a JS charting library so that the page stays
small, renders without scripts, and a hover (`<title>`) shows each model's architecture and numbers.
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from .analysis import correlations, robust_at
from .errors import UserError
from .record import robustness_table, trials_table

MIN_TRIALS_FOR_STATS = 3


@dataclass
class Scatter:
    """An SVG scatter plot's geometry: points in pixel coordinates plus axis ticks."""

    title: str
    x_label: str
    y_label: str
    points: list[dict]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    width: int = 420
    height: int = 300
    pad: int = 48


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [10.0 ** k for k in range(math.floor(lo), math.ceil(hi) + 1)]
    return list(np.linspace(lo, hi, 5))


def scatter(df: pd.DataFrame, x: str, y: str, *, title: str, log_x: bool = False) -> Scatter:
    w, h, pad = 420, 300, 48
    xs = df[x].astype(float).to_numpy()
    ys = df[y].astype(float).to_numpy()
    tx = np.log10(xs) if log_x else xs
    x_lo, x_hi = (float(tx.min()), float(tx.max())) if len(tx) else (0.0, 1.0)
    if x_hi - x_lo < 1e-9:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    y_lo, y_hi = 0.0, 1.0

    def px(v):
        return pad + (v - x_lo) / (x_hi - x_lo) * (w - 2 * pad)

    def py(v):
        return h - pad - (v - y_lo) / (y_hi - y_lo) * (h - 2 * pad)

    points = [{"cx": round(px(a), 1), "cy": round(py(b), 1),
               "label": f"trial {int(r.trial)}: {r.arch_summary} | {x}={r[x]:.4g} {y}={r[y]:.3f}"}
              for a, b, (_, r) in zip(tx, ys, df.iterrows())]
    x_ticks = [(round(px(math.log10(t) if log_x else t), 1), f"{t:.3g}")
               for t in _ticks(x_lo, x_hi, log_x) if x_lo - 1e-9 <= (math.log10(t) if log_x else t) <= x_hi + 1e-9]
    y_ticks = [(round(py(t), 1), f"{t:.2f}") for t in np.linspace(0, 1, 6)]
    return Scatter(title, x + (" (log scale)" if log_x else ""), y, points, x_ticks, y_ticks, w, h, pad)


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("robustarch", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"], default=True))


def build_report(study, *, eps: float | None = None) -> str:
    """The report's HTML for `study` (Optuna study object)."""
    trials = trials_table(study)
    robustness = robustness_table(study)
    attrs = study.user_attrs
    eps_grid = sorted(robustness["eps"].unique().tolist()) if not robustness.empty else []
    if eps is None:
        eps = attrs.get("objective_eps") or (eps_grid[(len(eps_grid) - 1) // 2] if eps_grid else None)
    complete = trials[trials["state"] == "COMPLETE"]
    at_eps = robust_at(robustness, eps) if eps is not None and not robustness.empty else pd.DataFrame()
    enough = len(at_eps) >= MIN_TRIALS_FOR_STATS
    corr = correlations(at_eps) if enough else pd.DataFrame()
    plots = []
    if not at_eps.empty:
        plots = [scatter(at_eps, "clean_accuracy", "robust_accuracy",
                         title=f"Worst-case robust accuracy at ε={eps:g} vs clean accuracy"),
                 scatter(at_eps, "params", "robust_accuracy",
                         title=f"Worst-case robust accuracy at ε={eps:g} vs parameters", log_x=True)]
    curve = (robustness[robustness["attack"] == "worst_case"]
             .pivot(index="trial", columns="eps", values="robust_accuracy") if not robustness.empty else None)
    html = _env().get_template("report.html.j2").render(
        study_name=study.study_name, generated=_dt.datetime.now().isoformat(timespec="seconds"),
        config=attrs.get("robustarch_config", {}), dataset=attrs.get("dataset_info", {}),
        suite=attrs.get("suite_config", {}), eps=eps, n_total=len(trials), n_complete=len(complete),
        enough=enough, min_trials=MIN_TRIALS_FOR_STATS, corr=corr.to_dict("records"), plots=plots,
        trials=trials.to_dict("records"), curve=curve, fmt=_fmt)
    return html


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) >= 1e4 or (value and abs(value) < 1e-3) else f"{value:.{digits}f}"
    return str(value)


def write_report(study, out: str | Path | None = None, *, eps: float | None = None) -> Path:
    """Write the report to `out` (default `reports/<study>.html`) and return its path."""
    path = Path(out) if out else Path("reports") / f"{_safe_name(study.study_name)}.html"
    html = build_report(study, eps=eps)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot write the report ({exc.strerror})") from None
    return path


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "study"
