"""The attack library's input contract: every bad input to `AttackSuite` is refused before any attack
runs, in one line naming what was expected; the caller's clean accuracy is checked; suites adapt to
models with 2 or 3 classes; and arbitrary suite YAML loads or fails with one line (hypothesis)."""

from __future__ import annotations

import copy
import dataclasses
import warnings

import pytest
import torch
import yaml
from _models import ExpectsNormalized
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn

from robustarch import AttackSuite, UserError, load_suite
from robustarch.attacks import AttackConfig, SuiteConfig
from robustarch.attacks.config import parse_suite
from robustarch.presets import load_yaml


def tiny_suite(*attacks, samples=40, eps=(0.05, 0.1, 0.2)) -> SuiteConfig:
    attacks = attacks or (AttackConfig("FGSM", "FGSM", engine="native"),)
    return SuiteConfig(name="tiny", threat_model="linf", eps=eps, attacks=attacks, samples=samples, batch_size=64)


def one_line(info) -> str:
    message = str(info.value)
    assert "\n" not in message, message
    return message


def colour(x: torch.Tensor) -> torch.Tensor:
    return x.repeat(1, 3, 1, 1)


class Grey(nn.Module):
    """The digits CNN on 3-channel copies of the digits: it averages the channels back."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x.mean(1, keepdim=True))


# -- AttackSuite's arguments and inputs -----------------------------------------------------------------
def test_float_labels_are_refused_not_truncated(digits, digits_model):
    x, y = digits.test.x[:40], digits.test.y[:40].float()
    bad = y.clone()
    bad[3] = 2.7
    with pytest.raises(UserError) as info:
        AttackSuite(tiny_suite()).run(digits_model, x, bad)
    assert "labels must be integers" in one_line(info) and "2.7" in str(info.value)
    with pytest.raises(UserError, match="labels must be integer class indices, got dtype torch.bool"):
        AttackSuite(tiny_suite()).run(digits_model, x, y > 4)
    # whole-valued floats are the same labels: same result as the integer ones
    as_int = AttackSuite(tiny_suite()).run(digits_model, x, y.long(), seed=0)
    as_float = AttackSuite(tiny_suite()).run(digits_model, x, y, seed=0)
    assert as_int.curve.equals(as_float.curve)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"mean": [0.5, 0.5, 0.5], "std": [0, 0, 0]}, "std= must be finite numbers > 0"),
        ({"mean": [0.5], "std": [-1.0]}, "std= must be finite numbers > 0"),
        ({"mean": [float("nan")], "std": [1.0]}, "mean= must be finite numbers"),
        ({"bounds": (1, 0)}, "bounds must be finite (low, high) with low < high, got (1, 0)"),
        ({"bounds": (0, float("inf"))}, "bounds must be finite"),
        ({"bounds": 1}, "bounds must be two numbers (low, high)"),
        ({"device": "foo"}, "unknown device 'foo'"),
        ({"eot": 0}, "eot= must be a whole number of draws >= 1"),
    ],
)
def test_bad_suite_arguments_are_refused_by_name(kwargs, expected):
    with pytest.raises(UserError) as info:
        AttackSuite(tiny_suite(), **kwargs)
    assert expected in one_line(info)


def test_bounds_the_wrong_way_round_blame_the_bounds_not_the_inputs():
    with pytest.raises(UserError) as info:
        AttackSuite(tiny_suite(), bounds=(1, 0))
    assert "bounds" in one_line(info) and "inputs" not in str(info.value)


def test_mean_with_more_values_than_channels(digits, digits_model):
    suite = AttackSuite(tiny_suite(), mean=[0.1, 0.2, 0.3, 0.4], std=[1, 1, 1, 1])
    with pytest.raises(UserError) as info:
        suite.run(Grey(digits_model), colour(digits.test.x[:40]), digits.test.y[:40])
    assert "mean= has 4 values but the inputs (n, C, H, W) have C = 3 channels: give 1 or 3" in one_line(info)
    # 3 values on 3 channels (or 1 for all) run
    for mean in ([0.0, 0.0, 0.0], [0.0]):
        result = AttackSuite(tiny_suite(), mean=mean, std=[1.0]).run(
            Grey(digits_model), colour(digits.test.x[:40]), digits.test.y[:40], seed=0
        )
        assert result.clean_accuracy > 0.9


def test_flat_and_channels_last_inputs_name_the_expected_layout(digits, digits_model):
    x, y = digits.test.x[:40], digits.test.y[:40]
    with pytest.raises(UserError) as info:
        AttackSuite(tiny_suite()).run(nn.Sequential(nn.Unflatten(1, (1, 8, 8)), digits_model), x.flatten(1), y)
    assert "inputs must be images laid out as (n, C, H, W), got shape (40, 64)" in one_line(info)
    rgb = colour(x)
    with pytest.raises(UserError) as info:
        AttackSuite(tiny_suite()).run(Grey(digits_model), rgb.permute(0, 2, 3, 1), y)
    assert "channels-last (n, H, W, C) = (40, 8, 8, 3)" in one_line(info) and "permute(0, 3, 1, 2)" in str(info.value)


def test_a_layout_the_model_does_not_take_is_one_line(digits, digits_model):
    """A model that fails on the inputs' shape: its own error, in one line, with the shape we gave."""
    with pytest.raises(UserError) as info:
        AttackSuite(tiny_suite()).run(digits_model, colour(digits.test.x[:40]), digits.test.y[:40])
    assert one_line(info).startswith(
        "the model failed on float32 inputs of shape (40, 3, 8, 8), laid out as (n, C, H, W)"
    )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_a_model_in_another_dtype_is_named(digits, digits_model, dtype):
    model = copy.deepcopy(digits_model).to(dtype)
    with pytest.raises(UserError) as info:
        AttackSuite(tiny_suite()).run(model, digits.test.x[:40].to(dtype), digits.test.y[:40])
    assert f"is {dtype}, but the suite attacks float32 inputs" in one_line(info) and "model.float()" in str(info.value)


