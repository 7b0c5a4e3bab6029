"""The joint error of a model's robust and clean accuracy: their error variances and, unlike
analysis.noise alone, their error covariance, which a correction for attenuation must take out too.

One trained model's two numbers share errors twice over:
- evaluation: both are means over one test sample, and a robust-correct sample is clean-correct (an
  attack never turns a wrong answer right), so the two means covary by (P(both correct) − c·r)/n =
  r(1 − c)/n per model (`eval_covariance`);
- training seed: a seed that trains a better clean model tends to train a more robust one; this
  covariance is estimated from replicates, as the within-architecture covariance of the two numbers
  beyond the evaluation one (the bivariate one-way ANOVA / MANOVA estimator of the covariance
  component; Searle, Casella & McCulloch 1992, §11.1).
The corrected correlation is then Fuller's (1987, §1.1.2, §2.2) method-of-moments one:
(cov_obs − cov_err) / √((var_x − err_x)(var_y − err_y)), with every moment re-estimated on every
bootstrap resample over architectures (`JointError.moments`), linear in the number of architectures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .noise import SE_SUFFIX, WITHIN_EVAL_SUFFIX, WITHIN_SS_SUFFIX, error_variance

ROBUST, CLEAN = "robust_accuracy", "clean_accuracy"
# per model: the evaluation covariance of its robust and clean accuracy (optional in `analyze`; else
# derived from the SEs, `eval_covariance`); per architecture: the within cross-products and their
# evaluation part on the same k − 1 degrees of freedom (analysis.components.per_architecture)
EVAL_COV = "robust_clean_eval_cov"
WITHIN_SP, WITHIN_EVAL_COV = "robust_clean_within_sp", "robust_clean_within_eval"


def eval_covariance(table: pd.DataFrame) -> np.ndarray | None:
    """Each model's evaluation covariance of robust and clean accuracy: the `robust_clean_eval_cov`
    column where given, else, from the SEs alone, the one-test-sample value r(1 − c)/n with n read
    off the clean SE (c(1 − c)/SE_c², so (r/c)·SE_c²) or else the robust SE. That assumes both
    numbers come from the same test sample with robust-correct ⊂ clean-correct; a table whose numbers
    come from separate samples says so with a column of zeros; a model whose numbers could not be
    nested (outside [0, 1], or r > c) gets 0. None when nothing is known."""
    if EVAL_COV in table:
        v = pd.to_numeric(table[EVAL_COV], errors="coerce").to_numpy(float)
    else:
        r, c = (
            pd.to_numeric(table[k], errors="coerce").to_numpy(float) if k in table else None for k in (ROBUST, CLEAN)
        )
        if r is None or c is None:
            return None
        se_c, se_r = (
            pd.to_numeric(table[k + SE_SUFFIX], errors="coerce").to_numpy(float) if k + SE_SUFFIX in table else None
            for k in (CLEAN, ROBUST)
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            from_c = r / c * se_c**2 if se_c is not None else np.full(len(r), np.nan)
            from_r = se_r**2 * (1 - c) / (1 - r) if se_r is not None else np.full(len(r), np.nan)
        v = np.where(np.isfinite(from_c), from_c, from_r)
        # numbers that cannot be nested counts on one sample (not accuracies, or r > c) share no error
        v = np.where((r >= 0) & (r <= c) & (c <= 1) | ~np.isfinite(v), v, 0.0)
    if not np.isfinite(v).any():
        return None
    return np.where(np.isfinite(v), v, np.nanmean(v))


@dataclass
class Part:
    """One entry of the 2 × 2 error covariance (robust-robust, clean-clean or robust-clean), per
    architecture: `fixed` + `per_seed`·σ_seed, σ_seed re-estimated per resample from the within sums."""

    fixed: np.ndarray
    within: np.ndarray  # sum of squares (or cross-products) of the seeds around their mean
    within_eval: np.ndarray  # its evaluation part, (k − 1)·mean of the seeds' evaluation (co)variance


@dataclass
class JointError:
    """The error covariance of (robust, clean) of every architecture, with the seed part re-estimated
    on each bootstrap resample. `per_seed` is 1/k for a mean over k seeds (0 without replicates)."""

    rr: Part
    cc: Part
    rc: Part
    per_seed: np.ndarray
    df: np.ndarray  # k − 1
    known: tuple[bool, bool] = (True, True)  # whether the table says anything about robust's, clean's noise

    def subset(self, keep: np.ndarray) -> JointError:
        """The architectures `keep` (a boolean mask)."""
        rr, cc, rc = (Part(p.fixed[keep], p.within[keep], p.within_eval[keep]) for p in (self.rr, self.cc, self.rc))
        return JointError(rr, cc, rc, self.per_seed[keep], self.df[keep], self.known)

    def seed_covariance(self, counts: np.ndarray) -> np.ndarray:
        """σ_seed (B × 3: rr, cc, rc) of each resample: the ANOVA estimators, variances floored at 0
        and the covariance held inside ±√(σ_rr σ_cc) (a covariance matrix is positive semi-definite);
        NaN where the resample draws no architecture with two seeds."""
        df = counts @ self.df
        with np.errstate(invalid="ignore", divide="ignore"):
            est = [
                np.where(df > 0, (counts @ (p.within - p.within_eval)) / df, np.nan)
                for p in (self.rr, self.cc, self.rc)
            ]
            vr, vc = np.maximum(est[0], 0.0), np.maximum(est[1], 0.0)
            bound = np.sqrt(vr * vc)
            return np.column_stack([vr, vc, np.clip(est[2], -bound, bound)])

    def moments(self, ax, bx, ay, by, counts: np.ndarray) -> np.ndarray:
        """Per resample (B × 3), the mean over the drawn architectures of the error variance of x, of y,
        and their error covariance, where x's error is ax·δrobust + bx·δclean (coefficients per
        architecture: the delta method for a ratio) and y's likewise."""
        w = np.column_stack
        coef = {"rr": (ax * ax, ay * ay, ax * ay), "cc": (bx * bx, by * by, bx * by)}
        coef["rc"] = (2 * ax * bx, 2 * ay * by, ax * by + bx * ay)
        parts = {"rr": self.rr, "cc": self.cc, "rc": self.rc}
        seeded = bool(self.per_seed.any())
        seed = self.seed_covariance(counts) if seeded else np.zeros((len(counts), 3))
        total = counts.sum(1)
        out = np.zeros((len(counts), 3))
        for j, name in enumerate(("rr", "cc", "rc")):
            c = np.asarray(coef[name], float).reshape(3, -1) * np.ones((3, len(self.per_seed)))
            out += counts @ w([ci * parts[name].fixed for ci in c])
            if seeded:
                out += (counts @ w([ci * self.per_seed for ci in c])) * seed[:, [j]]
        return out / total[:, None]


