"""Data and training: datasets as resident tensors (digits built in; MNIST, Fashion-MNIST, CIFAR-10,
SVHN from a `--data-dir`), training recipes (clean and adversarial losses) and the training engine.

    train_model(model, load_dataset("digits"), TrainConfig(epochs=3), device=torch.device("cpu"))
"""

from .data import DATASET_SHAPES, Dataset, Split, load_dataset
from .train import TrainConfig, TrainingFailed, train_model

__all__ = ["DATASET_SHAPES", "Dataset", "Split", "TrainConfig", "TrainingFailed", "load_dataset", "train_model"]
