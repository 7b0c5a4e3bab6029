"""An adversarial generator of per-sample minimal ε and logit margins, written apart from the
power-law analysis it checks (no import from robustarch): the cases real studies have and the first
generator (calibration.samples) kept out.

- saturation: each model's error is an exact power law up to its own saturation ε_sat, then flat;
  ε_sat spreads over a decade across models, so weak models reach their plateau (100 % error when
  nothing is left unbroken) inside any window shared by all models;
- never broken: a share s ~ U(never) of each model's samples is never broken (ε = ∞): the plateau
  sits at 1 − s;
- unequal sample counts: n_j ~ U{n/2, …, 3n/2};
- related models: `families` groups whose members share half of the spread of k;
- quantized ε: `bsearch8` reports the upper end of an 8-step bisection on [0, ε_max] (256 steps),
  `grid` the smallest point of the suite's ε grid (`quick`: 0.02 … 0.3) at which the sample broke;
- heavy-tailed link noise: with `link`, log ε = link · log margin + log c + t₂ noise, and samples
  beyond the attack's ε_max are never broken (censored, not missing).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EPS_MAX = 0.3  # the attack's largest ε: a sample not broken by then is reported as ε = ∞
SUITE_GRID = np.array([0.02, 0.05, 0.1, 0.15, 0.2, 0.3])  # the `quick` suite's ε grid


def quantize(eps: np.ndarray, how: str | None) -> np.ndarray:
    """ε as an attack would report it: exact, after an 8-step bisection, or on the suite's grid."""
    if how is None:
        return eps
    out = np.full(eps.shape, np.inf)
    ok = eps <= EPS_MAX
    if how == "bsearch8":
        out[ok] = np.ceil(eps[ok] / EPS_MAX * 256).clip(1) / 256 * EPS_MAX
    elif how == "grid":
        out[ok] = SUITE_GRID[np.searchsorted(SUITE_GRID, eps[ok], side="left")]
    else:
        raise ValueError(how)
    return out


def exponents(rng, m: int, k: float, tau: float, families: int) -> np.ndarray:
    """Per-model k around `k` with SD `tau` (normal), half of its variance shared within families."""
    if families:
        fam = rng.integers(0, families, m)
        return k + tau * np.sqrt(0.5) * (rng.standard_normal(families)[fam] + rng.standard_normal(m))
    return k + tau * rng.standard_normal(m)


