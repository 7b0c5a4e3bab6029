"""Datasets: seeded splits, and torchvision's loaders on tiny files written in the real formats."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import torch

from robustarch.errors import UserError
from robustarch.training.data import load_dataset

N_TRAIN, N_TEST = 100, 40  # 10 per class at least: the stratified validation split needs every class


def labels(n: int) -> np.ndarray:
    return np.arange(n) % 10


def write_idx(path, array: np.ndarray) -> None:
    """MNIST's IDX format: magic (0, 0, dtype 0x08 = ubyte, ndim), big-endian int32 dims, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_idx_files(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    rng = np.random.default_rng(0)
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels(n))
    data = load_dataset(name, data_dir=tmp_path, seed=0)
    assert data.train.x.shape[1:] == (1, 28, 28)
    assert len(data.train) + len(data.val) == N_TRAIN and len(data.test) == N_TEST
    assert 0.0 <= float(data.train.x.min()) and float(data.train.x.max()) <= 1.0
    assert data.num_classes == 10 and data.augment == "none"


def test_cifar10_pickled_batches(tmp_path, monkeypatch):
    """The real layout (cifar-10-batches-py/, pickled dicts of uint8 rows). torchvision checks each
    file's md5 against the real CIFAR-10 release, which tiny files cannot match; that one check is
    bypassed here, everything after it (unpickling, reshaping) is torchvision's real code."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = [f"data_batch_{i}" for i in range(1, 6)]
    for name, n in [(b, N_TRAIN // 5) for b in batches] + [("test_batch", N_TEST)]:
        entry = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": labels(n).tolist()}
        (folder / name).write_bytes(pickle.dumps(entry))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    import torchvision.datasets.cifar

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    data = load_dataset("cifar10", data_dir=tmp_path, seed=0)
    assert data.train.x.shape[1:] == (3, 32, 32) and len(data.test) == N_TEST
    assert data.augment == "crop-flip"
    first = pickle.loads((folder / "test_batch").read_bytes())["data"][0]
    # the test split keeps file order: its first image is the file's first row, as (channel, row, col)
    assert torch.equal(data.test.x[0], torch.tensor(first.reshape(3, 32, 32) / 255.0, dtype=torch.float32))


def test_svhn_mat_files(tmp_path, monkeypatch):
    """SVHN's .mat layout (X: 32×32×3×N uint8, y: N×1 with 10 for the digit 0), via scipy.io."""
    import scipy.io
    import torchvision.datasets as tvd

    rng = np.random.default_rng(0)
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        y = labels(n)
        scipy.io.savemat(
            tmp_path / f"{split}_32x32.mat",
            {
                "X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                "y": np.where(y == 0, 10, y)[:, None].astype(np.uint8),
            },
        )
    # as for CIFAR-10, torchvision's md5 check of the real release is the one thing bypassed
    monkeypatch.setattr(tvd.SVHN, "_check_integrity", lambda self: True)
    data = load_dataset("svhn", data_dir=tmp_path, seed=0)
    assert data.train.x.shape[1:] == (3, 32, 32)
    assert sorted(set(data.test.y.tolist())) == list(range(10))  # label 10 became 0


@pytest.mark.parametrize(
    "name, where", [("mnist", "MNIST/raw/"), ("cifar10", "cifar-10-batches-py/"), ("svhn", "train_32x32.mat")]
)
def test_missing_files_say_where_to_put_them(tmp_path, name, where):
    with pytest.raises(UserError) as info:
        load_dataset(name, data_dir=tmp_path)
    message = str(info.value)
    assert where in message and str(tmp_path) in message and "\n" not in message
    with pytest.raises(UserError, match="needs --data-dir"):
        load_dataset(name)


def test_digits_splits_are_fixed_by_the_seed():
    a, b, c = load_dataset("digits", seed=0), load_dataset("digits", seed=0), load_dataset("digits", seed=1)
    assert a.train.x.shape == (1068, 1, 8, 8) and len(a.val) == 189 and len(a.test) == 540
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.test.x, c.test.x)
    smaller = load_dataset("digits", seed=0, train_fraction=0.5)
    assert torch.equal(smaller.train.x, a.with_train_fraction(0.5, seed=0).train.x)


def _mnist_files(root, n_train=N_TRAIN, n_test=N_TEST):
    raw = root / "MNIST" / "raw"
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels(n))
    return raw


@pytest.mark.parametrize(
    "file, content, needle",
    [
        ("train-images-idx3-ubyte", b"junk junk\n", "not a valid IDX file"),
        ("t10k-labels-idx1-ubyte", b"", "not a valid IDX file"),
        ("train-labels-idx1-ubyte", struct.pack(">BBBBI", 0, 0, 0x08, 1, 10**6) + b"\0" * 8, "not a valid IDX file"),
        ("t10k-images-idx3-ubyte", struct.pack(">BBBBI", 0, 0, 0x08, 1, 4) + b"\0" * 4, "3-dimensional"),
        ("train-images-idx3-ubyte", struct.pack(">BBBBIII", 0, 0, 0x08, 3, 2, 5, 5) + b"\0" * 50, "28x28"),
    ],
)
def test_garbage_mnist_files_are_named_in_one_line(tmp_path, file, content, needle):
    """Files named like MNIST's that are not (a download cut short, an HTML error page) end in one
    line naming the file, not in torchvision's AssertionError."""
    raw = _mnist_files(tmp_path)
    (raw / file).write_bytes(content)
    with pytest.raises(UserError) as info:
        load_dataset("mnist", data_dir=tmp_path)
    message = str(info.value)
    assert str(raw / file) in message and needle in message and "\n" not in message, message


def test_mnist_labels_that_do_not_fit_their_images_are_refused(tmp_path):
    raw = _mnist_files(tmp_path)
    write_idx(raw / "t10k-labels-idx1-ubyte", labels(N_TEST - 1))
    with pytest.raises(UserError, match="39 labels for the 40 images"):
        load_dataset("mnist", data_dir=tmp_path)
    write_idx(raw / "t10k-labels-idx1-ubyte", labels(N_TEST) + 5)
    with pytest.raises(UserError, match="labels must be 0 to 9"):
        load_dataset("mnist", data_dir=tmp_path)
