"""The adversarial power law (Cubuk et al. 2017): at small ε, adversarial error ≈ A · ε^k, fitted per
model from its per-sample minimal ε as a censored exponential (analysis.hill, Hill 1975).

Adversarial error at ε is the fraction of a model's clean-correct attacked samples with minimal
adversarial ε ≤ ε. Source: `minimization_min_eps` (minimization attacks only, exact per sample) when
the trial stored it, else `min_adversarial_eps` (worst case over all attacks; fixed-ε attacks only
say "broken at this grid ε"). `error_source` says which.

Window, per model: its top ε_high is the model's own order statistic at `MAX_ERROR` of the samples
it ever breaks (so it stops below the model's saturation, wherever that lies), its bottom `DECADES`
below. Given ε_high, the samples broken below it are i.i.d. from the power law truncated at ε_high,
so y = ln(ε_high/ε) is exponential with rate k, without A: samples below the bottom are censored
there, never-broken samples lie above the window and carry no information on k (they are not
dropped from the error shares). Where the study's ε are grid-quantized (ties: a bisection, fixed-ε
attacks), each ε stands for the cell (previous grid value, ε] and the likelihood is interval-
censored; the window then tops at the grid value below the order statistic.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..metrics import EPS_ATOL, EPS_RTOL  # a break at ε within float slack counts at ε
from . import hill
from .marginlink import margin_links

MAX_ERROR = 0.25  # the window's top: this share of the samples the model ever breaks
DECADES = 1.0
MIN_BROKEN = 10  # breaks inside the window below which a fit says nothing
ALPHA = 0.05
TIES = 0.01  # a study whose finite ε repeat for more than this share is grid-quantized (continuous ε never tie)
# An 8-step bisection has 256 grid values in all. A window holding more distinct ε than that is
# continuous ε rounded in print (to 6 decimals, 71 000 distinct values in 150 000 samples): its
# cells are merged, on grid values, into `hill.FINE_CELLS` cells of near-equal width, the resolution
# continuous ε get (an exact interval-censored likelihood still, of cost models × FINE_CELLS, not
# models × thousands of cells in every bootstrap refit).
MAX_GRID_CELLS = 256
Z95 = stats.norm.ppf(0.975)


def error_curve(min_eps: np.ndarray, eps_grid) -> np.ndarray:
    """Fraction of samples with minimal adversarial ε ≤ each grid ε (inf = never broken)."""
    min_eps = np.asarray(min_eps, float)
    grid = np.asarray(eps_grid, float)
    if len(min_eps) == 0:
        return np.full(len(grid), np.nan)
    return (min_eps[None, :] <= (grid * (1 + EPS_RTOL) + EPS_ATOL)[:, None]).mean(1)


def study_grid(values: list[np.ndarray]) -> np.ndarray | None:
    """The study's ε grid (its distinct finite ε) when they are quantized, else None."""
    v = np.concatenate([np.asarray(x, float) for x in values]) if values else np.array([])
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return None
    grid = np.unique(v)
    return grid if len(v) - len(grid) > TIES * len(v) else None


def _fine(y: np.ndarray, top_censored: int, low: float) -> tuple[np.ndarray, np.ndarray]:
    """Edges and counts of continuous y in `hill.FINE_CELLS` equal cells of [0, low) (+ censored)."""
    edges = np.linspace(0.0, low, hill.FINE_CELLS + 1)
    idx = np.minimum((y / low * hill.FINE_CELLS).astype(int), hill.FINE_CELLS)
    return edges, np.bincount(idx, minlength=hill.FINE_CELLS + 1).astype(float) + np.r_[
        np.zeros(hill.FINE_CELLS), top_censored
    ]


