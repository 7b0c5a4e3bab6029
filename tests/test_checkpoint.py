"""Checkpoints: safetensors weights plus ArchSpec and recipe JSON reload into an identical model."""

from __future__ import annotations

import pytest
import torch

from robustarch.errors import UserError
from robustarch.models.arch import ArchSpec, StageSpec, build_model
from robustarch.models.checkpoint import load_checkpoint, save_checkpoint
from robustarch.training.train import TrainConfig


@pytest.mark.parametrize("family", ["cells", "timm-resnet"])
def test_checkpoint_round_trip_is_identical(tmp_path, family):
    if family == "cells":
        arch = ArchSpec(
            in_chans=1,
            num_classes=10,
            input_size=8,
            stem_width=8,
            stages=(StageSpec(1, 8, 1, "dwsep", 5, 0.25), StageSpec(2, 16, 2, "bottleneck")),
            drop_path=0.1,
            norm="groupnorm",
        )
    else:
        arch = ArchSpec(
            in_chans=1,
            num_classes=10,
            input_size=8,
            stem_width=64,
            family="timm-resnet",
            stages=tuple(StageSpec(1, 8, 1 if i == 0 else 2, "basic") for i in range(4)),
        )
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


def test_checkpoint_write_is_atomic_and_its_hash_is_checked(tmp_path):
    """A checkpoint is renamed into place (no temporary file stays behind); a load given the SHA-256
    its trial recorded refuses a file whose bytes changed, naming the file."""
    from robustarch.models.checkpoint import file_sha256

    arch = ArchSpec(in_chans=1, num_classes=10, input_size=8, stem_width=8, stages=(StageSpec(1, 8),))
    path = save_checkpoint(tmp_path / "m.safetensors", build_model(arch), arch, TrainConfig().to_dict())
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    digest = file_sha256(path)
    assert load_checkpoint(path, sha256=digest).arch == arch
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last weight
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match=f"{path}: checkpoint damaged or replaced"):
        load_checkpoint(path, sha256=digest)


def test_a_full_disk_during_a_checkpoint_write_leaves_nothing(tmp_path):
    """A write refused for lack of room (RLIMIT_FSIZE in a child, SIGXFSZ ignored: EFBIG) raises
    StorageFull, one line, and leaves neither a partial checkpoint nor a temporary file."""
    import subprocess
    import sys
    import textwrap

    from _tiny_study import worker_env

    code = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        from robustarch.errors import StorageFull
        from robustarch.models.arch import ArchSpec, StageSpec, build_model
        from robustarch.models.checkpoint import save_checkpoint
        arch = ArchSpec(in_chans=1, num_classes=10, input_size=8, stem_width=8, stages=(StageSpec(1, 64),))
        try:
            save_checkpoint({str(tmp_path / "m.safetensors")!r}, build_model(arch), arch, {{}})
        except StorageFull as exc:
            print(exc)
    """)
    done = subprocess.run([sys.executable, "-c", code], env=worker_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"cannot write the checkpoint {tmp_path / 'm.safetensors'}: File too large")
    assert len(done.stdout.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
