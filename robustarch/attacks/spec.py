"""What a suite's YAML says, as plain frozen dataclasses: the suite (threat model, ε grid, samples,
sanity switches) and each attack entry (class name, settings, restarts). Parsed in `config`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

THREAT_MODELS = ("linf", "l2", "l1")
ENGINES = ("native", "foolbox")


@dataclass(frozen=True)
class AttackConfig:
    """One attack by Foolbox class name, with its keyword arguments and our own settings.

    `engine`: 'native' runs a registered native attack (FGSM/FGM, PGD, APGD, APGD-T, Square, FAB-T)
    in robustarch's own early-stopping torch loops, 'foolbox' runs Foolbox's class. `samples` caps how many of the
    suite's samples this attack sees (for slow decision-based attacks); None: all.
    """

    attack: str  # Foolbox class name or native name, e.g. "LinfPGD", "LinfAPGDT"
    label: str  # the name results use; defaults to `attack`
    kwargs: dict[str, Any] = field(default_factory=dict)
    restarts: int = 1
    engine: str = "foolbox"
    samples: int | None = None


@dataclass(frozen=True)
class SuiteConfig:
    """A validated attack suite, as `load_suite` reads it from YAML: the threat model (`linf`, `l2`,
    `l1`), the ε grid in input units, the attacks in the order they run, and how many test samples
    they see. Frozen: derive a variant with `dataclasses.replace(config, eps=(0.1,), samples=40)`."""

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
    eot: int | None = None  # draws averaged when the model's output is random (None: the suite's default)

    def to_dict(self) -> dict:
        return asdict(self)