def window_cells(
    min_eps,
    *,
    share: float = MAX_ERROR,
    decades: float = DECADES,
    grid: np.ndarray | None = None,
    window: tuple[float, float] | None = None,
) -> dict:
    """One model's window (see the module docstring): ε_low, ε_high, the cells (edges in y, counts),
    the number of breaks inside and the model's error share at ε_high. `window` fixes (ε_low, ε_high)
    instead; `grid` (the study's quantized ε) makes the cells the grid's."""
    m = np.asarray(min_eps, float)
    broken = np.sort(m[np.isfinite(m)])
    out = {
        "eps_low": math.nan,
        "eps_high": math.nan,
        "edges": None,
        "counts": None,
        "n_broken": 0,
        "error_high": math.nan,
    }
    if not len(broken):
        return out
    slack = lambda e: e * (1 + EPS_RTOL) + EPS_ATOL  # noqa: E731
    if window is not None:
        low, high = window
        inside = broken[broken <= slack(high)]
    elif grid is None:  # the order statistic: the r − 1 breaks strictly below it
        high = float(broken[max(0, math.ceil(share * len(broken)) - 1)])
        low, inside = high / 10**decades, broken[broken < high]
    else:  # the grid value below the order statistic: what is at or below it lies in whole cells
        top = float(broken[max(0, math.ceil(share * len(broken)) - 1)])
        below = int(np.searchsorted(grid, top / (1 + 1e-9), side="left"))  # grid values < top
        if not below:
            return out
        high = float(grid[below - 1])
        low, inside = high / 10**decades, broken[broken <= slack(high)]
    out.update(eps_low=low, eps_high=high, n_broken=len(inside), error_high=len(inside) / len(m))
    if grid is None or window is not None:
        y = np.log(high / np.clip(inside, 1e-300, None)).clip(0)
        out["edges"], out["counts"] = _fine(
            y[y < math.log(high / low)], int((y >= math.log(high / low)).sum()), math.log(high / low)
        )
        return out
    top_i = int(np.searchsorted(grid, slack(high), side="right"))  # grid: sorted (np.unique); prefix ≤ high
    low_i = int(np.searchsorted(grid[:top_i], low * (1 + 1e-9), side="right"))
    bottom = float(grid[low_i - 1]) if low_i else float(grid[0])  # at or below it: censored
    if bottom >= high:  # the top is the grid's first value: a window without width says nothing on k
        return out
    g = grid[max(low_i, 1) : top_i]  # the cells' tops, above the bottom
    if len(g) > MAX_GRID_CELLS:
        g = _coarse(g, high, bottom, hill.FINE_CELLS)
    out["eps_low"] = bottom
    out["edges"] = np.log(high / np.r_[g[::-1], bottom])  # y edges 0 … ln(high/bottom), increasing
    idx = np.searchsorted(g, inside, side="left")  # the cell (g[i − 1], g[i]] each ε lies in
    cnt = np.bincount(np.where(inside <= slack(bottom), len(g), idx), minlength=len(g) + 1).astype(float)
    out["counts"] = np.r_[cnt[: len(g)][::-1], cnt[len(g)]]
    return out


def _coarse(g: np.ndarray, high: float, bottom: float, cells: int) -> np.ndarray:
    """The grid values kept as cell tops when a window holds more than `MAX_GRID_CELLS`: the top and
    the value nearest (in y = ln(high/ε)) each of `cells` − 1 equal steps of [0, ln(high/bottom)].
    Every ε is a grid value, so each still lies inside its merged cell; found by bisection, never
    touching the window's thousands of values one by one."""
    span = math.log(high / bottom)
    want = span * np.arange(1, cells) / cells
    pos = np.clip(np.searchsorted(g, high * np.exp(-want)), 1, len(g) - 1)  # g[pos − 1] < ε ≤ g[pos]
    nearer_low = np.abs(np.log(high / g[pos - 1]) - want) < np.abs(np.log(high / g[pos]) - want)
    pick = np.where(nearer_low, pos - 1, pos)
    return g[np.unique(np.r_[pick[pick < len(g) - 1], len(g) - 1])]


