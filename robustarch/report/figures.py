"""The report's figures, each drawn from one table of an `Analysis` (see robustarch.analysis)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..analysis.analyzer import Analysis
from .svgplot import PALETTE, Axes, Plot, heatmap, sequential_color

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
    flag = f" | FLAGGED: {row['sanity_invalid']}" if row.get("flagged") else ""
    if row.get("sanity_warnings"):
        flag += f" | warning: {row['sanity_warnings']}"
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
    if t.empty or t[x].nunique() < 2:  # a constant axis: left out, `left_out` says why
        return None
    plot = Plot(f"Worst-case robust accuracy at ε={a.eps:g} vs {label}", label + (" (log scale)" if log_x else ""),
                f"robust accuracy at ε={a.eps:g}", plot_id=f"robust-vs-{x}")
    xs = t[x].astype(float)
    ax = Axes(plot, (xs.min(), xs.max()), (0, max(0.05, float(t["robust_accuracy"].max()))), log_x=log_x)
    if front:
        f = t[t["pareto"]].sort_values(x)
        # The front is chosen on validation numbers where stored, and drawn at the test numbers.
        on = "validation" if a.selection_split == "val" else "test"
        ax.line(f[x], f["robust_accuracy"], f"Pareto front (clean vs robust, chosen on {on} numbers)",
                cls="front-line", dash="4 3")
        plot.legend.append(("#f57900", f"Pareto-optimal ({on})"))
    for r in t.to_dict("records"):
        ax.point(float(r[x]), float(r["robust_accuracy"]), trial_tip(r), trial=int(r["trial"]), cls=_cls(r))
    plot.legend.append(("#3465a4", "model"))
    if not front and t["pareto"].any():  # the points are drawn orange here too (class "front")
        on = "validation" if a.selection_split == "val" else "test"
        plot.legend.append(("#f57900", f"Pareto-optimal ({on})"))
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
    from ..analysis.powerlaw import error_curve

    col = {t: "minimization_min_eps" if str(src).startswith("minimization") else "min_adversarial_eps"
           for t, src in zip(ok["trial"], ok["error_source"])}
    by_trial = {int(k): g[col[k]].to_numpy() for k, g in samples.groupby("trial") if k in col}
    grids = {int(f["trial"]): np.geomspace(f["eps_low"], f["eps_high"], 8) for f in ok.to_dict("records")}
    curves = {t: error_curve(by_trial[t], grids[t]) for t in grids}
    errs = np.concatenate([c[c > 0] for c in curves.values()] + [np.array([1e-3])])
    lo, hi = min(g[0] for g in grids.values()), max(g[-1] for g in grids.values())
    ax = Axes(plot, (lo, hi), (max(errs.min(), 1e-4), 1), log_x=True, log_y=True)
    for f in ok.to_dict("records"):
        trial = int(f["trial"])
        r = rows[trial]
        verdict = "passes" if f["power_law_ok"] else "fails"
        tip = (r["tip"] + f" | fit ε {f['eps_low']:.3g}–{f['eps_high']:.3g}: slope {f['slope']:.2f}"
               f" [{_num(f['ci_low'])}, {_num(f['ci_high'])}], {verdict} the curvature score test")
        color = "#cc0000" if r["flagged"] else "#3465a4"
        c, grid = curves[trial], grids[trial]
        if len(ok) <= MAX_POINT_MODELS:
            for e, v in zip(grid, c):
                if v > 0:
                    ax.point(e, v, tip, trial=trial, r=2.5, cls="flagged" if r["flagged"] else "")
        else:  # many models: the measured error as a thin line, to keep the page light
            ax.line(grid[c > 0], c[c > 0], tip, trial=trial, color=color, width=0.6, dash="2 2")
        ax.line(grid, 10 ** (f["intercept"] + f["slope"] * np.log10(grid)), tip, trial=trial, color=color)
    plot.caption = ("Points: share of clean-correct samples broken within ε, at 8 log-spaced ε in each model's own "
                    "window (its top: a quarter of the samples the model ever breaks); lines: maximum-likelihood "
                    "power laws (censored exponential in ln(ε_high/ε)). A point at zero error has no place on a log "
                    "axis and is not drawn.")
    return plot


def slope_histogram(a: Analysis) -> Plot | None:
    fits = a.tables["power_law"]
    s = fits.loc[np.isfinite(fits["slope"]) & fits["in_statistics"].fillna(False).astype(bool), "slope"]
    if s.empty:
        return None
    plot = Plot(f"Power-law slopes across models (n = {len(s)})", "slope", "models", plot_id="slopes")
    bins = np.histogram_bin_edges(s, bins=min(20, max(4, int(math.sqrt(len(s))))))
    counts, _ = np.histogram(s, bins=bins)
    ax = Axes(plot, (bins[0], bins[-1]), (0, counts.max() * 1.1), pad=0.02, integer_y=True)
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
    clean = {t: float(rows[int(t)]["clean_accuracy"]) for t in q["trial"].unique()}
    lo, hi = min(clean.values()), max(clean.values())
    shade = (lambda c: sequential_color(0.3 + 0.7 * (c - lo) / (hi - lo)) if hi > lo else PALETTE[0])
    for trial, g in q.groupby("trial"):
        r = rows[int(trial)]
        ax.line(g["margin"].to_numpy(), g["quantile"].to_numpy(), r["tip"], trial=int(trial),
                color="#cc0000" if r["flagged"] else shade(clean[trial]), width=1.2)
    values = sorted(clean.values())
    shown = values if len(values) <= 3 else [lo, values[len(values) // 2], hi]  # models' own values
    plot.legend += [(shade(c), f"clean acc. {c:.3f}") for c in dict.fromkeys(shown)]
    if any(rows[int(t)]["flagged"] for t in clean):
        plot.legend.append(("#cc0000", "flagged"))
    plot.caption = ("Line colour: the model's clean accuracy (light: lowest, dark: highest). A small-margin tail "
                    "CDF(m) ∝ m^k gives adversarial error ∝ ε^k when the margin shrinks about linearly with ε "
                    "(Cubuk et al. 2017).")
    return plot


def _grid_heatmap(table: pd.DataFrame, x: str, y: str, title: str, x_label: str, y_label: str,
                  caption: str, value_name: str = "robust accuracy") -> Plot | None:
    if table.empty:
        return None
    xb = list(dict.fromkeys(table.sort_values(f"{x}_order")[f"{x}_bin"]))
    yb = list(dict.fromkeys(table.sort_values(f"{y}_order")[f"{y}_bin"]))
    cells = [{"x": r[f"{x}_bin"], "y": r[f"{y}_bin"], "value": float(r["mean"]),
              "tip": f"{x_label} {r[f'{x}_bin']}, {y_label} {r[f'{y}_bin']}: mean {value_name} "
                     f"{r['mean']:.3f} (min {r['min']:.3f}, max {r['max']:.3f}, n = {int(r['n'])})"}
             for r in table.to_dict("records")]
    return heatmap(title, x_label, y_label, xb, yb, cells, caption=caption)


def depth_width(a: Analysis) -> Plot | None:
    u = a.used_trials
    if u["depth"].nunique() < 2 or u["width"].nunique() < 2:  # a constant axis: `left_out` says why
        return None
    p = _grid_heatmap(a.tables["depth_width"], "depth", "width",
                      f"Mean robust accuracy at ε={a.eps:g} by depth × width", "depth (cells)",
                      "width (mean channels)", "Cell colour and number: mean robust accuracy of the models in it.")
    if p:
        p.plot_id = "depth-width"
    return p


def phase(a: Analysis) -> list[Plot]:
    """One heatmap per load knob × metric of the phase table (analysis.phase)."""
    from ..analysis.phase import label

    table, plots = a.tables["phase_diagram"], []
    if table.empty:
        return plots
    for (load, temperature, metric), g in table.groupby(["load_knob", "temperature_knob", "metric"], sort=False):
        name = label(metric) + (f" at ε={a.eps:g}" if metric == "robust_accuracy" else "")
        p = _grid_heatmap(g.rename(columns={"temperature_bin": "t_bin", "load_bin": "l_bin", "temperature_order":
                                            "t_order", "load_order": "l_order"}), "t", "l",
                          f"Phase diagram: {name}", label(temperature), label(load),
                          f"Cell colour and number: mean {name} of the models in it (colours clip to 0–1).",
                          value_name=name)
        p.plot_id = "phase" if not plots else f"phase-{load}-{metric}"
        plots.append(p)
    return plots


def left_out(a: Analysis) -> list[str]:
    """One line per plot left out because its axis is constant among the models (e.g. one fixed net
    in a phase-diagram study: one parameter count, one depth)."""
    t = _analysed(a)
    if a.eps is None or t.empty:
        return []
    out = []
    for col, plot in (("clean_accuracy", "robust accuracy vs clean accuracy"), ("params", "robust accuracy vs "
                      "parameters"), ("depth", "depth × width map"), ("width", "depth × width map")):
        values = t[col].dropna().unique()
        if len(values) == 1:
            out.append(f"Plot {plot} left out: every model has the same {col.replace('_', ' ')} "
                       f"({_num(values[0])}), so that axis is constant.")
        elif len(values) == 0 and col != "clean_accuracy":
            out.append(f"Plot {plot} left out: no model has a {col.replace('_', ' ')} value.")
    return list(dict.fromkeys(out))


def all_figures(a: Analysis) -> list[Plot]:
    if a.eps is None:  # no trial with attack results: nothing to draw
        return []
    figs = [robust_vs(a, "clean_accuracy", "clean accuracy", front=True),
            robust_vs(a, "params", "parameters", log_x=True), eps_curves(a), power_law(a),
            slope_histogram(a), margins(a), depth_width(a), *phase(a)]
    return [f for f in figs if f is not None]
