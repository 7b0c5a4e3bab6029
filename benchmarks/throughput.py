"""Throughput: complete trials per hour (train + attack + record) with 1, 2 (and on CUDA 4) workers
per device, and the training engine's samples/s against a plain torch loop on the same model.

    python benchmarks/throughput.py                 # CPU: 1 and 2 workers, small profile (3-4 min)
    python benchmarks/throughput.py --device cuda   # CUDA: 1, 2 and 4 workers on one GPU

Data are synthetic with each space's shape (digits 1x8x8, MNIST 1x28x28, CIFAR 3x32x32), learnable
(a class template plus noise) so that most test samples are classified correctly and really
attacked, as in a real study. Every trial of a run trains the same mid-sized architecture of the
space (the middle value of every choice, enqueued), so worker counts are compared on equal work.
Trials run through the real study loop (`run_study`, journal storage, one process per worker).
The plain loop: resident fp32 NCHW tensors, torch.optim.SGD, the same on-device augmentation,
nothing else; the engine: `train_model` as a study runs it (bf16 + channels_last + fused SGD on
CUDA). Target on CUDA: engine ≥ 1.5x the plain loop. Rates are steady state (epochs 2+).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

SPACES = {"digits-cells": ("digits", 1, 8), "mnist-cells": ("mnist", 1, 28), "cifar-cells": ("cifar10", 3, 32)}
# Per device: samples, epochs and attack suite small enough that the whole CPU run stays near 3
# minutes on a 2-core machine; the CUDA profile fits the 10-minute GPU check with room to spare.
PROFILES = {
    "cpu": dict(
        train=384,
        test=32,
        epochs=1,
        trials=2,
        workers=(1, 2),
        engine_samples=384,
        engine_epochs=2,
        batch=128,
        suite="cpu",
    ),
    "cuda": dict(
        train=5000,
        test=500,
        epochs=2,
        trials=2,
        workers=(1, 2, 4),
        engine_samples=10000,
        engine_epochs=3,
        batch=512,
        suite="quick",
    ),
}
CPU_SUITE = """\
name: throughput-cpu
threat_model: linf
eps: [0.03, 0.1]
samples: 32
attacks:
  - attack: FGSM
  - attack: LinfPGD
    steps: 5