def pack(cells: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Rectangular (models, K + 1) edges and (models, K + 2) counts: shorter rows padded with
    zero-width cells at the window's bottom (probability 0, count 0)."""
    width = max(len(c["edges"]) for c in cells)
    edges = np.array([np.r_[c["edges"], np.full(width - len(c["edges"]), c["edges"][-1])] for c in cells])
    counts = np.array([np.r_[c["counts"][:-1], np.zeros(width - len(c["edges"])), c["counts"][-1]] for c in cells])
    return edges, counts


def fit_cells(edges: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per model: k's MLE (+∞ / 0 at the numerical ends) with its Fisher SE, the curvature's score z
    with its p, and its one-step estimate with SE (analysis.hill)."""
    k = hill.fit(edges, counts)
    c = hill.curvature(edges, counts, k)
    slope = np.where(k >= hill.K_MAX * (1 - 1e-9), math.inf, np.where(k <= hill.K_MIN * (1 + 1e-9), 0.0, k))
    return {
        "slope": slope,
        "k": k,
        "slope_se": c["k_se"],
        "curvature": c["c"],
        "curvature_se": c["c_se"],
        "curvature_z": c["z"],
        "curvature_p": 2 * stats.norm.sf(np.abs(c["z"])),
    }


def fit_power_law(min_eps, window: tuple[float, float] | None = None, *, max_error: float = MAX_ERROR) -> dict:
    """One model's fit (see the module docstring; `window` = (ε_low, ε_high) fixes it)."""
    m = np.asarray(min_eps, float)
    row = _row(m, window_cells(m, share=max_error, grid=study_grid([m]), window=window))
    if row["status"] == "ok":
        _fill([row], *pack([row.pop("_cells")]))
    return row


def _row(m: np.ndarray, cells: dict) -> dict:
    out = {c: math.nan for c in COLUMNS if c not in ("trial", "status", "error_source", "power_law_ok")}
    out.update(
        eps_low=cells["eps_low"],
        eps_high=cells["eps_high"],
        n_samples=len(m),
        n_broken=cells["n_broken"],
        error_high=cells["error_high"],
        power_law_ok=None,
        status="ok",
        bin_counts="",
        bin_edges="",
        margin_tail_counts="",
        margin_tail_edges="",
    )
    if not np.isfinite(m).any():
        out["status"] = "never broken at any ε"
    elif cells["counts"] is None:
        out["status"] = "no usable ε window (no grid value below the window's top)"
    elif cells["n_broken"] < MIN_BROKEN:
        out["status"] = f"only {cells['n_broken']} sample(s) broken inside the window (< {MIN_BROKEN})"
    else:
        out["_cells"] = cells
    return out


def _fill(rows: list[dict], edges: np.ndarray, counts: np.ndarray) -> None:
    f = fit_cells(edges, counts)
    for i, r in enumerate(rows):
        r.pop("_cells", None)
        k, se = float(f["slope"][i]), float(f["slope_se"][i])
        span = float(edges[i, -1])
        r.update(
            slope=k,
            slope_se=se,
            curvature=float(f["curvature"][i]),
            curvature_se=float(f["curvature_se"][i]),
            curvature_z=float(f["curvature_z"][i]),
            curvature_p=float(f["curvature_p"][i]),
            window_span=span,
            error_low=float(counts[i, -1] / r["n_samples"]),
            bin_counts=" ".join(str(int(v)) for v in counts[i]),
            bin_edges=" ".join(f"{v:.9g}" for v in edges[i]),
        )
        # Wald interval on log k (its likelihood is closer to quadratic there; the CI stays positive)
        half = Z95 * se / k if k > 0 and math.isfinite(k) else math.nan
        r["ci_low"], r["ci_high"] = float(k * np.exp(-half)), float(k * np.exp(min(half, 700.0)))
        r["intercept"] = (
            math.log10(r["error_high"]) - k * math.log10(r["eps_high"]) if r["error_high"] > 0 else math.nan
        )
        r["power_law_ok"] = bool(r["curvature_p"] >= ALPHA)


def _sources(samples: pd.DataFrame) -> dict[int, tuple[np.ndarray, np.ndarray, str]]:
    """Per trial: (minimal ε per sample, margins, which ε was used)."""
    if samples.empty:
        return {}
    s = samples.sort_values("trial", kind="stable")
    trials, starts = np.unique(s["trial"].to_numpy(), return_index=True)
    split = {
        c: np.split(s[c].to_numpy(float), starts[1:]) for c in ("minimization_min_eps", "min_adversarial_eps", "margin")
    }
    out = {}
    for i, trial in enumerate(trials):
        mini, worst, margin = (split[c][i] for c in ("minimization_min_eps", "min_adversarial_eps", "margin"))
        if len(mini) and not np.isnan(mini).any():
            out[int(trial)] = (mini, margin, "minimization attacks (minimization_min_eps)")
        elif len(worst) and not np.isnan(worst).any():
            out[int(trial)] = (
                worst,
                margin,
                "worst case over all attacks (min_adversarial_eps; fixed-ε attacks quantized to the ε grid)",
            )
    return out


def power_law_table(
    samples: pd.DataFrame,
    trials,
    *,
    max_error: float = MAX_ERROR,
    decades: float = DECADES,
    links: bool = True,
) -> pd.DataFrame:
    """One row per trial in `trials`: its power-law fit in its own window (see the module docstring;
    all models fitted in one batch; the CI is the Fisher (Wald, log k) interval), the margin-tail
    exponent over the same error share with its SE, the margin link (analysis.marginlink; NaN with
    `links` False: only `margin_explains_slope` reads it, and it costs most of the table) and the cells."""
    src = _sources(samples)
    trials = [int(t) for t in trials]
    grid = study_grid([src[t][0] for t in trials if t in src])
    finite = [v for t in trials if t in src for v in [src[t][0][np.isfinite(src[t][0])]] if len(v)]
    censor = float(max(v.max() for v in finite)) if finite else math.nan
    rows, ok, linked = [], [], []
    for trial in trials:
        if trial not in src:
            rows.append({"trial": trial, "status": "no per-sample ε stored", "error_source": None})
            continue
        m, margins, source = src[trial]
        row = {
            "trial": trial,
            **_row(m, window_cells(m, share=max_error, decades=decades, grid=grid)),
            "error_source": source,
        }
        linked.append((len(rows), m, margins))
        if row["status"] == "ok":
            ok.append(len(rows))
        rows.append(row)
    fitted = margin_links([(m, mg) for _, m, mg in linked], censor) if links else np.full((len(linked), 4), math.nan)
    for (i, _, _), v in zip(linked, fitted):
        rows[i].update(margin_link_slope=v[0], margin_link_se=v[1], margin_link_n=v[2], margin_link_censored=v[3])
    if ok:
        chosen = [rows[i] for i in ok]
        _fill(chosen, *pack([r["_cells"] for r in chosen]))
        _tails(chosen, [src[r["trial"]][1] for r in chosen], decades)
    table = pd.DataFrame(rows, columns=COLUMNS)
    num = [c for c in COLUMNS[1:] if c not in TEXT]
    return table.astype({c: float for c in num})


def _tails(rows: list[dict], margins: list[np.ndarray], decades: float) -> None:
    """The small-margin tail of each model, as its ε: margins below their own order statistic at the
    model's error share at ε_high, an exponential in ln(top / margin) with rate κ (CDF ∝ margin^κ)."""
    cells, has = [], []
    for i, (r, mg) in enumerate(zip(rows, margins)):
        mg = np.asarray(mg, float)
        mg = mg[np.isfinite(mg) & (mg > 0)]
        if not len(mg):
            continue
        c = window_cells(mg, share=r["error_high"], decades=decades)
        if c["counts"] is not None and c["n_broken"] >= MIN_BROKEN:
            cells.append(c)
            has.append(i)
    if not has:
        return
    edges, counts = pack(cells)
    f = fit_cells(edges, counts)
    for j, i in enumerate(has):
        rows[i].update(
            margin_tail_slope=float(f["slope"][j]),
            margin_tail_se=float(f["slope_se"][j]),
            margin_tail_counts=" ".join(str(int(v)) for v in counts[j]),
            margin_tail_edges=" ".join(f"{v:.9g}" for v in edges[j]),
        )


def margin_tail_exponent(margins, share: float, *, decades: float = DECADES) -> float:
    """κ of the small-margin tail up to the margins' `share` quantile (NaN below `MIN_BROKEN` margins)."""
    mg = np.asarray(margins, float)
    c = window_cells(mg[np.isfinite(mg) & (mg > 0)], share=share, decades=decades)
    if c["counts"] is None or c["n_broken"] < MIN_BROKEN:
        return math.nan
    return float(fit_cells(c["edges"][None], c["counts"][None])["slope"][0])


COLUMNS = [
    "trial",
    "slope",
    "slope_se",
    "ci_low",
    "ci_high",
    "intercept",
    "eps_low",
    "eps_high",
    "window_span",
    "n_samples",
    "n_broken",
    "error_low",
    "error_high",
    "curvature",
    "curvature_se",
    "curvature_z",
    "curvature_p",
    "power_law_ok",
    "margin_tail_slope",
    "margin_tail_se",
    "margin_link_slope",
    "margin_link_se",
    "margin_link_n",
    "margin_link_censored",
    "status",
    "error_source",
    "bin_counts",
    "bin_edges",
    "margin_tail_counts",
    "margin_tail_edges",
]
TEXT = ("power_law_ok", "status", "error_source", "bin_counts", "bin_edges", "margin_tail_counts", "margin_tail_edges")


def cells_of(power: pd.DataFrame, column: str = "bin") -> tuple[np.ndarray, np.ndarray]:
    """The (edges, counts) of the fitted rows of a `power_law_table` (`margin_tail`: of their margin
    tails), padded to one width (see `pack`)."""
    rows = [
        {"edges": np.array(e.split(), float), "counts": np.array(c.split(), float)}
        for e, c in zip(power[f"{column}_edges"], power[f"{column}_counts"])
    ]
    return pack(rows)
