"""Square attack (Andriushchenko et al. 2020), L∞ and L2: random square updates accepted when the
margin drops, using only the model's outputs. AutoAttack's gradient-free member, the masking baseline.

Written here (torchattacks' port is the reference in the tests) so it stops per sample, draws from the
attack's own generator, and takes the descending-ε schedule's starting point.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..presets import Section
from .base import AttackKind, FixedEpsilonAttack, Target, register_native
from .gradient import _flat_norm, _project

# The paper's schedule: the fraction of pixels in the square halves from p_init after each of these
# iterations. Written for 10 000 queries; `rescale` stretches it to the run's budget (AutoAttack's
# `resc_schedule`, default on in its SquareAttack class). AutoAttack's own ensemble runs Square with it
# off: at 5000 queries it stops at p_init/128, where a rescaled schedule reaches p_init/512 (1-pixel
# L∞ squares on 32×32 images for the last ~1000 queries).
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_schedule(i: int, queries: int, p_init: float, rescale: bool = True) -> float:
    """Square fraction at iteration `i` (0-based) of a `queries`-query run."""
    it = int(i / queries * 10000) if rescale else i
    return p_init / 2 ** sum(it > h for h in _HALVINGS)


def margin(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """True logit minus the best other one: ≤ 0 means misclassified."""
    with torch.no_grad():
        logits = net(x)
    true = logits.gather(1, y[:, None])[:, 0]
    return true - logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)


def _signs(shape: tuple[int, ...], gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return (torch.randint(0, 2, shape, generator=gen, device="cpu") * 2 - 1).to(like)


def _randint(high: int, gen: torch.Generator) -> int:
    """Uniform in 0..high inclusive. AutoAttack's code draws from 0..high−1, so the last row and
    column of squares are never tried; on 8×8 digits that made Square 7–9 points weaker at equal
    queries than with every position allowed (measured against torchattacks' port)."""
    return int(torch.randint(0, max(high, 0) + 1, (1,), generator=gen))


def _eta_rect(h: int, w: int) -> torch.Tensor:
    """Nested rectangles of weight 1/(k+1)² around the centre, unit L2 norm."""
    delta = torch.zeros(h, w)
    ch, cw = h // 2, w // 2
    for k in range(max(h // 2 + 1, w // 2 + 1)):
        delta[max(ch - k, 0) : min(ch + k + 1, h), max(cw - k, 0) : min(cw + k + 1, w)] += 1.0 / (k + 1) ** 2
    return delta / delta.norm()


def _eta(s: int, gen: torch.Generator) -> torch.Tensor:
    """The paper's L2 square: two halves of opposite sign, mass at their centres, random orientation."""
    delta = torch.cat([_eta_rect(s // 2, s), -_eta_rect(s - s // 2, s)])
    delta = delta / delta.norm()
    return delta.T if bool(torch.rand(1, generator=gen) > 0.5) else delta


def _l2_init(x: torch.Tensor, eps: float, gen: torch.Generator) -> torch.Tensor:
    """A grid of L2 squares with random signs, scaled to norm ε (the paper's L2 start)."""
    h, w = x.shape[-2:]
    s = max(h // 5, 1)
    delta = torch.zeros_like(x)
    off = (h - s * 5) // 2 if h >= 5 else 0
    for vh in range(off, h - s + 1, s):
        for vw in range(off, w - s + 1, s):
            delta[..., vh : vh + s, vw : vw + s] += _eta(s, gen).to(x) * _signs((len(x), x.shape[1], 1, 1), gen, x)
    return eps * delta / _flat_norm(delta, 2.0).clamp_min(1e-12)


def _linf_step(xs: torch.Tensor, best: torch.Tensor, eps: float, p: float, gen: torch.Generator) -> torch.Tensor:
    """Set one random square of each image to a random corner of the ε-box (per sample, per channel)."""
    c, h, w = xs.shape[1:]
    s = min(max(int(round(math.sqrt(p * h * w))), 1), h, w)
    vh, vw = _randint(h - s, gen), _randint(w - s, gen)
    new = best.clone()
    new[..., vh : vh + s, vw : vw + s] = xs[..., vh : vh + s, vw : vw + s] + eps * _signs((len(xs), c, 1, 1), gen, xs)
    return new


def _l2_step(xs: torch.Tensor, best: torch.Tensor, eps: float, p: float, gen: torch.Generator) -> torch.Tensor:
    """Move the L2 mass of one square onto another, with a fresh η-shaped perturbation (the paper's L2
    update): the image's norm stays at most ε."""
    c, h, w = xs.shape[1:]
    s = max(int(round(math.sqrt(p * h * w))), 3)
    s = min(s + (s % 2 == 0), h, w)
    vh, vw, vh2, vw2 = (_randint(h - s, gen), _randint(w - s, gen), _randint(h - s, gen), _randint(w - s, gen))
    delta = best - xs
    win = (..., slice(vh, vh + s), slice(vw, vw + s))
    win2 = (..., slice(vh2, vh2 + s), slice(vw2, vw2 + s))
    mask = torch.zeros_like(delta)
    mask[win], mask[win2] = 1.0, 1.0
    # Window norms per sample AND per channel, as AutoAttack's L2 update takes them: the budget left
    # in the image is shared out equally over the c channels, each keeping what its own windows held.
    # One norm over all channels over-allocates every channel when c > 1, and the renormalisation
    # below then shrinks the perturbation built up outside the windows.
    norm_win1 = delta[win].pow(2).sum((-2, -1), keepdim=True).sqrt()
    norm_img = _flat_norm(delta, 2.0)
    norm_wins = (delta * mask).pow(2).sum((-2, -1), keepdim=True).sqrt()
    new = _eta(s, gen).to(xs) * _signs((len(xs), c, 1, 1), gen, xs) + delta[win] / (1e-12 + norm_win1)
    budget = ((eps**2 - norm_img**2).clamp_min(0.0) / c + norm_wins**2).sqrt()
    new = new / (1e-12 + new.pow(2).sum((-2, -1), keepdim=True).sqrt()) * budget
    delta = delta.clone()
    delta[win2] = 0.0
    delta[win] = new
    return xs + eps * delta / _flat_norm(delta, 2.0).clamp_min(1e-12)


def square(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    threat_model: str,
    bounds: tuple[float, float],
    gen: torch.Generator,
    queries: int,
    p_init: float,
    init: torch.Tensor | None = None,
    rescale_schedule: bool = True,
) -> torch.Tensor:
    """Square attack from `init` (projected into the ball) or the paper's start; each query is one
    forward pass of each sample not yet misclassified. Returns the best (lowest-margin) points.
    `rescale_schedule`: stretch the square-size schedule to `queries` (see `p_schedule`)."""
    lo, hi = bounds
    if init is not None:
        best = (x + _project(init - x, eps, threat_model)).clamp(lo, hi)
    elif threat_model == "linf":  # vertical stripes of ±ε
        best = (x + eps * _signs((len(x), x.shape[1], 1, x.shape[-1]), gen, x)).clamp(lo, hi)
    else:
        best = (x + _l2_init(x, eps, gen)).clamp(lo, hi)
    low = margin(net, best, y)
    step = _linf_step if threat_model == "linf" else _l2_step
    for i in range(queries - 1):  # the start used one query
        active = (low > 0).nonzero().flatten()  # the loop's one host sync: who is left
        if len(active) == 0:
            break
        xs, held = x[active], best[active]
        p = p_schedule(i, queries, p_init, rescale_schedule)
        cand = (xs + _project(step(xs, held, eps, p, gen) - xs, eps, threat_model)).clamp(lo, hi)
        m = margin(net, cand, y[active])
        better = m < low[active]
        # index writes with `where`, not boolean masks, which would each wait for the device
        best[active] = torch.where(better.reshape(-1, *[1] * (x.ndim - 1)), cand, held)
        low[active] = torch.minimum(m, low[active])
    return best


@register_native(LinfSquare="linf", L2Square="l2")
class Square(FixedEpsilonAttack):
    """Square attack on the margin loss, `queries` forward passes per sample at most (AutoAttack: 5000),
    square size from `p_init` (0.8) down the paper's schedule, stretched to `queries` unless
    `rescale_schedule` is false (AutoAttack's ensemble and our `autoattack*` suites: false; default
    true, as AutoAttack's SquareAttack class and every earlier version of this one)."""

    kind = AttackKind.GRADIENT_FREE
    loss = "margin"
    SETTINGS = ("queries", "p_init", "rescale_schedule")

    @classmethod
    def check_settings(cls, sec: Section) -> None:
        sec.get("queries", int, 5000, min=1)
        sec.get("p_init", float, 0.8, min=0.0, max=1.0)
        sec.get("rescale_schedule", bool, True)

    def run(self, target: Target, x, y, eps, init):
        return square(
            target.net,
            x,
            y,
            eps,
            self.threat_model,
            target.bounds,
            target.generator,
            self.settings.get("queries", 5000),
            self.settings.get("p_init", 0.8),
            init,
            self.settings.get("rescale_schedule", True),
        )

    def with_steps_factor(self, factor: int):
        return self._copy_with(queries=self.settings.get("queries", 5000) * factor)
