"""What a stored number was measured with: package versions, device, threads, seeds and the attack
suite's resolved configuration. Stored with every trial (user attribute `provenance`) and every
rescore, so a report can list them and say when the trials of one study ran under different ones.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import platform
from pathlib import Path

import torch

from .._version import full_version

PACKAGES = ("torch", "timm", "foolbox", "optuna")


@functools.cache
def versions() -> dict[str, str | None]:
    """robustarch (with its git commit in a checkout), the libraries that shape the numbers, Python."""
    found: dict[str, str | None] = {"robustarch": full_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    found["torch"] = torch.__version__  # with its build tag (`+cu124`, `+cpu`), which metadata omits
    found["python"] = platform.python_version()
    return found


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (`platform.processor()` is empty on most Linux systems)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: torch.device) -> str:
    """`NVIDIA H200`, `Intel(R) Xeon(R) ...`: the hardware, not just `cuda`/`cpu`."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model() if device.type == "cpu" else device.type


def config_hash(config: dict) -> str:
    """A short fingerprint of a configuration: equal for equal settings, whatever their key order."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def provenance(device: torch.device, seeds: dict[str, int | None], suite_config: dict) -> dict:
    """The provenance record of one measurement made now, in this process, on `device`.

    The suite's configuration is stored in full, not only the study's suite name: a suite given as a
    YAML path (or a preset changed by an upgrade) may differ between workers and resumes.
    """
    device = torch.device(device)
    record = {
        "versions": versions(),
        "device": device_name(device),
        "device_type": device.type,
        "threads": torch.get_num_threads(),
        "seeds": dict(seeds),
        "suite_config": suite_config,
        "suite_config_hash": config_hash(suite_config),
    }
    if device.type == "cuda":
        record["cuda"] = torch.version.cuda
    return record
