"""The report's figures, each drawn from one table of an `Analysis` (see robustarch.analysis)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..analysis.analyzer import Analysis
from ..analysis.components import group_keys
from .dense import bands, dense, density, density_legend, highlighted
from .svgplot import PALETTE, Axes, Plot, heatmap, sequential_color

MAX_POINT_MODELS = 100  # above this the power-law plot draws each model's data as a line, not dots


def _num(v, digits=3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer() and abs(v) >= 100):
        v = int(v)
        return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e4 else str(v)
    return f"{v:.{digits}g}"


def eps_label(eps) -> str:
    """ε as a reader wrote it: `8/255` where ε is a whole number of 255ths that 3 significant digits
    would not give exactly (0.0313725...), else 3 significant digits (0.03, 0.2)."""
    if eps is None or not math.isfinite(float(eps)):
        return "?"
    short = f"{float(eps):.3g}"
    k = round(float(eps) * 255)
    if float(short) != float(eps) and k > 0 and math.isclose(k / 255, float(eps), rel_tol=1e-9):
        return f"{k}/255"
    return short


def trial_tip(row) -> str:
    """Hover text of a model: its architecture and numbers."""
    flag = f" | FLAGGED: {row['sanity_invalid']}" if row.get("flagged") else ""
    if row.get("sanity_warnings"):
        flag += f" | warning: {row['sanity_warnings']}"
    return (
        f"trial {int(row['trial'])}: {row['arch_summary']} | clean {_num(row['clean_accuracy'])}"
        f" | robust {_num(row['robust_accuracy'])} | AUC {_num(row['robust_auc'])}"
        f" | params {_num(row['params'])} | FLOPs {_num(row['flops'])} | depth {_num(row['depth'])}"
        f" | width {_num(row['width'])} | power-law slope {_num(row.get('power_law_slope'))}{flag}"
    )


def _cls(row) -> str:
    return "flagged" if row["flagged"] else ("front" if row["pareto"] else "")


def _analysed(a: Analysis) -> pd.DataFrame:
    t = a.tables["trials"]
    return t[t["robust_accuracy"].notna()]


class _Rows(dict):
    """Analysed trials by number, each a dict whose hover text `tip` is made when first drawn (a
    density view draws a few of many thousands)."""

    def __getitem__(self, trial):
        r = self.raw(trial)
        if "tip" not in r:
            r["tip"] = trial_tip(r)
        return r

    def raw(self, trial) -> dict:
        """The row without making its hover text."""
        return super().__getitem__(trial)


def _rows(a: Analysis) -> dict[int, dict]:
    # Made once per analysis for all its figures: records of 15 625 rows cost a second each time.
    if getattr(a, "_figure_rows", None) is None:
        a._figure_rows = _Rows((int(r["trial"]), r) for r in _analysed(a).to_dict("records"))
    return a._figure_rows


def _best(a: Analysis) -> int | None:
    best = a.best_trial
    return None if best is None else int(best["trial"])


def _marked(a: Analysis, rows: dict) -> list[dict]:
    """The models drawn one by one over a density view (best, Pareto front, flagged)."""
    return [rows[int(r["trial"])] for r in highlighted(list(dict.values(rows)), _best(a))]


def robust_vs(a: Analysis, x: str, label: str, *, log_x=False, front=False) -> Plot | None:
    t = _analysed(a)
    t = t[t[x].notna()]
    if t.empty or t[x].nunique() < 2:  # a constant axis: left out, `left_out` says why
        return None
    eps = eps_label(a.eps)
    plot = Plot(
        f"Worst-case robust accuracy at ε={eps} vs {label}",
        label + (" (log scale)" if log_x else ""),
        f"robust accuracy at ε={eps}",
        plot_id=f"robust-vs-{x}",
    )
    xs = t[x].astype(float)
    ax = Axes(plot, (xs.min(), xs.max()), (0, max(0.05, float(t["robust_accuracy"].max()))), log_x=log_x)
    many = dense(len(t))
    if many:
        top = density(ax, xs.to_numpy(), t["robust_accuracy"].to_numpy(float), x_name=label, y_name="robust accuracy")
    on = "validation" if a.selection_split == "val" else "test"
    if front:
        f = t[t["pareto"]].sort_values(x)
        if a.shrunken:  # the front is of architectures: one point each, the mean of its seeds
            f = f.groupby(group_keys(f).to_numpy())[[x, "robust_accuracy"]].mean().sort_values(x)
        # The front is chosen on validation numbers where stored, and drawn at the test numbers.
        ax.line(
            f[x],
            f["robust_accuracy"],
            f"Pareto front (clean vs robust, chosen on {on} numbers)",
            cls="front-line",
            dash="4 3",
        )
        plot.legend.append(("#f57900", f"Pareto-optimal ({on})"))
    if many:  # over the density: the models a reader looks for, as points
        rows = _rows(a)
        drawn = [r for r in _marked(a, rows) if r.get(x) is not None and r[x] == r[x]]
        for r in drawn:
            ax.point(float(r[x]), float(r["robust_accuracy"]), r["tip"], trial=int(r["trial"]), cls=_cls(r))
        density_legend(plot, top)
        plot.caption = (
            f"{len(t)} models: colour = models per cell (log scale). Points: the Pareto front, the most "
            "robust model and flagged models; hover a cell for its count."
        )
    else:
        for r in t.to_dict("records"):
            ax.point(float(r[x]), float(r["robust_accuracy"]), trial_tip(r), trial=int(r["trial"]), cls=_cls(r))
        plot.legend.append(("#3465a4", "model"))
    if not front and t["pareto"].any():  # the points are drawn orange here too (class "front")
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
    wide = rob.pivot_table(index="trial", columns="eps", values="robust_accuracy")
    wide = wide[wide.index.isin(list(dict.keys(rows)))]
    one = wide.shape[1] == 1  # one ε measured: points, no line suggesting a curve nobody measured
    many = dense(len(wide))
    plot = Plot(
        "Worst-case robust accuracy over ε"
        + ("" if many else (" (one point per model and ε)" if one else " (one line per model)")),
        "ε",
        "robust accuracy",
        plot_id="eps-curves",
    )
    ax = Axes(plot, (0, max(a.eps_grid)), (0, 1))
    raw = [rows.raw(int(t)) for t in wide.index]
    clean = np.array(
        [r["attacked_clean_accuracy"] if pd.notna(r["attacked_clean_accuracy"]) else r["clean_accuracy"] for r in raw],
        dtype=float,
    )
    grid = [0.0, *wide.columns]
    values = np.column_stack([clean, wide.to_numpy(float)])
    drawn = set(wide.index)
    if many:
        bands(ax, grid, values, what="robust accuracy")
        drawn = {int(r["trial"]) for r in _marked(a, rows)} & set(wide.index)
    for trial, v in zip(wide.index, values):
        if trial not in drawn:
            continue
        r = rows[int(trial)]
        cls = "flagged" if r["flagged"] else ("front" if many and r["pareto"] else "")
        if one:
            for e, y in zip(grid, v):
                ax.point(e, y, r["tip"], trial=int(trial), cls=cls, r=3)
        else:
            ax.line(
                grid, v, r["tip"], trial=int(trial), cls=cls, color="#f57900" if cls == "front" else None, width=1.5
            )
    plot.caption = "ε = 0 is clean accuracy on the attacked samples."
    if one:
        plot.caption += f" One ε measured ({eps_label(wide.columns[0])}): points, not a curve."
    if many:
        plot.caption += " Drawn one by one: the Pareto front (orange), the most robust model and flagged models."
    return plot


def power_law(a: Analysis) -> Plot | None:
    fits = a.tables["power_law"]
    samples = a.tables["samples"]
    ok = fits[np.isfinite(fits["slope"])]
    if ok.empty:
        return None
    rows = _rows(a)
    plot = Plot(
        "Adversarial error vs ε (log–log) with power-law fits",
        "ε (log scale)",
        "adversarial error (log scale)",
        plot_id="power-law",
    )
    from ..analysis.powerlaw import error_curve

    col = {
        t: "minimization_min_eps" if str(src).startswith("minimization") else "min_adversarial_eps"
        for t, src in zip(ok["trial"], ok["error_source"])
    }
    s = samples[samples["trial"].isin(list(col))].sort_values("trial", kind="stable")
    trials, starts = np.unique(s["trial"].to_numpy(), return_index=True)
    by_trial = {int(t): s[col[t]].to_numpy()[a_:b_] for t, a_, b_ in zip(trials, starts, [*starts[1:], len(s)])}
    grids = {int(f["trial"]): np.geomspace(f["eps_low"], f["eps_high"], 8) for f in ok.to_dict("records")}
    curves = {t: error_curve(by_trial[t], grids[t]) for t in grids}
    errs = np.concatenate([c[c > 0] for c in curves.values()] + [np.array([1e-3])])
    lo, hi = min(g[0] for g in grids.values()), max(g[-1] for g in grids.values())
    ax = Axes(plot, (lo, hi), (max(errs.min(), 1e-4), 1), log_x=True, log_y=True)
    many, drawn = dense(len(ok)), set(curves)
    if many and len({len(g) for g in grids.values()}) == 1:  # the window is shared: bands across models
        grid = next(iter(grids.values()))
        values = np.array([np.where(c > 0, c, np.nan) for c in curves.values()])
        bands(ax, grid, values, what="adversarial error")
        drawn = {int(r["trial"]) for r in _marked(a, rows)} & drawn
    for f in ok.to_dict("records"):
        trial = int(f["trial"])
        if trial not in drawn:
            continue
        r = rows[trial]
        verdict = "passes" if f["power_law_ok"] else "fails"
        tip = (
            r["tip"] + f" | fit ε {f['eps_low']:.3g}–{f['eps_high']:.3g}: slope {f['slope']:.2f}"
            f" [{_num(f['ci_low'])}, {_num(f['ci_high'])}], {verdict} the curvature score test"
        )
        color = "#cc0000" if r["flagged"] else "#3465a4"
        c, grid = curves[trial], grids[trial]
        if len(drawn) <= MAX_POINT_MODELS:
            for e, v in zip(grid, c):
                if v > 0:
                    ax.point(e, v, tip, trial=trial, r=2.5, cls="flagged" if r["flagged"] else "")
        else:  # many models: the measured error as a thin line, to keep the page light
            ax.line(grid[c > 0], c[c > 0], tip, trial=trial, color=color, width=0.6, dash="2 2")
        ax.line(grid, 10 ** (f["intercept"] + f["slope"] * np.log10(grid)), tip, trial=trial, color=color)
    plot.caption = (
        "Points: share of clean-correct samples broken within ε, at 8 log-spaced ε in each model's own "
        "window (its top: a quarter of the samples the model ever breaks); lines: maximum-likelihood "
        "power laws (censored exponential in ln(ε_high/ε)). A point at zero error has no place on a log "
        "axis and is not drawn."
    )
    if many:
        plot.caption += (
            f" {len(ok)} models: bands of their measured error; drawn one by one, the most robust model, "
            "the Pareto front and flagged models."
        )
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
        ax.line(
            [summary["median"]] * 2,
            [0, counts.max() * 1.1],
            f"median slope {summary['median']:.2f}",
            color="#cc0000",
            dash="5 3",
        )
        plot.legend.append(("#cc0000", "median"))
    return plot


def margins(a: Analysis) -> Plot | None:
    q = a.tables["margin_quantiles"]
    q = q[(q["margin"] > 0) & (q["quantile"] > 0)]  # share 0 has no place on a log axis
    if q.empty:
        return None
    rows = _rows(a)
    plot = Plot(
        "Logit-margin distributions (empirical CDF, log–log)",
        "top-1 minus runner-up logit (log scale)",
        "share of clean-correct samples ≤ margin",
        plot_id="margins",
    )
    ax = Axes(
        plot,
        (q["margin"].min(), q["margin"].max()),
        (max(q["quantile"][q["quantile"] > 0].min(), 1e-3), 1),
        log_x=True,
        log_y=True,
    )
    clean = {t: float(rows.raw(int(t))["clean_accuracy"]) for t in q["trial"].unique()}
    lo, hi = min(clean.values()), max(clean.values())
    shade = lambda c: sequential_color(0.3 + 0.7 * (c - lo) / (hi - lo)) if hi > lo else PALETTE[0]
    many, drawn = dense(len(clean)), set(clean)
    if many:
        wide = q.pivot_table(index="trial", columns="quantile", values="margin")
        bands(ax, wide.columns.to_numpy(float), wide.to_numpy(float), what="margins at this share", horizontal=True)
        drawn = {int(r["trial"]) for r in _marked(a, rows)} & drawn
    for trial, g in q[q["trial"].isin(list(drawn))].groupby("trial"):
        r = rows[int(trial)]
        ax.line(
            g["margin"].to_numpy(),
            g["quantile"].to_numpy(),
            r["tip"],
            trial=int(trial),
            color="#cc0000" if r["flagged"] else shade(clean[trial]),
            width=1.2,
        )
    values = sorted(clean[t] for t in drawn) if drawn else []
    shown = values if len(values) <= 3 else [values[0], values[len(values) // 2], values[-1]]  # models' own values
    plot.legend += [(shade(c), f"clean acc. {c:.3f}") for c in dict.fromkeys(shown)]
    if any(rows.raw(int(t))["flagged"] for t in drawn):
        plot.legend.append(("#cc0000", "flagged"))
    plot.caption = (
        "Line colour: the model's clean accuracy (light: lowest, dark: highest). A small-margin tail "
        "CDF(m) ∝ m^k gives adversarial error ∝ ε^k when the margin shrinks about linearly with ε "
        "(Cubuk et al. 2017)."
    )
    if many:
        plot.caption += (
            f" {len(clean)} models: bands of their margins at each share; lines: the most robust model, "
            "the Pareto front and flagged models."
        )
    return plot


def _grid_heatmap(
    table: pd.DataFrame,
    x: str,
    y: str,
    title: str,
    x_label: str,
    y_label: str,
    caption: str,
    value_name: str = "robust accuracy",
) -> Plot | None:
    if table.empty:
        return None
    xb = list(dict.fromkeys(table.sort_values(f"{x}_order")[f"{x}_bin"]))
    yb = list(dict.fromkeys(table.sort_values(f"{y}_order")[f"{y}_bin"]))
    cells = [
        {
            "x": r[f"{x}_bin"],
            "y": r[f"{y}_bin"],
            "value": float(r["mean"]),
            "tip": f"{x_label} {r[f'{x}_bin']}, {y_label} {r[f'{y}_bin']}: mean {value_name} "
            f"{r['mean']:.3f} (min {r['min']:.3f}, max {r['max']:.3f}, n = {int(r['n'])})",
        }
        for r in table.to_dict("records")
    ]
    return heatmap(title, x_label, y_label, xb, yb, cells, caption=caption)


def depth_width(a: Analysis) -> Plot | None:
    u = a.used_trials
    if u["depth"].nunique() < 2 or u["width"].nunique() < 2:  # a constant axis: `left_out` says why
        return None
    p = _grid_heatmap(
        a.tables["depth_width"],
        "depth",
        "width",
        f"Mean robust accuracy at ε={eps_label(a.eps)} by depth × width",
        "depth (cells)",
        "width (mean channels)",
        "Cell colour and number: mean robust accuracy of the models in it.",
    )
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
        name = label(metric) + (f" at ε={eps_label(a.eps)}" if metric == "robust_accuracy" else "")
        p = _grid_heatmap(
            g.rename(
                columns={
                    "temperature_bin": "t_bin",
                    "load_bin": "l_bin",
                    "temperature_order": "t_order",
                    "load_order": "l_order",
                }
            ),
            "t",
            "l",
            f"Phase diagram: {name}",
            label(temperature),
            label(load),
            f"Cell colour and number: mean {name} of the models in it (colours clip to 0–1).",
            value_name=name,
        )
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
    for col, plot in (
        ("clean_accuracy", "robust accuracy vs clean accuracy"),
        ("params", "robust accuracy vs parameters"),
        ("depth", "depth × width map"),
        ("width", "depth × width map"),
    ):
        values = t[col].dropna().unique()
        if len(values) == 1:
            out.append(
                f"Plot {plot} left out: every model has the same {col.replace('_', ' ')} "
                f"({_num(values[0])}), so that axis is constant."
            )
        elif len(values) == 0 and col != "clean_accuracy":
            out.append(f"Plot {plot} left out: no model has a {col.replace('_', ' ')} value.")
    return list(dict.fromkeys(out))


def all_figures(a: Analysis) -> list[Plot]:
    if a.eps is None:  # no trial with attack results: nothing to draw
        return []
    figs = [
        robust_vs(a, "clean_accuracy", "clean accuracy", front=True),
        robust_vs(a, "params", "parameters", log_x=True),
        eps_curves(a),
        power_law(a),
        slope_histogram(a),
        margins(a),
        depth_width(a),
        *phase(a),
    ]
    return [f for f in figs if f is not None]