def _sums(table: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    z = np.zeros(len(table))
    if column + WITHIN_SS_SUFFIX not in table:
        return z, z
    return tuple(
        np.nan_to_num(pd.to_numeric(table[column + s], errors="coerce").to_numpy(float))
        for s in (WITHIN_SS_SUFFIX, WITHIN_EVAL_SUFFIX)
    )


def joint_error(table: pd.DataFrame) -> JointError | None:
    """The `JointError` of a table of architectures (analysis.components.per_architecture; or of
    single-seed models): the fixed parts from the SEs (and a stated `_seed_sd`, whose seed covariance
    with the other number is then unknown and taken as 0), the seed parts from the within sums where
    replicates left them; None when the table says nothing about noise."""
    n = len(table)
    replicated = all(c in table for c in (ROBUST + WITHIN_SS_SUFFIX, CLEAN + WITHIN_SS_SUFFIX, "seeds"))
    fixed = []
    for col in (ROBUST, CLEAN):
        if replicated:  # the seed part is re-estimated per resample: only the evaluation variance is fixed
            se = table[col + SE_SUFFIX] if col + SE_SUFFIX in table else pd.Series(0.0, index=table.index)
            fixed.append(error_variance(table[[col]].assign(**{col + SE_SUFFIX: se}), col))
        else:
            fixed.append(error_variance(table, col) if col in table else None)
    cov = eval_covariance(table)
    if all(v is None for v in (*fixed, cov)):
        return None
    fr, fc = (np.zeros(n) if v is None else np.asarray(v, float) for v in fixed)
    seeds = pd.to_numeric(table["seeds"], errors="coerce").to_numpy(float) if replicated else np.ones(n)
    frc = np.zeros(n) if cov is None else cov  # per_architecture left that of a mean over k seeds
    z = np.zeros(n)
    sp = (
        tuple(
            np.nan_to_num(pd.to_numeric(table[c], errors="coerce").to_numpy(float))
            for c in (WITHIN_SP, WITHIN_EVAL_COV)
        )
        if replicated and WITHIN_SP in table
        else (z, z)
    )
    return JointError(
        Part(fr, *_sums(table, ROBUST)),
        Part(fc, *_sums(table, CLEAN)),
        Part(frc, *sp),
        1 / seeds if replicated else z,
        seeds - 1 if replicated else z,
        (replicated or fixed[0] is not None, replicated or fixed[1] is not None),
    )
