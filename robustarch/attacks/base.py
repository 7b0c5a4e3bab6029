"""What an attack is, as in Foolbox 3's base classes: each attack object knows its kind, threat model
and settings, and its base class tells the suite runner which schedule to use:

- `FixedEpsilonAttack`: searches within one ε; the runner walks the ε grid down from the largest.
- `SingleStepAttack`: one gradient gives its point at every ε; the runner evaluates the grid at once.
- `MinimizationAttack`: finds each sample's smallest adversarial distance; the runner calls it once.

A new attack is one subclass in one file: native ones register their names with `register_native`.
Attacks only search; what counts as an adversarial is decided in `verify`, never by an attack's flag.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import torch
from torch import nn

from ..presets import Section


class AttackKind(str, Enum):
    """What the sanity checks compare: a weaker kind must not beat a stronger one."""

    SINGLE_STEP = "single_step"  # one gradient step (FGSM/FGM)
    ITERATIVE = "iterative"  # many gradient steps within a fixed ε (PGD)
    MINIMIZATION = "minimization"  # gradient-based search for the smallest ε (FMN, DDN, C&W)
    GRADIENT_FREE = "gradient_free"  # noise or decision-based: the gradient-masking baseline


@dataclass
class Target:
    """The model as the attacks see it: logits of inputs within `bounds`, in eval mode, on `device`,
    with a generator seeded for this attack. `cache` holds adapter state (a Foolbox model wrapper)."""

    net: nn.Module
    bounds: tuple[float, float]
    device: torch.device
    generator: torch.Generator
    cache: dict[str, Any] = field(default_factory=dict)


class Attack(ABC):
    """One configured attack: `label` names it in results, `settings` are its keyword arguments,
    `restarts` how often it retries the samples it has not broken, `samples` how many it sees."""

    kind: AttackKind = AttackKind.ITERATIVE
    # The loss a gradient attack ascends: 'ce' (cross-entropy, which saturates with the softmax when
    # logits are large), 'margin' (C&W margin, DLR, logit differences: only scaled), None: unknown.
    # The sanity check `cross_entropy_not_saturated` compares the two families.
    loss: str | None = None
    # Keys a suite entry may set for a native attack; `check_settings` validates their values.
    SETTINGS: tuple[str, ...] = ()

    @classmethod
    def check_settings(cls, sec: Section) -> None:
        """Validate this attack's settings in its YAML entry (`sec.get(key, type, default, ...)`
        raises the one-line error); unknown keys are rejected before this is called."""

    @classmethod
    def is_deterministic(cls, settings: dict[str, Any]) -> bool:
        """True when these settings make every run from the same sample identical (no random start),
        so `restarts` > 1 would only repeat the first run; the suite config refuses that."""
        return False

    def __init__(
        self,
        label: str,
        threat_model: str,
        settings: dict[str, Any] | None = None,
        *,
        restarts: int = 1,
        samples: int | None = None,
    ):
        self.label, self.threat_model = label, threat_model
        self.settings = dict(settings or {})
        self.restarts, self.samples = restarts, samples

    def with_steps_factor(self, factor: int) -> Attack | None:
        """The same attack with `factor` times its steps (the step-doubling check), or None when the
        attack has no step budget to scale."""
        return None

    def _copy_with(self, **settings) -> Attack:
        other = copy.copy(self)
        other.settings = {**self.settings, **settings}
        return other

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r}, {self.threat_model}, {self.settings})"


class FixedEpsilonAttack(Attack):
    # True: a start handed to `run` is a try of its own, made before the attack's `restarts` random
    # ones, not in place of the first (see apgd._APGDBase)
    warm_start_extra: bool = False

    @abstractmethod
    def run(
        self, target: Target, x: torch.Tensor, y: torch.Tensor, eps: float, init: torch.Tensor | None
    ) -> torch.Tensor:
        """Candidate points within ε of `x` (unverified). `init`: a point per sample to start from
        (an adversarial found at a larger ε), or None; attacks that cannot use it ignore it."""


class SingleStepAttack(FixedEpsilonAttack):
    kind = AttackKind.SINGLE_STEP

    @abstractmethod
    def run_grid(self, target: Target, x: torch.Tensor, y: torch.Tensor, grid: tuple[float, ...]) -> list[torch.Tensor]:
        """Candidate points at every ε of `grid` (unverified), from one pass."""

    def run(self, target, x, y, eps, init):
        return self.run_grid(target, x, y, (eps,))[0]


class MinimizationAttack(Attack):
    kind = AttackKind.MINIMIZATION

    @abstractmethod
    def run(self, target: Target, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One candidate per sample, as close to `x` as the attack can find (unverified)."""


# Foolbox class name → (native implementation, its threat model); see `register_native`.
NATIVE: dict[str, tuple[type[Attack], str]] = {}


def register_native(**names: str) -> Callable[[type[Attack]], type[Attack]]:
    """Class decorator: the native attack implements these Foolbox class names, each in the given
    threat model (`@register_native(FGSM="linf", FGM="l2")`); suites select it with `engine: native`."""

    def register(cls: type[Attack]) -> type[Attack]:
        for name, threat_model in names.items():
            NATIVE[name] = (cls, threat_model)
        return cls

    return register
