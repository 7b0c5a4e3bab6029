"""Where and how torch runs: device choice and CPU threads.

On small CPU machines torch's default thread count can be much slower than one thread when other
processes compete for the cores, so the CPU path sets threads deliberately (ROBUSTARCH_THREADS).
Measured on the 2-core development machine under a load average of ~4 (benchmarks/training.py,
digits net, medians of 3): 1 thread 556 samples/s, 2 threads 98 samples/s; idle, 2 threads beat 1
by at most ~1.4x. Hence: one thread per idle core, never more than the cores per worker.
"""
from __future__ import annotations

import os

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """`requested` ('cpu', 'cuda', 'cuda:1') or CUDA when available, else CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_threads(workers: int = 1) -> int:
    """The cores divided among the local worker processes, capped by the cores other processes leave
    idle (1-minute load average). Oversubscribing is what makes torch's default (every core, in every
    process) far slower than one thread per process on small shared machines."""
    cores = os.cpu_count() or 1
    per_worker = max(1, cores // max(1, workers))
    try:
        idle = cores - os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        idle = cores
    return max(1, min(per_worker, round(idle) // max(1, workers)))


def configure_threads(threads: int | None = None, *, workers: int = 1) -> int:
    """Set torch's intra-op threads: `threads`, else $ROBUSTARCH_THREADS, else `default_threads`."""
    if threads is None:
        env = os.environ.get("ROBUSTARCH_THREADS")
        threads = int(env) if env else default_threads(workers)
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()
