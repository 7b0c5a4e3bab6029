"""From a search space to a trained model: YAML spaces and their schema, architecture specs and the
timm cells they build, datasets as resident tensors, training recipes and the training engine.

    space = load_space("digits-cells")
    model = build_model(ArchSpec(in_chans=1, num_classes=10, input_size=8, stages=(StageSpec(2, 32),)))
    train_model(model, load_dataset("digits"), TrainConfig(epochs=3), device=torch.device("cpu"))
"""
from .arch import ArchSpec, StageSpec, build_model, count_flops, count_params, register_family
from .checkpoint import load_checkpoint, save_checkpoint
from .data import DATASET_SHAPES, Dataset, Split, load_dataset
from .space import SearchSpace, load_space
from .train import TrainConfig, TrainingFailed, train_model

__all__ = ["ArchSpec", "DATASET_SHAPES", "Dataset", "SearchSpace", "Split", "StageSpec", "TrainConfig",
           "TrainingFailed", "build_model", "count_flops", "count_params", "load_checkpoint",
           "load_dataset", "load_space", "register_family", "save_checkpoint", "train_model"]
