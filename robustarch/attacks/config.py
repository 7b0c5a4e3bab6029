"""Attack suites: which attacks, under which threat model, over which ε grid, on how many samples.

A suite is a YAML file in `attacks/` (or any path), validated once into a `SuiteConfig`; errors name
the file, line, field and the allowed values.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..errors import one_of
from ..presets import Section, load_yaml, resolve
from .foolbox_adapter import (
    attack_threat_model,
    check_foolbox_settings,
    foolbox_attack_names,
    foolbox_is_deterministic,
    make_foolbox_attack,
)
from .registry import native_attack, native_names
from .spec import ENGINES, THREAT_MODELS, AttackConfig, SuiteConfig

_TOP_FIELDS = (
    "name",
    "description",
    "threat_model",
    "eps",
    "eps_255",
    "samples",
    "batch_size",
    "seed",
    "attacks",
    "sanity",
    "eot",
)
_SANITY_FIELDS = ("step_doubling", "large_eps")
# Fields of an attack entry that are ours; every other key is a keyword argument of the attack.
_OUR_ATTACK_FIELDS = ("attack", "name", "restarts", "engine", "samples")


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
    if not isinstance(raw, list) or not raw:
        raise doc.error(key, f"expected a non-empty list of positive numbers, got {raw!r}")
    scale = 1.0 if key == "eps" else 1.0 / 255.0
    eps = tuple(sorted({_grid_value(doc, key, v) * scale for v in raw}))
    attacks = tuple(_parse_attack(s, threat) for s in doc.sections("attacks"))
    labels = [a.label for a in attacks]
    if len(set(labels)) != len(labels):
        raise doc.error("attacks", f"attack names must be unique, got {labels}; set 'name' to tell them apart")
    sanity = doc.section("sanity", {})
    sanity.check_keys(_SANITY_FIELDS)
    return SuiteConfig(
        name=doc.get("name", str, default_name),
        threat_model=threat,
        eps=eps,
        attacks=attacks,
        samples=doc.get("samples", int, 500, min=1),
        batch_size=doc.get("batch_size", int, 256, min=1),
        seed=doc.get("seed", int, 0, min=0, max=2**32 - 1),
        description=doc.get("description", str, ""),
        step_doubling=sanity.get("step_doubling", bool, False),
        large_eps=sanity.get("large_eps", bool, True),
        eot=doc.get("eot", int, None, min=1),
    )


_FRACTION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*/\s*(\d+(?:\.\d*)?|\.\d+)\s*$")


def _grid_value(doc: Section, key: str, value: object) -> float:
    """One ε of the grid: a positive number, or a fraction written as a string ("8/255", "0.5/255"),
    which keeps CIFAR-style grids readable."""
    if isinstance(value, str):
        match = _FRACTION.match(value)
        if match is None or float(match.group(2)) == 0:
            raise doc.error(
                key, f"cannot read {value!r} as an ε; write a positive number (0.03) or a fraction like '8/255'"
            )
        value = float(match.group(1)) / float(match.group(2))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise doc.error(
            key, f"expected a non-empty list of positive numbers (or fractions like '8/255'), got {value!r}"
        )
    return float(value)


def _parse_attack(sec: Section, threat: str) -> AttackConfig:
    name = sec.get("attack", str)
    known = foolbox_attack_names()
    native = native_attack(name)
    if name not in known and native is None:
        close = [k for k in known if k.lower().startswith(name.lower()[:3])][:8]
        hint = f" (close: {one_of(close)})" if close else ""
        raise sec.error("attack", f"unknown attack {name!r}{hint}; allowed: any class name in foolbox.attacks")
    engine = sec.get("engine", str, "native" if native else "foolbox", choices=ENGINES)
    # null means unset, as for every other field: the attack's default applies
    kwargs = {k: v for k, v in sec.data.items() if k not in _OUR_ATTACK_FIELDS and v is not None}
    if engine == "native":
        if native is None:
            raise sec.error(
                "engine",
                f"no native implementation of {name}; 'native' is allowed for "
                f"{one_of(native_names())}; use engine: foolbox",
            )
        cls, distance = native
        for key in sec.data:
            if key not in _OUR_ATTACK_FIELDS and key not in cls.SETTINGS:
                raise sec.error(
                    key,
                    f"not an argument of the native {name}; allowed fields are "
                    f"{one_of(_OUR_ATTACK_FIELDS + cls.SETTINGS)}",
                )
        cls.check_settings(sec)
        deterministic = cls.is_deterministic(kwargs)
        randomizable = "random_start" in cls.SETTINGS
    else:
        if name not in known:
            raise sec.error("engine", f"Foolbox has no attack {name!r}; it is native only: use engine: native")
        check_foolbox_settings(sec, name)
        try:
            instance = make_foolbox_attack(name, kwargs)
        except (TypeError, ValueError, AssertionError) as exc:
            raise sec.error(None, f"bad arguments for Foolbox {name}: {exc or type(exc).__name__}") from None
        distance = attack_threat_model(instance)
        deterministic = foolbox_is_deterministic(name, instance)
        randomizable = hasattr(instance, "random_start")
    if distance is not None and distance != threat:
        raise sec.error(
            "attack", f"{name} works in the {distance} threat model but the suite's threat_model is {threat!r}"
        )
    restarts = sec.get("restarts", int, 1, min=1)
    if restarts > 1 and deterministic:
        hint = " or set random_start: true" if randomizable else ""
        raise sec.error(
            "restarts",
            f"{name} is deterministic here (no random start), so every restart "
            f"would repeat the first; allowed: restarts: 1{hint}",
        )
    return AttackConfig(
        attack=name,
        label=sec.get("name", str, name),
        kwargs=kwargs,
        restarts=restarts,
        engine=engine,
        samples=sec.get("samples", int, None, min=1),
    )
