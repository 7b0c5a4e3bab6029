"""Run an attack suite on any torch classifier and return verified, per-sample results.

This is the only module that talks to Foolbox. Foolbox runs the attacks; we decide what counts:
every adversarial is re-checked against the model (eval mode) and the ε-ball before it is counted,
because an attack's own success flag is not evidence.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .errors import UserError
from .suite import AttackConfig, SuiteConfig, load_suite

# A counted adversarial must lie within eps * (1 + EPS_RTOL) + EPS_ATOL of the original (input units);
# the slack only absorbs float32 rounding of x + delta, far below any ε a study would use.
EPS_RTOL = 1e-5
EPS_ATOL = 1e-6
WORST_CASE = "worst_case"
_NORM_ORD = {"linf": math.inf, "l2": 2.0, "l1": 1.0}


def _foolbox():
    import os

    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox.zoo imports GitPython
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import foolbox

    return foolbox


@lru_cache(maxsize=1)
def foolbox_attack_names() -> tuple[str, ...]:
    fb = _foolbox()
    names = []
    for name in dir(fb.attacks):
        obj = getattr(fb.attacks, name)
        if isinstance(obj, type) and issubclass(obj, fb.attacks.base.Attack) and name[0].isupper() \
                and not getattr(obj, "__abstractmethods__", None):
            names.append(name)
    return tuple(sorted(names))


def make_foolbox_attack(name: str, kwargs: dict[str, Any]):
    """Instantiate a Foolbox attack, with stronger defaults than Foolbox's where good practice says so.

    PGD-style attacks get a step of 2.5·ε/steps (Madry et al.) unless the suite sets one: Foolbox's
    default relative step (0.01/0.3·ε for Linf) is weaker at the same number of steps.
    """
    fb = _foolbox()
    cls = getattr(fb.attacks, name)
    kwargs = dict(kwargs)
    import inspect

    params = inspect.signature(cls.__init__).parameters
    if "rel_stepsize" in params and "rel_stepsize" not in kwargs and "abs_stepsize" not in kwargs \
            and "steps" in params:
        steps = kwargs.get("steps", params["steps"].default)
        if isinstance(steps, int) and steps > 1:
            kwargs["rel_stepsize"] = 2.5 / steps
    return cls(**kwargs)


def attack_threat_model(instance) -> str | None:
    """'linf', 'l2' or 'l1' for the attack's distance, None when the attack declares none."""
    try:
        distance = instance.distance
    except (AttributeError, NotImplementedError):
        return None
    text = str(distance).lower()
    for key in ("linf", "l2", "l1"):
        if text.startswith(key):
            return key
    return None


def lp_distance(a: torch.Tensor, b: torch.Tensor, threat_model: str) -> torch.Tensor:
    return (a - b).flatten(1).norm(p=_NORM_ORD[threat_model], dim=1)


@dataclass
class AttackResult:
    """What a suite found on one model.

    `per_sample`: one row per attacked sample — `label`, `clean_correct`, `margin` (top-1 minus
    runner-up logit), `min_adversarial_eps` (smallest ε at which any attack broke it; inf if never)
    and `eps_<attack>` (the same per attack). `curve`: one row per attack × ε — `robust_accuracy`
    (fraction of all attacked samples that are clean-correct and unbroken), with `attack ==
    "worst_case"` the per-sample worst case over attacks. `sanity`: named checks, each a dict with
    `ok` and the numbers behind it.
    """

    suite: SuiteConfig
    per_sample: pd.DataFrame
    curve: pd.DataFrame
    sanity: dict[str, dict]
    seconds: float
    adversarials: dict[str, dict[str, torch.Tensor]] | None = None
    attack_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def clean_accuracy(self) -> float:
        return float(self.per_sample["clean_correct"].mean())

    def robust_accuracy(self, eps: float, attack: str = WORST_CASE) -> float:
        rows = self.curve[(self.curve["attack"] == attack) & np.isclose(self.curve["eps"], eps)]
        if rows.empty:
            raise KeyError(f"no result for attack={attack!r} at eps={eps}")
        return float(rows["robust_accuracy"].iloc[0])

    @property
    def median_min_eps(self) -> float:
        """Median minimal adversarial ε over clean-correct samples (inf when most were never broken)."""
        values = self.per_sample.loc[self.per_sample["clean_correct"], "min_adversarial_eps"]
        return float(np.median(values)) if len(values) else float("nan")

    def curve_table(self) -> pd.DataFrame:
        """The ε-curve as a wide table: one row per ε, one column per attack."""
        return self.curve.pivot(index="eps", columns="attack", values="robust_accuracy")

    def save(self, folder: str | Path) -> list[Path]:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "curve.csv", folder / "per_sample.csv"]
        self.curve.to_csv(paths[0], index=False)
        self.per_sample.to_csv(paths[1], index=False)
        return paths


