"""Training throughput: robustarch's trainer against a plain PyTorch loop, same model, data and run.

    python benchmarks/training.py [--epochs 4] [--repeats 3] [--threads 1 2]

Both sides train the same digits-cells-sized net (same initial weights) for the same epochs, batch size
and SGD settings. Ours also validates every epoch and keeps the best weights; the plain loops do
neither, so the first ratio is a conservative one; the second compares training steps only. Samples/second counts training samples per second of wall
clock. Target: ours ≥ 0.9× the plain loop. Each side runs `--repeats` times, alternating; medians shown.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from robustarch.models.arch import ArchSpec, StageSpec, build_model
from robustarch.training.data import load_dataset
from robustarch.training.train import TrainConfig, train_model

SPEC = ArchSpec(
    in_chans=1,
    num_classes=10,
    input_size=8,
    stem_width=16,
    stages=(StageSpec(2, 32, 1, "basic"), StageSpec(2, 64, 2, "basic")),
)


def plain_dataloader_loop(model, data, epochs: int, batch_size: int, lr: float) -> float:
    """The textbook loop: TensorDataset + shuffling DataLoader, SGD, cross-entropy."""
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data.train.x, data.train.y), batch_size=batch_size, shuffle=True
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return epochs * len(data.train) / (time.perf_counter() - start)


def plain_tensor_loop(model, data, epochs: int, batch_size: int, lr: float) -> float:
    """The tightest plain loop: resident tensors indexed by a random permutation, nothing else."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    x, y, n = data.train.x, data.train.y, len(data.train)
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            loss = loss_fn(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return epochs * n / (time.perf_counter() - start)


def ours(model, data, epochs: int, batch_size: int, lr: float) -> tuple[float, float]:
    """(samples/s of the whole call, samples/s of its training steps alone, without validation)."""
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr)
    start = time.perf_counter()
    result = train_model(model, data, config, device=torch.device("cpu"), seed=0)
    samples = len(result.history) * len(data.train)
    return samples / (time.perf_counter() - start), samples / result.history[-1]["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    args = parser.parse_args()
    data = load_dataset("digits", seed=0)
    loops = {
        "robustarch train_model": ours,
        "plain loop (DataLoader)": plain_dataloader_loop,
        "plain loop (resident tensors)": plain_tensor_loop,
    }
    steps_only = "  ours, training steps only"
    print(
        f"model {SPEC.summary()}, digits train split {len(data.train)} samples, "
        f"{args.epochs} epochs, batch {args.batch_size}, CPU, medians of {args.repeats}"
    )
    for threads in args.threads:
        torch.set_num_threads(threads)
        rates = {name: [] for name in [*loops, steps_only]}
        for _ in range(args.repeats):
            for name, loop in loops.items():
                torch.manual_seed(0)
                rate = loop(build_model(SPEC), data, args.epochs, args.batch_size, 0.05)
                if isinstance(rate, tuple):
                    rate, steps_rate = rate
                    rates[steps_only].append(steps_rate)
                rates[name].append(rate)
        med = {name: statistics.median(r) for name, r in rates.items()}
        ours_rate = med["robustarch train_model"]
        print(f"-- {threads} thread(s)")
        for name, rate in med.items():
            spread = f"{min(rates[name]):.0f}-{max(rates[name]):.0f}"
            print(f"  {name:32s} {rate:9.0f} samples/s  (range {spread})")
        for name in list(loops)[1:]:
            ratio = ours_rate / med[name]
            verdict = "meets" if ratio >= 0.9 else "MISSES"
            print(
                f"  ratio ours / {name}: {ratio:.2f}  ({verdict} the 0.9 target); "
                f"training steps only: {med[steps_only] / med[name]:.2f}"
            )


if __name__ == "__main__":
    main()
