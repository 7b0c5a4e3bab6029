"""Training engine: recipes learn, failures carry their reason, same seed gives the same result."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from robustarch.models.arch import ArchSpec, StageSpec, build_model
from robustarch.training import train as train_module
from robustarch.training.recipes import RECIPES, fgsm_rs, pgd, pgd_accuracy
from robustarch.training.train import (
    ROBUST_VAL_SAMPLES,
    ROBUST_VAL_STEPS,
    TrainConfig,
    TrainingFailed,
    accuracy,
    augment,
    train_model,
)

CPU = torch.device("cpu")


def small_spec() -> ArchSpec:
    return ArchSpec(
        in_chans=1,
        num_classes=10,
        input_size=8,
        stem_width=8,
        stages=(StageSpec(1, 16, 1, "plain"), StageSpec(1, 16, 2, "plain")),
    )


def fresh_model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(small_spec())


@pytest.mark.parametrize("recipe", RECIPES)
def test_each_recipe_trains_a_digits_model_above_chance(digits, recipe):
    config = TrainConfig(recipe=recipe, epochs=3, lr=0.1, batch_size=64, eps=0.1, attack_steps=2)
    model = fresh_model()
    result = train_model(model, digits, config, device=CPU, seed=0)
    assert len(result.history) == 3 and result.samples_per_second > 0
    assert result.val_accuracy > 0.5  # chance is 0.1
    assert accuracy(model, digits.test, CPU) > 0.5


def test_adversarial_examples_stay_in_the_ball_and_raise_the_loss(digits, digits_model):
    x, y = digits.test.x[:200], digits.test.y[:200]
    gen = torch.Generator().manual_seed(0)
    loss = torch.nn.functional.cross_entropy
    clean = loss(digits_model(x), y)
    for x_adv in (fgsm_rs(digits_model, x, y, 0.1, (0.0, 1.0), gen), pgd(digits_model, x, y, 0.1, 5, (0.0, 1.0), gen)):
        assert (x_adv - x).abs().max() <= 0.1 + 1e-6
        assert x_adv.min() >= 0 and x_adv.max() <= 1
        assert loss(digits_model(x_adv), y) > clean + 0.1


def test_same_seed_on_cpu_gives_identical_metrics_and_weights(digits):
    config = TrainConfig(epochs=2, lr=0.1, batch_size=64, recipe="fgsm-rs", eps=0.05)
    runs = []
    for _ in range(2):
        model = fresh_model()
        runs.append((train_model(model, digits, config, device=CPU, seed=7), model.state_dict()))
    (a, sa), (b, sb) = runs

    def metrics(history):  # everything but the wall-clock timings
        return [{k: v for k, v in h.items() if "seconds" not in k} for h in history]

    assert metrics(a.history) == metrics(b.history) and a.val_accuracy == b.val_accuracy
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    other = fresh_model()
    c = train_model(other, digits, config, device=CPU, seed=8)
    assert [h["loss"] for h in c.history] != [h["loss"] for h in a.history]


def test_huge_learning_rate_fails_as_diverged(digits):
    with pytest.raises(TrainingFailed) as info:
        train_model(fresh_model(), digits, TrainConfig(epochs=2, lr=1e8, batch_size=128), device=CPU)
    assert info.value.reason == "diverged"


class OutOfMemoryNet(torch.nn.Module):
    """Stands in for a net too big for the GPU (this machine has none): the forward raises CUDA OOM."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(64, 10)

    def forward(self, x):
        self.linear(x.flatten(1)).sum().backward()  # leave gradients behind, as a real step would
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_cuda_out_of_memory_fails_as_oom_and_drops_gradients(digits):
    model = OutOfMemoryNet()
    with pytest.raises(TrainingFailed) as info:
        train_model(model, digits, TrainConfig(epochs=1), device=CPU)
    assert info.value.reason == "oom" and "Tried to allocate" in str(info.value)
    assert all(p.grad is None for p in model.parameters())


def test_early_stopping_on_validation(digits):
    # lr 0 and no batch-norm statistics: the net never changes, so patience 1 stops after epoch 1
    torch.manual_seed(0)
    frozen = build_model(ArchSpec(**{**small_spec().__dict__, "norm": "none"}))
    result = train_model(frozen, digits, TrainConfig(epochs=6, lr=0.0, patience=1), device=CPU)
    assert len(result.history) == 2 and result.best_epoch == 0