class _Normalized(nn.Module):
    """The model as a function of inputs in `bounds`: (x - mean) / std, then the model."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1))

    def forward(self, x):
        return self.model((x - self.mean) / self.std)


class AttackSuite:
    """A configured attack suite, usable on any torch classifier that returns logits.

    Example::

        suite = AttackSuite.load("quick", bounds=(0, 1))
        result = suite.run(model, x_test, y_test)
        print(result.curve_table())

    `bounds` is the range of the inputs `x` as given; if the model expects normalized inputs, pass
    `mean`/`std` (per channel) and give `x` un-normalized: ε is measured in the un-normalized space.
    """

    def __init__(self, config: SuiteConfig, *, bounds: tuple[float, float] = (0.0, 1.0),
                 mean: float | list[float] | None = None, std: float | list[float] | None = None,
                 device: str | torch.device | None = None):
        self.config = config
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.mean, self.std = mean, std
        self.device = torch.device(device) if device is not None else None

    @classmethod
    def load(cls, name_or_path: str | Path, **kwargs) -> "AttackSuite":
        return cls(load_suite(name_or_path), **kwargs)

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
            keep_adversarials: bool = False, seed: int | None = None) -> AttackResult:
        cfg = self.config
        fb = _foolbox()
        start = time.perf_counter()
        device = self.device or _model_device(model)
        if cfg.samples is not None:
            x, y = x[: cfg.samples], y[: cfg.samples]
        x = x.to(device=device, dtype=torch.float32)
        y = y.to(device=device, dtype=torch.int64)
        self._check_inputs(x, y)
        net = model if self.mean is None else _Normalized(model, self.mean, self.std or 1.0).to(device)
        state = _ModelState(model)
        try:
            net.eval()
            for p in model.parameters():
                p.requires_grad_(False)  # gradients w.r.t. inputs only; faster and side-effect free
            logits = _batched_logits(net, x, cfg.batch_size)
            self._check_logits(logits, y)
            clean_correct = logits.argmax(1) == y
            top2 = logits.topk(2, dim=1).values
            margin = (top2[:, 0] - top2[:, 1]).cpu().numpy()
            fmodel = fb.PyTorchModel(net, bounds=self.bounds, device=device)
            broken: dict[str, np.ndarray] = {}
            timings: dict[str, float] = {}
            adversarials = {} if keep_adversarials else None
            base_seed = cfg.seed if seed is None else seed
            for i, acfg in enumerate(cfg.attacks):
                t0 = time.perf_counter()
                eps_broken, adv = self._run_attack(fb, fmodel, net, acfg, x, y, clean_correct,
                                                   base_seed + 1000 * i)
                timings[acfg.label] = time.perf_counter() - t0
                broken[acfg.label] = eps_broken
                if adversarials is not None:
                    adversarials[acfg.label] = adv
            grad_info = _input_gradient_check(net, x[: min(len(x), 64)], y[: min(len(y), 64)])
        finally:
            state.restore()
        return _assemble(cfg, y, clean_correct.cpu().numpy(), margin, broken, timings, adversarials,
                         grad_info, time.perf_counter() - start)

    # -- one attack over the whole ε grid -------------------------------------------------------
    def _run_attack(self, fb, fmodel, net, acfg: AttackConfig, x, y, clean_correct, seed):
        """Per-sample smallest ε (on the grid, or exact for minimization attacks) that broke it."""
        cfg = self.config
        attack = make_foolbox_attack(acfg.attack, acfg.kwargs)
        n = len(y)
        eps_broken = np.full(n, np.inf)
        best_adv = torch.full_like(x, float("nan"))
        minimization = isinstance(attack, fb.attacks.base.MinimizationAttack)
        for restart in range(acfg.restarts):
            torch.manual_seed(seed + restart)
            if minimization:
                # One run gives each sample its minimal ε: no rerun per ε.
                active = clean_correct.clone()
                idx = active.nonzero().flatten()
                for chunk in _chunks(idx, cfg.batch_size):
                    _, adv, _ = attack(fmodel, x[chunk], y[chunk], epsilons=None)
                    ok, dist = self._verify(net, x[chunk], adv, y[chunk])
                    d = dist.cpu().numpy()
                    for j, k in enumerate(chunk.cpu().numpy()):
                        if ok[j] and d[j] < eps_broken[k]:
                            eps_broken[k] = d[j]
                            best_adv[k] = adv[j].clamp(*self.bounds)
            else:
                for eps in cfg.eps:
                    # A sample broken at a smaller ε is broken here too: attack only the rest.
                    active = clean_correct & torch.as_tensor(np.isinf(eps_broken), device=x.device)
                    idx = active.nonzero().flatten()
                    for chunk in _chunks(idx, cfg.batch_size):
                        _, adv, _ = attack(fmodel, x[chunk], y[chunk], epsilons=eps)
                        ok, dist = self._verify(net, x[chunk], adv, y[chunk])
                        ok = ok & (dist <= eps * (1 + EPS_RTOL) + EPS_ATOL)
                        for j, k in enumerate(chunk.cpu().numpy()):
                            if ok[j]:
                                eps_broken[k] = eps
                                best_adv[k] = adv[j].clamp(*self.bounds)
        adv = {"x_adv": best_adv.cpu(), "eps": torch.as_tensor(eps_broken)}
        return eps_broken, adv

    def _verify(self, net, x, adv, y):
        """Re-check adversarials ourselves: clip to bounds, run the model in eval mode, measure."""
        adv = adv.detach().clamp(*self.bounds)
        with torch.no_grad():
            pred = net(adv).argmax(1)
        dist = lp_distance(adv, x, self.config.threat_model)
        finite = torch.isfinite(adv.flatten(1)).all(1)
        return ((pred != y) & finite).cpu(), dist.cpu()

    # -- input validation --------------------------------------------------------------------------
    def _check_inputs(self, x, y):
        lo, hi = self.bounds
        if x.ndim < 2 or len(x) != len(y):
            raise UserError(f"inputs must be a batch (n, ...) with n labels; got x {tuple(x.shape)}, y {tuple(y.shape)}")
        xmin, xmax = float(x.min()), float(x.max())
        if xmin < lo - 1e-6 or xmax > hi + 1e-6:
            raise UserError(f"inputs lie in [{xmin:.4g}, {xmax:.4g}], outside the declared bounds "
                            f"[{lo:g}, {hi:g}]: give un-normalized inputs and pass mean/std, or fix bounds")

    def _check_logits(self, logits, y):
        if logits.ndim != 2:
            raise UserError(f"the model must return a (batch, classes) tensor of logits; got shape {tuple(logits.shape)}")
        if int(y.max()) >= logits.shape[1]:
            raise UserError(f"labels go up to {int(y.max())} but the model returns {logits.shape[1]} classes")
        sums = logits.sum(1)
        if bool(((logits >= 0) & (logits <= 1)).all()) and torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
            warnings.warn("the model's outputs look like softmax probabilities, not logits: gradient "
                          "attacks are weaker on probabilities (vanishing gradients); return logits",
                          stacklevel=3)


class _ModelState:
    """Remembers train/eval mode and requires_grad of every parameter, to restore them after attacks."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.modes = [(m, m.training) for m in model.modules()]
        self.grads = [(p, p.requires_grad) for p in model.parameters()]

    def restore(self):
        for m, mode in self.modes:
            m.training = mode
        for p, flag in self.grads:
            p.requires_grad_(flag)


