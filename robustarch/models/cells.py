"""Cells and the cell network, assembled from timm's layers and blocks (nothing re-implemented).

A cell maps `(in_chs, H, W)` to `(out_chs, H/stride, W/stride)`; `CellNet` chains a stem, the cells of
every stage, global pooling and a linear head. `arch.build_model` reaches this through its registry.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

CELL_TYPES = ("plain", "basic", "bottleneck", "dwsep")
ACTIVATIONS = ("relu", "gelu", "silu", "elu", "tanh", "leaky_relu")
NORMS = ("batchnorm", "groupnorm", "layernorm", "none")
RESNET_STEM_WIDTH = 64  # timm's ResNet: the plain stem's width is not a constructor argument


class ActOnly(nn.Module):
    """The `norm: none` stand-in for timm's norm+act layers: activation only, no normalization."""

    def __init__(self, num_features: int, act_layer=None, apply_act: bool = True, **_):
        super().__init__()
        self.act = act_layer() if act_layer is not None and apply_act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x)


def norm_act_layer(norm: str, act) -> Callable[..., nn.Module]:
    """timm's fused norm+act layer for `norm` (a builder taking `num_features`, `apply_act`)."""
    from timm.layers import get_norm_act_layer

    if norm == "none":

        def none_layer(num_features, apply_act=True, **kwargs):
            return ActOnly(num_features, act, apply_act)

        return none_layer
    # groupnorm1 = one group (normalizes C,H,W): unlike 32-group GroupNorm it accepts any width.
    timm_name = {"batchnorm": "batchnorm", "groupnorm": "groupnorm1", "layernorm": "layernorm2d"}[norm]
    return get_norm_act_layer(timm_name, act)


def layer_fn(norm: str, act_name: str, se_ratio: float):
    """timm byobnet's `LayerFn` bundle: how every block makes its conv+norm+act, norm+act, act and SE."""
    from timm.layers import ConvNormAct, SEModule, get_act_layer
    from timm.models.byobnet import LayerFn

    act = get_act_layer(act_name)
    norm_act = norm_act_layer(norm, act)
    attn = partial(SEModule, rd_ratio=se_ratio) if se_ratio > 0 else None
    return LayerFn(
        conv_norm_act=partial(ConvNormAct, norm_layer=norm_act, act_layer=act, bias=norm == "none"),
        norm_act=norm_act,
        act=act,
        attn=attn,
    )


def make_cell(
    kind: str,
    in_chs: int,
    out_chs: int,
    *,
    stride: int,
    kernel_size: int,
    layers,
    drop_path: float,
    bottle_ratio: float = 0.25,
) -> nn.Module:
    """One cell of `kind` (see `CELL_TYPES`)."""
    from timm.models._efficientnet_blocks import DepthwiseSeparableConv
    from timm.models.byobnet import BasicBlock, BottleneckBlock

    if kind == "plain":  # conv-norm-act (+ SE): no skip, so drop-path does not apply
        conv = layers.conv_norm_act(in_chs, out_chs, kernel_size, stride=stride)
        return nn.Sequential(conv, layers.attn(out_chs)) if layers.attn else conv
    if kind == "basic":  # ResNet basic block: two k×k convs and a skip
        return BasicBlock(in_chs, out_chs, kernel_size, stride, layers=layers, drop_path_rate=drop_path)
    if kind == "bottleneck":  # 1×1 reduce → k×k → 1×1 expand, with a skip
        return BottleneckBlock(
            in_chs, out_chs, kernel_size, stride, bottle_ratio=bottle_ratio, layers=layers, drop_path_rate=drop_path
        )
    if kind == "dwsep":  # MobileNet depthwise k×k → pointwise 1×1; skip when shapes match
        return DepthwiseSeparableConv(
            in_chs,
            out_chs,
            kernel_size,
            stride,
            act_layer=layers.act,
            norm_layer=layers.norm_act,
            se_layer=layers.attn,
            drop_path_rate=drop_path,
        )
    raise ValueError(f"unknown cell type {kind!r}")


class CellNet(nn.Module):
    """stem → stages of cells → global average pool → dropout → linear logits."""

    def __init__(self, spec):
        super().__init__()
        base = layer_fn(spec.norm, spec.act, 0.0)
        self.stem = base.conv_norm_act(spec.in_chans, spec.stem_width, spec.stem_kernel, stride=spec.stem_stride)
        n_cells = max(spec.depth, 1)
        cells, in_chs, index = [], spec.stem_width, 0
        for stage in spec.stages:
            layers = layer_fn(spec.norm, spec.act, stage.se)
            for i in range(stage.depth):
                # drop-path grows linearly with depth, as in timm's models
                rate = spec.drop_path * index / max(n_cells - 1, 1)
                cells.append(
                    make_cell(
                        stage.cell,
                        in_chs,
                        stage.width,
                        stride=stage.stride if i == 0 else 1,
                        kernel_size=stage.kernel_size,
                        layers=layers,
                        drop_path=rate,
                    )
                )
                in_chs, index = stage.width, index + 1
        self.cells = nn.Sequential(*cells)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.head_dropout)
        self.head = nn.Linear(in_chs, spec.num_classes)
        self.input_levels = spec.input_levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_levels > 1:  # non-differentiable on purpose: its gradient is zero almost everywhere
            x = torch.round(x * (self.input_levels - 1)) / (self.input_levels - 1)
        x = self.pool(self.cells(self.stem(x))).flatten(1)
        return self.head(self.dropout(x))


def timm_resnet(spec) -> nn.Module:
    """timm's `ResNet` with `layers` (stage depths) and `channels` (stage widths) from the spec.

    timm's plain ResNet stem is always 64 channels wide (`stem_width` only sizes its "deep" stem), so
    the spec must say 64, and it has exactly 4 stages (strides 1, 2, 2, 2). Inputs of 32 pixels or fewer get the CIFAR-style stem (3×3 stride-1 conv, no max-pool), as the
    ImageNet stem would shrink an 8×8 or 32×32 image to nothing before the first stage.
    """
    from timm.layers import GroupNorm1, LayerNorm2d, get_act_layer
    from timm.models.resnet import BasicBlock, Bottleneck, ResNet

    if spec.stem_width != RESNET_STEM_WIDTH:
        raise ValueError(f"timm-resnet needs stem_width {RESNET_STEM_WIDTH}, got {spec.stem_width}")
    if len(spec.stages) != 4:  # timm's ResNet.forward runs layer1..layer4 by name
        raise ValueError(f"timm-resnet needs exactly 4 stages, got {len(spec.stages)}")
    norm = {"batchnorm": nn.BatchNorm2d, "groupnorm": GroupNorm1, "layernorm": LayerNorm2d, "none": nn.Identity}[
        spec.norm
    ]
    block = {"basic": BasicBlock, "bottleneck": Bottleneck}[spec.stages[0].cell]
    se = spec.stages[0].se
    block_args = {"attn_layer": partial(_se, rd_ratio=se)} if se > 0 else None
    model = ResNet(
        block,
        layers=[s.depth for s in spec.stages],
        channels=[s.width for s in spec.stages],
        num_classes=spec.num_classes,
        in_chans=spec.in_chans,
        act_layer=get_act_layer(spec.act),
        norm_layer=norm,
        drop_rate=spec.head_dropout,
        drop_path_rate=spec.drop_path,
        block_args=block_args,
    )
    if spec.input_size <= 32:
        model.conv1 = nn.Conv2d(spec.in_chans, RESNET_STEM_WIDTH, 3, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return model


def _se(channels, rd_ratio):
    from timm.layers import SEModule

    return SEModule(channels, rd_ratio=rd_ratio)