def test_best_validation_epoch_weights_are_kept(digits):
    model = fresh_model()
    result = train_model(model, digits, TrainConfig(epochs=3, lr=0.1, batch_size=64), device=CPU)
    assert accuracy(model, digits.val, CPU) == pytest.approx(result.val_accuracy)
    assert result.val_accuracy == max(h["val_accuracy"] for h in result.history)


def test_on_device_augmentation_shifts_and_flips():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6) + 1
    x = x.repeat(64, 1, 1, 1)
    out = augment(x, "crop-flip", torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape
    flipped = shifted = 0
    for src, dst in zip(x, out):
        padded = torch.nn.functional.pad(src, (2, 2, 2, 2))
        views = {
            (dy, dx, f): padded[:, dy : dy + 6, dx : dx + 6].flip(2) if f else padded[:, dy : dy + 6, dx : dx + 6]
            for dy in range(5)
            for dx in range(5)
            for f in (0, 1)
        }
        match = [k for k, v in views.items() if torch.equal(v, dst)]
        assert match, "every output is a padded crop of its input, maybe flipped"
        flipped += match[0][2]
        shifted += match[0][:2] != (2, 2)
    assert 10 < flipped < 118 and shifted > 64  # both augmentations happen, not always
    again = augment(x, "crop-flip", torch.Generator().manual_seed(0), pad=2)
    assert torch.equal(out, again)
    assert augment(x, "none", torch.Generator()) is x


def test_train_fraction_subsets_the_training_split_only(digits):
    half = digits.with_train_fraction(0.5, seed=0)
    assert abs(len(half.train) - len(digits.train) / 2) <= 1
    assert set(half.train.y.tolist()) == set(range(10))  # stratified
    assert half.val is digits.val and half.test is digits.test
    assert torch.equal(half.train.x, digits.with_train_fraction(0.5, seed=0).train.x)
    assert digits.with_train_fraction(1.0) is digits


def test_fast_path_code_runs_on_cpu(digits):
    """channels_last + bf16 autocast (the CUDA path) exercised on CPU for correctness, not speed."""
    model = fresh_model()
    result = train_model(model, digits, TrainConfig(epochs=2, lr=0.1, batch_size=64), device=CPU, fast_path=True)
    assert result.val_accuracy > 0.5
    assert model.stem.conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_threads_are_chosen_deliberately(monkeypatch):
    import os

    from robustarch.runtime import configure_threads, default_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(os, "cpu_count", lambda: 8)
        monkeypatch.setattr(os, "getloadavg", lambda: (7.2, 7.0, 7.0))
        assert default_threads() == 1  # seven cores busy elsewhere: one thread, not eight
        monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
        assert default_threads() == 8 and default_threads(workers=4) == 2
        monkeypatch.setenv("ROBUSTARCH_THREADS", "1")
        assert configure_threads() == 1
        assert configure_threads(2) == 2
    finally:
        torch.set_num_threads(before)


def test_fgsm_rs_selects_the_epoch_with_the_best_robust_validation_accuracy(digits):
    """Wong et al. 2020 / Rice et al. 2020: adversarial training picks its epoch on PGD validation
    accuracy. In this run (fixed seed, CPU) the best clean epoch is another one."""
    config = TrainConfig(recipe="fgsm-rs", epochs=6, lr=0.1, batch_size=64, eps=0.1)
    model = fresh_model()
    result = train_model(model, digits, config, device=CPU, seed=0)
    robust = [h["val_robust_accuracy"] for h in result.history]
    clean = [h["val_accuracy"] for h in result.history]
    assert robust.index(max(robust)) != clean.index(max(clean))  # the two criteria disagree here
    assert result.selection_metric == "val_robust_accuracy"
    assert result.best_epoch == robust.index(max(robust))
    assert result.val_robust_accuracy == max(robust)
    assert result.val_accuracy == clean[result.best_epoch] < max(clean)
    # the kept weights are that epoch's: PGD-10 on the same subset and starts gives the same number
    pick = torch.randperm(len(digits.val), generator=torch.Generator().manual_seed(0))[:ROBUST_VAL_SAMPLES]
    x, y = digits.val.x[pick], digits.val.y[pick]
    again = pgd_accuracy(model, x, y, eps=0.1, steps=ROBUST_VAL_STEPS, bounds=digits.bounds, seed=0)
    assert float(again) == pytest.approx(result.val_robust_accuracy)


def test_standard_recipe_selects_on_clean_validation_accuracy(digits):
    result = train_model(fresh_model(), digits, TrainConfig(epochs=2, lr=0.1), device=CPU)
    assert result.selection_metric == "val_accuracy" and result.val_robust_accuracy is None
    assert all(h["val_robust_accuracy"] is None for h in result.history)


def test_max_steps_ends_mid_epoch_with_the_schedule_spanning_the_steps(digits):
    steps_per_epoch = -(-len(digits.train) // 64)
    config = TrainConfig(epochs=15, lr=0.1, batch_size=64, max_steps=steps_per_epoch + 3)
    result = train_model(fresh_model(), digits, config, device=CPU)
    assert [h["steps"] for h in result.history] == [steps_per_epoch, steps_per_epoch + 3]
    assert result.steps == steps_per_epoch + 3
    assert result.history[-1]["lr"] < 0.01 * config.lr  # cosine ended at the last step, not epoch 15
    long = train_model(fresh_model(), digits, TrainConfig(epochs=15, lr=0.1, batch_size=64, patience=0), device=CPU)
    assert long.history[0]["lr"] > 0.5 * config.lr  # the same epoch of a 15-epoch run: still high


def test_label_noise_and_max_steps_are_checked():
    with pytest.raises(ValueError, match="label_noise"):
        TrainConfig(label_noise=1.5)
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig(max_steps=0)
    assert TrainConfig(label_noise=1.0).label_noise == 1.0


def test_second_model_of_the_same_shape_reuses_the_compiled_code(digits, monkeypatch):
    """torch.compile once per architecture shape: a fresh model (new weights) of a shape compiled
    before records `compile_reused` and makes dynamo capture no new graph. aot_eager: dynamo and
    AOTAutograd run for real, without the minute inductor's C++ build takes on this CPU."""
    from torch._dynamo.utils import counters

    monkeypatch.setattr(train_module, "COMPILE_BACKEND", "aot_eager")
    monkeypatch.setattr(train_module, "_COMPILED", {})
    config = TrainConfig(epochs=1, lr=0.1, batch_size=128, compile=True)
    first = train_model(fresh_model(0), digits, config, device=CPU)
    graphs = counters["stats"]["unique_graphs"]
    second_model = fresh_model(1)
    second = train_model(second_model, digits, config, device=CPU)
    assert not first.compile_reused and second.compile_reused
    assert counters["stats"]["unique_graphs"] == graphs  # nothing recompiled for new weights
    assert first.compile_seconds > 0 and second.compile_seconds < first.compile_seconds
    # the compiled code trained the second model's own weights: the same run as eager training
    eager_model = fresh_model(1)
    eager = train_model(eager_model, digits, replace(config, compile=False), device=CPU)
    assert [h["loss"] for h in second.history] == pytest.approx([h["loss"] for h in eager.history])
    assert all(
        torch.allclose(a, b, atol=1e-5)
        for a, b in zip(second_model.state_dict().values(), eager_model.state_dict().values())
    )


def test_batch_size_for_is_fixed_on_cpu():
    from robustarch.runtime import CPU_BATCH, batch_size_for

    assert batch_size_for(fresh_model(), torch.zeros(1, 8, 8), CPU) == CPU_BATCH


def test_select_last_keeps_the_final_weights(digits):
    """A phase diagram measures the model trained N steps, not its best epoch."""
    config = TrainConfig(epochs=6, lr=0.1, batch_size=64, select="last")
    model = fresh_model()
    result = train_model(model, digits, config, device=CPU, seed=0)
    assert result.best_epoch == 5 and result.val_accuracy == result.history[-1]["val_accuracy"]
    assert accuracy(model, digits.val, CPU) == pytest.approx(result.history[-1]["val_accuracy"])
    with pytest.raises(ValueError, match="select"):
        TrainConfig(select="middle")
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainConfig(label_smoothing=1.0)
