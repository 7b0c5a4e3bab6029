"""The attack suite on real small models: outputs, cost, strength, correctness, sanity, any model, CLI.

Numbered comments refer to the points of issue 3.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from _models import ExpectsNormalized
from torch import nn

import robustarch.attacks.native as attack_module
from robustarch import AttackSuite, UserError
from robustarch.attacks import WORST_CASE, AttackConfig, SuiteConfig
from robustarch.attacks.gradient import PGDParams, pgd
from robustarch.attacks.verify import lp_distance, verify
from robustarch.metrics import eps_tolerance

GRID = (0.05, 0.1, 0.2, 5.0)  # 5.0 is far beyond the input range [0, 1]: every point is allowed


def fgsm():
    return AttackConfig("FGSM", "FGSM", engine="native")


def pgd_cfg(steps=10, restarts=2, label="LinfPGD", **kw):
    return AttackConfig("LinfPGD", label, {"steps": steps, "loss": "margin", **kw}, restarts=restarts, engine="native")


def fmn(steps=20):
    return AttackConfig("LInfFMNAttack", "LInfFMNAttack", {"steps": steps}, engine="foolbox")


def noise(repeats=5):
    return AttackConfig("LinfRepeatedAdditiveUniformNoiseAttack", "noise", {"repeats": repeats}, engine="foolbox")


def suite(*attacks, eps=GRID, samples=80, threat="linf", **kw) -> SuiteConfig:
    return SuiteConfig(
        name="tiny", threat_model=threat, eps=tuple(eps), attacks=tuple(attacks), samples=samples, batch_size=32, **kw
    )


class Counting(nn.Module):
    """The real model, counting how many sample rows it evaluates."""

    def __init__(self, model):
        super().__init__()
        self.model, self.rows = model, 0

    def forward(self, x):
        self.rows += len(x)
        return self.model(x)


@pytest.fixture(scope="module")
def tiny(digits, digits_model):
    cfg = suite(fgsm(), pgd_cfg(), fmn(), noise())
    return AttackSuite(cfg).run(digits_model, digits.test.x, digits.test.y, keep_adversarials=True, seed=0)


# -- 2. outputs -----------------------------------------------------------------------------------
def test_per_sample_table(tiny, digits, digits_model):
    ps = tiny.per_sample
    assert list(ps.columns[:4]) == ["sample", "label", "clean_correct", "margin"]
    assert {"min_adversarial_eps", "eps_FGSM", "eps_LinfPGD", "eps_LInfFMNAttack", "eps_noise"} <= set(ps.columns)
    assert len(ps) == 80
    with torch.no_grad():
        logits = digits_model(digits.test.x[:80])
    np.testing.assert_array_equal(ps["clean_correct"], (logits.argmax(1) == digits.test.y[:80]).numpy())
    top2 = logits.topk(2, dim=1).values
    np.testing.assert_allclose(ps["margin"], (top2[:, 0] - top2[:, 1]).numpy(), rtol=1e-5)
    eps_cols = ps[[c for c in ps.columns if c.startswith("eps_")]]
    np.testing.assert_array_equal(ps["min_adversarial_eps"], eps_cols.min(axis=1))
    assert (ps.loc[~ps["clean_correct"], "min_adversarial_eps"] == 0).all()
    assert tiny.clean_accuracy == pytest.approx(ps["clean_correct"].mean())
    correct = ps.loc[ps["clean_correct"], "min_adversarial_eps"]
    assert tiny.median_min_eps == pytest.approx(float(np.median(correct)))
    # FMN measures distances; fixed-ε attacks report grid values.
    assert set(ps.loc[ps["clean_correct"], "eps_LinfPGD"]) <= set(GRID) | {np.inf}


def test_curve_is_per_sample_worst_case_non_increasing_and_zero_at_huge_eps(tiny):
    curve, ps = tiny.curve, tiny.per_sample
    assert list(curve.columns) == ["attack", "eps", "robust_accuracy", "n"]
    for eps in GRID:
        # Mean over samples of the min over attacks, recomputed from the per-sample table.
        expected = (ps["min_adversarial_eps"] > eps_tolerance(eps)).mean()
        assert tiny.robust_accuracy(eps) == pytest.approx(expected)
        per_attack = [tiny.robust_accuracy(eps, a) for a in ("FGSM", "LinfPGD", "LInfFMNAttack", "noise")]
        assert tiny.robust_accuracy(eps) <= min(per_attack)
    for attack, group in curve.groupby("attack"):
        values = group.sort_values("eps")["robust_accuracy"].to_numpy()
        assert np.all(np.diff(values) <= 0), attack
    assert tiny.robust_accuracy(5.0) == 0.0
    # Worst case strictly beats the best single attack somewhere is not guaranteed; but it must
    # move: at ε=0.1 this CNN (≈97% clean) is far from robust.
    assert tiny.robust_accuracy(0.1) < tiny.clean_accuracy - 0.2
    wide = tiny.curve_table()
    assert list(wide.columns)[-1] == WORST_CASE and list(wide.index) == list(GRID)


def test_adversarials_on_request_are_real(tiny, digits, digits_model):
    x, y = digits.test.x[:80], digits.test.y[:80]
    assert set(tiny.adversarials) == {"FGSM", "LinfPGD", "LInfFMNAttack", "noise", WORST_CASE}
    counted = 0
    for label, adv in tiny.adversarials.items():
        eps = adv["eps"].numpy()
        rows = np.flatnonzero(np.isfinite(eps) & (eps > 0))
        xa = adv["x_adv"][rows]
        assert torch.isfinite(xa).all() and xa.min() >= 0 and xa.max() <= 1
        with torch.no_grad():
            logits = digits_model(xa)
        # FMN stops on the decision boundary: there the true logit can tie the best other one to the
        # last bit, and which wins depends on the batch it is evaluated in (the suite verified it in
        # another). Such a tie is no robust prediction; anything else must be misclassified.
        true = logits.gather(1, y[rows, None])[:, 0]
        other = logits.scatter(1, y[rows, None], float("-inf")).amax(1)
        assert (other >= true - 1e-5 * true.abs().clamp_min(1)).all(), label
        assert (logits.argmax(1) != y[rows]).float().mean() > 0.95, label
        dist = lp_distance(xa, x[rows], "linf").numpy()
        assert np.all(dist <= eps[rows] * (1 + 1e-5) + 1e-6), label
        counted += len(rows)
    assert counted > 100
    assert tiny.per_sample.equals(tiny.per_sample)  # result tables are plain pandas


def test_save_writes_tables(tiny, tmp_path):
    paths = tiny.save(tmp_path / "out")
    names = {p.name for p in paths}
    assert {"curve.csv", "per_sample.csv", "sanity.json", "adversarials.pt"} <= names
    back = pd.read_csv(tmp_path / "out" / "curve.csv")
    assert len(back) == len(tiny.curve)
    json.dumps(tiny.sanity)  # plain Python values: a study stores them as trial attributes


# -- 3. cost --------------------------------------------------------------------------------------
def test_whole_curve_costs_a_fraction_of_a_foolbox_sweep(digits, digits_model):
    import foolbox as fb

    eps = (0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3)
    x, y = digits.test.x[:60], digits.test.y[:60]
    counted = Counting(digits_model).eval()
    AttackSuite(suite(pgd_cfg(steps=20, restarts=1), eps=eps, samples=60, large_eps=False)).run(counted, x, y, seed=0)
    ours, counted.rows = counted.rows, 0
    for p in counted.parameters():
        p.requires_grad_(False)
    fb.attacks.LinfPGD(steps=20)(fb.PyTorchModel(counted, bounds=(0, 1)), x, y, epsilons=list(eps))
    sweep = counted.rows
    assert ours <= 0.35 * sweep, (ours, sweep)


def test_only_clean_correct_samples_and_only_previously_broken_ones_are_attacked(digits, digits_model, monkeypatch):
    x, y = digits.test.x[:60].clone(), digits.test.y[:60].clone()
    y[:5] = (y[:5] + 1) % 10  # five samples the model now gets wrong
    row_id = {x[i].numpy().tobytes(): i for i in range(len(x))}
    calls = []

    def spy(net, xc, yc, eps, params, bounds, *, gen, init=None):
        calls.append((eps, {row_id[r.numpy().tobytes()] for r in xc}))
        return pgd(net, xc, yc, eps, params, bounds, gen=gen, init=init)

    monkeypatch.setattr(attack_module, "pgd", spy)
    grid = (0.05, 0.1, 0.2, 0.3)
    result = AttackSuite(suite(pgd_cfg(steps=5, restarts=1), eps=grid, samples=60, large_eps=False)).run(
        digits_model, x, y, seed=0
    )
    ps = result.per_sample
    wrong = set(np.flatnonzero(~ps["clean_correct"].to_numpy()))
    assert set(range(5)) <= wrong
    attacked = {}
    for eps, rows in calls:
        assert not rows & wrong
        attacked.setdefault(eps, set()).update(rows)
    # From the largest ε down: only samples broken at the next larger ε are attacked at a smaller one.
    broken = lambda e: set(np.flatnonzero(ps["eps_LinfPGD"].to_numpy() <= e))  # noqa: E731
    for small, large in zip(grid[:-1], grid[1:]):
        assert attacked.get(small, set()) <= broken(large)
    assert len(attacked[0.05]) < len(attacked[0.3])


def test_minimization_attack_runs_once_for_all_eps(digits, digits_model):
    x, y = digits.test.x[:40], digits.test.y[:40]
    rows = []
    for grid in [(0.1,), (0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3)]:
        counted = Counting(digits_model).eval()
        AttackSuite(suite(fmn(10), eps=grid, samples=40, large_eps=False)).run(counted, x, y, seed=0)
        rows.append(counted.rows)
    assert rows[1] - rows[0] < 0.1 * rows[0], rows  # only a few extra forward passes for the tables


def test_pgd_stops_per_sample(digits, digits_model):
    x, y = digits.test.x[:50], digits.test.y[:50]
    counted = Counting(digits_model).eval()
    params = PGDParams("linf", steps=50)
    _, found = pgd(counted, x, y, 0.5, params, (0.0, 1.0), gen=torch.Generator().manual_seed(0))
    assert found.all()
    assert counted.rows < 0.15 * 51 * len(x)  # without stopping: 51 evaluations per sample


# -- 4. strength ----------------------------------------------------------------------------------
def test_native_pgd_at_least_as_strong_as_foolbox_default(digits, digits_model):
    import foolbox as fb

    x, y = digits.test.x[:150], digits.test.y[:150]
    eps = 0.1
    for p in digits_model.parameters():
        p.requires_grad_(False)
    torch.manual_seed(0)
    _, _, success = fb.attacks.LinfPGD(steps=40)(fb.PyTorchModel(digits_model, bounds=(0, 1)), x, y, epsilons=eps)
    foolbox_robust = 1 - success.float().mean().item()
    for p in digits_model.parameters():
        p.requires_grad_(True)
    # Same steps, same loss (cross-entropy), one start: only the step size (2.5·ε/steps) differs.
    same_budget = AttackSuite(
        suite(pgd_cfg(steps=40, restarts=1, loss="ce"), eps=(eps,), samples=150, large_eps=False)
    ).run(digits_model, x, y, seed=0)
    assert same_budget.robust_accuracy(eps) <= foolbox_robust
    quick = AttackSuite.load("quick")
    pgd_standard = [a for a in quick.config.attacks if a.attack == "LinfPGD"]
    tuned = AttackSuite(suite(*pgd_standard, eps=(eps,), samples=150, large_eps=False)).run(digits_model, x, y, seed=0)
    assert tuned.robust_accuracy(eps) <= foolbox_robust - 0.02, (tuned.robust_accuracy(eps), foolbox_robust)


# -- 5. correctness -------------------------------------------------------------------------------
def test_verify_counts_only_real_adversarials_within_eps(digits, digits_model):
    x, y = digits.test.x[:20], digits.test.y[:20]
    far = (x + 0.5 * torch.sign(torch.randn_like(x))).clamp(0, 1)
    with torch.no_grad():
        wrong = digits_model(far).argmax(1) != y
    ok, dist, clipped = verify(digits_model, x, far, y, threat_model="linf", bounds=(0, 1), eps=0.1)
    assert not ok.any()  # misclassified maybe, but too far
    ok, dist, _ = verify(digits_model, x, far, y, threat_model="linf", bounds=(0, 1), eps=0.5)
    assert torch.equal(ok, wrong)
    outside = x + 2.0  # out of bounds: judged after clipping to [0, 1]
    _, _, clipped = verify(digits_model, x, outside, y, threat_model="linf", bounds=(0, 1))
    assert clipped.max() <= 1 and clipped.min() >= 0
    unchanged = verify(digits_model, x, x.clone(), y, threat_model="l2", bounds=(0, 1), eps=1.0)[0]
    with torch.no_grad():
        assert torch.equal(unchanged, digits_model(x).argmax(1) != y)


def test_model_state_restored_and_eval_mode_used(digits, digits_model):
    model = nn.Sequential(copy.deepcopy(digits_model), nn.Dropout(0.5))
    model.train()
    first = next(model.parameters())
    first.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    AttackSuite(suite(fgsm(), pgd_cfg(steps=3, restarts=1), eps=(0.1,), samples=30)).run(
        model, digits.test.x, digits.test.y, seed=0
    )
    assert model.training and all(m.training for m in model.modules())
    assert not first.requires_grad and all(p.requires_grad for p in list(model.parameters())[1:])
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm statistics untouched


def test_deterministic_given_seed(digits, digits_model):
    cfg = suite(pgd_cfg(steps=5), noise(3), eps=(0.05, 0.1, 0.2), samples=40)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    runs = [AttackSuite(cfg).run(digits_model, digits.test.x, digits.test.y, seed=3) for _ in range(2)]
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's RNG is left alone
    pd.testing.assert_frame_equal(runs[0].per_sample, runs[1].per_sample)
    pd.testing.assert_frame_equal(runs[0].curve, runs[1].curve)


# -- 6. sanity checks -----------------------------------------------------------------------------
def test_sanity_flags_with_numbers_on_a_healthy_model(tiny):
    s = tiny.sanity
    assert set(s) == {
        "deterministic_outputs",
        "curve_non_increasing",
        "large_eps_chance_level",
        "unbounded_minimization_breaks_all",
        "iterative_at_least_single_step",
        "gradient_free_not_stronger",
        "gradients_finite_nonzero",
        "cross_entropy_not_saturated",
    }
    assert all(check["ok"] for check in s.values()), s
    assert s["large_eps_chance_level"]["robust_accuracy"] == 0.0 and s["large_eps_chance_level"]["chance"] == 0.1
    assert s["unbounded_minimization_breaks_all"]["fraction_broken"] >= 0.99
    assert s["iterative_at_least_single_step"]["violations"] == 0 and s["iterative_at_least_single_step"]["n"] > 50
    assert s["gradients_finite_nonzero"]["fraction_zero"] == 0.0
    assert tiny.sanity_table()["ok"].all()


class Quantized(nn.Module):
    """Rounds inputs to 4 levels before the model: zero input gradients, a classic masking defense."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 3) / 3)


