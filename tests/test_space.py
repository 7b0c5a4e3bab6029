"""Search spaces: schema validation and its errors, sampling through Optuna, presets, the CLI."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import optuna
import pytest

from robustarch.errors import UserError
from robustarch.models.arch import build_model, count_params
from robustarch.presets import preset_names
from robustarch.spaces.space import load_space, meta_params
from robustarch.training.data import DATASET_SHAPES

PRESETS = ("digits-cells", "mnist-cells", "cifar-cells", "timm-resnet", "depth-width-grid")


def write(tmp_path, text: str):
    path = tmp_path / "space.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def shape(space) -> dict:
    chans, size, classes = DATASET_SHAPES[space.dataset]
    return {"in_chans": chans, "input_size": size, "num_classes": classes}


def test_all_presets_are_shipped():
    assert set(PRESETS) <= set(preset_names("search_spaces"))


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_samples_and_builds(name):
    """Two sampled architectures of each preset build, run, and match the cheap parameter count."""
    import torch

    space = load_space(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(2):
        trial = study.ask()
        arch, config = space.sample(trial, **shape(space))
        torch.manual_seed(0)
        model = build_model(arch)
        assert meta_params(arch) == count_params(model)
        again = type(arch).from_json(arch.to_json())  # a sampled spec round-trips to the same model
        torch.manual_seed(0)
        rebuilt = build_model(again).state_dict()
        assert again == arch and all(torch.equal(v, rebuilt[k]) for k, v in model.state_dict().items())
        size = arch.input_size
        assert model.eval()(torch.zeros(1, arch.in_chans, size, size)).shape == (1, arch.num_classes)
        assert config.epochs >= 1
        study.tell(trial, 0.0)


def test_digits_cells_counts_and_budget():
    space = load_space("digits-cells")
    # stem 2 × per stage (3 depths × 6|4 widths × 2 cells)
    assert space.n_architectures() == 2 * (3 * 6 * 2) * (3 * 4 * 2)
    assert space.max_params == 400_000
    low, high, n_built, exhaustive = space.param_range(**shape(space))
    assert 0 < low < high and n_built == 48 and not exhaustive


def test_depth_width_grid_matches_parameters_with_grid_sampler():
    """GridSampler visits all 8 points; nets at one target size differ by depth, not by size."""
    space = load_space("depth-width-grid")
    grid = space.grid()
    assert grid == {"depth": [1, 2, 4, 8], "match_params": [40000, 120000]}
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(grid, seed=0))
    seen = {}

    def objective(trial):
        arch, _ = space.sample(trial, **shape(space))
        seen[(trial.params["depth"], trial.params["match_params"])] = arch
        return 0.0

    study.optimize(objective, n_trials=20)  # the grid sampler stops the study after its 8 points
    assert len(seen) == 8 and len(study.trials) == 8
    for (depth, target), arch in seen.items():
        assert arch.depth == 2 * depth
        assert abs(count_params(build_model(arch)) - target) / target < 0.05
    deep, shallow = seen[(8, 40000)], seen[(1, 40000)]
    assert deep.width < shallow.width / 2  # deep-and-thin versus wide-and-shallow


def test_grid_refuses_continuous_ranges():
    with pytest.raises(UserError, match="train_lr.*continuous"):
        load_space("mnist-cells").grid()


def test_width_forms_and_shared_fields(tmp_path):
    path = write(
        tmp_path,
        """
        depth: [1, 2]
        cell: [basic, dwsep]
        stages:
          - width: {min: 8, max: 64, factor: 2}
          - width: {min: 8, max: 64, log: true}
            cell: bottleneck
            se: 0.25
        width_multiplier: [0.5, 2]
    """,
    )
    space = load_space(path)
    assert space.params["stage0_width"].values == (8, 16, 32, 64)
    assert space.params["stage1_width"].log
    trial = optuna.trial.FixedTrial(
        {"depth": 2, "cell": "dwsep", "stage0_width": 16, "stage1_width": 10, "width_multiplier": 2.0}
    )
    arch, _ = space.sample(trial, in_chans=1, num_classes=10, input_size=8)
    assert [(s.depth, s.width, s.cell, s.se) for s in arch.stages] == [
        (2, 32, "dwsep", 0.0),
        (2, 20, "bottleneck", 0.25),
    ]


def test_training_knobs_are_sampled(tmp_path):
    path = write(
        tmp_path,
        """
        stages: [{depth: 1, width: 8}]
        training: {recipe: [standard, pgd], eps: 0.1, lr: {min: 0.01, max: 0.1, log: true},
                   batch_size: [32, 64], train_fraction: [0.5, 1.0]}
    """,
    )
    space = load_space(path)
    trial = optuna.trial.FixedTrial(
        {"train_recipe": "pgd", "train_lr": 0.02, "train_batch_size": 32, "train_train_fraction": 0.5}
    )
    _, config = space.sample(trial, in_chans=1, num_classes=10, input_size=8)
    assert (config.recipe, config.eps, config.lr, config.batch_size, config.train_fraction) == (
        "pgd",
        0.1,
        0.02,
        32,
        0.5,
    )
    assert space.n_architectures() == 1  # training knobs are not architectures


def test_training_length_and_label_noise_are_fixed_or_searched(tmp_path):
    """The temperature knob (training length: `epochs`, or `max_steps` with early stopping off)
    and the label-noise fraction, set in the YAML like any other training field."""
    path = write(
        tmp_path,
        """
        stages: [{depth: 1, width: 8}]
        training: {max_steps: {min: 100, max: 400, step: 100}, label_noise: [0.0, 0.2, 0.4]}
    """,
    )
    space = load_space(path)
    assert space.grid()["train_max_steps"] == [100, 200, 300, 400]
    assert space.grid()["train_label_noise"] == [0.0, 0.2, 0.4]
    trial = optuna.trial.FixedTrial({"train_max_steps": 300, "train_label_noise": 0.2})
    _, config = space.sample(trial, in_chans=1, num_classes=10, input_size=8)
    assert (config.max_steps, config.label_noise, config.patience) == (300, 0.2, None)
    fixed = load_space(write(tmp_path, "stages: [{depth: 1, width: 8}]\ntraining: {max_steps: 50}\n"))
    assert fixed.sample(optuna.trial.FixedTrial({}), in_chans=1, num_classes=10, input_size=8)[1].max_steps == 50


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "stages: [{depth: 1, width: 8, cell: resnet}]",
            r":1: field 'stages\[0\].cell': got 'resnet'; allowed values are 'plain', 'basic', 'bottleneck' or 'dwsep'",
        ),
        (
            "stages:\n  - depth: 1\n    width: 8\n    stride: 3",
            r":4: field 'stages\[0\].stride': got 3; allowed values are 1 or 2",
        ),
        ("stages:\n  - width: 8", r":2: field 'stages\[0\].depth': missing"),
        ("stages:\n  - depth: 1", r":2: field 'stages\[0\].width': missing"),
        ("stages: [{depth: 1, width: {min: 32, max: 8}}]", r":1: field 'stages\[0\].width.max': got 8; must be >= min"),
        (
            "stages: [{depth: 1, width: {min: 8, max: 32, log: true, step: 8}}]",
            r":1: field 'stages\[0\].width': use at most one of step",
        ),
        (
            "stages: [{depth: 1, width: 8}]\nnorm: instancenorm",
            r":2: field 'norm': got 'instancenorm'; allowed values are 'batchnorm', 'groupnorm', 'layernorm' or 'none'",
        ),
        ("stages: [{depth: 1, width: 8}]\nwidths: 3", r":2: field 'widths': unknown field; allowed fields are"),
        (
            "stages: [{depth: 1, width: 8}]\ntraining:\n  recipe: free",
            r":3: field 'training.recipe': got 'free'; allowed values are 'standard', 'fgsm-rs', 'pgd' or 'trades'",
        ),
        (
            "stages: [{depth: 1, width: 8}]\ntraining:\n  train_fraction: 1.5",
            r":3: field 'training.train_fraction': got 1.5; must be <= 1.0",
        ),
        (
            "stages: [{depth: 1, width: 8}]\ntraining:\n  label_noise: 1.5",
            r":3: field 'training.label_noise': got 1.5; must be <= 1.0",
        ),
        (
            "stages: [{depth: 1, width: 8}]\ntraining:\n  max_steps: 0",
            r":3: field 'training.max_steps': got 0; must be >= 1",
        ),
        (
            "family: timm-resnet\nstages: [{depth: 1, width: 8}]",
            r":2: field 'stages': timm-resnet has exactly 4 stages",
        ),
        (
            "family: vit\nstages: [{depth: 1, width: 8}]",
            r":1: field 'family': got 'vit'; allowed values are 'cells' or 'timm-resnet'",
        ),
        (
            "stages: [{depth: 1, width: 8}]\nkernel_size: true",
            r":2: field 'kernel_size': got True; allowed values are 1, 3, 5 or 7",
        ),
        (
            "stages: [{depth: 1, width: 8}]\nconstraints: {max_params: 0}",
            r":2: field 'constraints.max_params': got 0; must be >= 1",
        ),
    ],
)
def test_schema_errors_name_file_line_field_and_allowed_values(tmp_path, body, message):
    path = write(tmp_path, body + "\n")
    with pytest.raises(UserError, match=str(path).replace(".", r"\.") + message):
        load_space(path)


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """`robustarch ARGS` in this process (a subprocess would pay seconds of imports per call)."""
    from robustarch import cli

    monkeypatch.setattr(sys, "argv", ["robustarch", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, " ".join(captured.out.split()), " ".join(captured.err.split())


def test_cli_spaces_list_show_and_exit_2(tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "spaces", "show", "depth-width-grid")
    assert code == 0, err
    assert "architectures: 8" in out and "(all architectures)" in out
    assert "match_params one of 40000, 120000" in out
    code, out, err = run_cli(monkeypatch, capsys, "spaces", "list")
    assert code == 0, err
    for name in PRESETS:
        assert name in out
    assert "digits-cells 1728 architectures 2k-" in out
    bad = write(tmp_path, "stages: [{depth: 1, width: 8, cell: resnet}]\n")
    code, out, err = run_cli(monkeypatch, capsys, "spaces", "show", str(bad))
    assert code == 2
    assert f"{bad}:1: field 'stages[0].cell': got 'resnet'; allowed values are" in err


def test_cli_exit_status_in_a_real_process(tmp_path):
    bad = write(tmp_path, "stages: [{depth: 1, width: 8}]\nnorm: instancenorm\n")
    failed = subprocess.run(
        [sys.executable, "-m", "robustarch", "spaces", "show", str(bad)], capture_output=True, text=True, timeout=300
    )
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "field 'norm'" in failed.stderr


def test_readme_example_space_is_valid(tmp_path):
    from pathlib import Path

    # the example moved with the README's section to the docs page (issue 23)
    section = (Path(__file__).resolve().parent.parent / "docs" / "spaces.md").read_text()
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    space = load_space(write(tmp_path, example))
    assert space.params["stage1_depth"].values == (1, 2, 4)
    assert space.params["stage1_width"].values == (16, 32, 64, 128)
    assert space.max_flops == 50_000_000
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    arch, config = space.sample(trial, **shape(space))
    assert config.recipe in ("standard", "fgsm-rs", "pgd", "trades") and config.eps == 0.1
    assert build_model(arch) is not None


def test_a_stage_width_left_empty_is_missing_and_an_empty_cell_takes_the_default(tmp_path):
    """`width:` with no value (YAML null) once passed as a width of None (found by hypothesis in
    CI); an empty per-stage `cell:` now falls back to the top-level default."""
    path = tmp_path / "s.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: s
        dataset: digits
        stages:
          - {depth: 1, width: , cell: }
        """)
    )
    with pytest.raises(UserError, match="width.*missing"):
        load_space(str(path))
    path.write_text(path.read_text().replace("width: ,", "width: 8,"))
    space = load_space(str(path))
    arch, _ = space.sample(optuna.trial.FixedTrial({}), in_chans=1, num_classes=10, input_size=8)
    assert arch.stages[0].width == 8 and arch.stages[0].cell
