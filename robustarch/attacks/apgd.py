"""APGD-CE and APGD-T (Croce & Hein 2020, the gradient attacks of AutoAttack), L∞ and L2, written
over robustarch's batched torch loop: a sample leaves the batch once misclassified.

Why native: the suite's descending-ε schedule starts each smaller ε from the adversarial of the larger
one and stops per sample, so a whole ε-curve costs about one attack; AutoAttack's code runs every ε
from scratch. We follow the published algorithm (step 2ε, checkpoints p_j, halving with ρ = 0.75,
momentum α = 0.75, restart from the best point); torchattacks' port is the reference in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

from ..presets import Section
from .base import FixedEpsilonAttack, Target, register_native
from .gradient import _ascent_direction, _flat_norm, _project
from .verify import verify

APGD_LOSSES = ("ce", "dlr")
MOMENTUM = 0.75  # α of the paper: weight of the new gradient step against the last move


@dataclass(frozen=True)
class APGDParams:
    threat_model: str  # 'linf' or 'l2'
    steps: int = 100
    rho: float = 0.75  # halve the step when the loss rose in fewer than ρ of the steps since the last checkpoint
    loss: str = "ce"  # 'ce', 'dlr', or 'dlr-targeted' (APGD-T)


def checkpoints(steps: int) -> set[int]:
    """Iterations after which the step size may be halved: w_j = ⌈p_j·N⌉ with p_1 = 0.22 and
    p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06), in AutoAttack's integer form."""
    first, shrink, least = max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    out, at, interval = set(), 0, first
    while at + interval <= steps:
        at += interval
        out.add(at)
        interval = max(interval - shrink, least)
    return out


def _dlr(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Difference of logits ratio, per sample: shift- and scale-invariant, so large logits (a model
    whose softmax saturates) do not hide the gradient as they do for cross-entropy."""
    srt = logits.sort(dim=1).values
    true = logits.gather(1, y[:, None])[:, 0]
    if target is None:
        other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
        return -(true - other) / (srt[:, -1] - srt[:, -3] + 1e-12)
    tgt = logits.gather(1, target[:, None])[:, 0]
    return -(true - tgt) / (srt[:, -1] - 0.5 * (srt[:, -3] + srt[:, -4]) + 1e-12)


def _loss_and_grad(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, loss: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample loss, its input gradient and whether the point is misclassified."""
    xg = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = net(xg)
        per_sample = F.cross_entropy(logits, y, reduction="none") if loss == "ce" else _dlr(logits, y, target)
        # each sample's loss depends on its own input only (eval mode), so the sum's gradient is exact
        (grad,) = torch.autograd.grad(per_sample.sum(), xg)
    return per_sample.detach(), grad, logits.detach().argmax(1) != y


def random_start(x: torch.Tensor, eps: float, threat_model: str, gen: torch.Generator) -> torch.Tensor:
    """AutoAttack's start: a random point on the ε-sphere (L2) or with max |δ| = ε (L∞), drawn on
    CPU from the attack's generator so CPU and CUDA runs start alike."""
    if threat_model == "linf":
        t = torch.rand(x.shape, generator=gen, device="cpu").to(x) * 2 - 1
        return eps * t / t.abs().flatten(1).amax(1).clamp_min(1e-12).reshape(-1, *[1] * (x.ndim - 1))
    t = torch.randn(x.shape, generator=gen, device="cpu").to(x)
    return eps * t / _flat_norm(t, 2.0).clamp_min(1e-12)


class _State:
    """Per-sample state of the active samples; `keep` drops the finished ones from every field."""

    FIELDS = (
        "idx",
        "x",
        "y",
        "tgt",
        "cur",
        "prev",
        "grad",
        "loss",
        "best",
        "grad_best",
        "loss_best",
        "step",
        "rises",
        "loss_at_check",
        "reduced",
    )

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def keep(self, mask: torch.Tensor) -> None:
        # one host sync for the index list, then gathers (a boolean mask per field would sync each)
        rows = mask.nonzero().flatten()
        for name in self.FIELDS:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value[rows])


def _verified(
    net: nn.Module, s: _State, flagged: torch.Tensor, eps: float, threat_model: str, bounds: tuple[float, float]
) -> torch.Tensor:
    """Which of the active samples' current points are adversarials that `verify` accepts. Only the
    flagged ones are re-checked: for a deterministic model the check repeats the attack's own forward
    pass, for a random one (`ExpectedLogits`) it takes two fresh averages, which a noise flip fails."""
    hit = flagged.nonzero().flatten()
    ok = torch.zeros_like(flagged)
    if len(hit):
        ok[hit] = verify(net, s.x[hit], s.cur[hit], s.y[hit], threat_model=threat_model, bounds=bounds, eps=eps)[0]
    return ok


