"""Property-based tests (hypothesis): arbitrary YAML for search spaces and study recipes, and arbitrary
values for the command line's options, give a valid config or one line of `UserError` (exit 2 from
the CLI), never a traceback. Parsing and validation only: nothing trains here.

Documents are drawn two ways: any YAML value at all, and a shipped preset with a few fields replaced,
added or removed (the schema's own field names, ranges and wrong types), which reaches far deeper
into the validation than random keys do.
"""

from __future__ import annotations

import copy
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from robustarch.errors import UserError
from robustarch.presets import preset_dir

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.sampled_from(
        [
            "plain",
            "basic",
            "relu",
            "batchnorm",
            "digits",
            "cifar10",
            "quick",
            "tpe",
            "random",
            "grid",
            "robust",
            "auc",
            "pgd",
            "standard",
            "",
        ]
    ),
)
NUMBERS = st.one_of(st.integers(-3, 70), st.floats(-2.0, 100.0), st.just(math.nan), st.booleans(), st.text(max_size=3))
RANGES = st.fixed_dictionaries(
    {"min": NUMBERS, "max": NUMBERS}, optional={"step": NUMBERS, "log": SCALARS, "factor": NUMBERS}
)
# values a schema field might well hold: small numbers, small ranges, lists, the words it knows
WORDS = st.sampled_from(
    [
        "plain",
        "basic",
        "bottleneck",
        "relu",
        "gelu",
        "batchnorm",
        "layernorm",
        "digits",
        "mnist",
        "cifar10",
        "quick",
        "quick-cifar",
        "digits-cells",
        "tpe",
        "random",
        "grid",
        "qmc",
        "robust",
        "clean+robust",
        "eps",
        "auc",
        "pgd",
        "standard",
        "sgd",
        "adamw",
        "median",
        "none",
        "cells",
        "timm-resnet",
        "best",
        "last",
    ]
)
PLAUSIBLE = st.one_of(
    st.integers(0, 64),
    st.floats(0.0, 1.0),
    WORDS,
    st.booleans(),
    st.lists(st.integers(1, 64), min_size=1, max_size=3),
    st.lists(WORDS, min_size=1, max_size=3),
    st.fixed_dictionaries(
        {"min": st.integers(1, 8), "max": st.integers(1, 64)},
        optional={"step": st.integers(1, 8), "log": st.booleans()},
    ),
)
VALUES = st.recursive(
    SCALARS | RANGES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def _presets(kind: str) -> list[dict]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(preset_dir(kind).glob("*.yaml"))]


def _keys(doc, found: set) -> set:
    if isinstance(doc, dict):
        for key, value in doc.items():
            found.add(key)
            _keys(value, found)
    elif isinstance(doc, list):
        for value in doc:
            _keys(value, found)
    return found


def _mappings(doc) -> list[dict]:
    """Every mapping inside `doc`, itself included (the places a mutation may touch)."""
    out = [doc] if isinstance(doc, dict) else []
    for value in doc.values() if isinstance(doc, dict) else doc if isinstance(doc, list) else ():
        out += _mappings(value)
    return out


@st.composite
def mutated(draw, kind: str):
    """A preset of `kind` with up to three fields set to another value, or removed."""
    bases = _presets(kind)
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    names = sorted(set().union(*(_keys(b, set()) for b in bases)) | {"min", "max", "step", "log", "factor"})
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(_mappings(doc)))
        how = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]) if target else st.just("add"))
        if how == "add":
            target[draw(st.sampled_from(names) | st.text(max_size=6))] = draw(PLAUSIBLE | VALUES)
        elif how == "delete":
            del target[draw(st.sampled_from(sorted(target)))]
        else:  # mostly a value the field could hold: that reaches past the first check
            target[draw(st.sampled_from(sorted(target)))] = draw(PLAUSIBLE | PLAUSIBLE | VALUES)
    return doc


def _write(folder: Path, doc, n=[0]) -> Path:  # noqa: B006 (a counter: one file per example)
    n[0] += 1
    path = folder / f"doc{n[0]}.yaml"
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def _user_error_or(call):
    """`call()`'s value, or None after a `UserError` of one non-empty line; anything else fails."""
    try:
        value = call()
    except UserError as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message.strip(), repr(message)
        event("refused (UserError)")
        return None
    event("accepted")
    return value


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one in-memory study per example
    return tmp_path_factory.mktemp("docs")


@SETTINGS
@given(doc=mutated("search_spaces") | VALUES | st.text(max_size=40))
def test_any_search_space_yaml_is_valid_or_one_line(folder, doc):
    import optuna

    from robustarch.spaces import load_space
    from robustarch.training import DATASET_SHAPES

    space = _user_error_or(lambda: load_space(_write(folder, doc)))
    if space is None:
        return
    # valid means usable: every parameter samples, and the architecture and training config build
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    chans, size, classes = DATASET_SHAPES[space.dataset]
    arch, train = space.sample(trial, in_chans=chans, num_classes=classes, input_size=size)
    assert len(arch.stages) == len(space.stages) and all(s.depth >= 1 and s.width >= 1 for s in arch.stages)
    assert space.n_architectures() >= 1 and train.epochs >= 1


