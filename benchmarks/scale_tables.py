"""Synthetic tables shaped like the published architecture–robustness datasets, for
`benchmarks/analysis_scale.py`: a NARes-like grid of WideResNets and a models × samples pair.

    nares_raw()                 # 15 625 rows: depth1..3, width1..3, clean/PGD/CW/AA accuracy
    prepare_nares(raw)          # what a user does before `robustarch analyze`: depth, width, params
    models_and_samples(3000, 500)
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

NARES_DEPTHS = (4, 5, 7, 9, 11)  # blocks per stage
NARES_WIDTHS = (8, 10, 12, 14, 16)  # widening factor per stage (×16 channels... drawn as given)


def nares_raw(seed: int = 0) -> pd.DataFrame:
    """Every 3-stage WideResNet of the NARes grid (5⁶ = 15 625), with accuracies from a latent model:
    bigger nets are more accurate, robust accuracy tracks clean accuracy plus noise."""
    rng = np.random.default_rng(seed)
    grid = np.array(
        list(itertools.product(NARES_DEPTHS, NARES_DEPTHS, NARES_DEPTHS, NARES_WIDTHS, NARES_WIDTHS, NARES_WIDTHS)),
        dtype=float,
    )
    t = pd.DataFrame(grid.astype(int), columns=["depth1", "depth2", "depth3", "width1", "width2", "width3"])
    size = np.log10((grid[:, :3] * grid[:, 3:] ** 2).sum(axis=1))
    z = (size - size.mean()) / size.std()
    clean = np.clip(0.80 + 0.03 * z + rng.normal(0, 0.012, len(t)), 0.5, 0.99)
    aa = np.clip(0.45 * clean + 0.012 * z + rng.normal(0, 0.01, len(t)), 0.01, None)
    t.insert(0, "model", [f"wrn-{i}" for i in range(len(t))])
    t["clean_acc"] = clean.round(4)
    t["pgd_acc"] = (aa + np.abs(rng.normal(0.02, 0.005, len(t)))).round(4)
    t["cw_acc"] = (aa + np.abs(rng.normal(0.01, 0.004, len(t)))).round(4)
    t["aa_acc"] = aa.round(4)
    return t


def prepare_nares(raw: pd.DataFrame) -> pd.DataFrame:
    """The table `robustarch analyze` reads, made as in docs/large-tables.md."""
    t = pd.DataFrame({"model": raw["model"]})
    d = raw[["depth1", "depth2", "depth3"]].to_numpy()
    w = 16 * raw[["width1", "width2", "width3"]].to_numpy()  # channels of each stage
    t["depth"] = d.sum(axis=1)
    t["width"] = w.mean(axis=1)
    t["params"] = (d * 2 * 9 * w**2).sum(axis=1)  # two 3×3 convolutions per block
    t["clean_accuracy"] = raw["clean_acc"]
    t["robust_accuracy@8/255"] = raw[["pgd_acc", "cw_acc", "aa_acc"]].min(axis=1)
    return t


def models_and_samples(
    n_models: int, n_samples: int, seed: int = 0, eps=("1/255", "2/255", "4/255", "8/255")
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`n_models` models with robust accuracy at each ε of `eps`, and per sample its minimal ε and
    logit margin (a sample breaks at ε = margin / gain: a power law at small ε)."""
    rng = np.random.default_rng(seed)
    depth = rng.integers(2, 20, n_models)
    width = rng.choice([16.0, 32.0, 48.0, 64.0, 96.0, 128.0], n_models) * rng.uniform(0.8, 1.2, n_models)
    params = (depth * 9 * width**2).astype(np.int64)
    clean = np.clip(0.7 + 0.04 * np.log10(params) - 0.1 * rng.random(n_models), 0.5, 0.99)
    n_correct = np.round(clean * n_samples).astype(int)
    slope = rng.uniform(1.2, 2.0, n_models)
    theta = rng.uniform(2.0, 5.0, n_models)
    gain = 400.0 * (1.2 - clean)
    trial = np.repeat(np.arange(n_models), n_correct)
    margins = rng.gamma(np.repeat(slope, n_correct), np.repeat(theta, n_correct))
    min_eps = margins / np.repeat(gain, n_correct)
    min_eps[min_eps > 0.2] = np.inf
    names = np.array([f"m{i}" for i in range(n_models)])
    models = pd.DataFrame(
        {"model": names, "depth": depth, "width": width.round(3), "params": params, "clean_accuracy": clean.round(4)}
    )
    for e in eps:
        v = float(eval(e))  # noqa: S307 — our own literal fractions
        broken = np.bincount(trial, weights=min_eps <= v, minlength=n_models)
        models[f"robust_accuracy@{e}"] = ((n_correct - broken) / n_samples).round(5)
    samples = pd.DataFrame(
        {
            "model": names[trial],
            "min_eps": np.where(np.isfinite(min_eps), min_eps.round(6), np.nan),
            "margin": margins.round(4),
        }
    )
    return models, samples
