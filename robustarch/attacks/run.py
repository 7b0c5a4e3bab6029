"""One suite run on one model: for each attack, every sample's smallest verified breaking ε and the
adversarial at it, found with the schedule the attack's type calls for (see `base`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .base import Attack, AttackKind, FixedEpsilonAttack, SingleStepAttack, Target
from .registry import build_attack
from .spec import SuiteConfig
from .verify import verify

NEAR_MISS = 1.05  # an adversarial this close beyond ε is a start worth one more try at ε
# ... and marks a sample worth this many more random starts at ε when that try fails. Why: on the
# FGSM-RS digits CNN one sample, which FAB-T broke at 1.024 ε, breaks at ε only towards its runner-up
# class and from about 3 random starts in 10 (torchattacks' APGD-T: 3 in 10 as well); AutoAttack's
# reference drew a lucky one, and with one random start (`warm_start_extra`) the `autoattack` preset
# still missed it in 1 of 2 runs. The restarts run only on near-miss samples the seeded try missed.
NEAR_MISS_RESTARTS = 4


def chunks(idx: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Non-empty batches of sample indices (`Tensor.split` yields one empty chunk for no indices)."""
    return [c for c in idx.split(size) if len(c)]


class SuiteRun:
    """The attacks of a suite on one model (`net`, eval mode, inputs in `bounds`) and samples (x, y)."""

    def __init__(
        self,
        config: SuiteConfig,
        bounds: tuple[float, float],
        net: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        clean_correct: torch.Tensor,
        seed: int,
    ):
        self.cfg, self.bounds, self.net, self.x, self.y = config, bounds, net, x, y
        self.clean_correct = clean_correct
        self.correct_idx = clean_correct.nonzero().flatten()
        self.seed = seed
        self.attacks: list[Attack] = [build_attack(a, config.threat_model) for a in config.attacks]
        self.eps_broken: dict[str, np.ndarray] = {}
        self.adv: dict[str, torch.Tensor] = {}
        self.seconds: dict[str, float] = {}
        self._cache: dict = {}  # shared by every attack's Target (e.g. one Foolbox model wrapper)

    @property
    def kinds(self) -> dict[str, str]:
        return {a.label: a.kind for a in self.attacks}

    def run_all(self, on_attack: Callable[[str, int, int], None] | None = None) -> None:
        """Every attack in turn; `on_attack(label, i, n)` before attack `i` of `n` starts."""
        for i, attack in enumerate(self.attacks):
            if on_attack is not None:
                on_attack(attack.label, i, len(self.attacks))
            start = time.perf_counter()
            self.eps_broken[attack.label], self.adv[attack.label] = self.run_attack(i, attack)
            self.seconds[attack.label] = time.perf_counter() - start

    def target(self, seed: int) -> Target:
        """The model for one attack, its RNGs seeded: our generator, and torch's global one, which
        Foolbox's random starts and noise draw from."""
        torch.manual_seed(seed)
        return Target(self.net, self.bounds, self.x.device, torch.Generator().manual_seed(seed), self._cache)

    def run_attack(self, i: int, attack: Attack) -> tuple[np.ndarray, torch.Tensor]:
        """Attack `i` of the suite: per sample its smallest breaking ε and the adversarial there.

        The attack sees the first `samples` of the suite's samples (all by default): NaN marks the
        rest, 0 the misclassified ones (broken without any perturbation), inf the ones never broken.
        """
        seen = len(self.y) if attack.samples is None else min(attack.samples, len(self.y))
        idx = self.correct_idx[self.correct_idx < seen]
        eps = np.full(len(self.y), np.nan)
        eps[:seen] = 0.0
        eps[idx.cpu().numpy()] = np.inf
        adv = torch.full_like(self.x, float("nan"))
        target = self.target(self.seed + 1000 * i)
        if isinstance(attack, SingleStepAttack):
            self._grid(attack, target, idx, eps, adv)
        elif isinstance(attack, FixedEpsilonAttack):
            self._descend(attack, target, idx, eps, adv)
        else:
            self._minimize(attack, target, idx, eps, adv)
        return eps, adv

    def verify(self, idx, candidates, eps=None):
        return verify(
            self.net,
            self.x[idx],
            candidates,
            self.y[idx],
            threat_model=self.cfg.threat_model,
            bounds=self.bounds,
            eps=eps,
        )

    # -- schedules ---------------------------------------------------------------------------------
    def _grid(self, attack: SingleStepAttack, target, idx, eps_out, adv_out):
        """One pass gives the attack's point at every ε; the smallest verified one counts."""
        grid = self.cfg.eps
        for chunk in chunks(idx, self.cfg.batch_size):
            points = attack.run_grid(target, self.x[chunk], self.y[chunk], grid)
            open_ = torch.ones(len(chunk), dtype=torch.bool, device=chunk.device)
            for e, cand in zip(grid, points):
                ok, _, clipped = self.verify(chunk, cand, e)
                new = ok & open_
                eps_out[chunk[new].cpu().numpy()] = e
                adv_out[chunk[new]] = clipped[new]
                open_ &= ~ok

    def _descend(self, attack: FixedEpsilonAttack, target, idx, eps_out, adv_out):
        """A fixed-ε attack over the whole grid, from the largest ε down.

        An adversarial within ε₁ is one within every ε₂ > ε₁; conversely a sample the attack cannot
        break at ε₂ is not attacked at any ε₁ < ε₂. Going down, each level attacks only the samples
        broken at the level above, starting from that adversarial projected into the smaller ball
        (most break again in a step or two), so each sample costs about one failed attack in total.
        Restarts (random starts) are spent only on samples that resisted the previous try; with the
        attack's `warm_start_extra`, the warm start is a try before them, not the first of them.
        """
        candidates = idx
        warm: torch.Tensor | None = None
        for e in reversed(self.cfg.eps):
            if len(candidates) == 0:
                break
            found = torch.zeros(len(candidates), dtype=torch.bool, device=self.x.device)
            points = self.x[candidates].clone()
            extra = int(warm is not None and attack.warm_start_extra)  # the warm try, then every random one
            for r in range(attack.restarts + extra):
                todo = (~found).nonzero().flatten()
                for chunk in chunks(todo, self.cfg.batch_size):
                    rows = candidates[chunk]
                    init = warm[chunk] if (r == 0 and warm is not None) else None
                    cand = attack.run(target, self.x[rows], self.y[rows], e, init)
                    ok, _, clipped = self.verify(rows, cand, e)
                    found[chunk[ok]] = True
                    points[chunk[ok]] = clipped[ok]
            self._from_near_misses(attack, target, e, candidates, found, points)
            broken = candidates[found]
            eps_out[broken.cpu().numpy()] = e
            adv_out[broken] = points[found]
            candidates, warm = broken, points[found]

    def _from_near_misses(self, attack: FixedEpsilonAttack, target, e: float, candidates, found, points):
        """One more try at ε for the samples still unbroken that an earlier attack broke just beyond
        it (at most `NEAR_MISS` × ε, a minimization attack's distance): started from that adversarial,
        projected into the ball, so next to the decision boundary. Random starts reach such samples
        rarely (one in AutoAttack's reference broke 1 run in 20; FAB-T had it at 1.001 ε). Only for
        margin-loss gradient attacks: a gradient-free one (Square) stays the gradient-masking baseline
        and a cross-entropy one the saturation check's subject, so neither starts from others' points.
        A sample the seeded try does not break gets `NEAR_MISS_RESTARTS` random starts more."""
        if attack.kind == AttackKind.GRADIENT_FREE or attack.loss != "margin" or not self.eps_broken:
            return
        todo = (~found).nonzero().flatten()
        if not len(todo):
            return
        rows = candidates[todo]
        near_eps = np.full(len(rows), np.inf)
        start = self.x[rows].clone()
        r = rows.cpu().numpy()
        for label, eps_b in self.eps_broken.items():
            v = eps_b[r]
            better = (v > e) & (v <= e * NEAR_MISS) & (v < near_eps)
            if better.any():
                near_eps[better] = v[better]
                pick = torch.as_tensor(better, device=rows.device)
                start[pick] = self.adv[label][rows[pick]]
        seeded = torch.as_tensor(np.flatnonzero(np.isfinite(near_eps)), device=rows.device)
        for r in range(1 + NEAR_MISS_RESTARTS):  # the seeded try, then random starts for those left
            left = seeded[~found[todo[seeded]]]
            for part in chunks(left, self.cfg.batch_size):  # positions in `todo`
                sel = rows[part]
                cand = attack.run(target, self.x[sel], self.y[sel], e, start[part] if r == 0 else None)
                ok, _, clipped = self.verify(sel, cand, e)
                found[todo[part][ok]] = True
                points[todo[part][ok]] = clipped[ok]

    def _minimize(self, attack, target, idx, eps_out, adv_out):
        """A minimization attack once for all ε: each sample's verified distance is its minimal ε."""
        for _ in range(attack.restarts):
            for chunk in chunks(idx, self.cfg.batch_size):
                cand = attack.run(target, self.x[chunk], self.y[chunk])
                ok, dist, clipped = self.verify(chunk, cand)
                d = dist.cpu().numpy()
                better = ok.cpu().numpy() & (d < eps_out[chunk.cpu().numpy()])
                rows = chunk[torch.as_tensor(better, device=chunk.device)]
                eps_out[rows.cpu().numpy()] = d[better]
                adv_out[rows] = clipped[torch.as_tensor(better, device=chunk.device)]
