"""Studies: the Optuna side of robustarch — storage, samplers, the trial objective, resuming.

This is the only module that talks to Optuna. Each trial samples an architecture, trains it, attacks
it, and stores everything as trial user attributes so any Optuna tool can read them.
"""
from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch

from .arch import build_model, count_flops, count_params
from .attack import WORST_CASE, AttackSuite
from .checkpoint import save_checkpoint
from .data import load_dataset
from .errors import UserError, one_of
from .runtime import configure_threads, pick_device
from .space import SearchSpace, load_space
from .suite import SuiteConfig, load_suite
from .train import TrainingFailed, accuracy, train_model

OBJECTIVES = ("robust",)
SAMPLERS = ("tpe", "random")
DEFAULT_STORAGE = "robustarch.journal"
CONFIG_ATTR = "robustarch_config"


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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "StudyConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress display says what matters
    return optuna


def open_storage(url: str | None = None):
    """An Optuna storage from a URL: any SQLAlchemy URL Optuna accepts (`sqlite:///x.db`,
    `postgresql://user@host/db`), or a journal file (`journal:PATH` or a path ending in `.journal`)."""
    optuna = _optuna()
    url = url or DEFAULT_STORAGE
    try:
        if url.startswith("journal:") or url.endswith(".journal") or "://" not in url:
            path = Path(url.removeprefix("journal:")).expanduser()
            if path.parent and not path.parent.exists():
                raise UserError(f"storage {url!r}: folder {path.parent} does not exist")
            if path.is_dir():
                raise UserError(f"storage {url!r}: {path} is a folder, not a journal file")
            from optuna.storages.journal import JournalFileBackend

            backend = JournalFileBackend(str(path))
            return optuna.storages.JournalStorage(backend)
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    except UserError:
        raise
    except Exception as exc:  # SQLAlchemy, driver and file errors: one line for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot open storage {url!r}: {first}") from None


def _make_sampler(name: str, seed: int):
    optuna = _optuna()
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UserError(f"unknown sampler {name!r}: allowed values are {one_of(SAMPLERS)}")


def create_or_resume(storage, name: str, config: StudyConfig | None):
    """Create study `name`, or load it if it exists (same name + storage = resume, never overwrite).

    With `config=None` the stored configuration is used (a worker joining a study).
    """
    optuna = _optuna()
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage)}
    if name in existing:
        stored = StudyConfig.from_dict(existing[name].user_attrs.get(CONFIG_ATTR, {}))
        if config is not None and config != stored:
            diff = [f"{f.name}={getattr(config, f.name)!r} (stored {getattr(stored, f.name)!r})"
                    for f in fields(StudyConfig) if getattr(config, f.name) != getattr(stored, f.name)]
            raise UserError(f"study {name!r} already exists with other settings: {', '.join(diff)}; "
                            "use another --study name or the stored settings to resume it")
        config = stored
        study = optuna.load_study(study_name=name, storage=storage,
                                  sampler=_make_sampler(config.sampler, config.seed))
        return study, config
    if config is None:
        raise UserError(f"no study named {name!r} in this storage; existing: "
                        f"{one_of(sorted(existing)) or 'none'}")
    _validate(config)
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                sampler=_make_sampler(config.sampler, config.seed))
    study.set_user_attr(CONFIG_ATTR, config.to_dict())
    return study, config


def _validate(config: StudyConfig) -> None:
    if config.objective not in OBJECTIVES:
        raise UserError(f"unknown objective {config.objective!r}: allowed values are {one_of(OBJECTIVES)}")
    _make_sampler(config.sampler, config.seed)
    load_space(config.space)
    suite = load_suite(config.suite)
    if config.objective_eps is not None and not any(math.isclose(config.objective_eps, e) for e in suite.eps):
        raise UserError(f"--objective-eps {config.objective_eps} is not on suite {suite.name!r}'s ε grid "
                        f"{list(suite.eps)}")


