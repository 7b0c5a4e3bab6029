"""GPU check: CUDA correctness of the training engine first, then its speed on a `cifar-cells` net.

    python benchmarks/gpu_check.py [--samples 20000] [--epochs 3] [--compile]

Correctness (each prints ok or FAIL, exit 1 on a failure): a real CUDA out-of-memory error fails
training as 'oom' and gives its memory back; `batch_size_for` sizes batches from the free memory;
robust validation (PGD) runs under bf16; with --compile, a second model of the same shape reuses
the compiled code. Speed: fast path = resident data + channels_last + bf16 autocast + fused SGD
(what `train_model` does on CUDA) against the same trainer with `fast_path=False` (fp32, NCHW);
samples/second of each and their ratio. Without CUDA it says so and exits 0.
"""

from __future__ import annotations

import argparse
import sys

import torch


def synthetic_cifar(n: int, seed: int = 0):
    """Random 3×32×32 images in [0, 1] with 10 balanced labels, split like a real dataset."""
    from robustarch.training.data import Dataset, Split

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 32, 32, generator=g)
    y = torch.arange(n) % 10
    n_val = n // 10
    return Dataset(
        "cifar10", Split(x[n_val:], y[n_val:]), Split(x[:n_val], y[:n_val]), Split(x[:n_val], y[:n_val]), num_classes=10
    )


def cifar_cells_arch():
    """A mid-sized architecture of the `cifar-cells` space (the middle value of every choice)."""
    import optuna

    from robustarch.spaces.schema import values_of
    from robustarch.spaces.space import load_space

    space = load_space("cifar-cells")
    middle = {name: values_of(p)[len(values_of(p)) // 2] for name, p in space.searched().items()}
    arch, _ = space.sample(optuna.trial.FixedTrial(middle), in_chans=3, num_classes=10, input_size=32)
    return arch


def run(
    arch, data, *, device: torch.device, epochs: int, batch_size: int, fast: bool, compile: bool = False
) -> tuple[float, float]:
    from robustarch.models.arch import build_model
    from robustarch.training.train import TrainConfig, train_model

    torch.manual_seed(0)
    model = build_model(arch)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=0.1, compile=compile)
    result = train_model(model, data, config, device=device, fast_path=fast)  # syncs every epoch
    # epoch 0 includes cuDNN autotuning (and compilation): report the later epochs' steady rate
    times = [h["seconds"] for h in result.history]
    steady = (len(times) - 1) * len(data.train) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
    return result.samples_per_second, steady


class _Huge(torch.nn.Module):
    """A real net whose training forward then asks for 1 TiB: a genuine CUDA out-of-memory error."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 64, 3, padding=1)
        self.head = torch.nn.Linear(64, 10)

    def forward(self, x):
        x = self.conv(x).relu().mean((2, 3))
        if self.training:
            torch.empty(1 << 40, dtype=torch.uint8, device=x.device)
        return self.head(x)


def correctness(arch, data, device: torch.device, compile: bool) -> bool:
    """The CUDA-only paths of the engine, checked for outcomes rather than speed."""
    from robustarch.models.arch import build_model
    from robustarch.runtime import batch_size_for, release_memory
    from robustarch.training.train import TrainConfig, TrainingFailed, train_model

    checks = {}
    release_memory(device)
    before = torch.cuda.memory_allocated(device)
    try:
        train_model(_Huge(), data, TrainConfig(epochs=1, batch_size=512), device=device)
        checks["real CUDA OOM fails as 'oom'"] = False
    except TrainingFailed as exc:
        checks["real CUDA OOM fails as 'oom'"] = exc.reason == "oom"
    release_memory(device)
    leaked = torch.cuda.memory_allocated(device) - before
    checks[f"memory of the OOM run released (left {leaked} B)"] = leaked < (64 << 20)
    model = build_model(arch).to(device)
    batch = batch_size_for(model, data.val.x[0], device, grad=True)
    checks[f"batch_size_for from free memory: {batch} with input gradients"] = batch > 32
    small = type(data)(
        data.name,
        type(data.train)(data.train.x[:2048], data.train.y[:2048]),
        data.val,
        data.test,
        num_classes=data.num_classes,
    )
    cfg = TrainConfig(recipe="fgsm-rs", eps=8 / 255, epochs=2, batch_size=256, lr=0.1)
    result = train_model(build_model(arch), small, cfg, device=device)
    robust = result.val_robust_accuracy
    checks[f"robust validation under bf16 (val_robust_accuracy {robust})"] = (
        result.selection_metric == "val_robust_accuracy" and robust is not None and 0 <= robust <= 1
    )
    if compile:
        runs = [
            train_model(build_model(arch), small, TrainConfig(epochs=1, batch_size=256, compile=True), device=device)
            for _ in range(2)
        ]
        checks[
            f"compile reused for a second model of the same shape "
            f"({runs[0].compile_seconds:.1f} s, then {runs[1].compile_seconds:.2f} s)"
        ] = runs[1].compile_reused and runs[1].compile_seconds < runs[0].compile_seconds
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}", flush=True)
    return all(checks.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--compile", action="store_true", help="also time the fast path with torch.compile")
    parser.add_argument("--device", default="cuda", help="cpu only to smoke-test this script's logic")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine; nothing to measure (run it on a GPU machine)")
        return 0
    from robustarch.models.arch import build_model, count_params

    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
    arch = cifar_cells_arch()
    data = synthetic_cifar(args.samples)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (smoke test only)"
    print(f"device {name}; torch {torch.__version__}")
    print(
        f"model {arch.summary()} ({count_params(build_model(arch)):,} params); "
        f"{len(data.train)} train samples, batch {args.batch_size}, {args.epochs} epochs"
    )
    print("correctness:" if device.type == "cuda" else "correctness: CUDA only, skipped")
    ok = correctness(arch, data, device, args.compile) if device.type == "cuda" else True
    sides = [("fp32 NCHW (fast path off)", dict(fast=False)), ("bf16 channels_last (fast path)", dict(fast=True))]
    if args.compile:
        sides.append(("fast path + torch.compile", dict(fast=True, compile=True)))
    rates = {}
    for name, kw in sides:
        overall, steady = run(arch, data, device=device, epochs=args.epochs, batch_size=args.batch_size, **kw)
        rates[name] = steady
        print(f"  {name:34s} {overall:9.0f} samples/s overall, {steady:9.0f} steady (epochs 2+)")
    base = rates[sides[0][0]]
    for name in list(rates)[1:]:
        print(f"  speed-up {name}: {rates[name] / base:.2f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
