"""Figures for many models: above `DENSE_MODELS` a scatter plot becomes a 2-D histogram and one line
per model becomes quantile bands, with the models a reader looks for drawn on top as points.

Why 1 000: a point of radius 4.5 px covers ~64 px² of a ~400 × 250 px plot area, so 1 000 points
cover it more than half (overlapping points hide each other and the density), and each point with its
hover text costs ~0.5 KB of page, so two scatters and the ε-curves of 1 000 models are already ~2 MB.
Below the threshold every figure is drawn as before, model by model.
"""

from __future__ import annotations

import math

import numpy as np

from .svgplot import Axes, sequential_color

DENSE_MODELS = 1000
MAX_HIGHLIGHT = 100  # flagged models drawn as points at most; the legend counts the rest
BINS = (36, 24)  # x × y cells of a density view: ~11 px square on the plot area
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
BAND = "#3465a4"


def dense(n_models: int) -> bool:
    """Whether a figure of `n_models` models is drawn as a density / bands."""
    return n_models > DENSE_MODELS


def density(ax: Axes, xs, ys, *, x_name: str, y_name: str, bins=BINS) -> int:
    """A 2-D histogram of the points on `ax` (bins equal on screen, log axes binned in log10), colour
    on a log scale of the count; each cell's hover text gives its count and ranges. Returns the
    largest count (for the legend)."""
    tx = np.log10(xs) if ax.log_x else np.asarray(xs, float)
    ty = np.log10(ys) if ax.log_y else np.asarray(ys, float)
    keep = np.isfinite(tx) & np.isfinite(ty)
    counts, ex, ey = np.histogram2d(tx[keep], ty[keep], bins=bins, range=[ax.xr, ax.yr])
    top = int(counts.max()) if counts.size else 0
    back_x = (lambda t: 10**t) if ax.log_x else (lambda t: t)
    back_y = (lambda t: 10**t) if ax.log_y else (lambda t: t)
    for i, j in zip(*np.nonzero(counts)):
        c = int(counts[i, j])
        tip = (
            f"{c} model{'s' if c > 1 else ''}: {x_name} {back_x(ex[i]):.3g}–{back_x(ex[i + 1]):.3g}, "
            f"{y_name} {back_y(ey[j]):.3g}–{back_y(ey[j + 1]):.3g}"
        )
        ax.scaled_rect(ex[i], ex[i + 1], ey[j], ey[j + 1], tip, color=shade(c, top), cls="bin")
    return top


def shade(count: int, top: int) -> str:
    """Colour of a density cell: log of the count, so a lone model stays visible beside thousands."""
    return sequential_color(0.12 + 0.88 * math.log1p(count) / math.log1p(max(top, 1)))


def density_legend(plot, top: int) -> None:
    plot.legend += [(shade(1, top), "1 model"), (shade(top, top), f"{top} models per cell")]


def bands(ax: Axes, xs, values: np.ndarray, *, what: str, horizontal: bool = False) -> None:
    """Quantile bands across models: `values` is (models, len(xs)); at each x the 5–95% and 25–75%
    ranges of the models' values as shaded bands and the median as a line. `horizontal`: the models'
    values are x positions at the levels `xs` (a CDF's quantiles)."""
    with np.errstate(all="ignore"):
        q = np.nanquantile(np.asarray(values, float), QUANTILES, axis=0)
    n = int(np.isfinite(values).any(axis=1).sum())
    xs = np.asarray(xs, float)

    def xy(a):
        return (a, xs) if horizontal else (xs, a)

    for lo, hi, opacity, name in ((q[0], q[4], 0.18, "5–95%"), (q[1], q[3], 0.35, "25–75%")):
        tip = f"{name} of the {n} models' {what}"
        if len(xs) > 2 or horizontal:
            ax.area(*xy(lo), *xy(hi), tip, color=BAND, opacity=opacity)
        else:  # one measured ε: a range at each x, no band pretending a curve in between
            for x, a, b in zip(xs, lo, hi):
                if ax.ok(x, a) and ax.ok(x, b):
                    px = ax.px(x)
                    ax.pixel_rect(px - 5, ax.py(b), 10, max(ax.py(a) - ax.py(b), 1), tip, color=BAND, cls="bin")
                    ax.plot.marks[-1]["opacity"] = opacity
    if len(xs) > 2 or horizontal:
        ax.line(*xy(q[2]), f"median of the {n} models' {what}", color="#204a87", width=2)
    else:
        for x, m in zip(xs, q[2]):
            ax.point(x, m, f"median of the {n} models' {what}: {m:.3g}", r=3.5, color="#204a87")
    ax.plot.legend += [(BAND, "models: 25–75% and 5–95%"), ("#204a87", "median")]


def highlighted(rows: list[dict], best_trial: int | None) -> list[dict]:
    """The models drawn as marks over a density: the best, the Pareto front and up to
    `MAX_HIGHLIGHT` flagged models (rows as `figures._rows`)."""
    flagged = [r for r in rows if r["flagged"]][:MAX_HIGHLIGHT]
    chosen = [r for r in rows if r["pareto"] or int(r["trial"]) == best_trial]
    seen, out = set(), []
    for r in chosen + flagged:
        if int(r["trial"]) not in seen:
            seen.add(int(r["trial"]))
            out.append(r)
    return out
