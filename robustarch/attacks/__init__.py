"""Attack suites on any torch classifier: suite config, typed attack objects (native FGSM/PGD and
any Foolbox class), the schedules that run them, verification of every adversarial, sanity checks
and the result tables.

    result = AttackSuite.load("quick", bounds=(0, 1)).run(model, x, y)
    result.curve_table(); result.per_sample; result.sanity
"""

from ..metrics import WORST_CASE
from .base import Attack, AttackKind, FixedEpsilonAttack, MinimizationAttack, SingleStepAttack, register_native
from .config import load_suite, parse_suite
from .registry import build_attack, known_attack_names
from .result import AttackResult
from .spec import AttackConfig, SuiteConfig
from .suite import AttackSuite
from .verify import lp_distance, verify

__all__ = [
    "WORST_CASE",
    "Attack",
    "AttackConfig",
    "AttackKind",
    "AttackResult",
    "AttackSuite",
    "FixedEpsilonAttack",
    "MinimizationAttack",
    "SingleStepAttack",
    "SuiteConfig",
    "build_attack",
    "known_attack_names",
    "load_suite",
    "lp_distance",
    "parse_suite",
    "register_native",
    "verify",
]
