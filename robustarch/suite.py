"""Attack suites: which attacks, under which threat model, over which ε grid, on how many samples.

A suite is a YAML file in `attacks/` (or any path), validated once into a `SuiteConfig`; errors name
the file, line, field and the allowed values.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import one_of
from .gradient import FGSM_KWARGS, LOSSES, NATIVE, PGD_KWARGS
from .presets import Section, load_yaml, resolve

THREAT_MODELS = ("linf", "l2", "l1")
ENGINES = ("native", "foolbox")
_TOP_FIELDS = ("name", "description", "threat_model", "eps", "eps_255", "samples", "batch_size",
               "seed", "attacks", "sanity")
_SANITY_FIELDS = ("step_doubling", "large_eps")
# Fields of an attack entry that are ours; every other key is a keyword argument of the attack.
_OUR_ATTACK_FIELDS = ("attack", "name", "restarts", "engine", "samples")


@dataclass(frozen=True)
class AttackConfig:
    """One attack by Foolbox class name, with its keyword arguments and our own settings.

    `engine`: 'native' runs FGSM/FGM/PGD in robustarch's own early-stopping torch loop
    (`robustarch.gradient`), 'foolbox' runs Foolbox's class. `samples` caps how many of the suite's
    samples this attack sees (for slow decision-based attacks); None: all.
    """

    attack: str  # Foolbox class name, e.g. "LinfPGD"
    label: str  # the name results use; defaults to `attack`
    kwargs: dict[str, Any] = field(default_factory=dict)
    restarts: int = 1
    engine: str = "foolbox"
    samples: int | None = None


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
    step_doubling: bool = False  # sanity: rerun iterative attacks with twice the steps
    large_eps: bool = True  # sanity: PGD at an ε covering the whole input box must break ~all

    def to_dict(self) -> dict:
        return asdict(self)


def load_suite(name_or_path: str | Path) -> SuiteConfig:
    """A preset name (`quick`, `standard`, `thorough`) or a YAML path → a validated `SuiteConfig`.

    Example: `load_suite("quick").eps == (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)`.
    """
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
    sanity = doc.section("sanity", {})
    sanity.check_keys(_SANITY_FIELDS)
    return SuiteConfig(
        name=doc.get("name", str, default_name), threat_model=threat, eps=eps, attacks=attacks,
        samples=doc.get("samples", int, 500, min=1), batch_size=doc.get("batch_size", int, 256, min=1),
        seed=doc.get("seed", int, 0), description=doc.get("description", str, ""),
        step_doubling=sanity.get("step_doubling", bool, False), large_eps=sanity.get("large_eps", bool, True))


def _parse_attack(sec: Section, threat: str) -> AttackConfig:
    from . import foolbox_attacks as _attack  # the Foolbox side knows which attacks exist

    name = sec.get("attack", str)
    known = _attack.foolbox_attack_names()
    if name not in known and name not in NATIVE:
        close = [k for k in known if k.lower().startswith(name.lower()[:3])][:8]
        hint = f" (close: {one_of(close)})" if close else ""
        raise sec.error("attack", f"unknown attack {name!r}{hint}; allowed: any class name in foolbox.attacks")
    engine = sec.get("engine", str, "native" if name in NATIVE else "foolbox", choices=ENGINES)
    kwargs = {k: v for k, v in sec.data.items() if k not in _OUR_ATTACK_FIELDS}
    if engine == "native":
        if name not in NATIVE:
            raise sec.error("engine", f"no native implementation of {name}; 'native' is allowed for "
                                      f"{one_of(sorted(NATIVE))}; use engine: foolbox")
        distance, single_step = NATIVE[name]
        allowed = FGSM_KWARGS if single_step else PGD_KWARGS
        for key, value in kwargs.items():
            if key not in allowed:
                raise sec.error(key, f"not an argument of the native {name}; allowed fields are "
                                     f"{one_of(_OUR_ATTACK_FIELDS + allowed)}")
        if not single_step:
            sec.get("steps", int, 40, min=1)
            sec.get("rel_stepsize", float, 1.0, min=0.0)
            sec.get("abs_stepsize", float, 1.0, min=0.0)
            sec.get("loss", str, "ce", choices=LOSSES)
        sec.get("random_start", bool, True)
    else:
        try:
            instance = _attack.make_foolbox_attack(name, kwargs)
        except (TypeError, ValueError, AssertionError) as exc:
            raise sec.error(None, f"bad arguments for Foolbox {name}: {exc or type(exc).__name__}") from None
        distance = _attack.attack_threat_model(instance)
    if distance is not None and distance != threat:
        raise sec.error("attack", f"{name} works in the {distance} threat model but the suite's "
                                  f"threat_model is {threat!r}")
    return AttackConfig(attack=name, label=sec.get("name", str, name), kwargs=kwargs,
                        restarts=sec.get("restarts", int, 1, min=1), engine=engine,
                        samples=sec.get("samples", int, None, min=1))
