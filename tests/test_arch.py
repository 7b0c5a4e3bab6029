"""Architectures: every cell type and option builds from timm's layers; a spec rebuilds the same model."""

from __future__ import annotations

import itertools

import pytest
import torch

from robustarch.models.arch import CELL_TYPES, NORMS, ArchSpec, StageSpec, build_model, count_flops, count_params
from robustarch.training.train import TrainingFailed, build_or_fail


def spec(cell="basic", norm="batchnorm", se=0.0, kernel=3, **kw) -> ArchSpec:
    return ArchSpec(
        in_chans=1,
        num_classes=10,
        input_size=8,
        stem_width=8,
        stages=(StageSpec(2, 8, 1, cell, kernel, se), StageSpec(1, 16, 2, cell, kernel, se)),
        norm=norm,
        **kw,
    )


@pytest.mark.parametrize("cell, norm", list(itertools.product(CELL_TYPES, NORMS)))
def test_every_cell_type_and_norm_builds_and_runs(cell, norm):
    model = build_model(spec(cell, norm, se=0.25, kernel=5, drop_path=0.1, act="silu"))
    out = model(torch.rand(4, 1, 8, 8))
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    out.sum().backward()  # trainable end to end


def test_cells_come_from_timm_and_options_take_effect():
    from timm.layers import SEModule
    from timm.models._efficientnet_blocks import DepthwiseSeparableConv
    from timm.models.byobnet import BasicBlock, BottleneckBlock

    kinds = {"basic": BasicBlock, "bottleneck": BottleneckBlock, "dwsep": DepthwiseSeparableConv}
    for cell, block in kinds.items():
        assert isinstance(build_model(spec(cell)).cells[0], block)
    with_se = build_model(spec("basic", se=0.25))
    assert any(isinstance(m, SEModule) for m in with_se.modules())
    assert not any(isinstance(m, SEModule) for m in build_model(spec("basic")).modules())
    k5 = build_model(spec("plain", kernel=5))
    assert k5.cells[0].conv.kernel_size == (5, 5)


def test_round_trip_rebuilds_identical_model():
    original = spec("bottleneck", se=0.25, drop_path=0.1, head_dropout=0.2, act="gelu")
    again = ArchSpec.from_json(original.to_json())
    assert again == original and again.to_dict() == original.to_dict()
    torch.manual_seed(3)
    a = build_model(original)
    torch.manual_seed(3)
    b = build_model(again)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(a.eval()(x), b.eval()(x))
    assert str(a) == str(b)


def test_old_specs_without_new_fields_still_load():
    data = spec().to_dict()
    for key in ("family", "drop_path", "stem_kernel", "stem_stride"):
        data.pop(key)
    for stage in data["stages"]:
        stage.pop("se")
    assert ArchSpec.from_dict(data) == spec()


def test_timm_resnet_family_overrides_layers_and_channels():
    from timm.models.resnet import ResNet

    s = ArchSpec(
        in_chans=3,
        num_classes=10,
        input_size=32,
        stem_width=64,
        family="timm-resnet",
        stages=tuple(
            StageSpec(d, w, 1 if i == 0 else 2, "basic")
            for i, (d, w) in enumerate([(1, 16), (2, 32), (1, 64), (1, 64)])
        ),
    )
    model = build_model(s)
    assert isinstance(model, ResNet)
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [1, 2, 1, 1]
    assert model.layer2[0].conv1.out_channels == 32
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert "timm-resnet" in s.summary()


def test_depth_width_and_flops():
    s = spec("plain")
    assert s.depth == 3 and s.width == pytest.approx((2 * 8 + 16) / 3)
    model = build_model(s)
    # stem 3×3 conv 1→8 on 8×8: 8·8·8·9 multiply-adds = 2 FLOPs each; FLOPs exceed twice that
    assert count_flops(model, s) > 2 * 8 * 8 * 8 * 9
    assert count_params(model) == sum(p.numel() for p in model.parameters())


def test_unbuildable_spec_fails_as_invalid_arch():
    bad = ArchSpec(
        in_chans=1,
        num_classes=10,
        input_size=8,
        stem_width=16,
        family="timm-resnet",
        stages=(StageSpec(1, 16, 1, "basic"),),
    )  # timm's ResNet needs 4 stages
    with pytest.raises(TrainingFailed) as info:
        build_or_fail(bad)
    assert info.value.reason == "invalid_arch"
    with pytest.raises(TrainingFailed, match="invalid_arch"):
        build_or_fail(spec(cell="nonexistent"))
