"""The trial objective: sample an architecture, build, train, attack, record. Everything a trial
measures is stored as Optuna trial user attributes, so any Optuna tool can read it.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ..attacks.suite import AttackSuite
from ..metrics import WORST_CASE, robust_auc
from ..runtime import pick_device
from ..search.arch import count_flops, count_params
from ..search.data import load_dataset
from ..search.space import SearchSpace, load_space
from ..search.train import TrainingFailed, accuracy, build_or_fail, train_model
from ..attacks.config import load_suite
from .artifacts import store_checkpoint
from .config import StudyConfig, objective_eps
from .storage import _optuna


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
        store_checkpoint(trial, self.artifacts, model, arch, train_config,
                         {"dataset": self.config.dataset, "bounds": list(self.data.bounds),
                          "trial": trial.number, "study": trial.study.study_name})


class TrialFailed(Exception):
    """A trial ended as failed with a stored `fail_reason`; the study goes on."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
