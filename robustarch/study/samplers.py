"""Optuna samplers and pruners by name: what `--sampler` and `--pruner` accept."""

from __future__ import annotations

import warnings

from ..errors import UserError, one_of
from ..spaces.space import SearchSpace
from .storage import _optuna

# tpe/gp/nsgaii concentrate trials where the objective is high: right for "find the most robust",
# biased for correlations over the space; random and qmc (scrambled Sobol) sample it fairly.
SAMPLERS = ("tpe", "nsgaii", "gp", "random", "qmc", "grid")
FAIR_SAMPLERS = ("random", "qmc", "grid")
PRUNERS = ("none", "median", "hyperband")
NSGAII_POPULATION = 20  # Optuna's 50 would leave a few-dozen-trial study entirely random


def make_sampler(name: str, seed: int, space: SearchSpace | None = None):
    optuna = _optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
        if name == "nsgaii":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=NSGAII_POPULATION)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=5)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "qmc":
            # categorical parameters (cell types) fall back to Optuna's independent random sampler
            return optuna.samplers.QMCSampler(
                qmc_type="sobol", scramble=True, seed=seed, warn_independent_sampling=False
            )
        if name == "grid":
            return optuna.samplers.GridSampler(search_grid(space), seed=seed)
    raise UserError(f"unknown sampler {name!r}: allowed values are {one_of(SAMPLERS)}")


def search_grid(space: SearchSpace) -> dict[str, list]:
    """Every value of every searched parameter, for `GridSampler` (the space must be discrete)."""
    return space.grid()


def make_pruner(name: str):
    optuna = _optuna()
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    raise UserError(f"unknown pruner {name!r}: allowed values are {one_of(PRUNERS)}")
