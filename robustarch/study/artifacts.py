"""Checkpoints as Optuna artifacts: each complete trial uploads its weights, and any trial's
checkpoint can be fetched back by study name and trial number.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from ..errors import UserError
from ..search.checkpoint import save_checkpoint
from .resume import create_or_resume
from .storage import default_artifacts, open_storage


def store_checkpoint(trial, root: Path, model, arch, train_config, info: dict) -> str:
    """Upload `model` (with its spec, training config and `info`) as an artifact of `trial`; returns
    the artifact id, which the trial also records as `checkpoint_artifact`."""
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    root.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(root))
    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint(Path(tmp) / f"trial-{trial.number}.safetensors", model, arch,
                               train_config.to_dict(), info)
        artifact_id = upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)
    trial.set_user_attr("checkpoint_artifact", artifact_id)
    return artifact_id


def download_checkpoint(storage_url: str | None, study_name: str, trial_number: int, dest: str | Path,
                        artifacts: str | Path | None = None) -> Path:
    """Fetch the checkpoint of trial `trial_number` of a study from the artifact store into `dest`."""
    from optuna.artifacts import FileSystemArtifactStore, download_artifact

    study, _ = create_or_resume(open_storage(storage_url), study_name, None)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if trial_number not in trials:
        raise UserError(f"study {study_name!r} has no trial {trial_number} (trials 0-{len(trials) - 1})")
    artifact_id = trials[trial_number].user_attrs.get("checkpoint_artifact")
    if artifact_id is None:
        raise UserError(f"trial {trial_number} of study {study_name!r} has no stored checkpoint "
                        f"(state {trials[trial_number].state.name})")
    stored_root = study.user_attrs.get("artifact_store")  # where the study's workers put them
    if artifacts:
        root = Path(artifacts)
    elif stored_root and Path(stored_root).is_dir():
        root = Path(stored_root)
    else:
        root = default_artifacts(storage_url)
    if not root.is_dir():
        raise UserError(f"artifact store {root} not found; pass --artifacts with the study's checkpoint folder")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{study_name}-trial-{trial_number}.safetensors"
    path.unlink(missing_ok=True)  # Optuna refuses to overwrite; a fresh copy of the same artifact is wanted
    download_artifact(artifact_store=FileSystemArtifactStore(str(root)), file_path=str(path),
                      artifact_id=artifact_id)
    return path
