"""Universality's "supported" path: is the between-model SD τ of k below the margin?

Model: across models k_j ~ Gamma with mean μ and SD τ (a gamma frailty: Vaupel, Manton & Stallard
1979; Clayton 1978), and given k_j, model j's cells follow its censored exponential (analysis.hill).
Each model's likelihood in k is taken in the form it has for continuous censored data, k^d·e^(−kT),
with d = k̂²·J and T = k̂·J (k̂ its MLE, J the observed information there): exact for continuous ε
(up to the fine cells), a quadratic match around k̂ on a grid. The marginal likelihood is then
closed form: Σ_j log Γ(α + d_j) − log Γ(α) + α log β − (α + d_j) log(β + T_j), α = μ²/τ², β = μ/τ².

The test of H0: τ ≥ margin is the signed root of the profile likelihood ratio,
r = sign(τ̂ − margin)·√(2·(ℓ(μ̂, τ̂) − max_μ ℓ(μ, margin))), referred to a parametric bootstrap at the
null's fit (μ̂ at τ = margin, τ = margin): the ML τ̂ is biased low with few models (as a variance
component's ML estimate is), so N(0, 1) would be liberal. p = (1 + #{r_b ≤ r}) / (B + 1). The printed
upper bound is the τ at which r reaches the bootstrap's critical value: below the margin exactly when
p ≤ α, so the sentence and the interval agree.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

from . import hill

ALPHA = 0.05


def kernels(edges: np.ndarray, counts: np.ndarray, k: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(d, T) per model: its likelihood in k as k^d·e^(−kT) (see the module docstring)."""
    k = hill.fit(edges, counts) if k is None else k
    j = hill.observed_info(edges, counts, k)
    return k * k * j, k * j


def _sums(groups: np.ndarray, g: int, *vals: np.ndarray) -> list[np.ndarray]:
    return [np.bincount(groups, v, minlength=g) for v in vals]


def _terms(a: np.ndarray, b: np.ndarray, d: np.ndarray, t: np.ndarray, groups: np.ndarray):
    """Per group: ℓ and its derivatives in (α, β) (digamma/trigamma: closed form)."""
    g = len(a)
    ai, bi = a[groups], b[groups]
    ll, la, lb, laa, lab, lbb = _sums(
        groups,
        g,
        special.gammaln(ai + d) - special.gammaln(ai) + ai * np.log(bi) - (ai + d) * np.log(bi + t),
        special.digamma(ai + d) - special.digamma(ai) + np.log(bi) - np.log(bi + t),
        ai / bi - (ai + d) / (bi + t),
        special.polygamma(1, ai + d) - special.polygamma(1, ai),
        1 / bi - 1 / (bi + t),
        -ai / bi**2 + (ai + d) / (bi + t) ** 2,
    )
    return ll, la, lb, laa, lab, lbb


def _loglik(a, b, d, t, groups) -> np.ndarray:
    ai, bi = a[groups], b[groups]
    return np.bincount(
        groups,
        special.gammaln(ai + d) - special.gammaln(ai) + ai * np.log(bi) - (ai + d) * np.log(bi + t),
        minlength=len(a),
    )


def _rows(d: np.ndarray, t: np.ndarray, groups: np.ndarray, ng: int, sub: np.ndarray):
    """The models of the groups `sub` (indices): their d, t and group positions within `sub`."""
    where = np.full(ng, -1)
    where[sub] = np.arange(len(sub))
    pos = where[groups]
    keep = pos >= 0
    return d[keep], t[keep], pos[keep]


