"""Shared fixtures: small real data and a small trained model, built once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import pytest
import torch

from robustarch import ArchSpec, StageSpec, build_model, load_dataset
from robustarch.runtime import configure_threads
from robustarch.training.train import TrainConfig, train_model

configure_threads(1)  # the suite runs beside other processes on 2 cores: one thread each


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="session")
def digits_model(digits):
    """A small CNN trained on digits for a few epochs (~97% test accuracy)."""
    torch.manual_seed(0)
    spec = ArchSpec(
        in_chans=1,
        num_classes=10,
        input_size=8,
        stem_width=16,
        stages=(StageSpec(1, 32, 1, "plain"), StageSpec(1, 32, 2, "plain")),
    )
    model = build_model(spec)
    train_model(model, digits, TrainConfig(epochs=6, lr=0.1, batch_size=128), device=torch.device("cpu"))
    model.eval()
    return model
