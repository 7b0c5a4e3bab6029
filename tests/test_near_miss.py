"""A fixed-ε attack tries once more, at ε, from an earlier attack's adversarial found just beyond ε
(robustarch/attacks/run.py `_from_near_misses`): the start a random one rarely reaches."""

from __future__ import annotations

import math

import numpy as np
import torch
from _models import threshold_linear

from robustarch.attacks.base import FixedEpsilonAttack
from robustarch.attacks.gradient import _project
from robustarch.attacks.run import NEAR_MISS, SuiteRun
from robustarch.attacks.spec import SuiteConfig


class StartOnly(FixedEpsilonAttack):
    """Our attack interface at its simplest: the start, projected into the ball (clean x without one)."""

    loss = "margin"  # seeded: a margin-loss gradient attack (not a gradient-free or cross-entropy one)

    def run(self, target, x, y, eps, init):
        return x.clone() if init is None else (x + _project(init - x, eps, self.threat_model)).clamp(0, 1)


def test_a_near_miss_just_beyond_eps_is_tried_from_inside_the_ball_and_a_far_one_is_not():
    x = torch.full((3, 2), 0.3)  # class 0; the nearest adversarial is 0.2 away in L∞
    y = torch.zeros(3, dtype=torch.long)
    eps = 0.25
    config = SuiteConfig(name="t", threat_model="linf", eps=(eps,), attacks=(), samples=None)
    run = SuiteRun(config, (0.0, 1.0), threshold_linear(), x, y, torch.ones(3, dtype=torch.bool), seed=0)
    near, far = 0.3 + 1.04 * eps, 0.3 + 1.2 * eps  # at 1.04 ε (within NEAR_MISS) and at 1.2 ε
    assert 1.04 <= NEAR_MISS < 1.2
    run.eps_broken["earlier"] = np.array([1.04 * eps, 1.2 * eps, math.inf])
    run.adv["earlier"] = torch.tensor([[near, near], [far, far], [math.nan, math.nan]])
    broken, adv = run.run_attack(0, StartOnly("start-only", "linf"))
    assert broken[0] == eps and math.isinf(broken[1]) and math.isinf(broken[2])
    assert (adv[0] - x[0]).abs().max() <= eps + 1e-6 and threshold_linear()(adv[:1]).argmax(1).item() == 1


def test_gradient_free_and_cross_entropy_attacks_are_not_seeded():
    """Square stays the gradient-masking baseline and a CE attack the saturation check's subject."""
    from robustarch.attacks.base import AttackKind

    class Free(StartOnly):
        kind, loss = AttackKind.GRADIENT_FREE, "margin"

    class CE(StartOnly):
        loss = "ce"

    x, y = torch.full((1, 2), 0.3), torch.zeros(1, dtype=torch.long)
    for attack in (Free("free", "linf"), CE("ce", "linf")):
        config = SuiteConfig(name="t", threat_model="linf", eps=(0.25,), attacks=(), samples=None)
        run = SuiteRun(config, (0.0, 1.0), threshold_linear(), x, y, torch.ones(1, dtype=torch.bool), seed=0)
        run.eps_broken["earlier"] = np.array([0.26])
        run.adv["earlier"] = torch.tensor([[0.56, 0.56]])
        assert math.isinf(run.run_attack(0, attack)[0][0])


def test_a_near_miss_the_seeded_try_misses_gets_more_random_starts_and_a_far_one_none():
    """A sample an earlier attack broke just beyond ε is close to the boundary: when the try from that
    adversarial fails, it gets `NEAR_MISS_RESTARTS` random starts (here the third random start
    breaks it); a sample with no near miss keeps the schedule's one random start."""
    from robustarch.attacks.run import NEAR_MISS_RESTARTS

    class LuckyThird(StartOnly):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.random_calls = 0

        def run(self, target, x, y, eps, init):
            if init is not None:
                return x.clone()  # the seeded try misses
            self.random_calls += 1
            return (x + eps).clamp(0, 1) if self.random_calls >= 3 else x.clone()

    assert NEAR_MISS_RESTARTS >= 2
    x, y = torch.full((2, 2), 0.3), torch.zeros(2, dtype=torch.long)
    eps = 0.25
    config = SuiteConfig(name="t", threat_model="linf", eps=(eps,), attacks=(), samples=None)
    run = SuiteRun(config, (0.0, 1.0), threshold_linear(), x, y, torch.ones(2, dtype=torch.bool), seed=0)
    run.eps_broken["earlier"] = np.array([1.02 * eps, 1.5 * eps])  # sample 0 a near miss, sample 1 not
    run.adv["earlier"] = torch.tensor([[0.3 + 1.02 * eps] * 2, [0.3 + 1.5 * eps] * 2])
    attack = LuckyThird("lucky", "linf")
    broken, _ = run.run_attack(0, attack)
    assert broken[0] == eps and math.isinf(broken[1])
    assert attack.random_calls == 3  # the schedule's one (both samples), then the near miss's until it broke
