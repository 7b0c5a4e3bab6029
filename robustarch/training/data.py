"""Datasets as resident tensors with fixed train / validation / test splits.

`digits` (scikit-learn's `load_digits`) is built in; MNIST, Fashion-MNIST, CIFAR-10 and SVHN are read
through torchvision from a local `data_dir` (never downloaded at run time). Inputs are in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError, one_of

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "svhn")
# (channels, height = width, classes) of each dataset, known without loading it
DATASET_SHAPES = {
    "digits": (1, 8, 10),
    "mnist": (1, 28, 10),
    "fashion-mnist": (1, 28, 10),
    "cifar10": (3, 32, 10),
    "svhn": (3, 32, 10),
}
# Training-time augmentation, done on the device by the trainer: natural images get the usual random
# crop (4-pixel padding) and horizontal flip; digits are not flipped (a flipped 3 is not a 3).
AUGMENT = {"cifar10": "crop-flip", "svhn": "crop", "digits": "none", "mnist": "none", "fashion-mnist": "none"}


@dataclass
class Split:
    x: torch.Tensor  # float32, (n, channels, height, width), values in [0, 1]
    y: torch.Tensor  # int64, (n,)

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Dataset:
    """Train / validation / test splits of one dataset; the test split is for final reporting only."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    bounds: tuple[float, float] = (0.0, 1.0)
    seed: int = 0  # the split seed: same name, seed and fractions → the same samples in each split
    val_fraction: float = 0.15

    @property
    def augment(self) -> str:
        """Augmentation the trainer applies on the device: 'crop-flip', 'crop' or 'none'."""
        return AUGMENT.get(self.name, "none")

    def with_train_fraction(self, fraction: float, seed: int = 0) -> Dataset:
        """This dataset with a stratified `fraction` of its training split (validation and test are
        unchanged): the "load-like" knob, cheap enough to apply per trial."""
        if fraction >= 1.0:
            return self
        x, y = self.train.x.numpy(), self.train.y.numpy()
        (xs, ys), _ = _split_off(x, y, 1.0 - fraction, seed + 2)
        return replace(self, train=_tensor_split(xs, ys))

    def with_label_noise(self, fraction: float, seed: int = 0) -> Dataset:
        """This dataset with `fraction` of its training labels replaced by labels drawn uniformly at
        random (Zhang et al. 2017; a drawn label may equal the true one); validation and test keep
        their true labels. The "load" knob of Martin & Mahoney (2017): less effective data."""
        if fraction <= 0.0:
            return self
        gen = torch.Generator().manual_seed(seed + 3)
        n = len(self.train)
        chosen = torch.randperm(n, generator=gen)[: int(round(fraction * n))]
        y = self.train.y.clone()
        y[chosen] = torch.randint(0, self.num_classes, (len(chosen),), generator=gen)
        return replace(self, train=Split(self.train.x, y))

    def split_info(self) -> dict:
        """What fixes the splits: a model is evaluated on the same test samples only if all match."""
        return {
            "dataset": self.name,
            "split_seed": self.seed,
            "val_fraction": self.val_fraction,
            "n_train": len(self.train),
            "n_val": len(self.val),
            "n_test": len(self.test),
        }

    @property
    def in_chans(self) -> int:
        return int(self.train.x.shape[1])

    @property
    def input_size(self) -> int:
        return int(self.train.x.shape[-1])

    def describe(self) -> dict:
        return {
            "dataset": self.name,
            "n_train": len(self.train),
            "n_val": len(self.val),
            "n_test": len(self.test),
            "input_shape": list(self.train.x.shape[1:]),
            "num_classes": self.num_classes,
            "bounds": list(self.bounds),
        }


def _split_off(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """A stratified split `(rest, held_out)` fixed by `seed` (scikit-learn does the stratification)."""
    from sklearn.model_selection import train_test_split

    xr, xh, yr, yh = train_test_split(x, y, test_size=fraction, random_state=seed, stratify=y)
    return (xr, yr), (xh, yh)


def _tensor_split(x: np.ndarray, y: np.ndarray) -> Split:
    return Split(torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64))


