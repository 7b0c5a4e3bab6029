"""The models `attack_suite.py` attacks: two 1x8x8 digits CNNs (plain, FGSM-RS-trained) and two
3x32x32 CNNs (CIFAR-shaped synthetic data; digits upsampled and colour-jittered), each trained in
seconds on one CPU thread, deterministically from seed 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DIGITS_MODELS = ("plain", "fgsm-rs")
COLOUR_MODELS = ("synth32", "digits32")
MODELS = DIGITS_MODELS + COLOUR_MODELS


class ScaledLogits(nn.Module):
    """The same classifier with its logits multiplied by `scale`: identical decisions, saturated softmax."""

    def __init__(self, net: nn.Module, scale: float):
        super().__init__()
        self.net, self.scale = net, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.scale


def _train(
    spec,
    data,
    recipe: str = "standard",
    eps: float | None = None,
    epochs: int = 6,
    device: torch.device = torch.device("cpu"),
) -> nn.Module:
    from robustarch import build_model
    from robustarch.training.train import TrainConfig, train_model

    torch.manual_seed(0)
    model = build_model(spec)
    config = TrainConfig(epochs=epochs, lr=0.1, batch_size=128, recipe=recipe, **({"eps": eps} if eps else {}))
    train_model(model, data, config, device=device)
    return model.eval()


def digits_cnn(data, recipe: str = "standard", eps: float | None = None, device=torch.device("cpu")) -> nn.Module:
    from robustarch import ArchSpec, StageSpec

    spec = ArchSpec(
        in_chans=1,
        num_classes=10,
        input_size=8,
        stem_width=16,
        stages=(StageSpec(1, 32, 1, "plain"), StageSpec(1, 32, 2, "plain")),
    )
    return _train(spec, data, recipe, eps, device=device)


def colour_cnn(data, device=torch.device("cpu"), epochs: int = 6) -> nn.Module:
    """A small CIFAR-shaped CNN (3x32x32 in, stride-2 stem and stages: cheap on one CPU thread)."""
    from robustarch import ArchSpec, StageSpec

    spec = ArchSpec(
        in_chans=3,
        num_classes=10,
        input_size=32,
        stem_width=16,
        stem_stride=2,
        stages=(StageSpec(1, 32, 2, "plain"), StageSpec(1, 64, 2, "plain")),
    )
    return _train(spec, data, epochs=epochs, device=device)


def _dataset(name: str, x_tr, y_tr, x_te, y_te):
    from robustarch.training.data import Dataset, Split

    n_val = len(y_tr) // 8
    # a name with no augmentation in robustarch.training.data.AUGMENT: the inputs are already what we attack
    return Dataset(
        name, Split(x_tr[n_val:], y_tr[n_val:]), Split(x_tr[:n_val], y_tr[:n_val]), Split(x_te, y_te), num_classes=10
    )


def synthetic_cifar(n_train: int = 3000, n_test: int = 400, seed: int = 0):
    """Learnable CIFAR-shaped data: each class is a smooth random colour pattern (4x4 upsampled to
    32x32); a sample is its class's pattern at a random contrast plus smooth and pixel noise, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    protos = F.interpolate(torch.randn(10, 3, 4, 4, generator=g), size=32, mode="bilinear", align_corners=False)

    def draw(n):
        y = torch.arange(n) % 10
        y = y[torch.randperm(n, generator=g)]
        contrast = 0.06 + 0.10 * torch.rand(n, 1, 1, 1, generator=g)
        smooth = F.interpolate(torch.randn(n, 3, 8, 8, generator=g), size=32, mode="bilinear", align_corners=False)
        x = 0.5 + contrast * protos[y] + 0.12 * smooth + 0.04 * torch.randn(n, 3, 32, 32, generator=g)
        return x.clamp(0, 1), y

    (x_tr, y_tr), (x_te, y_te) = draw(n_train), draw(n_test)
    return _dataset("synthetic-cifar", x_tr, y_tr, x_te, y_te)


def digits32(digits, seed: int = 0):
    """The digits upsampled to 32x32 and colour-jittered: a random foreground and background colour
    per image (fixed by `seed`), so the 3 channels carry different, correlated copies of the digit."""
    g = torch.Generator().manual_seed(seed)

    def jitter(x):
        img = F.interpolate(x, size=32, mode="bilinear", align_corners=False).clamp(0, 1)
        fg = 0.55 + 0.45 * torch.rand(len(x), 3, 1, 1, generator=g)
        bg = 0.35 * torch.rand(len(x), 3, 1, 1, generator=g)
        return (bg * (1 - img) + fg * img).clamp(0, 1)

    x_tr = torch.cat([digits.train.x, digits.val.x])
    y_tr = torch.cat([digits.train.y, digits.val.y])
    return _dataset("digits32", jitter(x_tr), y_tr, jitter(digits.test.x), digits.test.y)


def build(name: str, digits, device=torch.device("cpu")):
    """(model on `device`, test split) for one of `MODELS`. Always trained on the CPU (one thread:
    deterministic), so that a CUDA run attacks the very weights a CPU run attacks."""
    cpu = torch.device("cpu")
    if name == "plain":
        model, test = digits_cnn(digits, device=cpu), digits.test
    elif name == "fgsm-rs":
        model, test = digits_cnn(digits, "fgsm-rs", 0.1, device=cpu), digits.test
    elif name == "synth32":
        data = synthetic_cifar()
        model, test = colour_cnn(data, device=cpu), data.test
    else:
        data = digits32(digits)  # ~1100 training images: more epochs for the same number of steps
        model, test = colour_cnn(data, device=cpu, epochs=20), data.test
    return model.to(device).eval(), test
