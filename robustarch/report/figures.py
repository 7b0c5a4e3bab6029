"""The report's figures, each drawn from one table of an `Analysis` (see robustarch.analysis)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..analysis.analyzer import Analysis
from .svgplot import PALETTE, Axes, Plot, heatmap

MAX_POINT_MODELS = 100  # above this the power-law plot draws each model's data as a line, not dots


def _num(v, digits=3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer() and abs(v) >= 100):
        v = int(v)
        return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e4 else str(v)
    return f"{v:.{digits}g}"


def trial_tip(row) -> str:
    """Hover text of a model: its architecture and numbers."""
    flag = f" | FLAGGED: {row['sanity_failed']}" if row.get("flagged") else ""
    return (f"trial {int(row['trial'])}: {row['arch_summary']} | clean {_num(row['clean_accuracy'])}"
            f" | robust {_num(row['robust_accuracy'])} | AUC {_num(row['robust_auc'])}"
            f" | params {_num(row['params'])} | FLOPs {_num(row['flops'])} | depth {_num(row['depth'])}"
            f" | width {_num(row['width'])} | power-law slope {_num(row.get('power_law_slope'))}{flag}")


def _cls(row) -> str:
    return "flagged" if row["flagged"] else ("front" if row["pareto"] else "")


def _analysed(a: Analysis) -> pd.DataFrame:
    t = a.tables["trials"]
    return t[t["robust_accuracy"].notna()]


def _rows(a: Analysis) -> dict[int, dict]:
    """Analysed trials by number, each a dict with its hover text under `tip`."""
    rows = {int(r["trial"]): r for r in _analysed(a).to_dict("records")}
    for r in rows.values():
        r["tip"] = trial_tip(r)
    return rows


def robust_vs(a: Analysis, x: str, label: str, *, log_x=False, front=False) -> Plot | None:
    t = _analysed(a)
    t = t[t[x].notna()]
    if t.empty:
        return None
    plot = Plot(f"Worst-case robust accuracy at ε={a.eps:g} vs {label}", label + (" (log scale)" if log_x else ""),
                f"robust accuracy at ε={a.eps:g}", plot_id=f"robust-vs-{x}")
    xs = t[x].astype(float)
    ax = Axes(plot, (xs.min(), xs.max()), (0, max(0.05, float(t["robust_accuracy"].max()))), log_x=log_x)
    if front:
        f = t[t["pareto"]].sort_values(x)
        ax.line(f[x], f["robust_accuracy"], "Pareto front (clean vs robust)", cls="front-line", dash="4 3")
        plot.legend.append(("#f57900", "Pareto-optimal"))
    for r in t.to_dict("records"):
        ax.point(float(r[x]), float(r["robust_accuracy"]), trial_tip(r), trial=int(r["trial"]), cls=_cls(r))
    plot.legend.append(("#3465a4", "model"))
    if t["flagged"].any():
        plot.legend.append(("#cc0000", "flagged" + ("" if a.include_flagged else " (not in statistics)")))
    return plot


def eps_curves(a: Analysis) -> Plot | None:
    rob = a.tables["robustness"]
    rob = rob[rob["attack"] == "worst_case"]
    if rob.empty:
        return None
    rows = _rows(a)
    plot = Plot("Worst-case robust accuracy over ε (one line per model)", "ε", "robust accuracy",
                plot_id="eps-curves")
    ax = Axes(plot, (0, max(a.eps_grid)), (0, 1))
    wide = rob.pivot_table(index="trial", columns="eps", values="robust_accuracy")
    for trial, values in zip(wide.index, wide.to_numpy()):
        r = rows[int(trial)]
        clean = r["attacked_clean_accuracy"] if pd.notna(r["attacked_clean_accuracy"]) else r["clean_accuracy"]
        ax.line([0.0, *wide.columns], [clean, *values], r["tip"], trial=int(trial),
                cls="flagged" if r["flagged"] else "")
    plot.caption = "ε = 0 is clean accuracy on the attacked samples."
    return plot


def power_law(a: Analysis) -> Plot | None:
    fits = a.tables["power_law"]
    samples = a.tables["samples"]
    ok = fits[np.isfinite(fits["slope"])]
    if ok.empty:
        return None
    rows = _rows(a)
    plot = Plot("Adversarial error vs ε (log–log) with power-law fits", "ε (log scale)",
                "adversarial error (log scale)", plot_id="power-law")
    grid = np.asarray(a.eps_grid, float)
    from ..analysis.powerlaw import error_curve

    by_trial = {k: g["min_adversarial_eps"].to_numpy() for k, g in samples.groupby("trial")}
    curves = {}
    for f in ok.to_dict("records"):
        trial = int(f["trial"])
        if trial in by_trial:
            curves[trial] = error_curve(by_trial[trial], grid)
        else:
            r = rows[trial]
            rob = a.tables["robustness"]
            g = rob[(rob["trial"] == trial) & (rob["attack"] == "worst_case")].sort_values("eps")
            curves[trial] = 1 - g["robust_accuracy"].to_numpy() / r["attacked_clean_accuracy"]
    errs = np.concatenate([c[c > 0] for c in curves.values()])
    ax = Axes(plot, (grid[grid > 0].min(), grid.max()), (max(errs.min(), 1e-4), 1), log_x=True, log_y=True)
    for f in ok.to_dict("records"):
        trial = int(f["trial"])
        r = rows[trial]
        tip = (r["tip"] + f" | fit ε {f['eps_low']:g}–{f['eps_high']:g}: slope {f['slope']:.2f}"
               f" [{_num(f['ci_low'])}, {_num(f['ci_high'])}]")
        color = "#cc0000" if r["flagged"] else "#3465a4"
        c = curves[trial]
        if len(ok) <= MAX_POINT_MODELS:
            for e, v in zip(grid, c):
                if v > 0:
                    ax.point(e, v, tip, trial=trial, r=2.5, cls="flagged" if r["flagged"] else "")
        else:  # many models: the measured error as a thin line, to keep the page light
            ax.line(grid[c > 0], c[c > 0], tip, trial=trial, color=color, width=0.6, dash="2 2")
        xs = np.geomspace(f["eps_low"], f["eps_high"], 8)
        ax.line(xs, 10 ** (f["intercept"] + f["slope"] * np.log10(xs)), tip, trial=trial, color=color)
    plot.caption = ("Lines: least-squares fits of log error on log ε over each model's fit range "
                    "(grid points with 0 < error ≤ 0.5). Error = share of clean-correct samples broken.")
    return plot


def slope_histogram(a: Analysis) -> Plot | None:
    fits = a.tables["power_law"]
    s = fits.loc[np.isfinite(fits["slope"]) & fits["in_statistics"].fillna(False).astype(bool), "slope"]
    if s.empty:
        return None
    plot = Plot(f"Power-law slopes across models (n = {len(s)})", "slope", "models", plot_id="slopes")
    bins = np.histogram_bin_edges(s, bins=min(20, max(4, int(math.sqrt(len(s))))))
    counts, _ = np.histogram(s, bins=bins)
    ax = Axes(plot, (bins[0], bins[-1]), (0, counts.max() * 1.1), pad=0.02)
    for lo, hi, c in zip(bins[:-1], bins[1:], counts):
        if c:
            ax.rect(lo, hi, 0, c, f"slope {lo:.2f}–{hi:.2f}: {c} model(s)", color="#729fcf")
    summary = a.fits["power_law"]
    if math.isfinite(summary.get("median", math.nan)):
        ax.line([summary["median"]] * 2, [0, counts.max() * 1.1], f"median slope {summary['median']:.2f}",
                color="#cc0000", dash="5 3")
        plot.legend.append(("#cc0000", "median"))
    return plot


def margins(a: Analysis) -> Plot | None:
    q = a.tables["margin_quantiles"]
    q = q[(q["margin"] > 0) & (q["quantile"] > 0)]  # share 0 has no place on a log axis
    if q.empty:
        return None
    rows = _rows(a)
    plot = Plot("Logit-margin distributions (empirical CDF, log–log)", "top-1 minus runner-up logit (log scale)",
                "share of clean-correct samples ≤ margin", plot_id="margins")
    ax = Axes(plot, (q["margin"].min(), q["margin"].max()), (max(q["quantile"][q["quantile"] > 0].min(), 1e-3), 1),
              log_x=True, log_y=True)
    for i, (trial, g) in enumerate(q.groupby("trial")):
        r = rows[int(trial)]
        ax.line(g["margin"].to_numpy(), g["quantile"].to_numpy(), r["tip"], trial=int(trial),
                color="#cc0000" if r["flagged"] else PALETTE[i % len(PALETTE)], width=1.2)
    plot.caption = ("A small-margin tail CDF(m) ∝ m^k gives adversarial error ∝ ε^k when the margin "
                    "shrinks about linearly with ε (Cubuk et al. 2017).")
    return plot


def _grid_heatmap(table: pd.DataFrame, x: str, y: str, title: str, x_label: str, y_label: str,
                  caption: str) -> Plot | None:
    if table.empty:
        return None
    xb = list(dict.fromkeys(table.sort_values(f"{x}_order")[f"{x}_bin"]))
    yb = list(dict.fromkeys(table.sort_values(f"{y}_order")[f"{y}_bin"]))
    cells = [{"x": r[f"{x}_bin"], "y": r[f"{y}_bin"], "value": float(r["mean"]),
              "tip": f"{x_label} {r[f'{x}_bin']}, {y_label} {r[f'{y}_bin']}: mean robust accuracy "
                     f"{r['mean']:.3f} (min {r['min']:.3f}, max {r['max']:.3f}, n = {int(r['n'])})"}
             for r in table.to_dict("records")]
    return heatmap(title, x_label, y_label, xb, yb, cells, caption=caption)


def depth_width(a: Analysis) -> Plot | None:
    p = _grid_heatmap(a.tables["depth_width"], "depth", "width",
                      f"Mean robust accuracy at ε={a.eps:g} by depth × width", "depth (layers)",
                      "width (mean channels)", "Cell colour and number: mean robust accuracy of the models in it.")
    if p:
        p.plot_id = "depth-width"
    return p


def phase(a: Analysis) -> Plot | None:
    p = _grid_heatmap(a.tables["phase_diagram"], "temperature", "train_fraction",
                      f"Phase diagram: robust accuracy at ε={a.eps:g}", "temperature lr/batch",
                      "training fraction (load)", "Temperature-like knob: learning rate / batch size; "
                      "load-like knob: fraction of the training split used.")
    if p:
        p.plot_id = "phase"
    return p


def all_figures(a: Analysis) -> list[Plot]:
    if a.eps is None:  # no trial with attack results: nothing to draw
        return []
    figs = [robust_vs(a, "clean_accuracy", "clean accuracy", front=True),
            robust_vs(a, "params", "parameters", log_x=True), eps_curves(a), power_law(a),
            slope_histogram(a), margins(a), depth_width(a), phase(a)]
    return [f for f in figs if f is not None]