"""


def synthetic(name: str, n_train: int, n_test: int, seed: int = 0):
    """A learnable dataset of `name`'s shape: per class a fixed random template, plus noise."""
    from robustarch.training.data import Dataset, Split

    _, chans, size = next(v for v in SPACES.values() if v[0] == name)
    g = torch.Generator().manual_seed(seed)
    templates = torch.rand(10, chans, size, size, generator=g)

    def split(n: int) -> Split:
        y = torch.arange(n) % 10
        x = (0.5 * templates[y] + 0.5 * torch.rand(n, chans, size, size, generator=g)).clamp(0, 1)
        return Split(x, y)

    return Dataset(name, split(n_train), split(max(64, n_train // 8)), split(n_test), num_classes=10)


def middle_params(space) -> dict:
    """The middle value of every searched parameter: a mid-sized candidate of the space."""
    from robustarch.spaces.schema import values_of

    return {name: values_of(p)[len(values_of(p)) // 2] for name, p in space.searched().items()}


def bench_space(space_name: str, epochs: int, folder: Path, compile: bool) -> str:
    """The space's YAML with fixed, short training: the benchmark measures speed, not accuracy."""
    import yaml

    from robustarch.presets import resolve

    doc = yaml.safe_load(resolve("search_spaces", space_name).read_text())
    training = {k: v for k, v in doc.get("training", {}).items() if k not in ("patience",)}
    training.update(epochs=epochs, lr=0.05, compile=compile)
    for key, value in list(training.items()):  # searched training knobs: their first value
        if isinstance(value, list):
            training[key] = value[0]
        elif isinstance(value, dict):
            training[key] = value["min"]
    doc["training"] = training
    doc.pop("constraints", None)
    path = folder / f"{space_name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _worker(
    storage: str,
    study_name: str,
    config_dict: dict,
    data_args: tuple,
    n_trials: int,
    device: str,
    threads: int,
    index: int,
) -> None:
    """One worker process: the real study loop, with the dataset replaced by synthetic data."""
    import optuna

    from robustarch.study import objective, run_study
    from robustarch.study.config import StudyConfig
    from robustarch.study.storage import open_storage

    data = synthetic(*data_args)
    objective.load_dataset = lambda *a, **k: data  # no dataset files on a benchmark machine
    config = StudyConfig.from_dict(config_dict)
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    run_study(study, config, n_trials=n_trials, device=device, threads=threads, workers=1, worker_index=index)


def trials_per_hour(
    space_name: str, workers: int, profile: dict, device: str, folder: Path, compile: bool
) -> tuple[float, float, int, str]:
    """(complete trials per hour once every worker is warm, per hour of wall clock including
    process start-up, complete trials, where a trial's time goes) for `workers` processes running
    `profile["trials"]` trials each. A worker's first trial pays one-time costs (first kernels,
    allocator, attack set-up; compilation with --compile): the warm rate counts the trials that
    end after every worker's first one, over the time from that point to the last."""
    import optuna

    from robustarch.spaces.space import load_space
    from robustarch.study.config import StudyConfig
    from robustarch.study.storage import open_storage

    dataset, _, _ = SPACES[space_name]
    space_path = bench_space(space_name, profile["epochs"], folder, compile)
    suite = profile["suite"]
    if suite == "cpu":
        suite = str(folder / "cpu-suite.yaml")
        Path(suite).write_text(CPU_SUITE)
    config = StudyConfig(dataset=dataset, space=space_path, suite=suite, sampler="random")
    storage = str(folder / f"{space_name}-{workers}.journal")
    study = optuna.create_study(storage=open_storage(storage), study_name="bench", direction="maximize")
    n_trials = profile["trials"] * workers
    for _ in range(n_trials + workers):  # every trial: the same mid-sized candidate
        study.enqueue_trial(middle_params(load_space(space_path)))
    # CPU: one thread per worker, so that the worker counts compare parallel trials, not threads
    threads = 1 if device == "cpu" else max(1, _cores() // workers)
    args = (storage, "bench", config.to_dict(), (dataset, profile["train"], profile["test"]), n_trials, device, threads)
    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    start = time.perf_counter()
    procs = [ctx.Process(target=_worker, args=(*args, i)) for i in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    wall = time.perf_counter() - start
    done = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise RuntimeError(f"{space_name}: no complete trial; see the workers' output above")
    firsts = {}
    for t in sorted(done, key=lambda t: t.datetime_complete):
        firsts.setdefault(t.user_attrs.get("worker"), t.datetime_complete)
    warm_from = max(firsts.values())
    warm = [t for t in done if t.datetime_complete > warm_from]
    span = (max(t.datetime_complete for t in done) - warm_from).total_seconds()
    median = lambda key: statistics.median(float(t.user_attrs.get(key) or 0) for t in done)  # noqa: E731
    trial_s = statistics.median((t.datetime_complete - t.datetime_start).total_seconds() for t in done)
    where = (
        f"median trial {trial_s:.1f} s: train {median('train_seconds'):.1f} s, "
        f"compile {median('compile_seconds'):.1f} s"
    )
    warm_rate = len(warm) * 3600 / span if warm and span > 0 else float("nan")
    return warm_rate, len(done) * 3600 / wall, len(done), where


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def plain_loop(model, data, device, epochs: int, batch: int, lr: float) -> float:
    """Steady samples/s (epochs 2+) of the textbook fp32 loop on resident tensors."""
    from robustarch.training.train import augment

    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x, y = data.train.x.to(device), data.train.y.to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    model.to(device).train()
    marks = []
    for _ in range(epochs):
        order = torch.randperm(len(y), device=device)
        for i in range(0, len(y), batch):
            idx = order[i : i + batch]
            loss = torch.nn.functional.cross_entropy(model(augment(x[idx], data.augment, gen)), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        float(loss.detach())  # wait for the device once per epoch
        marks.append(time.perf_counter())
    return (epochs - 1) * len(y) / (marks[-1] - marks[0])


def engine(model, data, device, epochs: int, batch: int, lr: float, compile: bool) -> float:
    """Steady samples/s (epochs 2+, training steps only) of `train_model`."""
    from robustarch.training.train import TrainConfig, train_model

    config = TrainConfig(epochs=epochs, batch_size=batch, lr=lr, compile=compile)
    result = train_model(model, data, config, device=device)
    times = [h["train_seconds"] for h in result.history]
    return (len(times) - 1) * len(data.train) / (times[-1] - times[0])


def engine_vs_plain(space_name: str, profile: dict, device: torch.device, compile: bool) -> tuple[float, float]:
    from robustarch.models.arch import build_model
    from robustarch.spaces.space import load_space

    dataset, chans, size = SPACES[space_name]
    space = load_space(space_name)
    arch, _ = space.sample(_fixed(middle_params(space)), in_chans=chans, num_classes=10, input_size=size)
    data = synthetic(dataset, profile["engine_samples"], 64)
    rates = {"plain": [], "engine": []}
    for _ in range(2):  # alternate, medians: shared machines drift
        torch.manual_seed(0)
        rates["plain"].append(
            plain_loop(build_model(arch), data, device, profile["engine_epochs"], profile["batch"], 0.05)
        )
        torch.manual_seed(0)
        rates["engine"].append(
            engine(build_model(arch), data, device, profile["engine_epochs"], profile["batch"], 0.05, compile)
        )
    return statistics.median(rates["engine"]), statistics.median(rates["plain"])


def _fixed(params: dict):
    import optuna

    return optuna.trial.FixedTrial(params)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (one GPU: cuda or cuda:N)")
    parser.add_argument("--spaces", nargs="+", default=list(SPACES), choices=list(SPACES))
    parser.add_argument("--workers", type=int, nargs="+", help="worker counts (default: cpu 1 2, cuda 1 2 4)")
    parser.add_argument("--trials", type=int, help="complete trials per worker (at least 2)")
    parser.add_argument("--compile", action="store_true", help="torch.compile in the engine and the trials")
    parser.add_argument("--skip-trials", action="store_true", help="only the engine-vs-plain-loop rates")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("throughput: no CUDA device on this machine; run it on a GPU machine or with --device cpu")
        return 0
    profile = dict(PROFILES[device.type])
    profile["workers"] = tuple(args.workers or profile["workers"])
    profile["trials"] = max(2, args.trials or profile["trials"])
    if device.type == "cpu":
        torch.set_num_threads(1)  # the engine-vs-loop rates: one thread each, as a worker has
    else:
        torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {_cores()} cores"
    print(f"device {name}; torch {torch.__version__}; profile {profile}")
    print("engine vs plain fp32 loop (training samples/s, steady epochs 2+, same model and device):")
    for space_name in args.spaces:
        ours, plain = engine_vs_plain(space_name, profile, device, args.compile)
        print(
            f"  {space_name:13s} engine {ours:9.0f}  plain {plain:9.0f}  ratio {ours / plain:.2f}x"
            + ("  (target 1.5x)" if device.type == "cuda" else ""),
            flush=True,
        )
    if args.skip_trials:
        return 0
    print(
        f"complete trials per hour (train + attack + record), {profile['trials']} trials per worker "
        "(warm workers; wall clock with process start-up and first trials in brackets):"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for space_name in args.spaces:
            base = None
            for workers in profile["workers"]:
                span_rate, wall_rate, n, where = trials_per_hour(
                    space_name, workers, profile, args.device, Path(tmp), args.compile
                )
                base = base or span_rate
                print(
                    f"  {space_name:13s} {workers} worker(s): {span_rate:8.0f}/h  ({wall_rate:.0f}/h wall, "
                    f"{n} trials)  x{span_rate / base:.2f} vs 1 worker; {where}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