def test_labels_that_do_not_fit_the_inputs(digits, digits_model):
    with pytest.raises(UserError) as info:
        AttackSuite(tiny_suite()).run(digits_model, digits.test.x[:40], digits.test.y[:39])
    assert "one class index per input: expected shape (40,), got (39,)" in one_line(info)


# -- the caller's clean accuracy --------------------------------------------------------------------------
def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def test_expected_clean_accuracy_within_one_point_runs_and_otherwise_refuses(digits, digits_model):
    x, y = digits.test.x[:300], digits.test.y[:300]
    accuracy = _accuracy(digits_model, x, y)  # on every input given, not only the 40 attacked
    suite = AttackSuite(tiny_suite(samples=40))
    result = suite.run(digits_model, x, y, seed=0, expected_clean_accuracy=accuracy - 0.009)
    assert len(result.per_sample) == 40
    plain = suite.run(digits_model, x, y, seed=0)
    assert result.curve.equals(plain.curve)
    with pytest.raises(UserError) as info:
        suite.run(digits_model, x, y, expected_clean_accuracy=accuracy - 0.02)
    assert one_line(info).startswith("refusing to attack: the model's clean accuracy on these 300 inputs is")
    with pytest.raises(UserError, match=r"expected_clean_accuracy= must be a fraction in \[0, 1\]"):
        suite.run(digits_model, x, y, expected_clean_accuracy=97)


def test_inputs_normalized_twice_are_refused_against_the_callers_numbers(digits, digits_model):
    """The most common complaint in peers' trackers: normalized inputs, and mean/std given as well."""
    model = ExpectsNormalized(digits_model, 0.5, 0.25)
    x, y = digits.test.x[:200], digits.test.y[:200]
    accuracy = _accuracy(digits_model, x, y)
    suite = AttackSuite(tiny_suite(), mean=[0.5], std=[0.25], bounds=(-2, 2))
    twice = (x - 0.5) / 0.25
    with pytest.raises(UserError) as info:
        suite.run(model, twice, y, expected_clean_accuracy=accuracy)
    assert "normalized twice, or not at all" in one_line(info)
    with torch.no_grad():
        predictions = digits_model(x).argmax(1)
    with pytest.raises(UserError) as info:
        suite.run(model, twice, y, predictions=predictions)
    assert "differ from the given predictions on" in one_line(info)
    # the right inputs agree with the caller's predictions, given as labels or as scores
    good = suite.run(model, x, y, seed=0, predictions=predictions)
    assert good.clean_accuracy == pytest.approx(_accuracy(digits_model, x[:40], y[:40]))
    suite.run(model, x, y, seed=0, predictions=digits_model(x).detach())
    with pytest.raises(UserError, match=r"predictions= must be one class index per input, shape \(200,\)"):
        suite.run(model, x, y, predictions=predictions[:10])