def objective_eps(config: StudyConfig, suite: SuiteConfig) -> float:
    if config.objective_eps is not None:
        return config.objective_eps
    return suite.eps[(len(suite.eps) - 1) // 2]


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

    def __call__(self, trial) -> float:
        try:
            return self._run(trial)
        except (TrialFailed, _optuna().TrialPruned, KeyboardInterrupt):
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
            model = build_model(arch)
            params, flops = count_params(model), count_flops(model, arch)
        except Exception as exc:  # an unbuildable spec is the search space's fault, not a crash
            return self._fail(trial, "invalid_arch", f"{type(exc).__name__}: {exc}")
        for key, value in {"params": params, "flops": flops, "depth": arch.depth,
                           "width": arch.width}.items():
            trial.set_user_attr(key, value)
        over = [f"{what} {value} > {limit}" for what, value, limit in
                (("params", params, self.space.max_params), ("flops", flops, self.space.max_flops))
                if limit is not None and value > limit]
        if over:  # rejected before training: nothing is trained and thrown away
            trial.set_user_attr("rejected", "over_budget: " + ", ".join(over))
            raise _optuna().TrialPruned("over budget: " + ", ".join(over))
        try:
            result = train_model(model, data, train_config, device=self.device, seed=seed)
        except TrainingFailed as exc:
            return self._fail(trial, exc.reason, str(exc))
        except torch.cuda.OutOfMemoryError as exc:
            del model
            torch.cuda.empty_cache()
            return self._fail(trial, "oom", str(exc).splitlines()[0])
        clean = accuracy(model, data.test, self.device)
        attack = self.suite.run(model, data.test.x, data.test.y, seed=seed)
        robust = {a: g.sort_values("eps")["robust_accuracy"].round(6).tolist()
                  for a, g in attack.curve.groupby("attack")}
        correct = attack.per_sample["clean_correct"].to_numpy()
        attrs = {
            "clean_accuracy": clean, "val_accuracy": result.val_accuracy, "best_epoch": result.best_epoch,
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
        if self.artifacts is not None:
            self._store_checkpoint(trial, model, arch, train_config)
        return attack.robust_accuracy(self.eps, WORST_CASE)

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


def default_artifacts(storage_url: str | None) -> Path:
    """Checkpoints go beside a journal file (`x.journal` → `x-artifacts/`), else ./robustarch-artifacts."""
    url = storage_url or DEFAULT_STORAGE
    if url.startswith("journal:") or url.endswith(".journal") or "://" not in url:
        path = Path(url.removeprefix("journal:"))
        return path.with_name(path.stem + "-artifacts")
    return Path("robustarch-artifacts")


def run_study(study, config: StudyConfig, *, n_trials: int, timeout: float | None = None,
              device: str | None = None, artifacts: str | Path | None = None,
              threads: int | None = None,
              on_trial: Callable[[object, object], None] | None = None) -> None:
    """Run trials until the study holds `n_trials` complete trials (a budget for the whole study,
    shared by every worker) or `timeout` seconds pass."""
    optuna = _optuna()
    configure_threads(threads)
    runner = TrialRunner(config, device=device, artifacts=artifacts)
    for key, value in runner.study_attrs().items():
        study.set_user_attr(key, value)
    State = optuna.trial.TrialState

    def complete() -> int:
        return len(study.get_trials(deepcopy=False, states=(State.COMPLETE,)))

    if complete() >= n_trials:
        return
    callbacks = [optuna.study.MaxTrialsCallback(n_trials, states=(State.COMPLETE,))]
    if on_trial is not None:
        callbacks.append(on_trial)
    # A guard against a space where every trial fails: at most this many trials in this call.
    attempts = 3 * n_trials + 10
    study.optimize(runner, n_trials=attempts, timeout=timeout, callbacks=callbacks,
                   catch=(TrialFailed,))


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
    root = Path(artifacts) if artifacts else default_artifacts(storage_url)
    if not root.is_dir():
        raise UserError(f"artifact store {root} not found; pass --artifacts with the study's checkpoint folder")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{study_name}-trial-{trial_number}.safetensors"
    download_artifact(artifact_store=FileSystemArtifactStore(str(root)), file_path=str(path),
                      artifact_id=artifact_id)
    return path