@SETTINGS
@given(doc=mutated("studies") | VALUES | st.text(max_size=40))
def test_any_study_recipe_yaml_is_valid_or_one_line(folder, doc):
    from robustarch.study import load_recipe, plan, validate_config
    from robustarch.study.config import check_data

    recipe = _user_error_or(lambda: load_recipe(_write(folder, doc)))
    if recipe is None:
        return
    assert recipe.studies and all(name.strip() for name, _ in recipe.studies)
    for _, config in recipe.studies:
        if config.dataset == "digits":  # other datasets need files; their check is test_data's
            _user_error_or(lambda: (validate_config(config), check_data(config)))
    runs = _user_error_or(lambda: plan(recipe, None, {}))
    assert runs is None or [n for n, _ in runs] == [n for n, _ in recipe.studies]


OPTION_TEXT = st.text(max_size=12) | st.sampled_from(
    ["cpu", "cuda", "cuda:0", "cuda:7", "mps", "meta", "cpu:0", "cuda:-1", "xla", "", " "]
)


@SETTINGS
@given(
    threads=st.none() | st.integers(),
    timeout=st.none() | st.floats(allow_nan=True),
    device=st.none() | OPTION_TEXT,
    env=st.none() | st.text(max_size=6),
)
def test_any_shared_option_values_are_accepted_or_one_line(threads, timeout, device, env):
    from robustarch.terminal import check_options

    saved = os.environ.pop("ROBUSTARCH_THREADS", None)
    if env is not None and "\0" not in env:
        os.environ["ROBUSTARCH_THREADS"] = env
    try:
        ok = _user_error_or(lambda: check_options(threads=threads, timeout=timeout, device=device) or True)
    finally:
        os.environ.pop("ROBUSTARCH_THREADS", None)
        if saved is not None:
            os.environ["ROBUSTARCH_THREADS"] = saved
    if ok:  # accepted values are the ones the library can use
        assert threads is None or threads >= 1
        assert timeout is None or (timeout > 0 and not math.isnan(timeout))
        assert device is None or device.split(":")[0] in ("cpu", "cuda", "mps")


@SETTINGS
@given(name=st.text(max_size=600), other=st.text(max_size=600))
def test_any_study_name_is_one_safe_file_name_or_one_line(name, other):
    from robustarch.names import MAX_STEM, check_study_name, file_stem
    from robustarch.study import plan

    runs = _user_error_or(lambda: plan(None, name, {}))
    if runs is None:
        assert not name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name)
    stem = file_stem(name)
    assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", stem) and len(stem) <= MAX_STEM + 9
    assert (Path("reports") / f"{stem}.html").parent == Path("reports")  # never leaves its folder
    if name != other:
        assert stem != file_stem(other)  # two studies never share a report
    if name.strip() and runs is not None:
        assert check_study_name(name) == name


@SETTINGS
@given(
    gpus=st.none()
    | st.text(max_size=10)
    | st.lists(st.integers(-2, 5), max_size=4).map(lambda ids: ",".join(map(str, ids))),
    per_gpu=st.integers(1, 3),
)
def test_any_gpu_list_is_parsed_or_one_line(gpus, per_gpu):
    from robustarch.terminal import parse_gpus

    ids = _user_error_or(lambda: parse_gpus(gpus, per_gpu, visible=2))
    assert ids is None or all(0 <= i < 2 for i in ids)


ENQUEUE_KEYS = st.sampled_from(
    [
        "stem_width",
        "stage0_depth",
        "stage0_cell",
        "stage0_width",
        "stage1_depth",
        "stage1_cell",
        "stage1_width",
        "act",
        "depth",
    ]
) | st.text(max_size=5)


@SETTINGS
@given(items=st.lists(st.dictionaries(ENQUEUE_KEYS, PLAUSIBLE | SCALARS, max_size=4), max_size=3) | VALUES)
def test_any_enqueue_file_lies_in_the_space_or_one_line(folder, items):
    import optuna

    from robustarch.spaces import load_space
    from robustarch.study import load_enqueue_file

    space = load_space("digits-cells")
    baselines = _user_error_or(lambda: load_enqueue_file(_write(folder, items), space))
    for params in baselines or []:  # accepted: Optuna takes every value as it is, inside the space
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        study.enqueue_trial(params)
        trial = study.ask()
        arch, _ = space.sample(trial, in_chans=1, num_classes=10, input_size=8)
        assert all(trial.params[k] == v for k, v in params.items())


@pytest.mark.parametrize(
    "args, needle",
    [
        (("search", "--threads", "0"), "--threads 0"),
        (("report", "--compare", "t", "t"), "two different studies"),
        (("search", "--study", ""), "must not be empty"),
    ],
)
def test_real_cli_processes_end_in_one_line_and_exit_2(tmp_path, args, needle):
    env = {**os.environ, "GIT_PYTHON_REFRESH": "quiet", "ROBUSTARCH_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "robustarch", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], (proc.returncode, proc.stderr)
    assert list(tmp_path.iterdir()) == []  # nothing stored, no report folder
