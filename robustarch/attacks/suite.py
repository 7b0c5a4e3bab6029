"""Run an attack suite on any torch classifier and return verified, per-sample results.

Attacks search (`native`, `foolbox_adapter`), `run` schedules them by type, and `verify` decides
what counts; `probes` and `sanity` say whether the numbers can be trusted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from . import contract, probes
from .config import load_suite
from .model import (
    ExpectedLogits,
    ModelState,
    Normalized,
    ZeroGradientPath,
    check_inputs,
    checked_logits,
    has_gradient_path,
)
from .result import AttackResult, curve_from, kept_adversarials, per_sample_table
from .run import SuiteRun
from .sanity import sanity_checks
from .spec import SuiteConfig

# Draws averaged for a model found random when neither caller nor suite gave `eot`. Measured on the
# digits CNN with head dropout 0.3 forced on: 25% of single-draw predictions change between two
# evaluations, 6% of 4-draw averages, 4% of 16-draw ones (the check's `eot_fraction_predictions_changed`).
DEFAULT_EOT_DRAWS = 16


class AttackSuite:
    """A configured attack suite, usable on any torch classifier that returns logits.

    Example::

        suite = AttackSuite.load("quick", bounds=(0, 1))
        result = suite.run(model, x_test, y_test, seed=0)
        print(result.curve_table(), result.median_min_eps)

    `bounds` is the range of the inputs `x` as given; if the model expects normalized inputs, pass
    `mean`/`std` (per channel) and give `x` un-normalized: ε is measured in the un-normalized space.

    A model whose output is random in eval mode (dropout left on) is attacked and judged through the
    mean logits of `eot` draws (expectation over transformation; `DEFAULT_EOT_DRAWS` when None) and
    flagged invalid by the `deterministic_outputs` check; deterministic models are never averaged.
    """

    def __init__(
        self,
        config: SuiteConfig,
        *,
        bounds: tuple[float, float] = (0.0, 1.0),
        mean: float | list[float] | None = None,
        std: float | list[float] | None = None,
        device: str | torch.device | None = None,
        eot: int | None = None,
    ):
        if std is not None and mean is None:
            raise UserError(
                "AttackSuite: std= was given without mean=; pass both (per channel) to "
                "normalize inside the model, or neither"
            )
        if eot is not None and (isinstance(eot, bool) or not isinstance(eot, int) or eot < 1):
            raise UserError(f"AttackSuite: eot= must be a whole number of draws >= 1 (or None), got {eot!r}")
        self.config = config
        self.bounds = contract.checked_bounds(bounds)
        self.mean = contract.checked_channels("mean", mean, positive=False)
        self.std = contract.checked_channels("std", std, positive=True)
        self.device = contract.checked_device(device)
        # A suite file's `eot` applies unless the caller overrides it.
        self.eot = eot if eot is not None else config.eot

    @classmethod
    def load(cls, name_or_path: str | Path, **kwargs) -> AttackSuite:
        """The suite of a preset name (`quick`, `standard`, `autoattack`, ...) or a YAML path; `kwargs`
        are the constructor's (`bounds`, `mean`, `std`, `device`, ...)."""
        return cls(load_suite(name_or_path), **kwargs)

    def run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        keep_adversarials: bool = False,
        seed: int | None = None,
        on_attack: Callable[[str, int, int], None] | None = None,
        expected_clean_accuracy: float | None = None,
        predictions=None,
    ) -> AttackResult:
        """Attack the first `config.samples` of (x, y); deterministic on CPU for a given seed.
        `on_attack(label, i, n)` is called before attack `i` of the suite's `n` starts (progress).

        `x`: images (n, C, H, W) within `bounds`, un-normalized; `y`: integer class indices.
        `expected_clean_accuracy` (a fraction) or `predictions` (the caller's own class indices or
        scores for every input given): the model is first evaluated on all of `x`, and the suite
        refuses to attack (`UserError`) when its clean accuracy strays more than one point from the
        expectation, or its predictions from the given ones on more than 1% of the inputs. Without
        either, a clean accuracy near chance gives a warning naming the likely cause.
        """
        cfg = self.config
        start = time.perf_counter()
        state = ModelState(model)
        device = self.device or state.device
        contract.check_model_dtype(model)
        x_all = contract.checked_images(x)
        y_all = contract.checked_labels(y, len(x_all))
        contract.check_normalization(self.mean, self.std, x_all.shape[1])
        checking = expected_clean_accuracy is not None or predictions is not None
        n = len(y_all) if cfg.samples is None or checking else cfg.samples
        x, y = x_all[:n].to(device), y_all[:n].to(device)
        check_inputs(x, y, self.bounds)
        # Attacks seed torch's global RNG (Foolbox draws from it): give the caller's state back.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            seed = cfg.seed if seed is None else seed
            torch.manual_seed(seed)  # a random model's draws, before the attacks seed their own
            try:
                net = self._prepare(model, device)
                logits = checked_logits(net, x, y, cfg.batch_size)
                if checking:
                    contract.check_clean_accuracy(logits, y, expected_clean_accuracy, predictions)
                    x, y, logits = x[: cfg.samples], y[: cfg.samples], logits[: cfg.samples]
                else:
                    contract.warn_if_near_chance(logits, y)
                cfg = contract.for_num_classes(cfg, logits.shape[1])
                net, logits, determinism = self._average_if_random(net, x, y, logits)
                gradient_path = has_gradient_path(net, x)
                if not gradient_path:
                    net = ZeroGradientPath(net).eval()
                run = SuiteRun(cfg, self.bounds, net, x, y, logits.argmax(1) == y, seed)
                run.run_all(on_attack)
                extras = {"determinism": determinism, **self._probes(run, logits.shape[1])}
                extras["gradients"]["gradient_path"] = gradient_path
            finally:
                state.restore()
        top2 = logits.topk(2, dim=1).values
        return self._result(run, top2[:, 0] - top2[:, 1], extras, keep_adversarials, time.perf_counter() - start)

    def _prepare(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The model in eval mode on `device`, as a function of un-normalized inputs, with frozen
        parameters (gradients w.r.t. inputs only: faster and side-effect free)."""
        model.to(device)
        net = model if self.mean is None else Normalized(model, self.mean, 1.0 if self.std is None else self.std)
        net = net.to(device).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return net

    def _average_if_random(
        self, net: nn.Module, x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor
    ) -> tuple[nn.Module, torch.Tensor, dict]:
        """If repeated passes change the output, the model to attack is the mean over draws: its
        clean predictions (which decide clean-correct) and its verdict on every candidate then come
        from an average, not from one draw's noise."""
        m = min(len(x), self.config.batch_size)
        info = probes.determinism(net, x[:m], logits[:m])
        info["eot_draws"] = None
        if info["random"]:
            draws = self.eot or DEFAULT_EOT_DRAWS
            net = ExpectedLogits(net, draws).eval()  # eval like the model inside (Foolbox checks)
            logits = checked_logits(net, x, y, self.config.batch_size)
            # How often the averaged model still changes its mind between two evaluations.
            residual = probes.determinism(net, x[:m], logits[:m])
            info |= {"eot_draws": draws, "eot_fraction_predictions_changed": residual["fraction_predictions_changed"]}
        return net, logits, info

    def _probes(self, run: SuiteRun, num_classes: int) -> dict:
        first = run.correct_idx[:64]
        extras = {
            "gradients": probes.input_gradients(run.net, run.x[first], run.y[first]),
            "losses": probes.attack_losses(run),
        }
        if self.config.large_eps:
            extras["large_eps"] = probes.large_eps(run, num_classes)
        if self.config.step_doubling:
            extras["step_doubling"], doubled_runs = probes.step_doubling(run)
            # The flag keeps the two runs' curves as they came out; the results keep the stronger.
            extras["step_doubling"]["samples_improved"] = probes.keep_stronger(run, doubled_runs)
        return extras

    def _result(self, run: SuiteRun, margin, extras, keep_adversarials, seconds) -> AttackResult:
        per_sample = per_sample_table(run.y, run.clean_correct, margin, run.eps_broken)
        curve = curve_from(per_sample, list(run.eps_broken), run.cfg.eps)
        sanity = sanity_checks(per_sample, curve, run.cfg.eps, run.kinds, extras)
        adversarials = kept_adversarials(per_sample, run.adv) if keep_adversarials else None
        return AttackResult(run.cfg, per_sample, curve, sanity, seconds, adversarials, dict(run.seconds), run.kinds)
