"""The margin link: within each model, log minimal ε regressed on log logit margin — slope 1 when a
sample's margin shrinks linearly with ε (ε_min = margin / rate), 0 with no link.

Never-broken samples are censored, not dropped: their ε lies above the largest ε the attacks reached
(`censor`; the study's largest finite ε when nothing better is known — a lower bound of it). Dropping
them truncates the outcome and pulls the slope towards 0. The fit is the Tobit model (Tobin 1958;
Amemiya 1984): log ε = α + β log margin + σ e, e ~ N(0, 1), right-censored at log `censor`, by
maximum likelihood in Olsen's (1978) parameters (α/σ, β/σ, 1/σ), in which the log-likelihood is
globally concave: Newton steps on all models at once (sums per model by `np.bincount`). β's SE is the
delta-method SE from the observed information. With no censored sample this is OLS (σ by ML).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

MIN_BROKEN = 10
GAIN_TOL = 1e-9  # log-likelihood: a parameter √(2·1e-9) ≈ 4e-5 SEs from its maximum


def _loglik(th: np.ndarray, x: np.ndarray, y: np.ndarray, cens: np.ndarray, idx: np.ndarray, m: int) -> np.ndarray:
    """Per-model log-likelihood alone at parameters th (m, 3): what a line search needs."""
    d0, d1, t = th[idx, 0], th[idx, 1], th[idx, 2]
    lin = d0 + d1 * x - t * y
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = np.where(cens, special.log_ndtr(lin), np.log(t) - 0.5 * lin * lin)
    return np.bincount(idx, ll, minlength=m)


def _terms(th: np.ndarray, x: np.ndarray, y: np.ndarray, cens: np.ndarray, idx: np.ndarray, m: int):
    """Per-model log-likelihood, gradient (m, 3) and Hessian (m, 3, 3) at parameters th (m, 3)."""
    d0, d1, t = th[idx, 0], th[idx, 1], th[idx, 2]
    r = t * y - d0 - d1 * x  # uncensored: standardized residual
    s = d0 + d1 * x - t * y  # censored (y = log censor): Φ(s) = P(beyond the censoring point)
    logp = special.log_ndtr(s)
    lam = np.exp(-0.5 * s * s - 0.5 * math.log(2 * math.pi) - logp)
    ll = np.where(cens, logp, np.log(t) - 0.5 * r * r)
    one = np.ones_like(x)
    g = np.where(cens, lam, r)  # ∂ℓ/∂(δ·x̃) for both
    grad = [g * one, g * x, np.where(cens, -lam * y, 1 / t - r * y)]
    w = np.where(cens, lam * (s + lam), 1.0)  # −∂²ℓ/∂(linear index)²
    v = [one, x, np.where(cens, -y, -y)]
    hess = [[-w * v[a] * v[b] for b in range(3)] for a in range(3)]
    hess[2][2] = np.where(cens, hess[2][2], -1 / t**2 - y * y)
    sums = lambda a: np.bincount(idx, a, minlength=m)  # noqa: E731
    return (
        sums(ll),
        np.stack([sums(a) for a in grad], 1),
        np.stack([np.stack([sums(hess[a][b]) for b in range(3)], 1) for a in range(3)], 1),
    )


def margin_links(data: list[tuple[np.ndarray, np.ndarray]], censor: float, iters: int = 60) -> np.ndarray:
    """(β, SE, samples used, censored among them) per model from (minimal ε, margins) pairs: NaN
    where fewer than `MIN_BROKEN` broken samples with a positive margin, or no spread in margins."""
    out = np.full((len(data), 4), math.nan)
    xs, ys, cs, ids, keep = [], [], [], [], []
    for j, (e, mg) in enumerate(data):
        e, mg = np.asarray(e, float), np.asarray(mg, float)
        ok = np.isfinite(mg) & (mg > 0) & ~np.isnan(e) & (e > 0)
        cen = ok & ~np.isfinite(e)
        unc = ok & np.isfinite(e)
        out[j, 2:] = ok.sum(), cen.sum()
        if unc.sum() < MIN_BROKEN or np.ptp(np.log(mg[ok])) == 0 or not math.isfinite(censor):
            continue
        keep.append(j)
        xs.append(np.log(mg[ok]))
        ys.append(np.where(cen[ok], math.log(censor), np.log(np.where(unc, e, 1.0)[ok])))
        cs.append(cen[ok])
        ids.append(np.full(ok.sum(), len(keep) - 1))
    if not keep:
        return out
    x, y, cens, idx = (np.concatenate(v) for v in (xs, ys, cs, ids))
    m = len(keep)
    th = _newton(_start(x, y, cens, idx, m), x, y, cens, idx, iters)
    _, _, hess = _terms(th, x, y, cens, idx, m)
    cov = np.linalg.inv(-hess)
    beta = th[:, 1] / th[:, 2]
    g = np.stack([np.zeros(m), 1 / th[:, 2], -th[:, 1] / th[:, 2] ** 2], 1)
    out[keep, 0] = beta
    out[keep, 1] = np.sqrt(np.einsum("mi,mij,mj->m", g, cov, g))
    return out


def _newton(th: np.ndarray, x, y, cens, idx, iters: int) -> np.ndarray:
    """Newton steps with step halving until each model's likelihood rises (it is concave: it will).
    A model is done when its Newton decrement (the gain the step predicts, ½·g·step) is below
    `GAIN_TOL`, 4e-5 of its SE from the maximum, and leaves the active set with its samples: below
    that, the log-likelihood's rounding noise (~1e-9 summed over a model's samples) decides whether a
    step "rises", and a model at that floor kept every model's line search halving twenty times per
    step (samples are grouped by model in `idx`, ascending)."""
    th = th.copy()
    active = np.arange(len(th))
    for _ in range(iters):
        if not len(active):
            break
        rows = np.zeros(len(th), bool)
        rows[active] = True
        mask = rows[idx]
        a_idx = np.searchsorted(active, idx[mask])  # model positions inside the active set
        xa, ya, ca, na = x[mask], y[mask], cens[mask], len(active)
        cur = th[active]
        ll, grad, hess = _terms(cur, xa, ya, ca, a_idx, na)
        step = np.linalg.solve(hess - 1e-10 * np.eye(3), -grad[..., None])[..., 0]
        t, new = np.ones(na), cur.copy()
        gain = 0.5 * (grad * step).sum(1)
        todo = gain >= GAIN_TOL  # the others are at their maximum
        for _ in range(20):  # halve until every model's likelihood rises
            if not todo.any():
                break
            cand = cur + t[:, None] * step
            cand[:, 2] = np.maximum(cand[:, 2], cur[:, 2] / 4)
            up = todo & (_loglik(cand, xa, ya, ca, a_idx, na) >= ll - 1e-12)
            new[up] = cand[up]
            todo &= ~up
            t[todo] /= 2
        th[active] = new
        active = active[(np.abs(new - cur).max(1) >= 1e-10) & (gain >= GAIN_TOL)]
    return th


def _start(x, y, cens, idx, m) -> np.ndarray:
    """OLS on each model's broken samples, in Olsen's parameters."""
    sums = lambda a: np.bincount(idx, np.where(cens, 0.0, a), minlength=m)  # noqa: E731
    n, sx, sy, sxx, sxy = sums(np.ones_like(x)), sums(x), sums(y), sums(x * x), sums(x * y)
    b = (sxy - sx * sy / n) / (sxx - sx * sx / n)
    a = (sy - b * sx) / n
    res = np.bincount(idx, np.where(cens, 0.0, (y - a[idx] - b[idx] * x) ** 2), minlength=m)
    sd = np.sqrt(np.maximum(res / n, 1e-12))
    return np.column_stack([a / sd, b / sd, 1 / sd])


def margin_link(min_eps, margins, censor: float | None = None) -> tuple[float, float, int, int]:
    """One model's (β, SE, samples used, censored); `censor` defaults to its own largest finite ε."""
    e = np.asarray(min_eps, float)
    if censor is None:
        fin = e[np.isfinite(e)]
        censor = float(fin.max()) if len(fin) else math.nan
    r = margin_links([(e, margins)], censor)[0]
    return float(r[0]), float(r[1]), int(r[2]), int(r[3])
