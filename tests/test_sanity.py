"""Sanity checks without false alarms: masked and random models are flagged invalid, healthy ones
(plain, logits ×1000, adversarially trained) pass; EOT for random models; step doubling merges.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from robustarch import ArchSpec, AttackSuite, StageSpec, UserError, build_model
from robustarch.attacks import AttackConfig, SuiteConfig
from robustarch.training.train import TrainConfig, train_model

EPS = (0.05, 0.1, 0.2, 0.3)


def attacks_config(samples: int = 100, **kw) -> SuiteConfig:
    """A suite with one attack of each kind (the `quick` preset is being extended elsewhere)."""
    attacks = (
        AttackConfig("FGSM", "FGSM", engine="native"),
        AttackConfig("LinfPGD", "LinfPGD", {"steps": 10, "loss": "margin"}, restarts=2, engine="native"),
        AttackConfig("LInfFMNAttack", "FMN", {"steps": 20}, engine="foolbox"),
        AttackConfig("LinfRepeatedAdditiveUniformNoiseAttack", "noise", {"repeats": 20}, engine="foolbox"),
    )
    return SuiteConfig(
        name="sanity", threat_model="linf", eps=EPS, attacks=attacks, samples=samples, batch_size=128, **kw
    )


def small_cnn(head_dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    return build_model(
        ArchSpec(
            in_chans=1,
            num_classes=10,
            input_size=8,
            stem_width=16,
            head_dropout=head_dropout,
            stages=(StageSpec(1, 32, 1, "plain"), StageSpec(1, 32, 2, "plain")),
        )
    )


class Preprocessed(nn.Module):
    """A fixed input transform in front of the CNN (the transform is the 'defense')."""

    def __init__(self, model: nn.Module, transform):
        super().__init__()
        self.model, self.transform = model, transform

    def forward(self, x):
        return self.model(self.transform(x))


class ScaledLogits(nn.Module):
    def __init__(self, model: nn.Module, scale: float):
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, x):
        return self.model(x) * self.scale


class AlwaysDropout(nn.Module):
    """Dropout that ignores eval mode: the model's output is random at test time."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, training=True)