def test_sanity_flags_gradient_masking(digits, digits_model):
    masked = Quantized(digits_model).eval()
    result = AttackSuite(
        suite(
            fgsm(), pgd_cfg(steps=5, restarts=1, random_start=False), noise(20), eps=(0.05, 0.1, 0.2, 0.3), samples=60
        )
    ).run(masked, digits.test.x, digits.test.y, seed=0)
    s = result.sanity
    assert not s["gradients_finite_nonzero"]["ok"] and s["gradients_finite_nonzero"]["fraction_zero"] == 1.0
    assert not s["gradient_free_not_stronger"]["ok"] and s["gradient_free_not_stronger"]["violations"] > 0
    assert not result.sanity_ok


def test_step_doubling_check(digits, digits_model):
    result = AttackSuite(suite(pgd_cfg(steps=4, restarts=1), eps=(0.05, 0.1, 0.2), samples=40, step_doubling=True)).run(
        digits_model, digits.test.x, digits.test.y, seed=0
    )
    check = result.sanity["step_doubling_stable"]
    curves = check["curves"]["LinfPGD"]
    assert len(curves["steps"]) == len(curves["double_steps"]) == 3
    assert check["max_change"] == pytest.approx(
        max(abs(a - b) for a, b in zip(curves["steps"], curves["double_steps"]))
    )
    assert check["ok"] == (check["max_change"] < 0.01)


