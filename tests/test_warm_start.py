"""`warm_start_extra` (robustarch/attacks/apgd.py, run.py `_descend`): in the descending schedule, a
warm start is a try before the attack's random starts rather than in place of the first, so a sample
that resists it still gets AutoAttack's own tries at that ε (APGD-T: every target from a random start)."""

from __future__ import annotations

import torch
from _models import threshold_linear
from torch import nn

from robustarch.attacks.apgd import APGDT
from robustarch.attacks.base import FixedEpsilonAttack, Target
from robustarch.attacks.config import load_suite
from robustarch.attacks.run import SuiteRun
from robustarch.attacks.spec import SuiteConfig


class Scripted(FixedEpsilonAttack):
    """Our attack interface, scripted on the 2-d linear model below: from a start, that start
    projected into the ball; from a random start, the corner x + ε·(1, 1) below the top ε and
    x + ε·(1, 0) at it (an adversarial whose projection one level down is not one)."""

    loss = "margin"

    def __init__(self, *args, extra: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.warm_start_extra, self.calls = extra, []

    def run(self, target, x, y, eps, init):
        self.calls.append((eps, init is not None))
        if init is not None:
            return x + (init - x).clamp(-eps, eps)
        step = torch.tensor([1.0, 0.0]) if eps >= 0.5 else torch.tensor([1.0, 1.0])
        return (x + eps * step).clamp(0, 1)


def _descend(extra: bool) -> tuple[float, list]:
    x, y = torch.full((1, 2), 0.3), torch.zeros(1, dtype=torch.long)  # (0.8, 0.3) breaks at ε = 0.5
    config = SuiteConfig(name="t", threat_model="linf", eps=(0.25, 0.5), attacks=(), samples=None)
    run = SuiteRun(config, (0.0, 1.0), threshold_linear(), x, y, torch.ones(1, dtype=torch.bool), seed=0)
    attack = Scripted("scripted", "linf", extra=extra)
    broken, _ = run.run_attack(0, attack)
    return float(broken[0]), attack.calls


def test_a_sample_resisting_its_warm_start_still_gets_the_random_try_with_warm_start_extra():
    # one level down, the warm start (0.8, 0.3) projects to (0.55, 0.3): not adversarial
    broken, calls = _descend(extra=True)
    assert calls == [(0.5, False), (0.25, True), (0.25, False)]
    assert broken == 0.25  # the random try at 0.25 breaks it: (0.55, 0.55)


def test_without_it_the_warm_start_takes_the_random_starts_place():
    broken, calls = _descend(extra=False)
    assert calls == [(0.5, False), (0.25, True)]
    assert broken == 0.5


def _forwards(net: nn.Module) -> list[int]:
    count = [0]
    net.register_forward_hook(lambda *_: count.__setitem__(0, count[0] + 1))
    return count


def test_apgdt_given_a_start_runs_only_the_warm_class_with_warm_start_extra_and_all_targets_without():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 10)).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    x = torch.rand(2, 6)
    y = net(x).argmax(1)
    count = _forwards(net)
    runs = {}
    for extra in (True, False):
        attack = APGDT("apgd-t", "linf", {"steps": 5, "n_target_classes": 9, "warm_start_extra": extra})
        target = Target(net, (0.0, 1.0), torch.device("cpu"), torch.Generator().manual_seed(0))
        count[0] = 0
        attack.run(target, x, y, 1e-6, x.clone())  # ε too small to break anything: every run goes to the end
        runs[extra] = count[0]
    # about one APGD run (a few forwards per step) against nine
    assert runs[False] > 6 * runs[True] > 0, runs


def test_the_autoattack_presets_keep_autoattacks_random_starts():
    for name in ("autoattack", "autoattack-l2", "autoattack-cifar", "autoattack-l2-cifar"):
        apgd = [a for a in load_suite(name).attacks if a.attack.endswith(("APGD", "APGDT"))]
        assert len(apgd) == 2 and all(a.kwargs.get("warm_start_extra") is True for a in apgd), name
    assert not any(a.kwargs.get("warm_start_extra") for a in load_suite("standard").attacks)
