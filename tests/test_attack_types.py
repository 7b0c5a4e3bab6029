"""Attacks are typed objects: the kind and the schedule come from the object, and a new attack is one
class (robustarch/attacks/base.py, native.py, foolbox_adapter.py, registry.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustarch import AttackSuite, UserError, load_suite
from robustarch.attacks import (
    AttackConfig,
    AttackKind,
    FixedEpsilonAttack,
    MinimizationAttack,
    SingleStepAttack,
    build_attack,
    register_native,
)
from robustarch.presets import Section


def _built(suite_name: str) -> dict:
    cfg = load_suite(suite_name)
    return {a.label: build_attack(a, cfg.threat_model) for a in cfg.attacks}


def test_each_attack_knows_its_kind_and_schedule_type():
    thorough = _built("thorough")
    expected = {
        "FGSM": (SingleStepAttack, AttackKind.SINGLE_STEP),
        "pgd_margin": (FixedEpsilonAttack, AttackKind.ITERATIVE),
        "pgd_ce": (FixedEpsilonAttack, AttackKind.ITERATIVE),
        "LInfFMNAttack": (MinimizationAttack, AttackKind.MINIMIZATION),
        "uniform_noise": (FixedEpsilonAttack, AttackKind.GRADIENT_FREE),
        "HopSkipJumpAttack": (MinimizationAttack, AttackKind.GRADIENT_FREE),
        "apgd_ce": (FixedEpsilonAttack, AttackKind.ITERATIVE),
        "apgd_t": (FixedEpsilonAttack, AttackKind.ITERATIVE),
        "square": (FixedEpsilonAttack, AttackKind.GRADIENT_FREE),
    }
    for label, (cls, kind) in expected.items():
        attack = thorough[label]
        assert isinstance(attack, cls) and attack.kind == kind, (label, attack)
        assert attack.threat_model == "linf"
    assert thorough["pgd_margin"].restarts == 3 and thorough["HopSkipJumpAttack"].samples == 50


def test_step_doubling_scales_only_attacks_with_a_step_budget():
    quick = _built("quick")
    pgd = quick["LinfPGD"]
    doubled = pgd.with_steps_factor(2)
    assert doubled.settings["steps"] == 2 * pgd.settings["steps"] == 20
    assert pgd.settings["steps"] == 10  # the original is left alone
    assert quick["FGSM"].with_steps_factor(2) is None
    foolbox_pgd = build_attack(AttackConfig("LinfPGD", "fb", {"steps": 7}, engine="foolbox"), "linf")
    assert foolbox_pgd.kind == AttackKind.ITERATIVE and foolbox_pgd.with_steps_factor(2).settings["steps"] == 14


@register_native(TestLinfSignNoise="linf")
class SignNoise(SingleStepAttack):
    """A deliberately weak attack added by a user: the corner of the ε-ball in a random sign
    direction, at every ε of the grid. One class, nothing else to edit."""

    SETTINGS = ("flip",)

    @classmethod
    def check_settings(cls, sec: Section) -> None:
        sec.get("flip", bool, False)

    def run_grid(self, target, x, y, grid):
        sign = torch.randint(0, 2, x.shape, generator=target.generator).to(x) * 2 - 1
        sign = -sign if self.settings.get("flip") else sign
        return [(x + e * sign).clamp(*target.bounds) for e in grid]


def _suite(tmp_path, extra: str):
    path = tmp_path / "s.yaml"
    path.write_text(
        "threat_model: linf\neps: [0.05, 0.3, 0.6]\nsamples: 60\nattacks:\n"
        "  - attack: LinfPGD\n    steps: 5\n  - attack: TestLinfSignNoise\n" + extra
    )
    return load_suite(path)


def test_a_new_attack_is_one_class(tmp_path, digits, digits_model):
    cfg = _suite(tmp_path, "    flip: true\n")
    assert cfg.attacks[1].engine == "native"  # found through the registry
    result = AttackSuite(cfg, bounds=(0, 1)).run(digits_model, digits.test.x, digits.test.y, seed=0)
    eps = result.per_sample["eps_TestLinfSignNoise"].to_numpy()
    on_grid = np.isin(eps, [0.0, 0.05, 0.3, 0.6, np.inf])
    assert on_grid.all()  # a single-step attack reports grid ε, from the grid schedule
    assert (eps[result.per_sample["clean_correct"]] < np.inf).any()  # and breaks some samples at ε=0.6
    # its kind reaches the sanity checks: a single-step attack must not beat the iterative one
    assert "iterative_at_least_single_step" in result.sanity
    # verified, not trusted: every counted point is misclassified within its ε
    kept = (
        AttackSuite(cfg, bounds=(0, 1))
        .run(digits_model, digits.test.x, digits.test.y, seed=0, keep_adversarials=True)
        .adversarials["TestLinfSignNoise"]
    )
    broken = torch.isfinite(kept["eps"]) & (kept["eps"] > 0)
    x_adv, x = kept["x_adv"][broken], digits.test.x[:60][broken]
    assert ((x_adv - x).abs().flatten(1).amax(1) <= kept["eps"][broken].float() + 1e-5).all()
    assert (digits_model(x_adv).argmax(1) != digits.test.y[:60][broken]).all()


def test_a_new_attack_validates_its_own_settings(tmp_path):
    with pytest.raises(UserError, match="not an argument of the native TestLinfSignNoise.*'flip'"):
        _suite(tmp_path, "    flips: true\n")
    with pytest.raises(UserError, match="flip.*bool"):
        _suite(tmp_path, "    flip: 3\n")


def _one_attack(tmp_path, entry: str, eps: str = "[0.1]"):
    path = tmp_path / "one.yaml"
    path.write_text(f"threat_model: linf\neps: {eps}\nattacks:\n  - attack: {entry}\n")
    return load_suite(path)


@pytest.mark.parametrize(
    "entry, hint",
    [
        ("LInfFMNAttack\n    restarts: 2", "restarts: 1"),  # Foolbox FMN: no random start
        ("LinfFABT\n    restarts: 3", "restarts: 1"),  # native FAB-T starts at the clean point
        ("LinfPGD\n    random_start: false\n    restarts: 2", "random_start: true"),
        ("LinfBasicIterativeAttack\n    restarts: 2", "random_start: true"),  # Foolbox BIM: no random start
    ],
)
def test_restarts_on_a_deterministic_attack_are_refused(tmp_path, entry, hint):
    with pytest.raises(UserError) as info:
        _one_attack(tmp_path, entry)
    message = str(info.value)
    assert "field 'attacks[0].restarts'" in message and "deterministic" in message and hint in message


def test_restarts_on_random_attacks_are_kept(tmp_path):
    for entry in ("LinfPGD\n    restarts: 2", "LinfAPGD\n    restarts: 2", "LinfSquare\n    restarts: 2"):
        assert _one_attack(tmp_path, entry).attacks[0].restarts == 2


def test_grid_entries_may_be_fractions(tmp_path):
    cfg = _one_attack(tmp_path, "LinfAPGD", eps='["0.5/255", "8/255", 0.1, " 16 / 255 "]')
    assert cfg.eps == pytest.approx((0.5 / 255, 8 / 255, 16 / 255, 0.1))  # sorted
    for bad in ('["8/"]', '["8/0"]', '["eight/255"]', '["-8/255"]', "[0]"):
        with pytest.raises(UserError, match=r"field 'eps'.*(8/255|positive)"):
            _one_attack(tmp_path, "LinfAPGD", eps=bad)


def test_autoattack_names_are_native_in_both_threat_models():
    for name, kind in [
        ("APGD", AttackKind.ITERATIVE),
        ("APGDT", AttackKind.ITERATIVE),
        ("Square", AttackKind.GRADIENT_FREE),
        ("FABT", AttackKind.MINIMIZATION),
    ]:
        for prefix, tm in (("Linf", "linf"), ("L2", "l2")):
            attack = build_attack(AttackConfig(prefix + name, name, {}, engine="native"), tm)
            assert attack.kind == kind and attack.threat_model == tm