def test_near_chance_accuracy_warns_with_the_likely_cause(digits, digits_model):
    """Inputs not normalized for a model that expects them normalized: near chance, and a warning."""
    model = ExpectsNormalized(digits_model, 0.5, 0.02)
    x, y = digits.test.x[:200], digits.test.y[:200]
    with pytest.warns(UserWarning, match=r"clean accuracy .* is near chance .*normalized twice, or not at all"):
        AttackSuite(tiny_suite()).run(model, x, y, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a healthy model: no such warning
        AttackSuite(tiny_suite()).run(digits_model, x, y, seed=0)


# -- few classes -------------------------------------------------------------------------------------------
def _few_class_model(digits, classes: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A tiny CNN trained on the digits 0..classes−1, and their test samples."""
    keep = digits.train.y < classes
    x, y = digits.train.x[keep], digits.train.y[keep]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, classes))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    test = digits.test.y < classes
    return model, digits.test.x[test], digits.test.y[test]


def _small(name: str, samples: int = 60) -> SuiteConfig:
    """A preset at small budgets (same attacks, settings scaled down) for a test."""
    small = {"steps": 5, "queries": 30}
    attacks = tuple(
        dataclasses.replace(a, kwargs={k: small.get(k, v) for k, v in a.kwargs.items()})
        for a in load_suite(name).attacks
    )
    return dataclasses.replace(load_suite(name), attacks=attacks, samples=samples)


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("preset", ["standard", "autoattack-l2"])
def test_few_classes_adapt_the_dlr_attacks_in_one_line(digits, preset, classes):
    model, x, y = _few_class_model(digits, classes)
    config = _small(preset)
    with pytest.warns(UserWarning) as record:
        result = AttackSuite(config).run(model, x, y, seed=0)
    (message,) = [str(w.message) for w in record if "class model" in str(w.message)]
    assert (
        "\n" not in message and f"{classes}-class model: the DLR loss needs >= 3 classes, targeted DLR >= 4" in message
    )
    apgdt = "apgd-t" if preset.startswith("autoattack") else "L2APGDT" if "l2" in preset else "LinfAPGDT"
    ran = {a.label: a for a in result.suite.attacks}
    if classes == 2:
        assert f"{apgdt} (targeted DLR) dropped" in message and apgdt not in ran
    else:
        assert f"{apgdt} runs as untargeted DLR APGD" in message
        assert ran[apgdt].attack.endswith("APGD") and ran[apgdt].kwargs["loss"] == "dlr"
    assert set(ran) == set(result.attack_seconds)  # what ran is what the result says ran
    assert len(ran) >= len(config.attacks) - 1 and result.clean_accuracy > 0.9
    assert result.robust_accuracy(max(config.eps)) < result.clean_accuracy


def test_a_suite_of_dlr_attacks_only_has_nothing_left_on_two_classes(digits):
    model, x, y = _few_class_model(digits, 2)
    config = tiny_suite(
        AttackConfig("LinfAPGDT", "apgd-t", {"steps": 5}, engine="native"),
        AttackConfig("LinfAPGD", "apgd-dlr", {"steps": 5, "loss": "dlr"}, engine="native"),
    )
    with pytest.raises(UserError) as info:
        AttackSuite(config).run(model, x, y)
    assert "no attack left for a 2-class model" in one_line(info)


def test_ten_classes_keep_the_suite_as_configured(digits, digits_model):
    config = _small("standard", samples=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = AttackSuite(config).run(digits_model, digits.test.x, digits.test.y, seed=0)
    assert result.suite == config


# -- suite YAML, fuzzed ----------------------------------------------------------------------------------
# Each attack with the settings it takes (mostly in range, sometimes not), so that most documents get
# past the first field and the range checks of every attack are reached.
_KEYS = {
    "FGSM": (),
    "FGM": (),
    "Nope": ("steps",),
    "LinfPGD": ("steps", "rel_stepsize", "abs_stepsize", "random_start", "loss"),
    "L2PGD": ("steps", "rel_stepsize", "abs_stepsize", "random_start", "loss"),
    "LinfAPGD": ("steps", "rho", "loss"),
    "L2APGDT": ("steps", "rho", "n_target_classes", "sweep_steps"),
    "LinfSquare": ("queries", "p_init", "rescale_schedule"),
    "L2FABT": ("steps", "n_target_classes", "alpha_max", "eta", "beta"),
    "LInfFMNAttack": ("steps", "max_stepsize", "min_stepsize", "gamma", "init_attack", "binary_search_steps"),
    "L2FMNAttack": ("steps", "max_stepsize", "gamma", "binary_search_steps"),
    "HopSkipJumpAttack": (
        "steps",
        "initial_gradient_eval_steps",
        "max_gradient_eval_steps",
        "stepsize_search",
        "gamma",
        "constraint",
        "init_attack",
    ),
    "L2DeepFoolAttack": ("steps", "candidates", "overshoot", "loss"),
    "L2CarliniWagnerAttack": ("binary_search_steps", "steps", "stepsize", "confidence", "initial_const", "abort_early"),
    "DDNAttack": ("init_epsilon", "steps", "gamma"),
    "LinfRepeatedAdditiveUniformNoiseAttack": ("repeats", "check_trivial"),
}
_OURS = ("name", "restarts", "engine", "samples")
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.sampled_from(["linf", "l2", "ce", "dlr", "8/255", "1/0", ""])
    | st.text(max_size=6)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["steps", "attack", "x"]), inner, max_size=2)
    ),
    max_leaves=4,
)
_setting = st.one_of(
    st.integers(-2, 30),
    st.integers(-2, 30),
    st.floats(-1, 3),
    st.booleans(),
    _values,
    st.sampled_from(["ce", "dlr", "margin", "logits", "linf", "l2", "geometric_progression", "native", "foolbox"]),
)
_BY_THREAT = {
    "linf": [
        "FGSM",
        "LinfPGD",
        "LinfAPGD",
        "LinfSquare",
        "LInfFMNAttack",
        "LinfRepeatedAdditiveUniformNoiseAttack",
        "HopSkipJumpAttack",
    ],
    "l2": [
        "FGM",
        "L2PGD",
        "L2APGDT",
        "L2FABT",
        "L2FMNAttack",
        "L2DeepFoolAttack",
        "L2CarliniWagnerAttack",
        "DDNAttack",
        "HopSkipJumpAttack",
    ],
}
_ENGINE = {
    name: "native" for name in ("FGSM", "FGM", "LinfPGD", "L2PGD", "LinfAPGD", "L2APGDT", "LinfSquare", "L2FABT")
}
_ours = {
    "name": st.text(max_size=6) | _values,
    "restarts": st.integers(-1, 3) | _values,
    "samples": st.integers(-1, 50) | _values,
}


def _attacks(threat: str):
    names = st.sampled_from(_BY_THREAT[threat] * 4 + sorted(_KEYS))  # now and then the other norm's, or "Nope"
    return st.lists(
        names.flatmap(
            lambda name: st.fixed_dictionaries(
                {"attack": st.just(name)},
                optional={
                    **{k: _setting for k in _KEYS[name]},
                    **_ours,
                    "engine": st.sampled_from([_ENGINE.get(name, "foolbox")] * 3 + ["torch", "native", "foolbox"]),
                },
            )
        ),
        min_size=1,
        max_size=3,
    )


_eps = st.lists(st.floats(0.001, 2.0) | st.sampled_from(["8/255", "0.5/255"]), min_size=1, max_size=4)
_number = st.integers(-2, 600) | _values
_suite = st.sampled_from(["linf", "l2"]).flatmap(
    lambda threat: st.fixed_dictionaries(
        {"threat_model": st.just(threat), "eps": _eps, "attacks": _attacks(threat)},
        optional={
            "samples": _number,
            "batch_size": _number,
            "seed": _number | st.integers(),
            "eot": _number,
            "name": _values,
            "description": _values,
            "sanity": st.dictionaries(st.sampled_from(["step_doubling", "large_eps"]), _values),
        },
    )
)
# now and then a field replaced by anything, a second ε grid, or an unknown field
_damage = st.sampled_from(["threat_model", "eps", "attacks", "eps_255", "extra"])
_documents = st.one_of(_suite, _suite, _suite, st.tuples(_suite, _damage, _values).map(lambda t: {**t[0], t[1]: t[2]}))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_documents)
def test_arbitrary_suite_yaml_loads_or_fails_in_one_line(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("fuzz") / "suite.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    try:
        suite = parse_suite(load_yaml(path))
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path)), str(exc)
        event("refused")
        return
    event("loaded")
    # what loads is in range
    assert suite.eps and all(0 < e < float("inf") for e in suite.eps)
    assert suite.samples >= 1 and suite.batch_size >= 1 and 0 <= suite.seed < 2**32
    for a in suite.attacks:
        assert a.restarts >= 1 and (a.samples is None or a.samples >= 1)
        for key in ("steps", "queries", "n_target_classes", "repeats", "candidates", "binary_search_steps"):
            value = a.kwargs.get(key)
            assert value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1), (
                key,
                value,
            )
        for key, value in a.kwargs.items():  # null means the default: never passed on as None
            assert value is not None and not (isinstance(value, float) and value != value), (key, value)
