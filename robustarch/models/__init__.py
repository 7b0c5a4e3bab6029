"""Architecture specs and the models they build: the `ArchSpec` dataclass, the timm cells and
families it names, parameter and FLOP counts, and checkpoints (safetensors) that rebuild a model.

    model = build_model(ArchSpec(in_chans=1, num_classes=10, input_size=8, stages=(StageSpec(2, 32),)))
"""

from .arch import ArchSpec, StageSpec, build_model, count_flops, count_params, register_family
from .checkpoint import load_checkpoint, save_checkpoint

__all__ = [
    "ArchSpec",
    "StageSpec",
    "build_model",
    "count_flops",
    "count_params",
    "load_checkpoint",
    "register_family",
    "save_checkpoint",
]
