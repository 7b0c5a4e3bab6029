"""Attack-suite YAML: the presets load, and bad files fail with file, line, field and allowed values."""

from __future__ import annotations

import subprocess
import sys

import pytest

from robustarch import UserError, load_suite
from robustarch.presets import preset_names


def test_presets_load_with_their_promises():
    assert {"quick", "standard", "thorough", "autoattack"} <= set(preset_names("attacks"))
    quick, standard, thorough, auto = (load_suite(n) for n in ("quick", "standard", "thorough", "autoattack"))
    for suite in (quick, standard, thorough, auto):
        assert list(suite.eps) == sorted(suite.eps) and suite.threat_model == "linf"
    names = {s.name: {a.attack for a in s.attacks} for s in (quick, standard, thorough, auto)}
    # every suite has a gradient-free attack, so the masking check runs in every search
    assert names["quick"] >= {"FGSM", "LinfPGD", "LInfFMNAttack", "LinfSquare"}
    assert names["standard"] >= {"LinfAPGD", "LinfAPGDT", "LInfFMNAttack", "LinfSquare"}
    assert names["autoattack"] == {"LinfAPGD", "LinfAPGDT", "LinfFABT", "LinfSquare"}
    square = [a for a in auto.attacks if a.attack == "LinfSquare"][0]
    assert square.kwargs["queries"] == 5000  # AutoAttack's standard budget
    assert quick.samples <= standard.samples <= thorough.samples
    assert thorough.step_doubling and not standard.step_doubling
    hsj = [a for a in thorough.attacks if a.attack == "HopSkipJumpAttack"]
    assert hsj and hsj[0].samples == 50 and hsj[0].engine == "foolbox"
    pgd = [a for a in quick.attacks if a.attack == "LinfPGD"][0]
    assert pgd.engine == "native" and pgd.restarts >= 2
    # AutoAttack's ensemble runs Square without rescaling its schedule to the query budget
    for name in ("autoattack", "autoattack-cifar"):
        (sq,) = [a for a in load_suite(name).attacks if a.attack == "LinfSquare"]
        assert sq.kwargs["rescale_schedule"] is False


@pytest.mark.parametrize("dataset", ["", "-cifar"])
def test_l2_presets_mirror_the_linf_ones(dataset):
    """quick-l2, standard-l2 and autoattack-l2 (and their -cifar grids) run the L2 versions of the
    L∞ presets' attacks at the same budgets; autoattack-l2 is AutoAttack's L2 composition."""
    for level in ("quick", "standard", "autoattack"):
        linf, l2 = load_suite(f"{level}{dataset}"), load_suite(f"{level}-l2{dataset}")
        assert l2.threat_model == "l2" and l2.name == f"{level}-l2{dataset}"
        assert l2.samples == linf.samples and list(l2.eps) == sorted(l2.eps)
        as_l2 = [a.attack.replace("Linf", "L2").replace("LInf", "L2").replace("FGSM", "FGM") for a in linf.attacks]
        assert [a.attack for a in l2.attacks] == as_l2
        assert [a.kwargs for a in l2.attacks] == [a.kwargs for a in linf.attacks]
        assert [a.restarts for a in l2.attacks] == [a.restarts for a in linf.attacks]
    grid = load_suite(f"standard-l2{dataset}").eps
    assert 0.5 in grid and (1.5 in grid and 2.0 in grid if not dataset else max(grid) == 2.0)
    auto = {a.label: a for a in load_suite(f"autoattack-l2{dataset}").attacks}
    assert {k: a.attack for k, a in auto.items()} == {
        "apgd-ce": "L2APGD",
        "apgd-t": "L2APGDT",
        "fab-t": "L2FABT",
        "square": "L2Square",
    }
    assert auto["apgd-ce"].kwargs == {"steps": 100, "warm_start_extra": True}
    assert auto["apgd-t"].kwargs == {"steps": 100, "n_target_classes": 9, "warm_start_extra": True}
    assert auto["fab-t"].kwargs == {"steps": 100, "n_target_classes": 9}
    assert auto["square"].kwargs == {"queries": 5000, "p_init": 0.8, "rescale_schedule": False}


def _write(tmp_path, text):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


GOOD = """\
name: tiny
threat_model: linf
eps_255: [8, 16]
attacks:
  - attack: FGSM
  - attack: LinfPGD
    steps: 5
"""