def apgd(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    params: APGDParams,
    bounds: tuple[float, float],
    start: torch.Tensor,
    target: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One APGD run from `start` (inside the ball and bounds). Returns `(x_adv, found)`: the first
    verified adversarial of each sample that has one (`verify`), else its highest-loss point. A sample
    stays in the run until its point verifies, not merely until the attack's own forward pass says
    misclassified: on a random model that pass is one noisy average."""
    lo, hi = bounds
    tm = params.threat_model
    shape = (-1, *[1] * (x.ndim - 1))

    def proj(p: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return (x0 + _project(p - x0, eps, tm)).clamp(lo, hi)

    loss, grad, flagged = _loss_and_grad(net, start, y, target, params.loss)
    n = len(x)
    s = _State(
        idx=torch.arange(n, device=x.device),
        x=x,
        y=y,
        tgt=target,
        cur=start.clone(),
        prev=start.clone(),
        grad=grad,
        loss=loss,
        best=start.clone(),
        grad_best=grad.clone(),
        loss_best=loss.clone(),
        step=torch.full((n,), 2.0 * eps, device=x.device, dtype=x.dtype),
        rises=torch.zeros(n, device=x.device),
        loss_at_check=loss.clone(),
        reduced=torch.ones(n, dtype=torch.bool, device=x.device),
    )
    found = _verified(net, s, flagged, eps, tm, bounds)
    out = start.clone()
    s.keep(~found)
    marks, since = checkpoints(params.steps), 0
    for i in range(params.steps):
        if len(s.idx) == 0:
            break
        z = proj(s.cur + s.step.reshape(shape) * _ascent_direction(s.grad, tm), s.x)
        a = 1.0 if i == 0 else MOMENTUM
        nxt = proj(s.cur + a * (z - s.cur) + (1 - a) * (s.cur - s.prev), s.x)
        s.prev, s.cur = s.cur, nxt
        loss, s.grad, flagged = _loss_and_grad(net, s.cur, s.y, s.tgt, params.loss)
        ok = _verified(net, s, flagged, eps, tm, bounds)
        out[s.idx] = torch.where(ok.reshape(shape), s.cur, out[s.idx])
        found[s.idx] |= ok
        s.rises += (loss > s.loss).float()
        s.loss = loss
        better = loss > s.loss_best
        s.best = torch.where(better.reshape(shape), s.cur, s.best)
        s.grad_best = torch.where(better.reshape(shape), s.grad, s.grad_best)
        s.loss_best = torch.where(better, loss, s.loss_best)
        since += 1
        if i + 1 in marks:
            _checkpoint(s, params.rho, since)
            since = 0
        s.keep(~ok)
    out[s.idx] = s.best
    return out, found


def _checkpoint(s: _State, rho: float, since: int) -> None:
    """Halve the step of samples whose loss rose in at most ρ of the last steps, or whose best loss
    did not improve since a checkpoint that kept the step; they restart from their best point."""
    halve = (s.rises <= rho * since) | (~s.reduced & (s.loss_at_check >= s.loss_best))
    s.step = torch.where(halve, s.step / 2.0, s.step)
    rows = halve.reshape(-1, *[1] * (s.cur.ndim - 1))
    s.cur, s.grad = torch.where(rows, s.best, s.cur), torch.where(rows, s.grad_best, s.grad)
    s.reduced, s.loss_at_check = halve, s.loss_best.clone()
    s.rises.zero_()


def _start(
    x: torch.Tensor,
    eps: float,
    threat_model: str,
    bounds: tuple[float, float],
    gen: torch.Generator,
    init: torch.Tensor | None,
) -> torch.Tensor:
    delta = random_start(x, eps, threat_model, gen) if init is None else _project(init - x, eps, threat_model)
    return (x + delta).clamp(*bounds)


class _APGDBase(FixedEpsilonAttack):
    """What APGD-CE and APGD-T share: the step budget, ρ, step doubling, and `warm_start_extra`.

    `warm_start_extra` (default false): a start handed in (the adversarial one ε above, or an earlier
    attack's near-miss) is one try more, made first, instead of taking the place of the first random
    start. The schedule then still gives a sample that resists it AutoAttack's own tries at that ε
    (for APGD-T: every target class from a random start). Why: on the FGSM-RS digits CNN one sample
    breaks at ε = 0.1 only towards its runner-up class and only from about 3 random starts in 10;
    when the warm start pointed at that class, it took the class's one run and failed every time,
    so the `autoattack` preset missed a sample that AutoAttack's reference broke. The `autoattack*`
    presets set it; the faster suites keep the replacing warm start."""

    @classmethod
    def check_settings(cls, sec: Section) -> None:
        sec.get("steps", int, 100, min=1)
        sec.get("rho", float, 0.75, min=0.0, max=1.0)
        sec.get("warm_start_extra", bool, False)

    @property
    def warm_start_extra(self) -> bool:
        return bool(self.settings.get("warm_start_extra", False))

    def _params(self, **fixed) -> APGDParams:
        """The APGD parameters of these settings (without the schedule's own ones)."""
        skip = {"warm_start_extra", "n_target_classes", "sweep_steps"}
        return APGDParams(self.threat_model, **fixed, **{k: v for k, v in self.settings.items() if k not in skip})

    def with_steps_factor(self, factor: int):
        return self._copy_with(steps=self.settings.get("steps", 100) * factor)


@register_native(LinfAPGD="linf", L2APGD="l2")
class APGD(_APGDBase):
    """APGD (untargeted) on cross-entropy (APGD-CE, AutoAttack's first attack) or on the DLR loss."""

    SETTINGS = ("steps", "rho", "loss", "warm_start_extra")

    @classmethod
    def check_settings(cls, sec: Section) -> None:
        super().check_settings(sec)
        sec.get("loss", str, "ce", choices=APGD_LOSSES)

    @property
    def loss(self) -> str:
        return "ce" if self.settings.get("loss", "ce") == "ce" else "margin"  # DLR: a scaled margin

    def run(self, target: Target, x, y, eps, init):
        params = self._params()
        start = _start(x, eps, self.threat_model, target.bounds, target.generator, init)
        return apgd(target.net, x, y, eps, params, target.bounds, start)[0]


def warm_target_first(targets: torch.Tensor, warm_class: torch.Tensor) -> torch.Tensor:
    """Each row of `targets` (class indices, most likely first) with `warm_class` moved to the front,
    the others keeping their order; a row without that class is left as it is.

    Why: in the descending schedule the first target starts from the adversarial found one level up,
    which already lies across the boundary into `warm_class`; aiming that run at the clean runner-up
    instead (often another class) throws most of the head start away."""
    order = (targets != warm_class[:, None]).int().argsort(dim=1, stable=True)  # a stable sort: 0 first
    return targets.gather(1, order)


@register_native(LinfAPGDT="linf", L2APGDT="l2")
class APGDT(_APGDBase):
    """APGD-T: APGD on the targeted DLR loss, once per target class, the runner-up classes of the clean
    logits in order (AutoAttack: 9); given a start (`init`), the class it is classified as comes first.
    Each target runs on the samples that have no verified adversarial yet: a point the attack's own
    pass calls misclassified but `verify` rejects does not end them.

    `sweep_steps` > 0 adds, after the `n_target_classes` runs of `steps` steps, a run of `sweep_steps`
    towards each class ranked below them (0, the default: none, as AutoAttack). Why: on the FGSM-RS
    digits CNN some samples break only towards a class ranked 4th to 6th by the clean logits, and do
    so within 10 steps (20 of 20 random starts), while others break only towards the runner-up and
    need about 100 (50 steps: 0 of 20, 100 steps: 11 of 20). Long runs on the likely classes and
    short ones on the rest catch both at about half of AutoAttack's 9 x 100 steps per robust sample."""

    SETTINGS = ("steps", "rho", "n_target_classes", "sweep_steps", "warm_start_extra")
    loss = "margin"  # targeted DLR

    @classmethod
    def check_settings(cls, sec: Section) -> None:
        super().check_settings(sec)
        sec.get("n_target_classes", int, 9, min=1)
        sec.get("sweep_steps", int, 0, min=0)

    def with_steps_factor(self, factor: int):
        other = super().with_steps_factor(factor)
        if self.settings.get("sweep_steps"):
            other.settings["sweep_steps"] = self.settings["sweep_steps"] * factor
        return other

    def run(self, target: Target, x, y, eps, init):
        n_targets, sweep = self.settings.get("n_target_classes", 9), self.settings.get("sweep_steps", 0)
        params = self._params(loss="dlr-targeted")
        with torch.no_grad():
            # rank 0 is the predicted class; ranks 1..C−1 are the possible targets
            targets = target.net(x).argsort(dim=1, descending=True)[:, 1:]
            if init is not None:
                targets = warm_target_first(targets, target.net(init).argmax(1))
        n_long = min(n_targets, targets.shape[1])
        if init is not None and self.warm_start_extra:  # the warm try alone: the random ones follow
            n_long, sweep = 1, 0
        plan = [params] * n_long
        if sweep:
            plan += [replace(params, steps=sweep)] * (targets.shape[1] - n_long)
        out = x.clone()
        todo = torch.arange(len(x), device=x.device)
        for k, run_params in enumerate(plan):
            first = init[todo] if (k == 0 and init is not None) else None
            xs, ys = x[todo], y[todo]
            start = _start(xs, eps, self.threat_model, target.bounds, target.generator, first)
            adv, found = apgd(target.net, xs, ys, eps, run_params, target.bounds, start, targets[todo, k])
            out[todo] = torch.where(found.reshape(-1, *[1] * (x.ndim - 1)), adv, out[todo]) if k else adv
            todo = todo[~found]
            if len(todo) == 0:
                break
        return out
