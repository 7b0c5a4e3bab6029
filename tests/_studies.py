"""Real Optuna studies (in memory) holding trials with the user attributes robustarch stores,
generated from a simple latent model instead of training — for report tests and the benchmark.

Each model has a logit-margin distribution Gamma(k, θ) and a "gain" L: a sample is broken at
ε = margin / L. So adversarial error ≈ (L ε / θ)^k / Γ(k+1) at small ε: a power law with slope k.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

EPS = [0.01, 0.02, 0.03, 0.05, 0.1, 0.15, 0.2, 0.3]
ATTACKS = ("FGSM", "LinfPGD", "LInfFMNAttack")
SUITE = {
    "name": "quick",
    "threat_model": "linf",
    "eps": EPS,
    "attacks": [
        {"attack": "FGSM", "label": "FGSM", "kwargs": {}, "restarts": 1},
        {"attack": "LinfPGD", "label": "LinfPGD", "kwargs": {"steps": 10, "random_start": True}, "restarts": 1},
        {"attack": "LInfFMNAttack", "label": "LInfFMNAttack", "kwargs": {"steps": 30}, "restarts": 1},
    ],
    "samples": 200,
    "batch_size": 256,
    "seed": 0,
    "description": "synthetic",
}


def model_attrs(rng, *, depth, width, slope, n_samples=200, flag=False, lr=0.1, batch_size=128, train_fraction=1.0):
    """User attributes of one complete trial, as robustarch.study stores them."""
    params = int(9 * width * width * depth + 10 * width)
    clean = float(np.clip(0.80 + 0.04 * math.log10(params) - 0.10 * rng.random(), 0.5, 0.995))
    n_correct = int(round(clean * n_samples))
    theta = 2.0 + 3.0 * rng.random()
    margins = rng.gamma(slope, theta, size=n_correct)
    gain = 40.0 * (1.2 - clean) * (1 + 0.3 * rng.random())
    min_eps = margins / gain
    min_eps[min_eps > 0.5] = np.inf  # never broken
    robust = {}
    for label, slack in zip(ATTACKS, (1.3, 1.05, 1.0)):
        robust[label] = [round(float((min_eps * slack > e).sum()) / n_samples, 6) for e in EPS]
    robust["worst_case"] = [round(float((min_eps > e).sum()) / n_samples, 6) for e in EPS]
    sanity = {"curve_non_increasing": True, "gradients_finite_nonzero": not flag}
    return {
        "arch": {"depth": depth, "width": width},
        "arch_summary": f"stem8 {depth}x{width}|basic",
        "train_config": {
            "recipe": "standard",
            "epochs": 8,
            "lr": lr,
            "batch_size": batch_size,
            "weight_decay": 5e-4,
            "optimizer": "sgd",
            "momentum": 0.9,
            "train_fraction": train_fraction,
            "patience": None,
        },
        "params": params,
        "flops": params * 2 * 64,
        "depth": depth,
        "width": float(width),
        "clean_accuracy": clean,
        "val_accuracy": clean,
        "best_epoch": 5,
        "train_seconds": 1.0,
        "attack_seconds": 1.0,
        "eps": EPS,
        "robust_accuracy": robust,
        "attacked_clean_accuracy": n_correct / n_samples,
        "n_attacked": n_samples,
        "median_min_eps": float(np.median(min_eps)),
        "min_adversarial_eps": [None if math.isinf(v) else round(float(v), 6) for v in min_eps],
        "margins": [round(float(v), 4) for v in margins],
        "sanity": sanity,
        "sanity_details": {k: {"ok": v} for k, v in sanity.items()},
    }


def make_study(
    n_trials: int = 40,
    *,
    name: str = "synthetic",
    seed: int = 0,
    slope=1.5,
    n_failed: int = 2,
    n_flagged: int = 2,
    search_training: bool = False,
    n_samples: int = 200,
    objectives: list[str] | None = None,
    storage=None,
):
    """A study of `n_trials` complete trials (the first `n_flagged` flagged by a sanity check) plus
    `n_failed` failed and one pruned trial. `slope`: a number, or a function rng → slope."""
    rng = np.random.default_rng(seed)
    directions = ["maximize"] * (len(objectives) if objectives else 1)
    study = optuna.create_study(study_name=name, directions=directions, storage=storage)
    study.set_user_attr(
        "robustarch_config",
        {
            "dataset": "digits",
            "space": "digits-cells",
            "suite": "quick",
            "objective": "robust",
            "objective_eps": None,
            "sampler": "tpe",
            "seed": seed,
            "data_dir": None,
        },
    )
    study.set_user_attr(
        "dataset_info",
        {
            "dataset": "digits",
            "n_train": 1068,
            "n_val": 189,
            "n_test": 540,
            "input_shape": [1, 8, 8],
            "num_classes": 10,
            "bounds": [0.0, 1.0],
        },
    )
    study.set_user_attr("suite_config", SUITE)
    study.set_user_attr("space_path", "search_spaces/digits-cells.yaml")
    study.set_user_attr("objective_eps", 0.05)
    if objectives:
        study.set_user_attr("objective_names", objectives)
    dists = {
        "depth": IntDistribution(1, 6),
        "width": IntDistribution(8, 128),
        "cell": CategoricalDistribution(["plain", "basic"]),
    }
    if search_training:
        dists |= {
            "train_lr": FloatDistribution(1e-3, 1.0, log=True),
            "train_batch_size": CategoricalDistribution([32, 64, 128, 256]),
            "train_train_fraction": FloatDistribution(0.1, 1.0),
        }
    for i in range(n_trials):
        depth, width = int(rng.integers(1, 7)), int(rng.choice([8, 16, 32, 64, 128]))
        params = {"depth": depth, "width": width, "cell": "basic"}
        knobs = {}
        if search_training:
            knobs = {
                "lr": float(10 ** rng.uniform(-3, 0)),
                "batch_size": int(rng.choice([32, 64, 128, 256])),
                "train_fraction": float(rng.uniform(0.1, 1.0)),
            }
            params |= {
                "train_lr": knobs["lr"],
                "train_batch_size": knobs["batch_size"],
                "train_train_fraction": knobs["train_fraction"],
            }
        k = slope(rng) if callable(slope) else slope
        attrs = model_attrs(rng, depth=depth, width=width, slope=k, flag=i < n_flagged, n_samples=n_samples, **knobs)
        values = [attrs["robust_accuracy"]["worst_case"][EPS.index(0.05)]]
        if objectives:
            values = [attrs["clean_accuracy"], values[0], -attrs["params"]][: len(objectives)]
        study.add_trial(
            create_trial(
                params=params,
                distributions={k: dists[k] for k in params},
                values=values,
                user_attrs=attrs,
                state=TrialState.COMPLETE,
            )
        )
    for _ in range(n_failed):
        study.add_trial(
            create_trial(
                params={"depth": 2, "width": 16, "cell": "plain"},
                distributions={k: dists[k] for k in ("depth", "width", "cell")},
                user_attrs={"arch_summary": "stem8 2x16|plain", "fail_reason": "diverged"},
                state=TrialState.FAIL,
            )
        )
    if n_failed:
        study.add_trial(
            create_trial(
                params={"depth": 6, "width": 128, "cell": "basic"},
                distributions={k: dists[k] for k in ("depth", "width", "cell")},
                user_attrs={"arch_summary": "stem8 6x128|basic", "rejected": "over_budget: params 900000 > 400000"},
                state=TrialState.PRUNED,
            )
        )
    return study
