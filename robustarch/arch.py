"""Architecture specs and the models they build.

An `ArchSpec` is a plain, JSON-serializable dataclass: the sampled point of a search space. The same
spec rebuilds the identical model anywhere (`build_model(spec)`), from timm's layers.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

CELL_TYPES = ("plain", "basic")
ACTIVATIONS = ("relu", "gelu", "silu", "elu", "tanh")
NORMS = ("batchnorm", "none")


@dataclass(frozen=True)
class StageSpec:
    """One stage: `depth` cells of `width` output channels; the first cell applies `stride`."""

    depth: int
    width: int
    stride: int = 1
    cell: str = "plain"
    kernel_size: int = 3


@dataclass(frozen=True)
class ArchSpec:
    """A whole network: stem, stages of cells, global pooling and a linear head."""

    in_chans: int
    num_classes: int
    input_size: int
    stem_width: int
    stages: tuple[StageSpec, ...]
    act: str = "relu"
    norm: str = "batchnorm"
    head_dropout: float = 0.0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def depth(self) -> int:
        """Total number of cells (the stem and head are not counted)."""
        return sum(s.depth for s in self.stages)

    @property
    def width(self) -> float:
        """Mean stage width in channels, weighted by the number of cells."""
        return sum(s.depth * s.width for s in self.stages) / max(self.depth, 1)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "ArchSpec":
        data = dict(data)
        data["stages"] = tuple(StageSpec(**s) for s in data["stages"])
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "ArchSpec":
        return cls.from_dict(json.loads(text))

    def summary(self) -> str:
        """A short human-readable form, e.g. `32|plain 2x32|basic 3x64/2`."""
        parts = [f"{s.depth}x{s.width}{'/' + str(s.stride) if s.stride > 1 else ''}|{s.cell}" for s in self.stages]
        return f"stem{self.stem_width} " + " ".join(parts)


def _layers(spec: ArchSpec):
    from timm.layers import get_act_layer

    act = get_act_layer(spec.act)
    norm = nn.BatchNorm2d if spec.norm == "batchnorm" else nn.Identity
    return act, norm


def _plain_cell(cin: int, cout: int, stride: int, k: int, act, norm) -> nn.Module:
    from timm.layers import ConvNormAct

    return ConvNormAct(cin, cout, k, stride=stride, norm_layer=norm, act_layer=act,
                       bias=norm is nn.Identity)


def _basic_cell(cin: int, cout: int, stride: int, k: int, act, norm) -> nn.Module:
    from timm.models.resnet import BasicBlock

    downsample = None
    if stride != 1 or cin != cout:
        downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), norm(cout))
    return BasicBlock(cin, cout, stride=stride, downsample=downsample, act_layer=act, norm_layer=norm)


_CELLS = {"plain": _plain_cell, "basic": _basic_cell}


class CellNet(nn.Module):
    """stem → stages of cells → global average pool → dropout → linear logits."""

    def __init__(self, spec: ArchSpec):
        super().__init__()
        from timm.layers import ConvNormAct

        act, norm = _layers(spec)
        self.stem = ConvNormAct(spec.in_chans, spec.stem_width, 3, norm_layer=norm, act_layer=act,
                                bias=norm is nn.Identity)
        cells, cin = [], spec.stem_width
        for stage in spec.stages:
            for i in range(stage.depth):
                stride = stage.stride if i == 0 else 1
                cells.append(_CELLS[stage.cell](cin, stage.width, stride, stage.kernel_size, act, norm))
                cin = stage.width
        self.cells = nn.Sequential(*cells)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.head_dropout)
        self.head = nn.Linear(cin, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.cells(self.stem(x))).flatten(1)
        return self.head(self.dropout(x))


def build_model(spec: ArchSpec) -> nn.Module:
    """The torch model of `spec`, with freshly initialized weights (seed torch first to fix them)."""
    return CellNet(spec)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, spec: ArchSpec) -> int:
    """FLOPs of one forward pass on one input, as counted by `torch.utils.flop_counter`.

    Convention: FLOPs, not multiply-adds — one multiply-add counts as 2 FLOPs (matmul and conv only;
    elementwise ops are not counted, as is usual).
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    x = torch.zeros(1, spec.in_chans, spec.input_size, spec.input_size,
                    device=next(model.parameters()).device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    model.train(was_training)
    return int(counter.get_total_flops())
