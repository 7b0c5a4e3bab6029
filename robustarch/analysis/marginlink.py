"""The margin link: within each model, log minimal ε regressed on log logit margin — slope 1 when a
sample's margin shrinks linearly with ε (ε_min = margin / rate), 0 with no link.

Never-broken samples are censored, not dropped: their ε lies above the largest ε the attacks reached
(`censor`; the study's largest finite ε when nothing better is known — a lower bound of it, so the
data are exactly those of a constant censoring point). Dropping them truncates the outcome and pulls
the slope towards 0.

The fit is the accelerated-failure-time model log ε = α + β log margin + e with i.i.d. errors of any
law, right-censored, estimated by Gehan's rank estimating function (Gehan 1965; Jin, Lin, Wei & Ying
2003): the root of U(β) = Σ_i δ_i Σ_j (x_i − x_j)·1{e_j ≥ e_i}, e = log ε − β·log margin, the
gradient of a convex loss, so U rises with β. Its interval inverts the Gehan test (Wei, Ying & Lin
1990): the β with |U(β)| ≤ z·√V(β), V = Σ_i r_i² the U-statistic's variance (r_i: sample i's share of
U), with no density to estimate. A normal-error Tobit fit, used before, was biased by +0.07 under
t₂ noise with 5–45% censored and said "supported" in 14.5% of 1000 studies at the margin
(benchmarks/sim_link.py); the rank estimator assumes no error law. Each model's SE is its interval's
half-width / z (the claim itself tests the plain mean over models: analysis.powerclaims).
Hand-written: neither scipy nor statsmodels has a censored rank regression.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

MIN_BROKEN = 10
Z95 = float(stats.norm.ppf(0.975))
TOL = 1e-4  # the slope's precision: far below any model's SE
MAX_STEPS = 80
CHUNK = 2_000_000  # cells (models × samples) scored at once


def _score(beta: np.ndarray, x: np.ndarray, y: np.ndarray, d: np.ndarray, n: np.ndarray):
    """(U, V) per model (rows of x, y, d: a model's samples, padded past its `n` with y = +∞) at slopes
    `beta`: Gehan's score and its U-statistic variance, in O(n log n) from one sort of each row's
    residuals (ties: a censored e_j ≥ e_i counts, as its true e_j lies above; tied broken pairs
    cancel)."""
    e = y - beta[:, None] * x
    m, w = e.shape
    flat = (np.argsort(e, axis=1) + (np.arange(m) * w)[:, None]).ravel()  # flat indices: no take_along_axis
    es, xs, ds = (v.ravel()[flat].reshape(m, w) for v in (e, x, d))
    pos = np.arange(w)
    new = np.ones((m, w), bool)  # a tie block starts
    np.not_equal(es[:, 1:], es[:, :-1], out=new[:, 1:])
    first = np.maximum.accumulate(np.where(new, pos, 0), 1)
    end = np.ones((m, w), bool)
    end[:, :-1] = new[:, 1:]
    last = np.minimum.accumulate(np.where(end, pos, w - 1)[:, ::-1], 1)[:, ::-1]
    cx, cd, cdx = np.zeros((3, m, w + 1))
    for c, v in ((cx, xs), (cd, ds), (cdx, ds * xs)):
        np.cumsum(v, 1, out=c[:, 1:])
    at = lambda c, i: c.ravel()[(i + (np.arange(m) * (w + 1))[:, None]).ravel()].reshape(m, w)  # noqa: E731
    top = n[:, None]
    above = xs * (top - first) - (cx[np.arange(m), n][:, None] - at(cx, first))  # Σ_j (x_i − x_j) over e_j ≥ e_i
    below = xs * at(cd, last + 1) - at(cdx, last + 1)  # over broken e_j ≤ e_i
    r = np.where(pos < top, ds * above - below, 0.0)
    return (ds * above).sum(1), (r * r).sum(1)


def _bracket(f, m: int, lo: float = -1.0, hi: float = 3.0) -> tuple[np.ndarray, ...]:
    """Per model, a < b with f(a) < 0 ≤ f(b) (f rises in β), widening where needed; with f(a), f(b)."""
    a, b, every = np.full(m, lo), np.full(m, hi), np.arange(m)
    for _ in range(20):
        fa, fb = f(a, every), f(b, every)
        bad_a, bad_b = fa >= 0, fb < 0
        if not (bad_a.any() or bad_b.any()):
            break
        a, b = np.where(bad_a, 2 * a - b, a), np.where(bad_b, 2 * b - a, b)
    return a, b, fa, fb


def _turn(f, a: np.ndarray, b: np.ndarray, fa: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """The β where a rising step function f turns from < 0 to ≥ 0, per model: regula falsi with the
    Illinois modification (Dowell & Jarratt 1971), halving to bisection where a step would stall,
    on the models not yet within `TOL`."""
    side = np.zeros(len(a), int)
    todo = np.flatnonzero(b - a > TOL)
    for _ in range(MAX_STEPS):
        if not len(todo):
            break
        ai, bi, fai, fbi = a[todo], b[todo], fa[todo], fb[todo]
        c = bi - fbi * (bi - ai) / np.where(fbi > fai, fbi - fai, 1.0)
        mid = (ai + bi) / 2
        c = np.where((c > ai) & (c < bi) & (fbi > fai), c, mid)
        fc = f(c, todo)
        up = fc >= 0
        b[todo], fb[todo] = np.where(up, c, bi), np.where(up, fc, fbi)
        a[todo], fa[todo] = np.where(up, ai, c), np.where(up, fai, fc)
        # Illinois: the end kept twice in a row has its value halved, so the next step moves it
        fa[todo] = np.where(up & (side[todo] == 1), fa[todo] / 2, fa[todo])
        fb[todo] = np.where(~up & (side[todo] == -1), fb[todo] / 2, fb[todo])
        side[todo] = np.where(up, 1, -1)
        todo = todo[b[todo] - a[todo] > TOL]
    return (a + b) / 2


def gehan(x: np.ndarray, y: np.ndarray, d: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, ...]:
    """(β̂, 95% interval low, high) per model, from rows as `_score` takes them (module docstring)."""
    m = len(x)

    def z(shift: float, sign: int = 1):
        """sign · (U/√V)(sign · β) + shift: rising in β (sign −1: the turn from ≤ 0 to > 0, mirrored)."""

        def f(b, rows):
            s, v = _score(sign * b, x[rows], y[rows], d[rows], n[rows])
            return sign * s / np.sqrt(np.maximum(v, 1e-300)) + shift

        return f

    a, b, fa, fb = _bracket(z(0.0), m)
    left = _turn(z(0.0), a.copy(), b.copy(), fa.copy(), fb.copy())  # U turns ≥ 0 here ...
    right = -_turn(z(0.0, -1), -b, -a, -fb, -fa)  # ... and > 0 here: β̂ is the middle of a flat zero (ties)
    beta = (left + right) / 2
    lo = _turn(z(Z95), *_bracket(z(Z95), m))  # U/√V = −z: the lower end
    hi = _turn(z(-Z95), *_bracket(z(-Z95), m))
    return beta, np.minimum(lo, beta), np.maximum(hi, beta)


def _rows(cols: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """(x, y, d, n): the models' samples as rows, padded with x = 0, y = +∞, d = 0."""
    width = max(len(c[0]) for c in cols)
    pad = lambda v, fill: np.array([np.r_[c, np.full(width - len(c), fill)] for c in v])  # noqa: E731
    return (
        pad([c[0] for c in cols], 0.0),
        pad([c[1] for c in cols], np.inf),
        pad([c[2] for c in cols], 0.0),
        np.array([len(c[0]) for c in cols]),
    )


def margin_links(data: list[tuple[np.ndarray, np.ndarray]], censor: float) -> np.ndarray:
    """(β, SE, samples used, censored among them) per model from (minimal ε, margins) pairs: NaN
    where fewer than `MIN_BROKEN` broken samples with a positive margin, or no spread in margins."""
    out = np.full((len(data), 4), math.nan)
    cols, keep = [], []
    for j, (e, mg) in enumerate(data):
        e, mg = np.asarray(e, float), np.asarray(mg, float)
        ok = np.isfinite(mg) & (mg > 0) & ~np.isnan(e) & (e > 0)
        cen = ok & ~np.isfinite(e)
        unc = ok & np.isfinite(e)
        out[j, 2:] = ok.sum(), cen.sum()
        if unc.sum() < MIN_BROKEN or np.ptp(np.log(mg[ok])) == 0 or not math.isfinite(censor):
            continue
        keep.append(j)
        x = np.log(mg[ok])
        y = np.where(cen[ok], math.log(censor), np.log(np.where(unc, e, 1.0)[ok]))
        cols.append((x - x.mean(), y, unc[ok].astype(float)))  # U sees differences of x: centred, sums keep digits
    if not keep:
        return out
    width = max(len(c[0]) for c in cols)
    step = max(1, CHUNK // width)
    for s in range(0, len(keep), step):
        beta, lo, hi = gehan(*_rows(cols[s : s + step]))
        rows = keep[s : s + step]
        out[rows, 0] = beta
        out[rows, 1] = (hi - lo) / (2 * Z95)
    return out


def margin_link(min_eps, margins, censor: float | None = None) -> tuple[float, float, int, int]:
    """One model's (β, SE, samples used, censored); `censor` defaults to its own largest finite ε."""
    e = np.asarray(min_eps, float)
    if censor is None:
        fin = e[np.isfinite(e)]
        censor = float(fin.max()) if len(fin) else math.nan
    r = margin_links([(e, margins)], censor)[0]
    return float(r[0]), float(r[1]), int(r[2]), int(r[3])