def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _chunks(idx: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Non-empty batches of sample indices (`Tensor.split` yields one empty chunk for no indices)."""
    return [c for c in idx.split(size) if len(c)]


def _batched_logits(net, x, batch_size):
    with torch.no_grad():
        return torch.cat([net(chunk) for chunk in x.split(batch_size)])


def _input_gradient_check(net, x, y) -> dict:
    x = x.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(net(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    norms = grad.flatten(1).abs().sum(1)
    return {"finite": bool(torch.isfinite(grad).all()), "fraction_zero": float((norms == 0).float().mean())}


def _assemble(cfg: SuiteConfig, y, clean_correct, margin, broken, timings, adversarials, grad_info,
              seconds) -> AttackResult:
    n = len(clean_correct)
    per_sample = pd.DataFrame({"sample": np.arange(n), "label": y.cpu().numpy(),
                               "clean_correct": clean_correct, "margin": margin})
    for label, eps_broken in broken.items():
        per_sample[f"eps_{label}"] = np.where(clean_correct, eps_broken, 0.0)
    per_sample["min_adversarial_eps"] = per_sample[[f"eps_{a}" for a in broken]].min(axis=1)
    rows = []
    for eps in cfg.eps:
        tol = eps * (1 + EPS_RTOL) + EPS_ATOL
        for label in list(broken) + [WORST_CASE]:
            col = "min_adversarial_eps" if label == WORST_CASE else f"eps_{label}"
            robust = clean_correct & (per_sample[col].to_numpy() > tol)
            rows.append({"attack": label, "eps": eps, "robust_accuracy": float(robust.mean()), "n": n})
    curve = pd.DataFrame(rows)
    wc = curve[curve.attack == WORST_CASE]["robust_accuracy"].to_numpy()
    sanity = {
        "curve_non_increasing": {"ok": bool(np.all(np.diff(wc) <= 1e-12)), "curve": wc.tolist()},
        "gradients_finite_nonzero": {"ok": grad_info["finite"] and grad_info["fraction_zero"] < 0.5,
                                     **grad_info},
    }
    return AttackResult(cfg, per_sample, curve, sanity, seconds, adversarials, timings)
