"""The Foolbox side: which attack classes exist, how to build one, what kind of attack it is.

The only module that imports Foolbox; `robustarch.attack` runs what is built here.
"""
from __future__ import annotations

import inspect
import warnings
from functools import lru_cache
from typing import Any

from .suite import AttackConfig

# Foolbox attacks that use no gradient (noise, decision-based): the gradient-masking baseline.
_GRADIENT_FREE = ("Noise", "HopSkipJump", "Boundary", "Blur", "Contrast", "Inversion", "Dataset",
                  "Pointwise", "GenAttack", "Binarization")
_SINGLE_STEP = ("FGSM", "FGM", "LinfFastGradientAttack", "L2FastGradientAttack", "L1FastGradientAttack")


def _foolbox():
    import os

    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox.zoo imports GitPython
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import foolbox

    return foolbox


@lru_cache(maxsize=1)
def foolbox_attack_names() -> tuple[str, ...]:
    fb = _foolbox()
    names = []
    for name in dir(fb.attacks):
        obj = getattr(fb.attacks, name)
        if isinstance(obj, type) and issubclass(obj, fb.attacks.base.Attack) and name[0].isupper() \
                and not getattr(obj, "__abstractmethods__", None):
            names.append(name)
    return tuple(sorted(names))


def make_foolbox_attack(name: str, kwargs: dict[str, Any]):
    """Instantiate a Foolbox attack, with stronger defaults than Foolbox's where good practice says so.

    PGD-style attacks get a step of 2.5·ε/steps (Madry et al.) unless the suite sets one: Foolbox's
    default relative step (0.01/0.3·ε for Linf) is weaker at the same number of steps.
    """
    cls = getattr(_foolbox().attacks, name)
    kwargs = dict(kwargs)
    params = inspect.signature(cls.__init__).parameters
    if "rel_stepsize" in params and "rel_stepsize" not in kwargs and "abs_stepsize" not in kwargs \
            and "steps" in params:
        steps = kwargs.get("steps", params["steps"].default)
        if isinstance(steps, int) and steps > 1:
            kwargs["rel_stepsize"] = 2.5 / steps
    return cls(**kwargs)


def attack_threat_model(instance) -> str | None:
    """'linf', 'l2' or 'l1' for the attack's distance, None when the attack declares none."""
    try:
        distance = instance.distance
    except (AttributeError, NotImplementedError):
        return None
    text = str(distance).lower()
    for key in ("linf", "l2", "l1"):
        if text.startswith(key):
            return key
    return None


def attack_kind(acfg: AttackConfig) -> str:
    """'single_step', 'iterative' (fixed-ε), 'minimization' (gradient-based) or 'gradient_free'."""
    if any(part in acfg.attack for part in _GRADIENT_FREE):
        return "gradient_free"
    if acfg.attack in _SINGLE_STEP:
        return "single_step"
    if acfg.engine == "native":
        return "iterative"
    fb = _foolbox()
    cls = getattr(fb.attacks, acfg.attack)
    return "minimization" if issubclass(cls, fb.attacks.base.MinimizationAttack) else "iterative"
