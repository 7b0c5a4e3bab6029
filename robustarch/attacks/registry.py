"""From a suite's attack entry to an attack object: native attacks by registered name, every other
name a Foolbox class. Importing this module registers the native attacks.
"""

from __future__ import annotations

from . import apgd, fab, native, square  # noqa: F401 (registers the native attacks)
from .base import NATIVE, Attack
from .foolbox_adapter import foolbox_attack, foolbox_attack_names
from .spec import AttackConfig


def native_attack(name: str) -> tuple[type[Attack], str] | None:
    """(class, threat model) of the native implementation of Foolbox class `name`, if there is one."""
    return NATIVE.get(name)


def native_names() -> list[str]:
    return sorted(NATIVE)


def known_attack_names() -> tuple[str, ...]:
    """Every name a suite may use: Foolbox's attack classes and the natively implemented ones."""
    return tuple(sorted(set(foolbox_attack_names()) | set(NATIVE)))


def build_attack(acfg: AttackConfig, threat_model: str) -> Attack:
    """The attack object for a validated entry of a suite whose threat model is `threat_model`."""
    if acfg.engine == "native":
        cls, native_threat = NATIVE[acfg.attack]
        return cls(acfg.label, native_threat, acfg.kwargs, restarts=acfg.restarts, samples=acfg.samples)
    return foolbox_attack(
        acfg.attack,
        acfg.kwargs,
        label=acfg.label,
        threat_model=threat_model,
        restarts=acfg.restarts,
        samples=acfg.samples,
    )