def median3x3(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    patches = F.unfold(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3).view(n, c, 9, h * w)
    return patches.median(2).values.view(n, c, h, w)


@pytest.fixture(scope="module")
def adv_cnn(digits):
    model = small_cnn()
    train_model(
        model,
        digits,
        TrainConfig(recipe="fgsm-rs", eps=0.1, epochs=6, lr=0.1, batch_size=128),
        device=torch.device("cpu"),
    )
    return model.eval()


@pytest.fixture(scope="module")
def plain(digits, digits_model):
    return AttackSuite(attacks_config()).run(digits_model, digits.test.x, digits.test.y, seed=0)


def _run(model, digits, **kw):
    return AttackSuite(attacks_config(**kw)).run(model, digits.test.x, digits.test.y, seed=0)


# -- healthy models: no failed invalid check --------------------------------------------------------
def test_plain_cnn_is_valid_with_severities(plain):
    assert plain.valid and plain.invalid_checks == [], plain.sanity_table()
    assert plain.sanity["large_eps_chance_level"]["robust_accuracy"] == 0.0
    assert plain.sanity["deterministic_outputs"]["max_relative_logit_change"] == 0.0
    table = plain.sanity_table()
    assert list(table.columns) == ["check", "ok", "severity", "numbers"]
    assert set(table["severity"]) == {"invalid", "warning"}
    assert all(c["severity"] in ("invalid", "warning") for c in plain.sanity.values())
    assert plain.sanity_ok == (not plain.invalid_checks and not plain.warning_checks)


def test_logits_times_1000_same_curve_and_valid(digits, digits_model, plain):
    scaled = _run(ScaledLogits(digits_model, 1000.0), digits)
    assert scaled.valid, scaled.sanity_table()
    worst = [scaled.robust_accuracy(e) for e in EPS]
    assert np.allclose(worst, [plain.robust_accuracy(e) for e in EPS], atol=0.02), worst
    grad = scaled.sanity["gradients_finite_nonzero"]
    plain_l1 = plain.sanity["gradients_finite_nonzero"]["median_grad_l1"]
    assert grad["fraction_zero"] == 0.0 and grad["median_grad_l1"] > 100 * plain_l1  # margin: scaled, not saturated


def test_adversarially_trained_cnn_is_valid(digits, adv_cnn, plain):
    result = _run(adv_cnn, digits)
    assert result.valid, result.sanity_table()
    assert result.robust_accuracy(0.1) > plain.robust_accuracy(0.1)  # the training did something


# -- masked and random models: invalid --------------------------------------------------------------
@pytest.mark.parametrize(
    "transform",
    [lambda x: torch.round(x * 4) / 4, lambda x: torch.round(x * 16) / 16],
    ids=["quantize-5-levels", "round-to-16ths"],
)
def test_rounding_preprocessing_is_invalid(digits, digits_model, transform):
    result = _run(Preprocessed(digits_model, transform), digits)
    assert not result.valid
    masked = {"gradients_finite_nonzero", "large_eps_chance_level", "gradient_free_not_stronger"}
    assert masked <= set(result.invalid_checks)
    assert result.sanity["gradients_finite_nonzero"]["fraction_zero"] == 1.0
    assert result.sanity["large_eps_chance_level"]["robust_accuracy"] > 0.5


def test_median_filter_is_not_masking(digits):
    """Measured, against the first plan: a 3×3 median filter passes gradients (to each window's
    median pixel) and gradient attacks break it faster than noise, so no invalid check may fire."""
    model = Preprocessed(small_cnn(), median3x3)
    train_model(model, digits, TrainConfig(epochs=6, lr=0.1, batch_size=128), device=torch.device("cpu"))
    result = _run(model.eval(), digits)
    assert result.valid, result.sanity_table()
    for e in EPS:
        assert result.robust_accuracy(e, "LinfPGD") <= result.robust_accuracy(e, "noise")


def median3x3_numpy(x: torch.Tensor) -> torch.Tensor:
    """The median filter as feature-squeezing code often writes it: scipy on the detached array."""
    import scipy.ndimage as ndi

    out = ndi.median_filter(x.detach().cpu().numpy(), size=(1, 1, 3, 3), mode="reflect")
    return torch.as_tensor(out, device=x.device)


def test_median_filter_outside_autograd_is_invalid(digits):
    """Non-differentiable preprocessing: no gradient path from the output to the input. The suite
    does not crash on it; its attacks see a zero gradient and the evaluation is flagged invalid."""
    model = small_cnn()
    train_model(model, digits, TrainConfig(epochs=6, lr=0.1, batch_size=128), device=torch.device("cpu"))
    result = _run(Preprocessed(model.eval(), median3x3_numpy), digits)
    assert not result.valid
    assert {"gradients_finite_nonzero", "large_eps_chance_level"} <= set(result.invalid_checks)
    assert result.sanity["gradients_finite_nonzero"]["gradient_path"] is False


@pytest.fixture(scope="module")
def dropout_cnn(digits):
    model = small_cnn(head_dropout=0.3)
    train_model(model, digits, TrainConfig(epochs=6, lr=0.1, batch_size=128), device=torch.device("cpu"))
    model.dropout = AlwaysDropout(0.3)
    return model.eval()


def test_dropout_at_test_time_is_invalid_and_averaged(digits, dropout_cnn):
    cfg = attacks_config(samples=60)
    runs = [AttackSuite(cfg, eot=4).run(dropout_cnn, digits.test.x, digits.test.y, seed=1) for _ in range(2)]
    result = runs[0]
    check = result.sanity["deterministic_outputs"]
    assert not result.valid and "deterministic_outputs" in result.invalid_checks
    assert check["random"] and check["eot_draws"] == 4 and check["fraction_predictions_changed"] > 0.05
    # The averaged model changes its mind less often than one draw: fewer noise flips counted.
    assert check["eot_fraction_predictions_changed"] < check["fraction_predictions_changed"]
    single = AttackSuite(cfg, eot=1).run(dropout_cnn, digits.test.x, digits.test.y, seed=1)
    assert result.clean_accuracy > single.clean_accuracy  # one draw's noise no longer decides clean-correct
    pd.testing.assert_frame_equal(runs[0].per_sample, runs[1].per_sample)  # seeded draws: reproducible


# -- step doubling and constructor checks -----------------------------------------------------------
def test_step_doubling_keeps_the_stronger_result(digits, digits_model):
    pgd = AttackConfig("LinfPGD", "LinfPGD", {"steps": 2, "loss": "margin"}, restarts=1, engine="native")
    cfg = {
        "name": "t",
        "threat_model": "linf",
        "eps": EPS,
        "attacks": (pgd,),
        "samples": 100,
        "batch_size": 128,
        "large_eps": False,
    }
    once = AttackSuite(SuiteConfig(**cfg)).run(digits_model, digits.test.x, digits.test.y, seed=0)
    both = AttackSuite(SuiteConfig(**cfg, step_doubling=True)).run(digits_model, digits.test.x, digits.test.y, seed=0)
    check = both.sanity["step_doubling_stable"]
    assert check["severity"] == "warning"
    assert check["curves"]["LinfPGD"]["steps"] == [once.robust_accuracy(e) for e in EPS]  # flag as it was
    a, b = once.per_sample["eps_LinfPGD"].to_numpy(), both.per_sample["eps_LinfPGD"].to_numpy()
    assert np.all(b <= a) and check["samples_improved"] == int((b < a).sum()) > 0
    assert np.array_equal(both.per_sample["min_adversarial_eps"].to_numpy(), b)
    for e, doubled in zip(EPS, check["curves"]["LinfPGD"]["double_steps"]):
        assert both.robust_accuracy(e) <= min(once.robust_accuracy(e), doubled)


def test_constructor_errors():
    cfg = attacks_config()
    with pytest.raises(UserError, match="std= was given without mean="):
        AttackSuite(cfg, std=[0.5])
    with pytest.raises(UserError, match="eot= must be a whole number of draws >= 1"):
        AttackSuite(cfg, eot=0)


def test_a_few_lucky_wins_of_a_weaker_attack_are_no_masking_sign():
    """Seen on honest digits CNNs: FGSM beat PGD/FMN on 4 of 190 samples, Square on 3 of 97 — luck,
    not a systematic pattern; a 5-level quantizer gave 31 of 95, which must still fail."""
    from robustarch.attacks.sanity import _weaker_wins

    grid = (0.05, 0.1)

    def table(n: int, wins: int) -> pd.DataFrame:
        strong = np.full(n, 0.1)
        weak = np.full(n, np.inf)
        weak[:wins] = 0.05  # the weak attack broke these at a smaller grid ε than the strong one
        return pd.DataFrame({"clean_correct": True, "eps_strong": strong, "eps_weak": weak})

    assert _weaker_wins(table(190, 4), grid, ["strong"], ["weak"])["ok"]
    assert _weaker_wins(table(97, 3), grid, ["strong"], ["weak"])["ok"]
    check = _weaker_wins(table(95, 31), grid, ["strong"], ["weak"])
    assert not check["ok"] and check["p_value"] < 1e-10


# -- dead cross-entropy attacks and the large-ε probe's restarts -------------------------------------
def test_saturated_logits_warn_that_cross_entropy_attacks_are_dead(digits, digits_model):
    """Logits ×1e4 zero the cross-entropy gradient in float32: FGSM breaks nothing, while the
    margin-loss PGD and FMN break as on the plain CNN. A warning names FGSM; the evaluation stays valid."""
    result = _run(ScaledLogits(digits_model, 1e4), digits)
    check = result.sanity["cross_entropy_not_saturated"]
    assert not check["ok"] and check["severity"] == "warning", check
    assert check["dead"] == ["FGSM"] and check["share_broken"]["FGSM"] < 0.1 and check["n"] > 50
    assert check["margin"] == ["LinfPGD", "FMN"]
    assert "cross_entropy_not_saturated" in result.warning_checks and result.valid


def test_cross_entropy_attacks_are_alive_on_honest_models(digits, plain, adv_cnn):
    check = plain.sanity["cross_entropy_not_saturated"]
    assert check["ok"] and check["dead"] == [] and check["share_broken"]["FGSM"] > 0.8, check
    trained = _run(adv_cnn, digits).sanity["cross_entropy_not_saturated"]
    assert trained["ok"], trained


class FlatAtTheData(nn.Module):
    """The CNN, except flat within ±0.02 (per pixel) of the nearest test image: the input gradient is
    zero at every clean image, yet the model is the CNN a little further out."""

    def __init__(self, model: nn.Module, images: torch.Tensor):
        super().__init__()
        self.model, self.images = model, images

    def forward(self, x):
        c = self.images[torch.cdist(x.flatten(1), self.images.flatten(1)).argmin(1)]
        return self.model(c + torch.sign(x - c) * torch.relu((x - c).abs() - 0.02))


def test_large_eps_probe_restarts_off_a_stalled_start(digits, digits_model):
    """PGD from the clean point never moves on this model; the restarts from nearby random points
    see its gradient and break every sample, so the probe does not call the model constant.
    Measured: the clean-point run breaks none of the 96 clean-correct samples, the restarts all 96."""
    result = _run(FlatAtTheData(digits_model, digits.test.x[:100]), digits)
    probe = result.sanity["large_eps_chance_level"]
    assert probe["ok"] and probe["robust_accuracy"] == 0.0, probe
    assert probe["broken_by_restarts"] >= 0.9 * result.clean_accuracy * probe["n"], probe
    assert result.sanity["gradients_finite_nonzero"]["fraction_zero"] == 1.0  # still flagged: masked at the data


def test_cross_entropy_share_rule_on_tables():
    """Dead means significantly below half of what the margin attacks break, not merely below half."""
    from robustarch.attacks.base import AttackKind
    from robustarch.attacks.sanity import _ce_saturation

    def check(n: int, ce_breaks: int) -> dict:
        margin = np.full(n, 0.1)
        ce = np.full(n, np.inf)
        ce[:ce_breaks] = 0.3  # broken somewhere on the grid, at a larger ε than the margin attack
        table = pd.DataFrame({"clean_correct": True, "eps_pgd": margin, "eps_fgsm": ce, "eps_sq": 0.05})
        kinds = {"pgd": AttackKind.ITERATIVE, "fgsm": AttackKind.SINGLE_STEP, "sq": AttackKind.GRADIENT_FREE}
        return _ce_saturation(table, (0.1, 0.3), kinds, {"pgd": "margin", "fgsm": "ce", "sq": "margin"})

    assert check(100, 45)["ok"]  # below half, but within chance of it
    dead = check(100, 30)
    assert not dead["ok"] and dead["dead"] == ["fgsm"] and dead["p_value"]["fgsm"] < 1e-3
    assert dead["margin"] == ["pgd"]  # Square, gradient-free, is not a side of this comparison
    assert not check(100, 0)["ok"] and check(100, 100)["share_broken"]["fgsm"] == 1.0
    assert (
        _ce_saturation(
            pd.DataFrame({"clean_correct": [True], "eps_a": [0.1]}), (0.1,), {"a": AttackKind.ITERATIVE}, {"a": "ce"}
        )
        is None
    )  # no margin attack: no check
