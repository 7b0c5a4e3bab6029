"""Studies: what a study is (objective, sampler, pruner), creating or resuming one, and the trial objective.

With `storage` (where studies live) and `workers` (running trials) these are the only modules that
talk to Optuna. Each trial samples an architecture, trains it, attacks it, and stores everything as
trial user attributes so any Optuna tool can read them.
"""
from __future__ import annotations

import math
import tempfile
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from .arch import count_flops, count_params
from .attack import WORST_CASE, AttackSuite
from .checkpoint import save_checkpoint
from .data import load_dataset
from .errors import UserError, one_of
from .runtime import pick_device
from .space import SearchSpace, load_space
from .suite import SuiteConfig, load_suite
from .storage import DEFAULT_STORAGE, _optuna, default_artifacts, open_storage  # noqa: F401 (API)
from .train import TrainingFailed, accuracy, build_or_fail, train_model

# objective → (what the trial values are, their directions); the robust term is `robust_metric`.
OBJECTIVES = {
    "robust": (("robust_accuracy",), ("maximize",)),
    "clean+robust": (("clean_accuracy", "robust_accuracy"), ("maximize", "maximize")),
    "clean+robust+size": (("clean_accuracy", "robust_accuracy", "params"),
                          ("maximize", "maximize", "minimize")),
}
ROBUST_METRICS = ("eps", "auc")  # worst case at objective_eps, or the area under the ε-curve
SAMPLERS = ("tpe", "nsgaii", "gp", "random", "grid")
PRUNERS = ("none", "median", "hyperband")
CONFIG_ATTR = "robustarch_config"
NSGAII_POPULATION = 20  # Optuna's 50 would leave a few-dozen-trial study entirely random


@dataclass(frozen=True)
class StudyConfig:
    """What a study is: these settings are stored with the study, and a resume must match them."""

    dataset: str = "digits"
    space: str = "digits-cells"
    suite: str = "quick"
    objective: str = "robust"
    objective_eps: float | None = None  # None: the middle of the suite's ε grid
    sampler: str = "tpe"
    seed: int = 0
    data_dir: str | None = None
    robust_metric: str = "eps"
    pruner: str = "none"  # prunes on validation accuracy; single-objective studies only

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "StudyConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def objective_names(self) -> tuple[str, ...]:
        return OBJECTIVES[self.objective][0]

    @property
    def directions(self) -> tuple[str, ...]:
        return OBJECTIVES[self.objective][1]


def _make_sampler(name: str, seed: int, space: SearchSpace | None = None):
    optuna = _optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
        if name == "nsgaii":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=NSGAII_POPULATION)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=5)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "grid":
            return optuna.samplers.GridSampler(search_grid(space), seed=seed)
    raise UserError(f"unknown sampler {name!r}: allowed values are {one_of(SAMPLERS)}")


def search_grid(space: SearchSpace) -> dict[str, list]:
    """Every value of every searched parameter, for `GridSampler` (the space must be discrete)."""
    return space.grid()


def _make_pruner(name: str):
    optuna = _optuna()
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    raise UserError(f"unknown pruner {name!r}: allowed values are {one_of(PRUNERS)}")


def create_or_resume(storage, name: str, config: StudyConfig | None):
    """Create study `name`, or load it if it exists (same name + storage = resume, never overwrite).

    With `config=None` the stored configuration is used (a worker joining a study).

    >>> study, config = create_or_resume(open_storage("x.journal"), "s1", StudyConfig())  # doctest: +SKIP
    """
    optuna = _optuna()
    if config is not None:
        _validate(config)  # bad settings are reported as such, also when the name exists already
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage)}
    if name in existing:
        stored = StudyConfig.from_dict(existing[name].user_attrs.get(CONFIG_ATTR, {}))
        if config is not None and config != stored:
            diff = [f"{f.name}={getattr(config, f.name)!r} (stored {getattr(stored, f.name)!r})"
                    for f in fields(StudyConfig) if getattr(config, f.name) != getattr(stored, f.name)]
            raise UserError(f"study {name!r} already exists with other settings: {', '.join(diff)}; "
                            "use another --study name or the stored settings to resume it")
        config = stored
        study = optuna.load_study(study_name=name, storage=storage, pruner=_make_pruner(config.pruner),
                                  sampler=_make_sampler(config.sampler, config.seed, _space_for(config)))
        return study, config
    if config is None:
        raise UserError(f"no study named {name!r} in this storage; existing: "
                        f"{one_of(sorted(existing)) or 'none'}")
    study = optuna.create_study(storage=storage, study_name=name, directions=list(config.directions),
                                pruner=_make_pruner(config.pruner),
                                sampler=_make_sampler(config.sampler, config.seed, _space_for(config)))
    study.set_user_attr(CONFIG_ATTR, config.to_dict())
    study.set_user_attr("objective_names", list(config.objective_names))
    study.set_user_attr("directions", list(config.directions))
    return study, config


