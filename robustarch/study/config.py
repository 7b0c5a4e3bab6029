"""What a study is: its objective, sampler, pruner, data, space and suite, stored with the study so
that a resume (or a worker joining from another machine) runs exactly the same study.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field, fields

from ..attacks.config import SuiteConfig, load_suite
from ..errors import UserError, one_of
from ..spaces.space import load_space
from .samplers import make_pruner, make_sampler

# objective → (what the trial values are, their directions); the robust term is `robust_metric`.
OBJECTIVES = {
    "robust": (("robust_accuracy",), ("maximize",)),
    "clean+robust": (("clean_accuracy", "robust_accuracy"), ("maximize", "maximize")),
    "clean+robust+size": (("clean_accuracy", "robust_accuracy", "params"), ("maximize", "maximize", "minimize")),
}
ROBUST_METRICS = ("eps", "auc")  # worst case at objective_eps, or the area under the ε-curve
CONFIG_ATTR = "robustarch_config"
MAX_SEED = 2**32 - 5  # NumPy's seeds stop at 2**32 - 1 and the splits use seed + 1 ... seed + 3
# Each dataset's ε scale: MNIST-like grids in absolute pixel units up to 0.3, natural images in
# units of 1/255 up to 16/255 (an MNIST grid would leave every CIFAR-10 model at 0 robust accuracy).
# (suite scored in the search, suite of the final rescoring)
DEFAULT_SUITES = {
    "digits": ("quick", "autoattack"),
    "mnist": ("quick", "autoattack"),
    "fashion-mnist": ("quick", "autoattack"),
    "cifar10": ("quick-cifar", "autoattack-cifar"),
    "svhn": ("quick-cifar", "autoattack-cifar"),
}


@dataclass(frozen=True)
class StudyConfig:
    """What a study is: these settings are stored with the study, and a resume must match them."""

    dataset: str = "digits"
    space: str = "digits-cells"
    suite: str | None = None  # None: the dataset's default (`DEFAULT_SUITES`)
    objective: str = "robust"
    objective_eps: float | None = None  # None: the middle of the suite's ε grid
    headline_eps: float | None = None  # the findings' ε; None: chosen on validation (analysis.headline)
    sampler: str = "tpe"
    seed: int = 0
    data_dir: str | None = None
    robust_metric: str = "eps"
    pruner: str = "none"  # prunes on validation accuracy; single-objective studies only
    # fixed training settings that override the space's `training:` section (e.g. recipe: pgd)
    training: dict = field(default_factory=dict)
    claims: tuple[str, ...] | None = None  # the findings' claims (analysis.claims names); None: all the data carry
    # replicate seeds (study.replicates): a random share of architectures is trained `replicates` times
    replicates: int = 1
    replicate_share: float = 1.0

    def __post_init__(self):
        if isinstance(self.claims, list):  # stored studies hold JSON lists
            object.__setattr__(self, "claims", tuple(self.claims))
        if self.suite is None and self.dataset in DEFAULT_SUITES:
            object.__setattr__(self, "suite", DEFAULT_SUITES[self.dataset][0])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> StudyConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def apply_training(self, train_config):
        """`train_config` (sampled from the space) with this study's fixed training overrides."""
        return dataclasses.replace(train_config, **self.training) if self.training else train_config

    @property
    def rescore_suite(self) -> str:
        """The suite of the final rescoring: AutoAttack's composition on this dataset's ε scale."""
        return DEFAULT_SUITES.get(self.dataset, ("", "autoattack"))[1]

    @property
    def objective_names(self) -> tuple[str, ...]:
        return OBJECTIVES[self.objective][0]

    @property
    def directions(self) -> tuple[str, ...]:
        return OBJECTIVES[self.objective][1]


def validate_config(config: StudyConfig) -> None:
    if config.dataset not in DEFAULT_SUITES:  # first: an unknown dataset has no default suite either
        raise UserError(f"unknown dataset {config.dataset!r}: allowed values are {one_of(DEFAULT_SUITES)}")
    if not isinstance(config.seed, int) or not 0 <= config.seed <= MAX_SEED:
        raise UserError(f"seed {config.seed!r}: must be a whole number from 0 to {MAX_SEED}")
    if config.objective not in OBJECTIVES:
        raise UserError(f"unknown objective {config.objective!r}: allowed values are {one_of(OBJECTIVES)}")
    if config.robust_metric not in ROBUST_METRICS:
        raise UserError(f"unknown robust metric {config.robust_metric!r}: allowed values are {one_of(ROBUST_METRICS)}")
    if isinstance(config.replicates, bool) or not isinstance(config.replicates, int) or config.replicates < 1:
        raise UserError(
            f"replicates {config.replicates!r}: must be a whole number ≥ 1 (seeds per replicated architecture)"
        )
    if not (isinstance(config.replicate_share, (int, float)) and 0 < config.replicate_share <= 1):
        raise UserError(
            f"replicate_share {config.replicate_share!r}: must be a fraction in (0, 1] (the share of "
            "architectures trained with --replicates seeds)"
        )
    make_pruner(config.pruner)
    _check_training(config.training)
    if config.pruner != "none" and len(config.objective_names) > 1:
        raise UserError(
            f"--pruner {config.pruner}: Optuna cannot prune multi-objective studies "
            f"(objective {config.objective!r}); use --pruner none or --objective robust"
        )
    space = load_space(config.space)
    make_sampler(config.sampler, config.seed, space)
    suite = load_suite(config.suite)
    if config.objective_eps is not None and not any(math.isclose(config.objective_eps, e) for e in suite.eps):
        raise UserError(
            f"--objective-eps {config.objective_eps} is not on suite {suite.name!r}'s ε grid {list(suite.eps)}"
        )
    if config.headline_eps is not None and not any(math.isclose(config.headline_eps, e) for e in suite.eps):
        raise UserError(f"headline_eps {config.headline_eps} is not on suite {suite.name!r}'s ε grid {list(suite.eps)}")


def _check_training(overrides: dict) -> None:
    from ..training.train import TrainConfig

    allowed = [f.name for f in fields(TrainConfig)]
    unknown = [k for k in overrides if k not in allowed]
    if unknown:
        raise UserError(f"training: unknown setting {unknown[0]!r}: allowed values are {one_of(allowed)}")


def check_data(config: StudyConfig) -> None:
    """Load the study's data once, so a missing dataset fails before any study is stored."""
    from ..training.data import load_dataset

    load_dataset(config.dataset, data_dir=config.data_dir, seed=config.seed)


def resolved(config: StudyConfig) -> StudyConfig:
    """`config` with its defaults made explicit (the objective ε), so that a study stored with the
    default and a command naming the same value compare equal."""
    if config.objective_eps is not None:
        return config
    return dataclasses.replace(config, objective_eps=objective_eps(config, load_suite(config.suite)))


def objective_eps(config: StudyConfig, suite: SuiteConfig) -> float:
    if config.objective_eps is not None:
        return config.objective_eps
    return suite.eps[(len(suite.eps) - 1) // 2]


def objective_eps_index(config: StudyConfig, suite: SuiteConfig) -> int:
    """Position of the objective ε in the suite's grid (stored curves are lists over the grid)."""
    target = objective_eps(config, suite)
    return min(range(len(suite.eps)), key=lambda i: abs(suite.eps[i] - target))
