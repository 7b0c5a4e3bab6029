"""Run an attack suite on any torch classifier and return verified, per-sample results.

Attacks search; `robustarch.verify` decides what counts. FGSM/PGD run in our own early-stopping torch
loop (`robustarch.gradient`); every other attack is Foolbox's, by class name.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from .errors import UserError
from .foolbox_attacks import (_foolbox, attack_kind, attack_threat_model, foolbox_attack_names,  # noqa: F401
                              make_foolbox_attack)
from .gradient import NATIVE, PGDParams, fgsm_all_eps, huge_eps, pgd
from .result import WORST_CASE, AttackResult  # noqa: F401 (public here too)
from .sanity import sanity_checks
from .suite import AttackConfig, SuiteConfig, load_suite
from .verify import EPS_ATOL, EPS_RTOL, eps_tolerance, lp_distance, verify  # noqa: F401 (re-exported)


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
        result = suite.run(model, x_test, y_test, seed=0)
        print(result.curve_table(), result.median_min_eps)

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
        """Attack the first `config.samples` of (x, y); deterministic on CPU for a given seed."""
        cfg = self.config
        start = time.perf_counter()
        if cfg.samples is not None:
            x, y = x[: cfg.samples], y[: cfg.samples]
        state = _ModelState(model)
        device = self.device or state.device
        x = torch.as_tensor(x).to(device=device, dtype=torch.float32)
        y = torch.as_tensor(y).to(device=device, dtype=torch.int64)
        self._check_inputs(x, y)
        # Attacks seed torch's global RNG (Foolbox draws from it): give the caller's state back.
        rng = torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])
        try:
            rng.__enter__()
            model.to(device)
            net = model if self.mean is None else _Normalized(model, self.mean, 1.0 if self.std is None else self.std).to(device)
            net.eval()
            for p in model.parameters():
                p.requires_grad_(False)  # gradients w.r.t. inputs only; faster and side-effect free
            logits = self._logits(net, x, y)
            run = _Run(self, net, x, y, logits.argmax(1) == y, cfg.seed if seed is None else seed)
            top2 = logits.topk(2, dim=1).values
            for i, acfg in enumerate(cfg.attacks):
                t0 = time.perf_counter()
                run.attack(i, acfg)
                run.seconds[acfg.label] = time.perf_counter() - t0
            extras = {"gradients": _input_gradient_check(net, x[run.correct_idx[:64]], y[run.correct_idx[:64]])}
            if cfg.large_eps:
                extras["large_eps"] = run.large_eps_check(logits.shape[1])
            if cfg.step_doubling:
                extras["step_doubling"] = run.step_doubling()
        finally:
            state.restore()
            rng.__exit__(None, None, None)
        return run.result(top2[:, 0] - top2[:, 1], extras, keep_adversarials, time.perf_counter() - start)

    # -- input validation --------------------------------------------------------------------------
    def _check_inputs(self, x, y):
        lo, hi = self.bounds
        if x.ndim < 2 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
            raise UserError(f"inputs must be a non-empty batch (n, ...) with n labels; got x {tuple(x.shape)}, "
                            f"y {tuple(y.shape)}")
        xmin, xmax = float(x.min()), float(x.max())
        if not (np.isfinite(xmin) and np.isfinite(xmax)) or xmin < lo - 1e-6 or xmax > hi + 1e-6:
            raise UserError(f"inputs lie in [{xmin:.4g}, {xmax:.4g}], outside the declared bounds "
                            f"[{lo:g}, {hi:g}]: give un-normalized inputs and pass mean/std, or fix bounds")

    def _logits(self, net, x, y) -> torch.Tensor:
        outs = []
        with torch.no_grad():
            for chunk in x.split(self.config.batch_size):
                out = net(chunk)
                if not isinstance(out, torch.Tensor):
                    raise UserError(f"the model must return a tensor of logits; got {type(out).__name__}")
                if out.ndim != 2 or len(out) != len(chunk) or out.shape[1] < 2:
                    raise UserError(f"the model must return a (batch, classes) tensor of logits; for a "
                                    f"batch of {len(chunk)} it returned shape {tuple(out.shape)}")
                outs.append(out.float())
        logits = torch.cat(outs)
        if int(y.max()) >= logits.shape[1] or int(y.min()) < 0:
            raise UserError(f"labels range over [{int(y.min())}, {int(y.max())}] but the model returns "
                            f"{logits.shape[1]} classes")
        sums = logits.sum(1)
        if bool(((logits >= 0) & (logits <= 1)).all()) and torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
            warnings.warn("the model's outputs look like softmax probabilities, not logits: gradient "
                          "attacks are weaker on probabilities (vanishing gradients); return logits",
                          stacklevel=3)
        return logits


class _Run:
    """One suite run on one model: per attack, each sample's smallest breaking ε and its adversarial."""

    def __init__(self, suite: AttackSuite, net, x, y, clean_correct, seed: int):
        self.suite, self.cfg, self.net, self.x, self.y = suite, suite.config, net, x, y
        self.clean_correct = clean_correct
        self.correct_idx = clean_correct.nonzero().flatten()
        self.seed = seed
        self.eps_broken: dict[str, np.ndarray] = {}
        self.adv: dict[str, torch.Tensor] = {}
        self.kinds: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self._fmodel = None

    # -- dispatch ----------------------------------------------------------------------------------
    def attack(self, i: int, acfg: AttackConfig, *, steps_factor: int = 1) -> np.ndarray:
        # The attack sees the first `samples` of the suite's samples (all by default): NaN marks the
        # rest, 0 the misclassified ones (broken without any perturbation), inf the ones to attack.
        seen = len(self.y) if acfg.samples is None else min(acfg.samples, len(self.y))
        idx = self.correct_idx[self.correct_idx < seen]
        eps = np.full(len(self.y), np.nan)
        eps[:seen] = 0.0
        eps[idx.cpu().numpy()] = np.inf
        adv = torch.full_like(self.x, float("nan"))
        gen = torch.Generator().manual_seed(self.seed + 1000 * i)
        torch.manual_seed(self.seed + 1000 * i)  # Foolbox's random starts and noise use the global RNG
        kind = attack_kind(acfg)
        if acfg.engine == "native" and kind == "single_step":
            self._fgsm(idx, eps, adv)
        elif acfg.engine == "native":
            kw = acfg.kwargs
            params = PGDParams(NATIVE[acfg.attack][0], steps=kw.get("steps", 40) * steps_factor,
                               rel_stepsize=kw.get("rel_stepsize"), abs_stepsize=kw.get("abs_stepsize"),
                               random_start=kw.get("random_start", True), loss=kw.get("loss", "ce"))
            self._descend(idx, eps, adv, acfg.restarts, lambda xc, yc, e, init: pgd(
                self.net, xc, yc, e, params, self.suite.bounds, gen=gen, init=init)[0])
        else:
            kwargs = dict(acfg.kwargs)
            if steps_factor != 1:
                kwargs["steps"] = kwargs.get("steps", 40) * steps_factor  # noqa (iterative Foolbox attack)
            fb_attack = make_foolbox_attack(acfg.attack, kwargs)
            if kind == "minimization" or isinstance(fb_attack, _foolbox().attacks.base.MinimizationAttack):
                self._minimize(idx, eps, adv, acfg.restarts, fb_attack)
            else:
                self._descend(idx, eps, adv, acfg.restarts,
                              lambda xc, yc, e, init: fb_attack(self.fmodel, xc, yc, epsilons=e)[1])
        if steps_factor == 1:
            self.eps_broken[acfg.label], self.adv[acfg.label], self.kinds[acfg.label] = eps, adv, kind
        return eps

    @property
    def fmodel(self):
        if self._fmodel is None:
            self._fmodel = _foolbox().PyTorchModel(self.net, bounds=self.suite.bounds, device=self.x.device)
        return self._fmodel

    def _verify(self, idx, candidates, eps=None):
        return verify(self.net, self.x[idx], candidates, self.y[idx], threat_model=self.cfg.threat_model,
                      bounds=self.suite.bounds, eps=eps)

    # -- schedules ---------------------------------------------------------------------------------
    def _fgsm(self, idx, eps_out, adv_out):
        """One gradient per sample gives FGSM's point at every ε; the smallest verified one counts."""
        grid = self.cfg.eps
        for chunk in _chunks(idx, self.cfg.batch_size):
            points = fgsm_all_eps(self.net, self.x[chunk], self.y[chunk], grid, self.cfg.threat_model,
                                  self.suite.bounds)
            open_ = torch.ones(len(chunk), dtype=torch.bool, device=chunk.device)
            for e, cand in zip(grid, points):
                ok, _, clipped = self._verify(chunk, cand, e)
                new = ok & open_
                eps_out[chunk[new].cpu().numpy()] = e
                adv_out[chunk[new]] = clipped[new]
                open_ &= ~ok

    def _descend(self, idx, eps_out, adv_out, restarts: int, attack_fn: Callable):
        """A fixed-ε attack over the whole grid, from the largest ε down.

        An adversarial within ε₁ is one within every ε₂ > ε₁; conversely a sample the attack cannot
        break at ε₂ is not attacked at any ε₁ < ε₂. Going down, each level attacks only the samples
        broken at the level above, starting from that adversarial projected into the smaller ball
        (most break again in a step or two), so each sample costs about one failed attack in total.
        Restarts (random starts) are spent only on samples that resisted the previous try.
        """
        candidates = idx
        warm: torch.Tensor | None = None
        for e in reversed(self.cfg.eps):
            if len(candidates) == 0:
                break
            found = torch.zeros(len(candidates), dtype=torch.bool, device=self.x.device)
            points = self.x[candidates].clone()
            for r in range(restarts):
                todo = (~found).nonzero().flatten()
                for chunk in _chunks(todo, self.cfg.batch_size):
                    rows = candidates[chunk]
                    init = warm[chunk] if (r == 0 and warm is not None) else None
                    cand = attack_fn(self.x[rows], self.y[rows], e, init)
                    ok, _, clipped = self._verify(rows, cand, e)
                    found[chunk[ok]] = True
                    points[chunk[ok]] = clipped[ok]
            broken = candidates[found]
            eps_out[broken.cpu().numpy()] = e
            adv_out[broken] = points[found]
            candidates, warm = broken, points[found]

    def _minimize(self, idx, eps_out, adv_out, restarts: int, fb_attack):
        """A minimization attack once for all ε: each sample's verified distance is its minimal ε."""
        for _ in range(restarts):
            for chunk in _chunks(idx, self.cfg.batch_size):
                _, cand, _ = fb_attack(self.fmodel, self.x[chunk], self.y[chunk], epsilons=None)
                ok, dist, clipped = self._verify(chunk, cand)
                d = dist.cpu().numpy()
                better = ok.cpu().numpy() & (d < eps_out[chunk.cpu().numpy()])
                rows = chunk[torch.as_tensor(better, device=chunk.device)]
                eps_out[rows.cpu().numpy()] = d[better]
                adv_out[rows] = clipped[torch.as_tensor(better, device=chunk.device)]

    # -- sanity extras -----------------------------------------------------------------------------
    def large_eps_check(self, num_classes: int) -> dict:
        """PGD at an ε whose ball is the whole input box: accuracy must fall to chance or below."""
        e = huge_eps(self.cfg.threat_model, self.suite.bounds, self.x)
        threat = self.cfg.threat_model if self.cfg.threat_model in ("linf", "l2") else "l2"
        params = PGDParams(threat, steps=20)
        gen = torch.Generator().manual_seed(self.seed + 7)
        broken = 0
        for chunk in _chunks(self.correct_idx, self.cfg.batch_size):
            cand, _ = pgd(self.net, self.x[chunk], self.y[chunk], e, params, self.suite.bounds, gen=gen)
            broken += int(self._verify(chunk, cand)[0].sum())  # within the box = within ε by construction
        n = len(self.y)
        return {"eps": e, "robust_accuracy": (len(self.correct_idx) - broken) / n,
                "chance": 1.0 / num_classes, "n": n}

    def step_doubling(self) -> dict:
        """Rerun each iterative attack with twice its steps: robust accuracy must barely move."""
        changes, detail = [], {}
        for i, acfg in enumerate(self.cfg.attacks):
            if self.kinds[acfg.label] != "iterative" or "steps" not in acfg.kwargs and acfg.engine != "native":
                continue
            doubled = self.attack(i, acfg, steps_factor=2)
            a = _curve_values(self.eps_broken[acfg.label], self.cfg.eps)
            b = _curve_values(doubled, self.cfg.eps)
            detail[acfg.label] = {"steps": a, "double_steps": b}
            changes.append(float(np.max(np.abs(np.array(a) - np.array(b)))))
        return {"max_change": max(changes, default=0.0), "curves": detail}

    # -- tables ------------------------------------------------------------------------------------
    def result(self, margin, extras, keep_adversarials, seconds) -> AttackResult:
        cfg = self.cfg
        cc = self.clean_correct.cpu().numpy()
        per_sample = pd.DataFrame({"sample": np.arange(len(cc)), "label": self.y.cpu().numpy(),
                                   "clean_correct": cc, "margin": margin.cpu().numpy()})
        for label, e in self.eps_broken.items():
            per_sample[f"eps_{label}"] = e
        cols = per_sample[[f"eps_{a}" for a in self.eps_broken]].to_numpy(dtype=float)
        per_sample["min_adversarial_eps"] = np.min(np.where(np.isnan(cols), np.inf, cols), axis=1)
        rows = []
        for e in cfg.eps:
            for label in list(self.eps_broken) + [WORST_CASE]:
                col = per_sample["min_adversarial_eps" if label == WORST_CASE else f"eps_{label}"].to_numpy()
                seen = ~np.isnan(col)
                robust = seen & (col > eps_tolerance(e))
                rows.append({"attack": label, "eps": e, "robust_accuracy": float(robust.sum() / seen.sum()),
                             "n": int(seen.sum())})
        curve = pd.DataFrame(rows)
        sanity = sanity_checks(per_sample, curve, cfg.eps, self.kinds, extras)
        adversarials = None
        if keep_adversarials:
            adversarials = {label: {"x_adv": a.cpu(), "eps": torch.tensor(per_sample[f"eps_{label}"].to_numpy())}
                            for label, a in self.adv.items()}
            best = per_sample[[f"eps_{a}" for a in self.adv]].to_numpy(dtype=float)
            pick = np.argmin(np.where(np.isnan(best), np.inf, best), axis=1)
            labels = list(self.adv)
            worst = torch.stack([self.adv[labels[k]][j] for j, k in enumerate(pick)]).cpu()
            adversarials[WORST_CASE] = {"x_adv": worst,
                                        "eps": torch.tensor(per_sample["min_adversarial_eps"].to_numpy())}
        return AttackResult(cfg, per_sample, curve, sanity, seconds, adversarials, dict(self.seconds))


