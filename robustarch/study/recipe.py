"""Study recipes: a study (or a pair to compare) as one YAML file in `studies/` — dataset, space,
suite, sampler, budget, fixed training settings — run with `robustarch search --config NAME`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from ..errors import UserError
from ..names import check_study_name
from ..presets import Section, load_yaml, resolve
from .config import OBJECTIVES, ROBUST_METRICS, StudyConfig, check_data, validate_config
from .samplers import PRUNERS, SAMPLERS

# StudyConfig fields a recipe (or one study of it) may set; `training` is parsed separately.
_CONFIG_FIELDS = {
    "dataset": str,
    "space": str,
    "suite": str,
    "objective": str,
    "objective_eps": float,
    "headline_eps": float,  # the findings' ε (default: chosen on validation, analysis.headline)
    "sampler": str,
    "seed": int,
    "robust_metric": str,
    "pruner": str,
    "claims": list,
    "replicates": int,
    "replicate_share": float,
}  # the findings' claims: names in analysis.claims (checked at analysis)
_RUN_FIELDS = ("name", "description", "n_trials", "timeout", "rescore_top", "studies", "compare", "training", "workers")
_CHOICES = {"objective": tuple(OBJECTIVES), "robust_metric": ROBUST_METRICS, "sampler": SAMPLERS, "pruner": PRUNERS}


@dataclass(frozen=True)
class StudyRecipe:
    """One or more studies run by one command; `compare`: also write their comparison report."""

    name: str
    description: str
    studies: tuple[tuple[str, StudyConfig], ...]  # (study name, config)
    n_trials: int | None = None
    timeout: float | None = None
    rescore_top: int | None = None
    compare: bool = False
    path: str = ""
    workers: int | None = None  # local worker processes (CPU recipes: one per core beats threads)


def load_recipe(name_or_path: str | Path) -> StudyRecipe:
    """A preset name (`cubuk2017-digits`) or a YAML path → a validated `StudyRecipe`."""
    path = resolve("studies", name_or_path)
    return parse_recipe(load_yaml(path), default_name=path.stem)


def parse_recipe(doc: Section, default_name: str = "study") -> StudyRecipe:
    doc.check_keys(tuple(_CONFIG_FIELDS) + _RUN_FIELDS)
    name = _name(doc, default_name)
    base = StudyConfig(**_config_fields(doc), training=_training(doc))
    if "studies" in doc:
        studies = tuple(_one_study(sec, base) for sec in doc.sections("studies"))
    else:
        studies = ((name, base),)
    compare = doc.get("compare", bool, False)
    if compare and len(studies) != 2:
        raise doc.error("compare", f"compares exactly two studies; this recipe has {len(studies)}")
    timeout = doc.get("timeout", float, None, min=0.0)
    if timeout is not None and not timeout > 0:
        raise doc.error("timeout", f"got {timeout!r}; must be > 0 seconds")
    return StudyRecipe(
        name,
        doc.get("description", str, ""),
        studies,
        n_trials=doc.get("n_trials", int, None, min=1),
        timeout=timeout,
        rescore_top=doc.get("rescore_top", int, None, min=0),
        compare=compare,
        path=str(doc.file),
        workers=doc.get("workers", int, None, min=1),
    )


def _name(sec: Section, default: str | None) -> str:
    """A study name field: a non-empty string (it names the study and, made safe, its report)."""
    name = sec.get("name", str) if default is None else sec.get("name", str, default)
    if not name.strip() or any(ord(c) < 32 for c in name):
        raise sec.error("name", f"got {name!r}; a study name must be non-empty text on one line")
    return name


def _config_fields(sec: Section) -> dict:
    out = {}
    limits = {"replicates": {"min": 1}, "replicate_share": {"min": 0.0, "max": 1.0}}
    for key, kind in _CONFIG_FIELDS.items():
        if key in sec:
            out[key] = sec.get(key, kind, choices=_CHOICES.get(key), **limits.get(key, {}))
    if "claims" in out:
        if not all(isinstance(c, str) and c for c in out["claims"]):
            raise sec.error("claims", f"expected a list of claim names, got {out['claims']!r}")
        out["claims"] = tuple(out["claims"])
    return out


def _one_study(sec: Section, base: StudyConfig) -> tuple[str, StudyConfig]:
    sec.check_keys(("name", "training") + tuple(_CONFIG_FIELDS))
    training = {**base.training, **_training(sec)}
    return _name(sec, None), replace(base, **_config_fields(sec), training=training)


def _training(sec: Section) -> dict:
    """Fixed training settings (fields of `TrainConfig`), type- and range-checked here at the edge."""
    from ..training.recipes import RECIPES
    from ..training.train import OPTIMIZERS, SELECT, TrainConfig

    if "training" not in sec:
        return {}
    t = sec.section("training")
    known = {f.name: f for f in fields(TrainConfig)}
    t.check_keys(tuple(known))
    rules = {
        "recipe": (str, {"choices": RECIPES}),
        "optimizer": (str, {"choices": OPTIMIZERS}),
        "epochs": (int, {"min": 1}),
        "max_steps": (int, {"min": 1}),
        "batch_size": (int, {"min": 1}),
        "attack_steps": (int, {"min": 1}),
        "patience": (int, {"min": 1}),
        "label_noise": (float, {"min": 0.0, "max": 1.0}),
        "train_fraction": (float, {"min": 0.01, "max": 1.0}),
        "compile": (bool, {}),
        "select": (str, {"choices": SELECT}),
        "label_smoothing": (float, {"min": 0.0, "max": 0.99}),
    }
    out = {}
    for key in t.data:
        kind, limits = rules.get(key, (float, {"min": 0.0}))
        out[key] = t.get(key, kind, **limits)
    return out


DEFAULT_STUDY = "robustarch-digits"


def plan(recipe: StudyRecipe | None, study_name: str | None, flags: dict) -> list[tuple[str, StudyConfig]]:
    """The (study name, config) pairs one `search` runs: the recipe's, with every flag that was
    given (not None) overriding it; without a recipe, the flags over the built-in defaults."""
    given = {k: v for k, v in flags.items() if v is not None}
    if study_name is not None:
        check_study_name(study_name)  # `--study ""` is a mistake, not a request for the default name
    if recipe is None:
        return [(study_name or DEFAULT_STUDY, StudyConfig(**given))]
    if study_name and len(recipe.studies) > 1:
        names = ", ".join(n for n, _ in recipe.studies)
        raise UserError(
            f"--study: recipe {recipe.name!r} runs {len(recipe.studies)} studies ({names}); "
            "rename them in a copy of its YAML instead"
        )
    runs = []
    for name, config in recipe.studies:
        if "dataset" in given and "suite" not in given and config.suite == StudyConfig(dataset=config.dataset).suite:
            given_here = {**given, "suite": None}  # the new dataset's default suite, not the old one's
        else:
            given_here = given
        runs.append((study_name or name, replace(config, **given_here)))
    return runs


def check_runs(runs: list[tuple[str, StudyConfig]]) -> None:
    """Validate every config of a plan, its data loaded too, before any of its studies is created:
    a recipe whose second study is bad stores nothing."""
    for _, config in runs:
        validate_config(config)
        check_data(config)
