"""Checkpoints as Optuna artifacts: each complete trial uploads its weights, and any trial's
checkpoint can be fetched back by study name and trial number.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..errors import UserError
from ..models.checkpoint import file_sha256, save_checkpoint, write_atomic
from .resume import create_or_resume
from .storage import default_artifacts, open_existing


def _atomic_store(root: Path):
    """Optuna's file-system artifact store, writing each artifact atomically (temporary file in the
    store, then renamed): a worker killed mid-upload leaves no partial checkpoint under its id."""
    from optuna.artifacts import FileSystemArtifactStore

    class AtomicFileSystemArtifactStore(FileSystemArtifactStore):
        def write(self, artifact_id, content_body) -> None:
            write_atomic(self._get_filepath(artifact_id), iter(lambda: content_body.read(1 << 20), b""))

    return AtomicFileSystemArtifactStore(str(root))


def store_checkpoint(trial, root: Path, model, arch, train_config, info: dict) -> str:
    """Upload `model` (with its spec, training config and `info`) as an artifact of `trial`; returns
    the artifact id, which the trial records as `checkpoint_artifact`, with the file's SHA-256 as
    `checkpoint_sha256` (checked when the checkpoint is fetched back)."""
    from optuna.artifacts import upload_artifact

    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".upload-") as tmp:  # same disk: no copy across
        path = save_checkpoint(
            Path(tmp) / f"trial-{trial.number}.safetensors", model, arch, train_config.to_dict(), info
        )
        sha256 = file_sha256(path)
        artifact_id = upload_artifact(artifact_store=_atomic_store(root), file_path=str(path), study_or_trial=trial)
    trial.set_user_attr("checkpoint_sha256", sha256)  # first: a trial never links an unchecked checkpoint
    trial.set_user_attr("checkpoint_artifact", artifact_id)
    return artifact_id


def download_checkpoint(
    storage_url: str | None, study_name: str, trial_number: int, dest: str | Path, artifacts: str | Path | None = None
) -> Path:
    """Fetch the checkpoint of trial `trial_number` of a study from the artifact store into `dest`,
    checked against the SHA-256 its trial recorded (a mismatch is refused, naming the stored file)."""
    from optuna.artifacts import FileSystemArtifactStore, download_artifact

    study, _ = create_or_resume(open_existing(storage_url), study_name, None)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if trial_number not in trials:
        raise UserError(f"study {study_name!r} has no trial {trial_number} (trials 0-{len(trials) - 1})")
    artifact_id = trials[trial_number].user_attrs.get("checkpoint_artifact")
    if artifact_id is None:
        raise UserError(
            f"trial {trial_number} of study {study_name!r} has no stored checkpoint "
            f"(state {trials[trial_number].state.name})"
        )
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
    download_artifact(artifact_store=FileSystemArtifactStore(str(root)), file_path=str(path), artifact_id=artifact_id)
    expected = trials[trial_number].user_attrs.get("checkpoint_sha256")  # absent in older studies
    if expected is not None and file_sha256(path) != expected:
        path.unlink(missing_ok=True)
        raise UserError(
            f"{root / artifact_id}: checkpoint of trial {trial_number} of study {study_name!r} is "
            "damaged or replaced (its SHA-256 differs from the one the trial recorded)"
        )
    return path