def load_dataset(
    name: str = "digits",
    *,
    data_dir: str | Path | None = None,
    seed: int = 0,
    val_fraction: float = 0.15,
    train_fraction: float = 1.0,
) -> Dataset:
    """Load `name` into memory with splits fixed by `seed`.

    `train_fraction` < 1 keeps only that (stratified) fraction of the training split: the
    "load-like" knob. Example: `load_dataset("digits").train.x.shape == (1068, 1, 8, 8)`.
    """
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}: allowed values are {one_of(DATASETS)}")
    if name == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
        y = bunch.target.astype(np.int64)
        (x_trv, y_trv), (x_te, y_te) = _split_off(x, y, 0.3, seed)
    else:
        (x_trv, y_trv), (x_te, y_te) = _load_torchvision(name, data_dir)
    (x_tr, y_tr), (x_va, y_va) = _split_off(x_trv, y_trv, val_fraction, seed + 1)
    if train_fraction < 1.0:
        (x_tr, y_tr), _ = _split_off(x_tr, y_tr, 1.0 - train_fraction, seed + 2)
    return Dataset(
        name,
        _tensor_split(x_tr, y_tr),
        _tensor_split(x_va, y_va),
        _tensor_split(x_te, y_te),
        num_classes=int(max(y_trv.max(), y_te.max()) + 1),
        seed=seed,
        val_fraction=val_fraction,
    )


_WHERE = {
    "mnist": "MNIST/raw/ (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)",
    "fashion-mnist": "FashionMNIST/raw/ (the four *-idx?-ubyte files)",
    "cifar10": "cifar-10-batches-py/ (the extracted cifar-10-python.tar.gz)",
    "svhn": "train_32x32.mat and test_32x32.mat",
}


# The last torchvision dataset read: a study checks its data before it creates anything, then its
# trial runner loads the same files; one read serves both.
_LAST_READ: dict[tuple[str, str], list] = {}


def _load_torchvision(name: str, data_dir: str | Path | None):
    if data_dir is None:
        raise UserError(f"dataset {name!r} needs --data-dir pointing at a folder holding {_WHERE[name]}")
    key = (name, str(Path(data_dir).expanduser().resolve()))
    if key not in _LAST_READ:
        _LAST_READ.clear()
        _LAST_READ[key] = _read_torchvision(name, data_dir)
    return _LAST_READ[key]


def _read_torchvision(name: str, data_dir: str | Path):
    import torchvision.datasets as tvd

    root = Path(data_dir).expanduser()
    try:
        if name in ("mnist", "fashion-mnist"):
            raw = root / ("MNIST" if name == "mnist" else "FashionMNIST") / "raw"
            arrays = [_read_idx_pair(raw, prefix) for prefix in ("train", "t10k")]
        elif name == "cifar10":
            parts = [tvd.CIFAR10(str(root), train=t, download=False) for t in (True, False)]
            arrays = [(p.data.transpose(0, 3, 1, 2).astype(np.float32) / 255.0, np.asarray(p.targets)) for p in parts]
        else:
            parts = [tvd.SVHN(str(root), split=s, download=False) for s in ("train", "test")]
            arrays = [(p.data.astype(np.float32) / 255.0, np.asarray(p.labels)) for p in parts]
    except (RuntimeError, FileNotFoundError, OSError) as exc:
        raise UserError(
            f"dataset {name!r} not found under {root}: put {_WHERE[name]} there ({str(exc).splitlines()[0]})"
        ) from None
    return [(x, y.astype(np.int64)) for x, y in arrays]


def _read_idx_pair(raw: Path, prefix: str):
    """One split of MNIST / Fashion-MNIST from its two IDX files, as torchvision reads them; a file
    that does not parse, or does not fit its partner, is named in the error."""
    images, labels = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
    for path in (images, labels):
        if not path.is_file():
            raise FileNotFoundError(f"missing {path}")
    x, y = _parse_idx(images, 3), _parse_idx(labels, 1)
    if tuple(x.shape[1:]) != (28, 28):
        raise UserError(f"dataset file {images}: expected 28x28 images, got {'x'.join(map(str, x.shape[1:]))}")
    if len(x) != len(y):
        raise UserError(f"dataset file {labels}: {len(y)} labels for the {len(x)} images of {images.name}")
    if len(y) and not 0 <= int(y.min()) <= int(y.max()) <= 9:
        raise UserError(f"dataset file {labels}: labels must be 0 to 9, found {int(y.min())} to {int(y.max())}")
    return x.numpy()[:, None].astype(np.float32) / 255.0, y.numpy()


def _parse_idx(path: Path, ndim: int) -> torch.Tensor:
    from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor

    try:
        tensor = read_sn3_pascalvincent_tensor(str(path), strict=False)
    except Exception as exc:  # an untrusted file: torchvision asserts, indexes and reshapes blindly
        detail = str(exc).splitlines()[0] if str(exc) else "bad header"
        raise UserError(f"dataset file {path}: not a valid IDX file ({detail})") from None
    if tensor.dtype != torch.uint8 or tensor.ndim != ndim:
        raise UserError(
            f"dataset file {path}: expected {ndim}-dimensional uint8 IDX data, got "
            f"{tensor.ndim}-dimensional {str(tensor.dtype).replace('torch.', '')}"
        )
    return tensor
