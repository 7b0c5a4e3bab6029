"""Attack suites: which Foolbox attacks, under which threat model, over which ε grid.

A suite is a YAML file in `attacks/` (or any path), validated once into a `SuiteConfig`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError, one_of
from .presets import Section, load_yaml, resolve

THREAT_MODELS = ("linf", "l2", "l1")
_TOP_FIELDS = ("name", "description", "threat_model", "eps", "eps_255", "samples", "batch_size",
               "seed", "attacks")
# Fields of an attack entry that are ours; every other key is passed to the Foolbox attack.
_OUR_ATTACK_FIELDS = ("attack", "name", "restarts")


@dataclass(frozen=True)
class AttackConfig:
    """One Foolbox attack by class name, with its keyword arguments and our restarts."""

    attack: str  # Foolbox class name, e.g. "LinfPGD"
    label: str  # the name results use; defaults to `attack`
    kwargs: dict[str, Any] = field(default_factory=dict)
    restarts: int = 1


@dataclass(frozen=True)
class SuiteConfig:
    name: str
    threat_model: str
    eps: tuple[float, ...]  # absolute, in input units (inputs in `bounds`), ascending
    attacks: tuple[AttackConfig, ...]
    samples: int | None = 500  # how many test samples are attacked (None: all)
    batch_size: int = 256
    seed: int = 0
    description: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def load_suite(name_or_path: str | Path) -> SuiteConfig:
    """A preset name (`quick`, `standard`, `thorough`) or a YAML path → a validated `SuiteConfig`."""
    path = resolve("attacks", name_or_path)
    return parse_suite(load_yaml(path), default_name=path.stem)


def parse_suite(doc: Section, default_name: str = "suite") -> SuiteConfig:
    doc.check_keys(_TOP_FIELDS)
    threat = doc.get("threat_model", str, "linf", choices=THREAT_MODELS)
    if ("eps" in doc) == ("eps_255" in doc):
        raise doc.error(None, "give exactly one of 'eps' (absolute, input units) or 'eps_255' (units of 1/255)")
    key = "eps" if "eps" in doc else "eps_255"
    raw = doc.data[key]
    if not isinstance(raw, list) or not raw or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in raw):
        raise doc.error(key, f"expected a non-empty list of positive numbers, got {raw!r}")
    scale = 1.0 if key == "eps" else 1.0 / 255.0
    eps = tuple(sorted({float(v) * scale for v in raw}))
    attacks = tuple(_parse_attack(s, threat) for s in doc.sections("attacks"))
    labels = [a.label for a in attacks]
    if len(set(labels)) != len(labels):
        raise doc.error("attacks", f"attack names must be unique, got {labels}; set 'name' to tell them apart")
    samples = doc.get("samples", int, 500, min=1)
    return SuiteConfig(
        name=doc.get("name", str, default_name), threat_model=threat, eps=eps, attacks=attacks,
        samples=samples, batch_size=doc.get("batch_size", int, 256, min=1),
        seed=doc.get("seed", int, 0), description=doc.get("description", str, ""))


def _parse_attack(sec: Section, threat: str) -> AttackConfig:
    from . import attack as _attack  # the Foolbox wrapper knows which attacks exist

    name = sec.get("attack", str)
    known = _attack.foolbox_attack_names()
    if name not in known:
        close = [k for k in known if k.lower().startswith(name.lower()[:3])][:8]
        hint = f" (close: {one_of(close)})" if close else ""
        raise sec.error("attack", f"unknown Foolbox attack {name!r}{hint}; "
                                  "allowed: any class name in foolbox.attacks")
    kwargs = {k: v for k, v in sec.data.items() if k not in _OUR_ATTACK_FIELDS}
    try:
        instance = _attack.make_foolbox_attack(name, kwargs)
    except TypeError as exc:
        raise sec.error(None, f"bad arguments for Foolbox {name}: {exc}") from None
    distance = _attack.attack_threat_model(instance)
    if distance is not None and distance != threat:
        raise sec.error("attack", f"{name} works in the {distance} threat model but the suite's "
                                  f"threat_model is {threat!r}")
    return AttackConfig(attack=name, label=sec.get("name", str, name), kwargs=kwargs,
                        restarts=sec.get("restarts", int, 1, min=1))