def _space_for(config: StudyConfig) -> SearchSpace | None:
    return load_space(config.space) if config.sampler == "grid" else None


def _validate(config: StudyConfig) -> None:
    if config.objective not in OBJECTIVES:
        raise UserError(f"unknown objective {config.objective!r}: allowed values are {one_of(OBJECTIVES)}")
    if config.robust_metric not in ROBUST_METRICS:
        raise UserError(f"unknown robust metric {config.robust_metric!r}: allowed values are "
                        f"{one_of(ROBUST_METRICS)}")
    _make_pruner(config.pruner)
    if config.pruner != "none" and len(config.objective_names) > 1:
        raise UserError(f"--pruner {config.pruner}: Optuna cannot prune multi-objective studies "
                        f"(objective {config.objective!r}); use --pruner none or --objective robust")
    space = load_space(config.space)
    _make_sampler(config.sampler, config.seed, space)
    suite = load_suite(config.suite)
    if config.objective_eps is not None and not any(math.isclose(config.objective_eps, e) for e in suite.eps):
        raise UserError(f"--objective-eps {config.objective_eps} is not on suite {suite.name!r}'s ε grid "
                        f"{list(suite.eps)}")


def objective_eps(config: StudyConfig, suite: SuiteConfig) -> float:
    if config.objective_eps is not None:
        return config.objective_eps
    return suite.eps[(len(suite.eps) - 1) // 2]


def robust_auc(clean: float, eps: list[float], robust: list[float]) -> float:
    """Area under the worst-case robust-accuracy curve from ε=0 (clean accuracy) to the largest ε,
    divided by that ε: 1.0 is a model no attack breaks, 0.0 one broken at every ε."""
    xs, ys = [0.0, *eps], [clean, *robust]
    area = sum((xs[i + 1] - xs[i]) * (ys[i + 1] + ys[i]) / 2 for i in range(len(xs) - 1))
    return area / xs[-1]


def load_enqueue_file(path: str | Path, space: SearchSpace) -> list[dict]:
    """Known architectures to run first: a YAML or JSON list of parameter mappings named as the
    space's parameters (`stage0_depth`, `stage0_width`, ...); parameters left out are sampled."""
    import yaml

    path = Path(path)
    try:
        items = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"--enqueue {path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"--enqueue {path}: malformed YAML/JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise UserError(f"--enqueue {path}: expected a non-empty list of parameter mappings "
                        "(e.g. - {stage0_depth: 2, stage0_width: 32})")
    allowed = sorted(space.searched())
    for n, item in enumerate(items):
        unknown = sorted(set(item) - set(allowed))
        if unknown:
            raise UserError(f"--enqueue {path}: entry {n}: unknown parameter {unknown[0]!r}; "
                            f"space {space.name!r} searches {one_of(allowed)}")
    return items


class TrialRunner:
    """The objective: sample → build → train → attack → record. Loads data and configs once."""

    def __init__(self, config: StudyConfig, *, device: str | None = None,
                 artifacts: str | Path | None = None):
        self.config = config
        self.space: SearchSpace = load_space(config.space)
        self.suite_config = load_suite(config.suite)
        self.device = pick_device(device)
        self.data = load_dataset(config.dataset, data_dir=config.data_dir, seed=config.seed)
        self.suite = AttackSuite(self.suite_config, bounds=self.data.bounds, device=self.device)
        self.eps = objective_eps(config, self.suite_config)
        self.artifacts = Path(artifacts) if artifacts else None

    def study_attrs(self) -> dict:
        """Methods information a report needs to let a reader reproduce the study."""
        return {"dataset_info": self.data.describe(), "suite_config": self.suite_config.to_dict(),
                "space_path": self.space.path, "objective_eps": self.eps}

    def __call__(self, trial) -> float | tuple[float, ...]:
        try:
            return self._run(trial)
        except (TrialFailed, _optuna().TrialPruned, _optuna().exceptions.UpdateFinishedTrialError):
            raise  # the last: another worker failed this trial as lost; the worker loop moves on
        except KeyboardInterrupt:  # Ctrl-C: Optuna marks the trial failed; say why before it does
            trial.set_user_attr("fail_reason", "interrupted")
            trial.set_user_attr("fail_detail", "stopped by Ctrl-C (SIGINT)")
            raise
        except Exception as exc:  # any other error fails this trial only, with its reason stored
            trial.set_user_attr("fail_reason", "exception")
            trial.set_user_attr("fail_detail", f"{type(exc).__name__}: {exc}"[:500])
            raise TrialFailed("exception", f"{type(exc).__name__}: {exc}") from exc

    def _run(self, trial) -> float:
        data = self.data
        arch, train_config = self.space.sample(trial, in_chans=data.in_chans,
                                               num_classes=data.num_classes, input_size=data.input_size)
        trial.set_user_attr("arch", arch.to_dict())
        trial.set_user_attr("arch_summary", arch.summary())
        trial.set_user_attr("train_config", train_config.to_dict())
        seed = self.config.seed + trial.number
        torch.manual_seed(seed)
        try:
            model = build_or_fail(arch)  # builds and runs one forward pass
            params, flops = count_params(model), count_flops(model, arch)
        except TrainingFailed as exc:  # an unbuildable spec is the search space's fault, not a crash
            return self._fail(trial, exc.reason, str(exc))
        for key, value in {"params": params, "flops": flops, "depth": arch.depth,
                           "width": arch.width}.items():
            trial.set_user_attr(key, value)
        over = [f"{what} {value} > {limit}" for what, value, limit in
                (("params", params, self.space.max_params), ("flops", flops, self.space.max_flops))
                if limit is not None and value > limit]
        if over:  # rejected before training: nothing is trained and thrown away
            trial.set_user_attr("rejected", "over_budget: " + ", ".join(over))
            raise _optuna().TrialPruned("over budget: " + ", ".join(over))
        if train_config.train_fraction < 1.0:  # the "load-like" knob: fewer training samples
            data = data.with_train_fraction(train_config.train_fraction, seed=self.config.seed)
        try:
            result = train_model(model, data, train_config, device=self.device, seed=seed,
                                 on_epoch=self._pruning_hook(trial))
        except TrainingFailed as exc:
            return self._fail(trial, exc.reason, str(exc))
        clean = accuracy(model, data.test, self.device)
        attack = self.suite.run(model, data.test.x, data.test.y, seed=seed)
        robust = {a: g.sort_values("eps")["robust_accuracy"].round(6).tolist()
                  for a, g in attack.curve.groupby("attack")}
        correct = attack.per_sample["clean_correct"].to_numpy()
        attrs = {
            "clean_accuracy": clean, "val_accuracy": result.val_accuracy, "best_epoch": result.best_epoch,
            "n_train": len(data.train),
            "train_seconds": round(result.seconds, 3), "attack_seconds": round(attack.seconds, 3),
            "eps": list(self.suite_config.eps), "robust_accuracy": robust,
            "attacked_clean_accuracy": attack.clean_accuracy, "n_attacked": len(correct),
            "median_min_eps": attack.median_min_eps,
            "min_adversarial_eps": [None if math.isinf(v) else round(float(v), 6)
                                    for v in attack.per_sample["min_adversarial_eps"][correct]],
            "margins": [round(float(v), 4) for v in attack.per_sample["margin"][correct]],
            "sanity": {k: bool(v["ok"]) for k, v in attack.sanity.items()},
            "sanity_details": attack.sanity,
        }
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if WORST_CASE in robust:
            trial.set_user_attr("robust_auc", round(robust_auc(
                attack.clean_accuracy, list(self.suite_config.eps), robust[WORST_CASE]), 6))
        if self.artifacts is not None:
            self._store_checkpoint(trial, model, arch, train_config)
        robust_value = (trial.user_attrs["robust_auc"] if self.config.robust_metric == "auc"
                        else attack.robust_accuracy(self.eps, WORST_CASE))
        values = {"clean_accuracy": clean, "robust_accuracy": robust_value, "params": float(params)}
        picked = tuple(values[name] for name in self.config.objective_names)
        return picked[0] if len(picked) == 1 else picked

    def _pruning_hook(self, trial):
        """Report validation accuracy per epoch; prune when the pruner says (single objective only)."""
        if self.config.pruner == "none" or len(self.config.objective_names) > 1:
            return None

        def on_epoch(epoch: int, val_accuracy: float) -> None:
            trial.report(val_accuracy, epoch)
            if trial.should_prune():
                trial.set_user_attr("rejected", f"pruned at epoch {epoch}: val_accuracy {val_accuracy:.4f}")
                raise _optuna().TrialPruned(f"val_accuracy {val_accuracy:.4f} at epoch {epoch}")
        return on_epoch

    def _fail(self, trial, reason: str, detail: str):
        trial.set_user_attr("fail_reason", reason)
        trial.set_user_attr("fail_detail", detail[:500])
        raise TrialFailed(reason, detail)

    def _store_checkpoint(self, trial, model, arch, train_config):
        from optuna.artifacts import FileSystemArtifactStore, upload_artifact

        self.artifacts.mkdir(parents=True, exist_ok=True)
        store = FileSystemArtifactStore(str(self.artifacts))
        with tempfile.TemporaryDirectory() as tmp:
            path = save_checkpoint(Path(tmp) / f"trial-{trial.number}.safetensors", model, arch,
                                   train_config.to_dict(),
                                   {"dataset": self.config.dataset, "bounds": list(self.data.bounds),
                                    "trial": trial.number, "study": trial.study.study_name})
            artifact_id = upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)
        trial.set_user_attr("checkpoint_artifact", artifact_id)


