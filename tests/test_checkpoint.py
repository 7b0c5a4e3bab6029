"""Checkpoints: safetensors weights plus ArchSpec and recipe JSON reload into an identical model."""
from __future__ import annotations

import pytest
import torch

from robustarch.search.arch import ArchSpec, StageSpec, build_model
from robustarch.search.checkpoint import load_checkpoint, save_checkpoint
from robustarch.errors import UserError
from robustarch.search.train import TrainConfig


@pytest.mark.parametrize("family", ["cells", "timm-resnet"])
def test_checkpoint_round_trip_is_identical(tmp_path, family):
    if family == "cells":
        arch = ArchSpec(in_chans=1, num_classes=10, input_size=8, stem_width=8,
                        stages=(StageSpec(1, 8, 1, "dwsep", 5, 0.25), StageSpec(2, 16, 2, "bottleneck")),
                        drop_path=0.1, norm="groupnorm")
    else:
        arch = ArchSpec(in_chans=1, num_classes=10, input_size=8, stem_width=64, family="timm-resnet",
                        stages=tuple(StageSpec(1, 8, 1 if i == 0 else 2, "basic") for i in range(4)))
    torch.manual_seed(0)
    model = build_model(arch)
    model.train()(torch.rand(16, 1, 8, 8))  # move batch-norm statistics away from their defaults
    model.eval()
    config = TrainConfig(recipe="pgd", eps=0.1, lr=0.02)
    path = save_checkpoint(tmp_path / "m.safetensors", model, arch, config.to_dict(), {"dataset": "digits"})
    ckpt = load_checkpoint(path)
    assert ckpt.arch == arch
    assert TrainConfig.from_dict(ckpt.train_config) == config
    assert ckpt.info == {"dataset": "digits"}
    x = torch.rand(8, 1, 8, 8)
    assert torch.equal(ckpt.model(x), model(x))
    original, loaded = model.state_dict(), ckpt.model.state_dict()
    assert all(torch.equal(original[k], loaded[k]) for k in original)


def test_not_a_checkpoint_is_a_user_error(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors")
    with pytest.raises(UserError, match="not a safetensors checkpoint"):
        load_checkpoint(junk)
    with pytest.raises(UserError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_weights_that_do_not_fit_the_spec_are_a_user_error(tmp_path):
    """A checkpoint whose header names another architecture than its weights: one line, no traceback."""
    small = ArchSpec(in_chans=1, num_classes=10, input_size=8, stem_width=8, stages=(StageSpec(1, 8),))
    wider = ArchSpec(in_chans=1, num_classes=10, input_size=8, stem_width=8, stages=(StageSpec(1, 16),))
    path = save_checkpoint(tmp_path / "m.safetensors", build_model(wider), small, TrainConfig().to_dict())
    with pytest.raises(UserError, match="do not fit the model its ArchSpec builds"):
        load_checkpoint(path)