def _newton(x: np.ndarray, value, step, top: float = math.inf, iters: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Maximize each group's `value(x, sub)` from x (groups, p), x ≤ `top`, by `step(x, sub)` →
    ascent direction (both of the groups `sub`, x their rows), halving a step until the value rises
    (rows that cannot rise stop). A group whose step moved it by < 1e-8 is done: only the groups
    still moving, and in a line search only those still halving, are evaluated, so a few groups at
    their rounding floor (30 halvings) no longer cost a pass over every bootstrap replicate each."""
    x = x.copy()
    v = value(x, np.arange(len(x)))
    active = np.arange(len(x))
    for _ in range(iters):
        if not len(active):
            break
        xa, va = x[active], v[active]
        dx = step(xa, active)
        dx = np.where((xa >= top) & (dx > 0), 0.0, dx)  # at the cap: one k, nothing to gain upwards
        t = np.ones(len(active))
        new, nv = xa.copy(), va.copy()
        todo = np.arange(len(active))
        for _ in range(30):
            cand = np.minimum(xa[todo] + t[todo, None] * dx[todo], top)
            cv = value(cand, active[todo])
            up = cv >= va[todo]
            new[todo[up]], nv[todo[up]] = cand[up], cv[up]
            todo = todo[~up]
            if not len(todo):
                break
            t[todo] /= 2
        x[active], v[active] = new, nv
        active = active[np.abs(new - xa).max(1) >= 1e-8]
    return x, v


LOG_A_MAX = math.log(1e8)  # α = (μ/τ)²: τ below μ/10⁴ is one k for all models


def fit(d: np.ndarray, t: np.ndarray, groups: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """(μ̂, τ̂, maximum log-likelihood) per group, by Newton's method in (log α, log β) (a
    Levenberg-damped Hessian where it is not negative definite)."""
    groups = np.zeros(len(d), int) if groups is None else groups
    ng = int(groups.max()) + 1
    k = d / t
    mu = np.bincount(groups, k, minlength=ng) / np.bincount(groups, minlength=ng)
    var = np.maximum(
        np.bincount(groups, k * k, minlength=ng) / np.bincount(groups, minlength=ng) - mu**2, (0.1 * mu) ** 2
    )
    x0 = np.column_stack([np.log(mu**2 / var), np.log(mu / var)])

    def value(x, sub):
        with np.errstate(all="ignore"):
            v = _loglik(
                np.exp(np.minimum(x[:, 0], LOG_A_MAX)),
                np.exp(np.minimum(x[:, 1], LOG_A_MAX)),
                *_rows(d, t, groups, ng, sub),
            )
        return np.where(np.isfinite(v), v, -np.inf)

    def step(x, sub):
        a, b = np.exp(np.minimum(x[:, 0], LOG_A_MAX)), np.exp(np.minimum(x[:, 1], LOG_A_MAX))
        _, la, lb, laa, lab, lbb = _terms(a, b, *_rows(d, t, groups, ng, sub))
        grad = np.column_stack([a * la, b * lb])
        h = np.stack(
            [
                np.column_stack([a * a * laa + a * la, a * b * lab]),
                np.column_stack([a * b * lab, b * b * lbb + b * lb]),
            ],
            1,
        )
        lam = np.maximum(0.0, np.linalg.eigvalsh(h).max(1)) * 1.01 + 1e-9  # −H + λI positive definite
        return np.linalg.solve(-h + lam[:, None, None] * np.eye(2), grad[..., None])[..., 0]

    x, v = _newton(np.minimum(x0, LOG_A_MAX), value, step, top=LOG_A_MAX)
    a, b = np.exp(x[:, 0]), np.exp(x[:, 1])
    return a / b, np.sqrt(a) / b, v


def profile(tau: float, d: np.ndarray, t: np.ndarray, mu0: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, ...]:
    """(μ̂ at τ, the profile log-likelihood there) per group: Newton in log μ (α = μ²/τ², β = μ/τ²)."""
    s = tau * tau
    ng = len(mu0)

    def value(x, sub):
        mu = np.exp(x[:, 0])
        return _loglik(mu * mu / s, mu / s, *_rows(d, t, groups, ng, sub))

    def step(x, sub):
        mu = np.exp(x[:, 0])
        _, la, lb, laa, lab, lbb = _terms(mu * mu / s, mu / s, *_rows(d, t, groups, ng, sub))
        da, db = 2 * mu * mu / s, mu / s  # ∂α/∂log μ, ∂β/∂log μ
        g = la * da + lb * db
        h = laa * da * da + 2 * lab * da * db + lbb * db * db + la * 2 * da + lb * db
        return (np.where(h < 0, -g / np.where(h < 0, h, -1.0), 0.1 * np.sign(g)))[:, None]

    x, v = _newton(np.log(mu0)[:, None], value, step)
    return np.exp(x[:, 0]), v


def signed_root(tau0: float, d: np.ndarray, t: np.ndarray, groups: np.ndarray | None = None, best=None):
    """(r at τ0, τ̂, μ̂ at τ0) per group (`best`: the groups' `fit`, when known)."""
    groups = np.zeros(len(d), int) if groups is None else groups
    mu, tau, best = fit(d, t, groups) if best is None else best
    mu0, ll0 = profile(tau0, d, t, mu, groups)
    return np.copysign(np.sqrt(np.maximum(0.0, 2 * (best - ll0))), tau - tau0), tau, mu0


def tau_below_test(edges: np.ndarray, counts: np.ndarray, margin: float, *, n_sim: int, seed: int = 0) -> dict:
    """p of H0: τ ≥ margin (small: τ shown below it), τ̂, μ̂ and the calibrated upper bound."""
    k = hill.fit(edges, counts)
    d, t = kernels(edges, counts, k)
    ok = np.isfinite(d) & np.isfinite(t) & (t > 0) & (d > 0)
    edges, counts, d, t = edges[ok], counts[ok], d[ok], t[ok]
    if len(d) < 2:  # no model with information on its k: no test
        return {"p_below": math.nan, "tau": math.nan, "tau_upper": math.nan, "r": math.nan, "n_sim": 0}
    (r,), (tau_hat,), (mu0,) = signed_root(margin, d, t)
    rng = np.random.default_rng(seed)
    a, b = mu0 * mu0 / margin**2, mu0 / margin**2
    m, n = len(d), counts.sum(1)
    reps = []
    for nb in hill.replicate_chunks(m, edges.shape[1] + 1, n_sim):
        e = np.tile(edges, (nb, 1))
        kb = np.clip(rng.gamma(a, 1 / b, nb * m), hill.K_MIN, hill.K_MAX)
        db, tb = kernels(e, hill.draw(e, np.tile(n, nb), kb, rng))
        groups = np.repeat(np.arange(nb), m)
        good = np.isfinite(db) & np.isfinite(tb) & (tb > 0) & (db > 0)
        reps.append(signed_root(margin, db[good], tb[good], groups[good])[0])
    reps = np.concatenate(reps)
    p = float((1 + (reps <= r).sum()) / (n_sim + 1))
    j = math.ceil(ALPHA * (n_sim + 1)) - 1  # p ≤ α ⇔ r < the (j + 1)-th smallest replicate
    crit = float(np.sort(reps)[j]) if j < n_sim else -math.inf
    return {
        "p_below": p,
        "tau": float(tau_hat),
        "tau_upper": _upper(crit, d, t, float(tau_hat), margin),
        "r": float(r),
        "n_sim": n_sim,
    }


def _upper(crit: float, d: np.ndarray, t: np.ndarray, tau_hat: float, margin: float) -> float:
    """The τ where the signed root falls to `crit` (r decreases in τ)."""
    best = fit(d, t)
    f = lambda tau: float(signed_root(tau, d, t, best=best)[0][0]) - crit  # noqa: E731
    lo = max(tau_hat, 1e-6)
    if not math.isfinite(crit):
        return math.inf
    if f(lo) < 0:
        return lo
    hi = max(lo, margin) * 2
    while f(hi) > 0 and hi < 1e3:
        hi *= 2
    return float(optimize.brentq(f, lo, hi, xtol=1e-4)) if f(hi) <= 0 else math.inf