class TrialFailed(Exception):
    """A trial ended as failed with a stored `fail_reason`; the study goes on."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def run_study(study, config: StudyConfig, **kwargs):
    """Run trials until the study holds `n_trials` complete trials; returns a `WorkerSummary`
    (see `robustarch.workers.run_study`)."""
    from .workers import run_study as _run

    return _run(study, config, **kwargs)


def download_checkpoint(storage_url: str | None, study_name: str, trial_number: int, dest: str | Path,
                        artifacts: str | Path | None = None) -> Path:
    """Fetch the checkpoint of trial `trial_number` of a study from the artifact store into `dest`."""
    from optuna.artifacts import FileSystemArtifactStore, download_artifact

    study, _ = create_or_resume(open_storage(storage_url), study_name, None)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if trial_number not in trials:
        raise UserError(f"study {study_name!r} has no trial {trial_number} (trials 0-{len(trials) - 1})")
    artifact_id = trials[trial_number].user_attrs.get("checkpoint_artifact")
    if artifact_id is None:
        raise UserError(f"trial {trial_number} of study {study_name!r} has no stored checkpoint "
                        f"(state {trials[trial_number].state.name})")
    stored_root = study.user_attrs.get("artifact_store")  # where the study's workers put them
    if artifacts:
        root = Path(artifacts)
    elif stored_root and Path(stored_root).is_dir():
        root = Path(stored_root)
    else:
        root = default_artifacts(storage_url)
    if not root.is_dir():
        raise UserError(f"artifact store {root} not found; pass --artifacts with the study's checkpoint folder")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{study_name}-trial-{trial_number}.safetensors"
    path.unlink(missing_ok=True)  # Optuna refuses to overwrite; a fresh copy of the same artifact is wanted
    download_artifact(artifact_store=FileSystemArtifactStore(str(root)), file_path=str(path),
                      artifact_id=artifact_id)
    return path