def test_eps_in_units_of_255_and_defaults(tmp_path):
    suite = load_suite(_write(tmp_path, GOOD))
    assert suite.eps == pytest.approx((8 / 255, 16 / 255))
    assert [a.engine for a in suite.attacks] == ["native", "native"]
    assert suite.attacks[1].kwargs == {"steps": 5}


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            GOOD.replace("threat_model: linf", "threat_model: linfinity"),
            [":2: field 'threat_model'", "'linf', 'l2' or 'l1'"],
        ),
        (
            GOOD.replace("  - attack: FGSM", "  - attack: FGSMM"),
            [":5: field 'attacks[0].attack'", "unknown attack 'FGSMM'", "close:", "'FGSM'"],
        ),
        (
            GOOD.replace("    steps: 5", "    stepz: 5"),
            [":7: field 'attacks[1].stepz'", "allowed fields are", "'steps'", "'loss'"],
        ),
        (
            GOOD.replace("    steps: 5", "    loss: hinge"),
            [":7: field 'attacks[1].loss'", "allowed values are 'ce' or 'margin'"],
        ),
        (GOOD.replace("    steps: 5", "    steps: 0"), [":7: field 'attacks[1].steps'", "must be >= 1"]),
        (
            GOOD.replace("  - attack: FGSM", "  - attack: L2PGD"),
            ["field 'attacks[0].attack'", "l2 threat model", "'linf'"],
        ),
        (
            GOOD.replace("  - attack: FGSM", "  - attack: DDNAttack\n    engine: native"),
            ["field 'attacks[0].engine'", "no native implementation", "engine: foolbox"],
        ),
        (
            GOOD.replace("  - attack: FGSM", "  - attack: LInfFMNAttack\n    stepsize: 3"),
            ["field 'attacks[0]'", "bad arguments for Foolbox LInfFMNAttack", "stepsize"],
        ),
        (GOOD + "sanity:\n  doubling: true\n", [":9: field 'sanity.doubling'", "'step_doubling' or 'large_eps'"]),
        (GOOD.replace("eps_255: [8, 16]", "eps: [0.1]\neps_255: [8]"), ["give exactly one of 'eps'"]),
        (GOOD + "epsilon: 3\n", [":8: field 'epsilon'", "allowed fields are"]),
        # every numeric setting has a range, Foolbox's included (FMN ran with steps: -1)
        (
            GOOD.replace("  - attack: FGSM", "  - attack: LInfFMNAttack\n    steps: -1"),
            [":6: field 'attacks[0].steps'", "got -1; must be >= 1"],
        ),
        (
            GOOD.replace("  - attack: FGSM", "  - attack: LInfFMNAttack\n    gamma: -0.5"),
            ["field 'attacks[0].gamma'", "must be >= 0"],
        ),
        (
            GOOD.replace("  - attack: FGSM", "  - attack: LinfDeepFoolAttack\n    overshoot: .nan"),
            ["field 'attacks[0].overshoot'", "expected a finite number"],
        ),
        (
            GOOD.replace("  - attack: FGSM", "  - attack: HopSkipJumpAttack\n    init_attack: 3"),
            ["field 'attacks[0].init_attack'", "Python object"],
        ),
        (
            GOOD.replace("    steps: 5", "    steps: 5\n    rel_stepsize: 0"),
            ["field 'attacks[1].rel_stepsize'", "must be > 0"],
        ),
        (
            GOOD.replace("    steps: 5", "    steps: 5\n    restarts: 0"),
            ["field 'attacks[1].restarts'", "must be >= 1"],
        ),
        (
            GOOD.replace("  - attack: FGSM", "  - attack: LinfSquare\n    queries: 0"),
            ["field 'attacks[0].queries'", "must be >= 1"],
        ),
        (
            GOOD.replace("  - attack: FGSM", "  - attack: LinfSquare\n    p_init: .nan"),
            ["field 'attacks[0].p_init'", "expected a finite number"],
        ),
        (GOOD.replace("eps_255: [8, 16]", "eps: [0.1, .inf]"), ["field 'eps'", "positive numbers"]),
        (GOOD.replace("eps_255: [8, 16]", "eps: [0.1, 0]"), ["field 'eps'", "positive numbers"]),
        (GOOD.replace("eps_255: [8, 16]", "eps: ['1/0']"), ["field 'eps'", "cannot read '1/0'"]),
        (GOOD + "seed: -3\n", ["field 'seed'", "must be >= 0"]),
        (
            GOOD.replace("  - attack: FGSM", "  - attack: LinfDeepFoolAttack\n    loss: ce"),
            ["field 'attacks[0].loss'", "'logits' or 'crossentropy'"],
        ),
        (GOOD + "samples: 0\n", ["field 'samples'", "must be >= 1"]),
        (GOOD + "eot: 0\n", ["field 'eot'", "must be >= 1"]),
    ],
)
def test_validation_errors_name_file_line_field_and_allowed_values(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(UserError) as info:
        load_suite(path)
    message = str(info.value)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message, (part, message)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(UserError, match="'autoattack', .*'quick', .*'quick-l2', .*'standard-l2-cifar' or 'thorough'"):
        load_suite("quik")


def test_cli_bad_suite_exits_2_with_one_line(tmp_path):
    path = _write(tmp_path, GOOD.replace("  - attack: FGSM", "  - attack: Nope"))
    ckpt = tmp_path / "missing.safetensors"
    proc = subprocess.run(
        [sys.executable, "-m", "robustarch", "attack", str(ckpt), "--suite", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "attacks[0].attack" in lines[0] and "unknown attack 'Nope'" in lines[0]