def _curve_values(eps_broken: np.ndarray, grid) -> list[float]:
    """Robust accuracy per grid ε over the samples the attack saw (see `_Run.attack`)."""
    e = eps_broken[~np.isnan(eps_broken)]
    return [float((e > eps_tolerance(g)).mean()) for g in grid]


class _ModelState:
    """Remembers device, train/eval mode and requires_grad of every parameter, to restore them."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.modes = [(m, m.training) for m in model.modules()]
        self.grads = [(p, p.requires_grad) for p in model.parameters()]
        self.device = next((p.device for p in model.parameters()), torch.device("cpu"))

    def restore(self):
        self.model.to(self.device)
        for m, mode in self.modes:
            m.training = mode
        for p, flag in self.grads:
            p.requires_grad_(flag)


def _chunks(idx: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Non-empty batches of sample indices (`Tensor.split` yields one empty chunk for no indices)."""
    return [c for c in idx.split(size) if len(c)]


def _input_gradient_check(net, x, y) -> dict:
    if len(x) == 0:
        return {"finite": True, "fraction_zero": 0.0, "median_grad_l1": 0.0, "n": 0}
    x = x.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(net(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    norms = grad.flatten(1).abs().sum(1)
    return {"finite": bool(torch.isfinite(grad).all()), "fraction_zero": float((norms == 0).float().mean()),
            "median_grad_l1": float(norms.median()), "n": len(x)}
