"""Study-level tests of the power law on the models' censored exponential fits (analysis.hill), each
a plain parametric bootstrap (Davison & Hinkley 1997, §4.2) from the fitted null: the same models,
the same cells and sample counts, counts redrawn, everything refitted. A Monte Carlo p-value
(1 + #{T_b ≥ T}) / (B + 1) keeps its size exactly at any B where (B + 1)·α is whole (Dufour 2006), so
B only buys power: `N_GOF` = 199 (Davison & Hinkley's range for a 5% test is 99–999), lowered to
99, 39 or 19 in studies so large that B × models × cells would pass `DRAW_BUDGET` (their tests have
power to spare; `n_sim` says which B ran).

- form: the Rao score test of the curvature c (hill.curvature) in each model, summed as Σ z²
  (m degrees of freedom asymptotically), bootstrapped from each model's own fitted k;
- homogeneity: the likelihood ratio of one k for all models against one k each (m − 1 degrees of
  freedom asymptotically, Bartlett's test for exponential rates; bootstrapped from the common k,
  since with 10–30 breaks per model its χ² reference is biased upward by about 1/(6·breaks) per model).
"""

from __future__ import annotations

import numpy as np

from . import hill

N_GOF = 199
DRAW_BUDGET = 1e7  # cells drawn in one bootstrap (B × models × cells)
STEPS = (199, 99, 39, 19)


def n_replicates(edges: np.ndarray, n_sim: int) -> int:
    """`n_sim`, or the largest of `STEPS` below it that keeps the bootstrap within `DRAW_BUDGET`."""
    size = edges.shape[0] * (edges.shape[1] + 1)
    for b in (n_sim, *[s for s in STEPS if s < n_sim]):
        if b * size <= DRAW_BUDGET:
            return b
    return min(n_sim, STEPS[-1])


def mc_p(observed: float, replicates: np.ndarray) -> float:
    """Upper-tail Monte Carlo p-value."""
    return float((1 + (replicates >= observed).sum()) / (len(replicates) + 1))


def _usable(edges: np.ndarray, counts: np.ndarray) -> np.ndarray:
    k = hill.fit(edges, counts)
    return np.isfinite(k) & (k > hill.K_MIN * 1.01) & (k < hill.K_MAX * 0.99)


def _replicates(edges, counts, k, n_sim: int, seed: int, stat) -> np.ndarray:
    """`stat(edges, counts, b, m)` → one number per study, on `n_sim` studies drawn with rates k."""
    rng = np.random.default_rng(seed)
    m, n = len(edges), counts.sum(1)
    out = []
    for b in hill.replicate_chunks(m, edges.shape[1] + 1, n_sim):
        e = np.tile(edges, (b, 1))
        out.append(stat(e, hill.draw(e, np.tile(n, b), np.tile(k, b), rng), b, m))
    return np.concatenate(out)


def _score_sum(edges: np.ndarray, counts: np.ndarray) -> float:
    """Σ z² over the models (rows) of the observed study."""
    z = hill.curvature(edges, counts, hill.fit(edges, counts))["z"]
    return float(np.where(np.isfinite(z), z * z, 0.0).sum())


def form_test(edges: np.ndarray, counts: np.ndarray, *, n_sim: int = N_GOF, seed: int = 0) -> dict:
    """The summed curvature score statistic Σ z² over models and its parametric-bootstrap p, and each
    model's bootstrap bias of the one-step curvature estimate (`c_bias`, NaN for unusable rows): at
    c = 0 the score at k̂ has mean −2/k² (exact, uncensored), a bias of −k²/(2d) in ĉ, which the same
    replicates estimate for censored and binned cells (Efron & Tibshirani 1993, §10.3)."""
    keep = _usable(edges, counts)
    e, c = edges[keep], counts[keep]
    t = _score_sum(e, c)
    b = n_replicates(e, n_sim)
    m, k = len(e), hill.fit(e, c)
    cs = []

    def stat(e_, d_, nb, m_):
        kb = hill.fit(e_, d_)
        cv = hill.curvature(e_, d_, kb)
        cs.append(np.where(np.isfinite(cv["c"]), cv["c"], np.nan).reshape(nb, m_))
        return np.where(np.isfinite(cv["z"]), cv["z"] ** 2, 0.0).reshape(nb, m_).sum(1)

    reps = _replicates(e, c, k, b, seed, stat)
    bias = np.full(len(edges), np.nan)
    if m:  # a replicate without a curvature (no breaks in a cell of positive width) does not count
        cc = np.concatenate(cs)
        ok = np.isfinite(cc)
        bias[keep] = np.where(ok, cc, 0.0).sum(0) / np.maximum(ok.sum(0), 1)
    return {"statistic": t, "df": int(keep.sum()), "p_value": mc_p(t, reps), "n_sim": b, "c_bias": bias}


def _lr(edges: np.ndarray, counts: np.ndarray, b: int = 1, m: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The LR statistic of one common k in each of b studies of m models, and that k."""
    m = m or len(edges)
    k = hill.fit(edges, counts)
    groups = np.repeat(np.arange(b), m)
    k0 = hill.common_rate(edges, counts, np.nanmedian(k.reshape(b, m), 1), groups)
    gain = hill.loglik(edges, counts, k) - hill.loglik(edges, counts, k0[groups])
    return np.maximum(0.0, 2 * gain.reshape(b, m).sum(1)), k0


def homogeneity_test(edges: np.ndarray, counts: np.ndarray, *, n_sim: int = N_GOF, seed: int = 0) -> dict:
    """The likelihood-ratio test that all models share one k, with its parametric-bootstrap p."""
    keep = _usable(edges, counts)
    e, c = edges[keep], counts[keep]
    (lr,), (k0,) = _lr(e, c)
    b = n_replicates(e, n_sim)
    reps = _replicates(e, c, np.full(len(e), k0), b, seed, lambda e_, d_, b_, m_: _lr(e_, d_, b_, m_)[0])
    return {
        "statistic": float(lr),
        "df": int(keep.sum()) - 1,
        "common_k": float(k0),
        "p_value": mc_p(lr, reps),
        "n_sim": b,
    }
