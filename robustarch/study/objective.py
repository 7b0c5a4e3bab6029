"""The trial objective: sample an architecture, build, train, attack, record. Everything a trial
measures is stored as Optuna trial user attributes, so any Optuna tool can read it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..attacks.config import load_suite
from ..attacks.suite import AttackSuite
from ..metrics import WORST_CASE, robust_auc
from ..models.arch import count_flops, count_params
from ..runtime import pick_device
from ..spaces.space import SearchSpace, load_space
from ..training.data import Dataset, load_dataset
from ..training.train import TrainingFailed, accuracy, build_or_fail, train_model
from .artifacts import store_checkpoint
from .config import StudyConfig, objective_eps
from .evaluate import evaluate, report_attrs, robust_value, val_attrs
from .provenance import provenance
from .replicates import arch_key, derive_seed, enqueue_replicates, in_share, is_replicate, replicate_of
from .storage import _optuna

INVALID_CONSTRAINT = "invalid_evaluation"  # Optuna constraint: > 0 when a sanity check says invalid


class TrialRunner:
    """The objective: sample → build → train → attack → record. Loads data and configs once."""

    def __init__(self, config: StudyConfig, *, device: str | None = None, artifacts: str | Path | None = None):
        self.config = config
        self.space: SearchSpace = load_space(config.space)
        self.suite_config = load_suite(config.suite)
        self.device = pick_device(device)
        self.data = load_dataset(config.dataset, data_dir=config.data_dir, seed=config.seed)
        self.suite = AttackSuite(self.suite_config, bounds=self.data.bounds, device=self.device)
        self.eps = objective_eps(config, self.suite_config)
        self.artifacts = Path(artifacts) if artifacts else None
        # The sampler's seed; None once a worker reseeds it from OS entropy (then not reproducible).
        self.sampler_seed: int | None = config.seed

    def study_attrs(self) -> dict:
        """Methods information a report needs to let a reader reproduce the study."""
        return {
            "dataset_info": self.data.describe(),
            "suite_config": self.suite_config.to_dict(),
            "space_path": self.space.path,
            "objective_eps": self.eps,
        }

    def provenance(self, trial, seed: int | None = None, replicate: dict | None = None) -> dict:
        """Versions, device, threads, every seed and the suite's resolved configuration of `trial`
        (attack `i` of the suite draws from seed `attack + 1000·i`, see `attacks.run`); `replicate`:
        the architecture key, origin and replicate number the seed was derived from."""
        seed = self.config.seed + trial.number if seed is None else seed
        return provenance(
            self.device,
            {
                "data_split": self.config.seed,
                "sampler": self.sampler_seed,
                "training": seed,
                "attack": seed,
                **(replicate or {}),
            },
            self.suite_config.to_dict(),
        )

    def _seed(self, trial) -> int:
        """The trial's training and attack seed: study seed + trial number, or in a study with
        replicates (study.replicates) the hash of (study seed, architecture, replicate), recorded with
        the grouping key in the trial's user attributes and provenance."""
        key = arch_key(trial.params)
        origin, replicate = replicate_of(trial)
        for name, value in {"arch_key": key, "replicate": replicate, "replicate_of": origin}.items():
            trial.set_user_attr(name, value)
        if self.config.replicates <= 1:
            return self.config.seed + trial.number
        seed = derive_seed(self.config.seed, key, origin, replicate)
        trial.set_user_attr(
            "provenance",
            self.provenance(trial, seed, {"arch_key": key, "replicate_of": origin, "replicate": replicate}),
        )
        return seed

    def __call__(self, trial) -> float | tuple[float, ...]:
        try:
            trial.set_user_attr("provenance", self.provenance(trial))  # first: failed trials keep it too
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

    def _run(self, trial) -> float | tuple[float, ...]:
        data = self.data
        arch, train_config = self.space.sample(
            trial, in_chans=data.in_chans, num_classes=data.num_classes, input_size=data.input_size
        )
        train_config = self.config.apply_training(train_config)
        trial.set_user_attr("arch", arch.to_dict())
        trial.set_user_attr("arch_summary", arch.summary())
        trial.set_user_attr("train_config", train_config.to_dict())
        seed = self._seed(trial)
        torch.manual_seed(seed)
        try:
            model = build_or_fail(arch)  # builds and runs one forward pass
            params, flops = count_params(model), count_flops(model, arch)
        except TrainingFailed as exc:  # an unbuildable spec is the search space's fault, not a crash
            return self._fail(trial, exc.reason, str(exc))
        for key, value in {"params": params, "flops": flops, "depth": arch.depth, "width": arch.width}.items():
            trial.set_user_attr(key, value)
        self._check_budget(trial, params, flops)
        self._plan_replicates(trial)
        data = self._trial_data(train_config)
        failure = None
        try:
            result = train_model(
                model, data, train_config, device=self.device, seed=seed, on_epoch=self._pruning_hook(trial)
            )
        except TrainingFailed as exc:
            failure = (exc.reason, str(exc))
        if failure is not None:
            # Failed outside the except block and without the model: Optuna logs the raised error with
            # its traceback, which must not keep a failed (e.g. out-of-memory) model alive.
            del model
            return self._fail(trial, *failure)
        val, val_clean, test, test_clean = evaluate(self.suite, model, data, self.device, seed)
        attrs = {
            "val_accuracy": result.val_accuracy,
            "best_epoch": result.best_epoch,
            "n_train": len(data.train),
            "train_accuracy": accuracy(model, data.train, self.device),
            "train_seconds": round(result.seconds, 3),
            "eps": list(self.suite_config.eps),
            "compile_seconds": result.compile_seconds,
            "compile_reused": result.compile_reused,
            "selection_metric": result.selection_metric,
            "pgd_val_accuracy": result.val_robust_accuracy,
            "train_steps": result.steps,
            **val_attrs(val, val_clean),
            **report_attrs(test, test_clean),
        }
        invalid = val.invalid_checks
        attrs["sanity_invalid"] = sorted(set(invalid) | set(test.invalid_checks))
        attrs["sanity_warnings"] = sorted(set(val.warning_checks) | set(test.warning_checks))
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if WORST_CASE in attrs["robust_accuracy"]:
            trial.set_user_attr(
                "robust_auc",
                round(
                    robust_auc(test.clean_accuracy, list(self.suite_config.eps), attrs["robust_accuracy"][WORST_CASE]),
                    6,
                ),
            )
        # Optuna's constraints: a trial whose validation evaluation shows masking or random outputs
        # is infeasible, so the sampler learns to avoid it and `best_trial` never returns it.
        trial.set_constraint(INVALID_CONSTRAINT, 1.0 if invalid else 0.0)
        if self.artifacts is not None:
            self._store_checkpoint(trial, model, arch, train_config, data)
        values = {
            "clean_accuracy": val_clean,
            "params": float(params),
            "robust_accuracy": robust_value(val, self.eps, self.config.robust_metric, self.suite_config.eps),
        }
        picked = tuple(values[name] for name in self.config.objective_names)
        return picked[0] if len(picked) == 1 else picked

    def _check_budget(self, trial, params: int, flops: int) -> None:
        over = [
            f"{what} {value} > {limit}"
            for what, value, limit in (
                ("params", params, self.space.max_params),
                ("flops", flops, self.space.max_flops),
            )
            if limit is not None and value > limit
        ]
        if over:  # rejected before training: nothing is trained and thrown away
            trial.set_user_attr("rejected", "over_budget: " + ", ".join(over))
            raise _optuna().TrialPruned("over budget: " + ", ".join(over))

    def _plan_replicates(self, trial) -> None:
        """A proposal of an architecture in the reliability subsample queues its other seeds now,
        before training, so that idle workers train them meanwhile."""
        c = self.config
        key = trial.user_attrs["arch_key"]
        if c.replicates > 1 and not is_replicate(trial) and in_share(c.seed, key, c.replicate_share):
            enqueue_replicates(trial, key, c.replicates)

    def _trial_data(self, train_config) -> Dataset:
        """The study's data with this trial's load knobs: fewer training samples, noisy labels."""
        data = self.data
        if train_config.train_fraction < 1.0:
            data = data.with_train_fraction(train_config.train_fraction, seed=self.config.seed)
        if train_config.label_noise > 0.0:
            data = data.with_label_noise(train_config.label_noise, seed=self.config.seed)
        return data

    def _pruning_hook(self, trial):
        """Report the epoch-selection metric per epoch (clean validation accuracy, or PGD validation
        accuracy for adversarial recipes); prune when the pruner says (single objective only)."""
        if self.config.pruner == "none" or len(self.config.objective_names) > 1:
            return None

        def on_epoch(epoch: int, value: float) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                metric = trial.user_attrs.get("train_config", {}).get("recipe", "standard")
                metric = "val_accuracy" if metric == "standard" else "pgd_val_accuracy"
                trial.set_user_attr("rejected", f"pruned at epoch {epoch}: {metric} {value:.4f}")
                raise _optuna().TrialPruned(f"{metric} {value:.4f} at epoch {epoch}")

        return on_epoch

    def _fail(self, trial, reason: str, detail: str):
        trial.set_user_attr("fail_reason", reason)
        trial.set_user_attr("fail_detail", detail[:500])
        raise TrialFailed(reason, detail)

    def _store_checkpoint(self, trial, model, arch, train_config, data: Dataset):
        # the split information lets `robustarch attack --study` refuse a different test split
        store_checkpoint(
            trial,
            self.artifacts,
            model,
            arch,
            train_config,
            {
                **self.data.split_info(),
                "bounds": list(self.data.bounds),
                "n_train_used": len(data.train),
                "trial": trial.number,
                "study": trial.study.study_name,
            },
        )


class TrialFailed(Exception):
    """A trial ended as failed with a stored `fail_reason`; the study goes on."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
