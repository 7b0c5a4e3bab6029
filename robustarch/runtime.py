"""Where and how torch runs: device choice, CPU threads, batch sizes by free memory, releasing memory.

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


CPU_BATCH = 1024  # CPU: large enough to amortise Python overhead, small enough for any RAM
MAX_BATCH = 65536


def batch_size_for(
    model: torch.nn.Module,
    sample: torch.Tensor,
    device: torch.device,
    *,
    grad: bool = False,
    fraction: float = 0.3,
    cap: int = MAX_BATCH,
) -> int:
    """The largest batch of inputs shaped like `sample` (one input, no batch dimension) that `model`
    can take on `device` within `fraction` of the free memory; `grad`: with input gradients, as an
    attack needs. CUDA: measured with a 32-sample probe against `torch.cuda.mem_get_info`; CPU:
    `CPU_BATCH`. Evaluation and attacks then run in few, large batches instead of many small ones;
    0.3, not all of it: other workers on the same GPU size their batches from the same free memory.

    >>> batch_size_for(model, data.test.x[0], torch.device("cuda"), grad=True)  # doctest: +SKIP
    """
    device = torch.device(device)
    if device.type != "cuda":
        return min(CPU_BATCH, cap)
    probe_n = 32
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    x = sample.to(device)[None].expand(probe_n, *sample.shape).clone().requires_grad_(grad)
    was_training = model.training
    model.eval()
    with torch.set_grad_enabled(grad):
        out = model(x)
        if grad:
            out.float().sum().backward(inputs=[x])
    model.train(was_training)
    per_sample = max(1, (torch.cuda.max_memory_allocated(device) - base) // probe_n)
    del x, out
    free, _ = torch.cuda.mem_get_info(device)
    return int(max(probe_n, min(cap, fraction * free // per_sample)))


def release_memory(device: torch.device | str | None = None) -> None:
    """Collect what a finished (or failed) trial left behind — reference cycles through a saved
    traceback hold its model and optimizer — and give cached CUDA blocks back to the driver, so the
    next trial (or another worker on the same GPU) starts from the memory it really has."""
    import gc

    gc.collect()
    if torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda"):
        torch.cuda.empty_cache()
