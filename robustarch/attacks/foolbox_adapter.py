"""Foolbox attacks as our attack objects: which classes exist, how to build one, what kind it is.

The only module that imports Foolbox (3.3.4, pinned: unmaintained, so it stays behind this wall).
"""

from __future__ import annotations

import inspect
import os
import warnings
from functools import lru_cache
from typing import Any

from ..presets import Section
from .base import AttackKind, FixedEpsilonAttack, MinimizationAttack, Target

# Foolbox attacks that use no gradient (noise, decision-based): the gradient-masking baseline.
_GRADIENT_FREE = (
    "Noise",
    "HopSkipJump",
    "Boundary",
    "Blur",
    "Contrast",
    "Inversion",
    "Dataset",
    "Pointwise",
    "GenAttack",
    "Binarization",
)
# Foolbox attacks that start from the clean point and draw nothing random: reruns repeat the first.
_DETERMINISTIC = ("FMN", "DDN", "CarliniWagner", "EAD", "DeepFool", "FastGradient", "FGSM", "FGM", "NewtonFool")
_SINGLE_STEP = ("FGSM", "FGM", "LinfFastGradientAttack", "L2FastGradientAttack", "L1FastGradientAttack")


def _foolbox():
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
        if (
            isinstance(obj, type)
            and issubclass(obj, fb.attacks.base.Attack)
            and name[0].isupper()
            and not getattr(obj, "__abstractmethods__", None)
        ):
            names.append(name)
    return tuple(sorted(names))


# Ranges of Foolbox's settings, which Foolbox does not check (FMN ran with `steps: -1`). By the type of
# the default: an int counts steps, draws or queries (>= 1) unless named here (>= 0); a float is a
# finite size, rate or constant (>= 0; > 0 for step sizes); bools and strings keep their type.
_COUNTS_FROM_ZERO = ("confidence", "max_rotation", "max_translation")
_STEP_SIZES = (
    "stepsize",
    "rel_stepsize",
    "abs_stepsize",
    "min_stepsize",
    "max_stepsize",
    "initial_stepsize",
    "lr",
    "init_epsilon",
    "source_step",
    "spherical_step",
)
# Settings whose default is None: what a suite may give instead.
_OPTIONAL_FLOATS = ("abs_stepsize", "min_stepsize", "max_sigma", "threshold")
_PYTHON_OBJECTS = ("init_attack", "distance")  # Foolbox objects: not expressible in YAML
# String settings Foolbox only checks mid-run (DeepFool's loss, HopSkipJump's search and constraint).
_CHOICES = {
    "loss": ("logits", "crossentropy"),
    "stepsize_search": ("geometric_progression", "grid_search"),
    "constraint": ("linf", "l2"),
    "decision_rule": ("EN", "L1"),
}


def check_foolbox_settings(sec: Section, name: str) -> None:
    """Check the value of every setting of Foolbox attack `name` in its YAML entry `sec`, by the
    type of the parameter's default (see the ranges above); raises the one-line `UserError`."""
    params = inspect.signature(getattr(_foolbox().attacks, name).__init__).parameters
    for key in sec.data:
        if not isinstance(key, str) or key not in params or sec.data[key] is None:
            continue  # unknown keys: Foolbox's constructor names them; null: Foolbox's default
        default = params[key].default
        if key in _PYTHON_OBJECTS:
            raise sec.error(key, "takes a Python object, which a suite file cannot give; remove it")
        if isinstance(default, bool):
            sec.get(key, bool)
        elif isinstance(default, int) or (key == "steps" and default is inspect.Parameter.empty):
            sec.get(key, int, min=0 if key in _COUNTS_FROM_ZERO else 1)
        elif isinstance(default, float) or key in _OPTIONAL_FLOATS:
            sec.get(key, float, None, **({"above": 0.0} if key in _STEP_SIZES else {"min": 0.0}))
        elif isinstance(default, str):
            sec.get(key, str, choices=_CHOICES.get(key))


def make_foolbox_attack(name: str, kwargs: dict[str, Any]):
    """Instantiate a Foolbox attack, with stronger defaults than Foolbox's where good practice says so.

    PGD-style attacks get a step of 2.5·ε/steps (Madry et al.) unless the suite sets one: Foolbox's
    default relative step (0.01/0.3·ε for Linf) is weaker at the same number of steps.
    """
    cls = getattr(_foolbox().attacks, name)
    kwargs = dict(kwargs)
    params = inspect.signature(cls.__init__).parameters
    if "rel_stepsize" in params and "rel_stepsize" not in kwargs and "abs_stepsize" not in kwargs and "steps" in params:
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


def foolbox_is_deterministic(name: str, instance) -> bool:
    """True when Foolbox's `name` has no random start: FMN, DDN, C&W, FGSM, or a gradient-descent
    attack (PGD, BIM) with `random_start=False`."""
    if any(part in name for part in _DETERMINISTIC):
        return True
    return getattr(instance, "random_start", None) is False


def _kind(name: str, minimization: bool) -> AttackKind:
    if any(part in name for part in _GRADIENT_FREE):
        return AttackKind.GRADIENT_FREE
    if name in _SINGLE_STEP:
        return AttackKind.SINGLE_STEP
    return AttackKind.MINIMIZATION if minimization else AttackKind.ITERATIVE


def _fmodel(target: Target):
    """Foolbox's wrapper of the target, built once per suite run."""
    if "foolbox_model" not in target.cache:
        target.cache["foolbox_model"] = _foolbox().PyTorchModel(target.net, bounds=target.bounds, device=target.device)
    return target.cache["foolbox_model"]


class _FoolboxAttack:
    """What both Foolbox wrappers share: the Foolbox class name and its instance."""

    def __init__(
        self,
        name: str,
        instance,
        label: str,
        threat_model: str,
        settings: dict[str, Any],
        *,
        restarts: int = 1,
        samples: int | None = None,
    ):
        super().__init__(label, threat_model, settings, restarts=restarts, samples=samples)
        self.name, self.instance = name, instance

    @property
    def kind(self) -> AttackKind:
        return _kind(self.name, isinstance(self, MinimizationAttack))

    def with_steps_factor(self, factor: int):
        if "steps" not in self.settings:
            return None
        return foolbox_attack(
            self.name,
            {**self.settings, "steps": self.settings["steps"] * factor},
            label=self.label,
            threat_model=self.threat_model,
            restarts=self.restarts,
            samples=self.samples,
        )


class FoolboxFixedEpsilon(_FoolboxAttack, FixedEpsilonAttack):
    def run(self, target, x, y, eps, init):  # Foolbox attacks take no starting point
        return self.instance(_fmodel(target), x, y, epsilons=eps)[1]


class FoolboxMinimization(_FoolboxAttack, MinimizationAttack):
    def run(self, target, x, y):
        return self.instance(_fmodel(target), x, y, epsilons=None)[1]


def foolbox_attack(
    name: str, settings: dict[str, Any], *, label: str, threat_model: str, restarts: int = 1, samples: int | None = None
) -> FixedEpsilonAttack | MinimizationAttack:
    """Foolbox class `name` with keyword arguments `settings`, as a fixed-ε or minimization attack
    according to its Foolbox base class."""
    instance = make_foolbox_attack(name, settings)
    minimization = isinstance(instance, _foolbox().attacks.base.MinimizationAttack)
    cls = FoolboxMinimization if minimization else FoolboxFixedEpsilon
    return cls(name, instance, label, threat_model, settings, restarts=restarts, samples=samples)