# -- 7. any model -----------------------------------------------------------------------------------
def test_timm_resnet(digits):
    """A timm ResNet (`test_resnet`: timm's own small ResNet; resnet18 takes ~50 s to train briefly on
    one core) with one input channel, trained briefly: the suite needs nothing but logits."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", in_chans=1, num_classes=10, pretrained=False)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = digits.train.x, digits.train.y
    model.train()
    for step in range(60):
        batch = torch.randint(0, len(x), (64,), generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        opt.step()
    result = AttackSuite(suite(fgsm(), pgd_cfg(steps=3, restarts=1), fmn(5), eps=(0.05, 0.2, 5.0), samples=40)).run(
        model, digits.test.x, digits.test.y, seed=0
    )
    assert result.clean_accuracy > 0.4
    assert result.robust_accuracy(5.0) == 0.0 and result.robust_accuracy(0.2) <= result.robust_accuracy(0.05)
    assert result.sanity["gradients_finite_nonzero"]["ok"]
    assert model.training  # restored after the attacks ran in eval mode


def test_mean_std_preprocessing_measures_eps_in_input_space(digits, digits_model):
    cfg = suite(pgd_cfg(steps=5), eps=(0.05, 0.1, 0.2), samples=40)
    plain = AttackSuite(cfg).run(digits_model, digits.test.x, digits.test.y, seed=0)
    wrapped = ExpectsNormalized(digits_model, 0.3, 0.4)
    normed = AttackSuite(cfg, mean=[0.3], std=[0.4]).run(wrapped, digits.test.x, digits.test.y, seed=0)
    pd.testing.assert_frame_equal(plain.curve, normed.curve)
    with pytest.raises(UserError, match="outside the declared bounds"):
        AttackSuite(cfg).run(wrapped, (digits.test.x - 0.3) / 0.4, digits.test.y)


def test_clear_errors_for_bad_models_and_inputs(digits, digits_model):
    cfg = suite(fgsm(), eps=(0.1,), samples=20)
    x, y = digits.test.x, digits.test.y
    with pytest.raises(UserError, match=r"outside the declared bounds \[0, 1\]"):
        AttackSuite(cfg).run(digits_model, x * 255, y)
    with pytest.raises(
        UserError, match=r"\(batch, classes\) tensor of logits; for a batch of 20 it returned shape \(200,\)"
    ):
        AttackSuite(cfg).run(nn.Sequential(digits_model, nn.Flatten(0)), x, y)
    with pytest.raises(UserError, match="tensor of logits; got tuple"):
        AttackSuite(cfg).run(_TupleOut(digits_model), x, y)
    with pytest.warns(UserWarning, match="softmax probabilities"):
        AttackSuite(cfg).run(nn.Sequential(digits_model, nn.Softmax(dim=1)), x, y)


class _TupleOut(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x), None


def test_l2_threat_model(digits, digits_model):
    cfg = suite(
        AttackConfig("FGM", "FGM", engine="native"),
        AttackConfig("L2PGD", "L2PGD", {"steps": 10}, restarts=1, engine="native"),
        AttackConfig("L2FMNAttack", "L2FMNAttack", {"steps": 10}, engine="foolbox"),
        eps=(0.25, 0.5, 1.0, 2.0),
        samples=40,
        threat="l2",
    )
    result = AttackSuite(cfg).run(digits_model, digits.test.x, digits.test.y, seed=0, keep_adversarials=True)
    adv = result.adversarials["L2PGD"]
    rows = np.flatnonzero(np.isfinite(adv["eps"].numpy()) & (adv["eps"].numpy() > 0))
    dist = lp_distance(adv["x_adv"][rows], digits.test.x[rows], "l2").numpy()
    assert len(rows) and np.all(dist <= adv["eps"].numpy()[rows] * (1 + 1e-5) + 1e-6)
    assert result.robust_accuracy(2.0) < result.robust_accuracy(0.25)
    assert result.sanity["large_eps_chance_level"]["ok"]


def test_minimization_attacks_report_l2_distances_under_l2(digits, digits_model):
    """FMN (Foolbox) and FAB-T (native) under L2: each sample's minimal ε is the L2 distance of its
    adversarial, not the L∞ one."""
    cfg = suite(
        AttackConfig("L2FMNAttack", "fmn", {"steps": 20}, engine="foolbox"),
        AttackConfig("L2FABT", "fab-t", {"steps": 10, "n_target_classes": 2}, engine="native"),
        eps=(0.25, 0.5, 1.0, 2.0),
        samples=40,
        threat="l2",
    )
    result = AttackSuite(cfg).run(digits_model, digits.test.x, digits.test.y, seed=0, keep_adversarials=True)
    for label in ("fmn", "fab-t"):
        adv = result.adversarials[label]
        eps = adv["eps"].numpy()
        rows = np.flatnonzero(np.isfinite(eps) & (eps > 0))
        assert len(rows) >= 20, label
        x = digits.test.x[torch.as_tensor(rows)]
        l2 = lp_distance(adv["x_adv"][rows], x, "l2").numpy()
        linf = lp_distance(adv["x_adv"][rows], x, "linf").numpy()
        np.testing.assert_allclose(eps[rows], l2, rtol=1e-5, atol=1e-6)
        assert np.all(linf < l2 - 1e-3), label
        assert np.median(result.per_sample[f"eps_{label}"].to_numpy()[rows]) == pytest.approx(np.median(l2), rel=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(digits, digits_model):
    cfg = suite(fgsm(), pgd_cfg(steps=10), eps=(0.05, 0.1, 0.2), samples=80)
    cpu = AttackSuite(cfg).run(digits_model, digits.test.x, digits.test.y, seed=0)
    gpu_model = copy.deepcopy(digits_model)
    gpu = AttackSuite(cfg, device="cuda").run(gpu_model, digits.test.x, digits.test.y, seed=0)
    assert np.abs(cpu.curve["robust_accuracy"] - gpu.curve["robust_accuracy"]).max() <= 0.05
    assert next(gpu_model.parameters()).device.type == "cpu"  # the model goes back where it was


# -- 8. CLI -----------------------------------------------------------------------------------------
def _cli(*args, cwd):
    env = {**os.environ, "COLUMNS": "60", "ROBUSTARCH_THREADS": "1"}  # narrow: tables must not wrap
    return subprocess.run(
        [sys.executable, "-m", "robustarch", "attack", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_cli_attacks_a_checkpoint_and_a_study_trial(tmp_path, digits_model, monkeypatch, capsys):
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    from robustarch import ArchSpec, StageSpec, save_checkpoint
    from robustarch import study as st

    spec = ArchSpec(
        in_chans=1,
        num_classes=10,
        input_size=8,
        stem_width=16,
        stages=(StageSpec(1, 32, 1, "plain"), StageSpec(1, 32, 2, "plain")),
    )
    ckpt = save_checkpoint(tmp_path / "model.safetensors", digits_model, spec, {}, {"dataset": "digits"})
    yaml_path = tmp_path / "tiny.yaml"
    yaml_path.write_text(
        "name: tiny\neps: [0.05, 0.1, 0.3]\nsamples: 30\nattacks:\n  - attack: FGSM\n"
        "  - attack: LinfPGD\n    steps: 5\n"
    )
    proc = _cli(str(ckpt), "--suite", str(yaml_path), "--out", "res", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split()[:4] == ["attack", "FGSM", "LinfPGD", "worst_case"] for line in lines)
    assert [line.split()[0] for line in lines if line[:4] == "0.05" or line[:4] == "0.30"] == ["0.05", "0.30"]
    assert "median minimal adversarial" in proc.stdout
    curve = pd.read_csv(tmp_path / "res" / "curve.csv")
    assert set(curve["attack"]) == {"FGSM", "LinfPGD", WORST_CASE}
    assert (tmp_path / "res" / "per_sample.csv").is_file() and (tmp_path / "res" / "sanity.json").is_file()

    # A study whose trial 0 stored this checkpoint in the artifact store.
    storage = str(tmp_path / "s.journal")
    study, _ = st.create_or_resume(st.open_storage(storage), "demo", st.StudyConfig())
    trial = study.ask()
    (tmp_path / "store").mkdir()
    artifact = upload_artifact(
        artifact_store=FileSystemArtifactStore(str(tmp_path / "store")), file_path=str(ckpt), study_or_trial=trial
    )
    trial.set_user_attr("checkpoint_artifact", artifact)
    study.tell(trial, 0.5)
    proc = _cli(
        "--study",
        "demo",
        "--trial",
        "0",
        "--storage",
        storage,
        "--artifacts",
        str(tmp_path / "store"),
        "--suite",
        str(yaml_path),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "attack-results" / "demo-trial-0-tiny" / "curve.csv").is_file()
    # The same entry point in-process (a subprocess costs ~10 s of imports): a missing trial.
    from robustarch.cli import main

    monkeypatch.setattr(
        sys,
        "argv",
        [
            "robustarch",
            "attack",
            "--study",
            "demo",
            "--trial",
            "7",
            "--storage",
            storage,
            "--suite",
            "quick",
            "--out",
            str(tmp_path / "x"),
        ],
    )
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1 and "no trial 7" in err
