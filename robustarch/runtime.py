"""Where and how torch runs: device choice and CPU threads.

On small CPU machines torch's default thread count can be much slower than one thread when other
processes compete for the cores, so the CPU path sets threads deliberately (ROBUSTARCH_THREADS).
"""
from __future__ import annotations

import os

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """`requested` ('cpu', 'cuda', 'cuda:1') or CUDA when available, else CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def configure_threads(threads: int | None = None, *, workers: int = 1) -> int:
    """Set torch's intra-op threads: `threads`, else $ROBUSTARCH_THREADS, else the cores divided among
    the local worker processes. Oversubscribing (default threads in every worker) is what makes
    torch's default far slower than one thread per process on small shared machines."""
    if threads is None:
        env = os.environ.get("ROBUSTARCH_THREADS")
        threads = int(env) if env else max(1, (os.cpu_count() or 1) // max(1, workers))
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()