def power_samples(
    rng,
    m: int,
    n: int,
    *,
    k: float | np.ndarray = 1.5,
    tau: float = 0.0,
    families: int = 0,
    never: tuple[float, float] = (0.0, 0.5),
    quant: str | None = None,
    unequal: bool = True,
    tail_shift: float | None = 0.0,
    form: str = "power",
    bend: float = 0.0,
) -> pd.DataFrame:
    """m models: error = (1 − s)·min(1, (ε/ε_sat)^k) (form `power`) or (1 − s)·(1 − exp(−ε/ε_sat))
    (`exponential`, the alternative); margins independent of ε with small-margin tail exponent
    k + `tail_shift`. With `bend`, log error is quadratic in log ε (x = ln(ε/ε_sat)): ln(1 − s) + k x
    + c x², c = bend / (2 ln 10), so the local log–log slope changes by `bend` over any decade."""
    ks = np.broadcast_to(np.asarray(k, float), (m,)).copy() if tau == 0 else exponents(rng, m, float(k), tau, families)
    ks = ks.clip(0.2)
    sizes = rng.integers(max(2, n // 2), 3 * n // 2 + 1, m) if unequal else np.full(m, n)
    sat = EPS_MAX * 10 ** rng.uniform(-1.0, 0.0, m)  # a decade of scales: weak models saturate early
    share = rng.uniform(*never, m)
    rows = []
    for j in range(m):
        u = rng.random(sizes[j])
        broken = u < 1 - share[j]
        v = u / (1 - share[j])  # uniform on (0, 1) among the broken
        eps = sat[j] * _inverse(v, ks[j], bend / (2 * np.log(10)), form)
        eps = quantize(np.where(broken, eps, np.inf), quant)
        margin = rng.random(sizes[j]) ** (1 / (ks[j] + tail_shift)) if tail_shift is not None else rng.random(sizes[j])
        rows.append(
            pd.DataFrame({"trial": j, "minimization_min_eps": eps, "min_adversarial_eps": eps, "margin": margin})
        )
    return pd.concat(rows, ignore_index=True)


def _inverse(v: np.ndarray, k: float, c: float, form: str) -> np.ndarray:
    """ε / ε_sat at CDF share v (among the broken) of the power law (with curvature c) or exponential."""
    if form == "exponential":
        return -np.log1p(-v * (1 - np.exp(-1.0)))
    if c == 0:
        return v ** (1 / k)
    disc = np.maximum(k * k + 4 * c * np.log(v), 0.0)  # c x² + k x = ln v, the root with x ≤ 0
    return np.exp((-k + np.sqrt(disc)) / (2 * c))


def link_samples(
    rng,
    m: int,
    n: int,
    *,
    link: float = 1.25,
    noise: float = 0.3,
    df: float | None = 2.0,
    unequal: bool = True,
    censor: tuple[float, float] = (-0.6, 0.25),
) -> pd.DataFrame:
    """Margins first (tail exponent 1.5), then log ε = link · log margin + log c_j + noise (t with `df`
    degrees of freedom scaled by `noise`, or normal with df None); ε beyond the attack's ε_max is
    never broken. log10(c_j / ε_max) ~ U(censor): from almost no to about half the samples censored."""
    sizes = rng.integers(max(2, n // 2), 3 * n // 2 + 1, m) if unequal else np.full(m, n)
    rows = []
    for j in range(m):
        margin = rng.random(sizes[j]) ** (1 / 1.5)
        e = rng.standard_t(df, sizes[j]) if df else rng.standard_normal(sizes[j])
        eps = EPS_MAX * 10 ** rng.uniform(*censor) * margin**link * np.exp(noise * e)
        eps = np.where(eps <= EPS_MAX, eps, np.inf)
        rows.append(
            pd.DataFrame({"trial": j, "minimization_min_eps": eps, "min_adversarial_eps": eps, "margin": margin})
        )
    return pd.concat(rows, ignore_index=True)


ADV = "saturating power laws, never-broken 0–50%, unequal n"


def power_scenarios(models) -> dict:
    """The adversarial scenarios of the power-law claims, as calibration.SCENARIOS entries:
    name → (claims, what the rate is, the truth, model-table maker, samples maker)."""
    ps = lambda **kw: lambda r, m, n: power_samples(r, m, n, **kw)  # noqa: E731
    return {
        "adv_power_null": ("power_law+universality", "size", f"{ADV}, one k = 1.5", models, ps()),
        "adv_power_bsearch8": (
            "power_law+universality",
            "size",
            f"{ADV}, ε from an 8-step bisection",
            models,
            ps(quant="bsearch8"),
        ),
        "adv_power_grid": (
            "power_law+universality",
            "size",
            f"{ADV}, ε on the quick suite's grid",
            models,
            ps(quant="grid"),
        ),
        "adv_power_exponential": ("power_law", "power", f"{ADV}, exponential CDF", models, ps(form="exponential")),
        "adv_bend_up": (
            "power_law",
            "size",
            f"{ADV}, log–log slope rises 0.2 a decade (the margin)",
            models,
            ps(bend=0.2),
        ),
        "adv_bend_down": (
            "power_law",
            "size",
            f"{ADV}, log–log slope falls 0.2 a decade (the margin)",
            models,
            ps(bend=-0.2),
        ),
        "adv_universality_margin": ("universality", "size", f"{ADV}, τ = 0.1 (the margin)", models, ps(tau=0.1)),
        "adv_universality_families": (
            "universality",
            "size",
            f"{ADV}, τ = 0.1 (the margin), 4 families",
            models,
            ps(tau=0.1, families=4),
        ),
        "adv_universality_spread": ("universality", "power", f"{ADV}, τ = 0.3", models, ps(tau=0.3)),
        "adv_link_high": (
            "margin_explains_slope",
            "size",
            "link slope 1.25 (the margin), t₂ noise, censored 0–50%",
            models,
            lambda r, m, n: link_samples(r, m, n, link=1.25),
        ),
        "adv_link_low": (
            "margin_explains_slope",
            "size",
            "link slope 0.75 (the margin), t₂ noise, censored 0–50%",
            models,
            lambda r, m, n: link_samples(r, m, n, link=0.75),
        ),
        "adv_link_one": (
            "margin_explains_slope",
            "power",
            "link slope 1, t₂ noise, censored 0–50%",
            models,
            lambda r, m, n: link_samples(r, m, n, link=1.0),
        ),
        "adv_shape_high": (
            "slope_matches_margin_tail",
            "size",
            f"{ADV}, tail exponent k + 0.25 (the margin)",
            models,
            ps(tail_shift=0.25),
        ),
        "adv_shape_low": (
            "slope_matches_margin_tail",
            "size",
            f"{ADV}, tail exponent k − 0.25 (the margin)",
            models,
            ps(tail_shift=-0.25),
        ),
        "adv_shape_equal": ("slope_matches_margin_tail", "power", f"{ADV}, tail exponent = k", models, ps()),
    }


# the p a scenario's rate is about, where it is not the claim's `p_value`
POWER_P_OF = {
    "adv_bend_up": "p_flat",
    "adv_bend_down": "p_flat",
    "adv_universality_margin": "p_below",
    "adv_universality_families": "p_below",
}
