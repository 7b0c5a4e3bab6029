"""Checkpoints: weights in safetensors, with the ArchSpec and training recipe as JSON in its header.

One self-describing file rebuilds the identical model anywhere; nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import DISK_FULL_ERRNOS, StorageFull, UserError
from .arch import ArchSpec, build_model


@dataclass
class Checkpoint:
    model: nn.Module
    arch: ArchSpec
    train_config: dict
    info: dict  # dataset name, bounds, trial number, ...


def save_checkpoint(
    path: str | Path, model: nn.Module, arch: ArchSpec, train_config: dict, info: dict | None = None
) -> Path:
    """Write the checkpoint atomically (see `write_atomic`): `path` is the complete file or absent."""
    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": "robustarch-checkpoint-1",
        "arch": arch.to_json(),
        "train_config": json.dumps(train_config, sort_keys=True),
        "info": json.dumps(info or {}, sort_keys=True),
    }
    write_atomic(path, [save(tensors, metadata=metadata)])
    return path


def write_atomic(path: Path, chunks) -> None:
    """Write `chunks` (bytes) to `path` so that a crash at any moment (SIGKILL, power loss, full disk)
    leaves either the old file or the complete new one under that name, never a partial one: a
    temporary file in the same folder, flushed to disk, then renamed over `path` (`os.replace`)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in DISK_FULL_ERRNOS:
            raise StorageFull(
                f"cannot write the checkpoint {path}: {exc.strerror} (disk full or file size "
                "limit); nothing partial was left: free some space, then run the same command "
                "to resume"
            ) from None
        raise UserError(f"cannot write the checkpoint {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes: trials record their checkpoint's, loads check it."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", sha256: str | None = None) -> Checkpoint:
    """Load a checkpoint; with `sha256` (the hash its trial recorded), a file whose bytes differ, damaged
    or replaced, is refused naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file")
    if sha256 is not None and file_sha256(path) != sha256:
        raise UserError(
            f"{path}: checkpoint damaged or replaced (its SHA-256 differs from the one its trial "
            "recorded); retrain that trial or restore the file from a backup"
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path}: not a safetensors checkpoint ({exc})") from None
    if metadata.get("format") != "robustarch-checkpoint-1":
        raise UserError(f"{path}: not a robustarch checkpoint (no ArchSpec in its header)")
    arch = ArchSpec.from_json(metadata["arch"])
    try:
        model = build_model(arch).to(device)
        model.load_state_dict(tensors)
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: its weights do not fit the model its ArchSpec builds ({first})") from None
    model.eval()
    return Checkpoint(model, arch, json.loads(metadata["train_config"]), json.loads(metadata["info"]))


SPLIT_KEYS = ("dataset", "split_seed", "val_fraction", "n_train", "n_val", "n_test")


def check_split(info: dict, split: dict, source: str) -> None:
    """Refuse to evaluate a checkpoint on other splits than it was trained with: another split seed
    (or dataset size) puts some of its training samples into the test split. `split` is
    `Dataset.split_info()`; checkpoints saved before splits were recorded are not checked."""
    stored = {k: info[k] for k in SPLIT_KEYS if k in info}
    differ = [f"{k} {split[k]!r} (trained with {v!r})" for k, v in stored.items() if split.get(k) != v]
    if differ:
        raise UserError(
            f"{source}: the data split does not match the one the model was trained on: "
            f"{', '.join(differ)}; use the training split (e.g. --seed {stored.get('split_seed', 0)})"
        )
