"""Architecture specs and the models they build.

An `ArchSpec` is a plain, JSON-serializable dataclass: the sampled point of a search space. The same
spec rebuilds the identical model anywhere (`build_model(spec)`), through a registry of families.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from .cells import ACTIVATIONS, CELL_TYPES, NORMS, CellNet, timm_resnet

__all__ = [
    "ACTIVATIONS",
    "CELL_TYPES",
    "NORMS",
    "FAMILIES",
    "ArchSpec",
    "StageSpec",
    "build_model",
    "count_flops",
    "count_params",
    "register_family",
]


@dataclass(frozen=True)
class StageSpec:
    """One stage: `depth` cells of `width` output channels; the first cell applies `stride`.

    `se` is the squeeze-excite reduction ratio (0 = no SE).
    """

    depth: int
    width: int
    stride: int = 1
    cell: str = "plain"
    kernel_size: int = 3
    se: float = 0.0


@dataclass(frozen=True)
class ArchSpec:
    """A whole network: stem, stages of cells, global pooling and a linear head.

    `family` names the builder in `FAMILIES` (`cells`: our cell network; `timm-resnet`: timm's ResNet
    with the stages' depths as `layers` and widths as `channels`). `drop_path` is the stochastic-depth
    rate of the last cell (it grows linearly from 0 over the cells).
    """

    in_chans: int
    num_classes: int
    input_size: int
    stem_width: int
    stages: tuple[StageSpec, ...]
    act: str = "relu"
    norm: str = "batchnorm"
    head_dropout: float = 0.0
    family: str = "cells"
    stem_kernel: int = 3
    stem_stride: int = 1
    drop_path: float = 0.0
    # > 1: round each input to this many levels in [0, 1] first (bit-depth reduction, "feature
    # squeezing", Xu et al. 2018) — a defense known to mask gradients; the sanity checks must say so
    input_levels: int = 0
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
    def from_dict(cls, data: dict) -> ArchSpec:
        """Inverse of `to_dict`; specs saved before a field existed get that field's default."""
        names = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in names}
        data["stages"] = tuple(StageSpec(**s) for s in data["stages"])
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        return cls.from_dict(json.loads(text))

    def summary(self) -> str:
        """A short human-readable form, e.g. `stem16 2x32|plain 3x64/2|basic+se`."""
        parts = [
            f"{s.depth}x{s.width}{'/' + str(s.stride) if s.stride > 1 else ''}|{s.cell}{'+se' if s.se > 0 else ''}"
            for s in self.stages
        ]
        prefix = "" if self.family == "cells" else f"{self.family} "
        if self.input_levels > 1:
            prefix += f"quantize{self.input_levels} "
        return f"{prefix}stem{self.stem_width} " + " ".join(parts)


FAMILIES: dict[str, Callable[[ArchSpec], nn.Module]] = {}


def register_family(name: str, builder: Callable[[ArchSpec], nn.Module]) -> None:
    """Make `ArchSpec(family=name, ...)` buildable by `builder(spec) -> nn.Module`."""
    FAMILIES[name] = builder


register_family("cells", CellNet)
register_family("timm-resnet", timm_resnet)


def build_model(spec: ArchSpec) -> nn.Module:
    """The torch model of `spec`, with freshly initialized weights (seed torch first to fix them)."""
    if spec.family not in FAMILIES:
        raise ValueError(f"unknown architecture family {spec.family!r}; known: {sorted(FAMILIES)}")
    return FAMILIES[spec.family](spec)


def count_params(model: nn.Module) -> int:
    """The number of parameters of `model` (every tensor in `model.parameters()`, trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, spec: ArchSpec) -> int:
    """FLOPs of one forward pass on one input, as counted by `torch.utils.flop_counter`.

    Convention: FLOPs, not multiply-adds — one multiply-add counts as 2 FLOPs (matmul and conv only;
    elementwise ops are not counted, as is usual).
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    x = torch.zeros(1, spec.in_chans, spec.input_size, spec.input_size, device=next(model.parameters()).device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    model.train(was_training)
    return int(counter.get_total_flops())
