"""Retraining without erased subjects: a candidate version, and what it changes for others.

:func:`retrain_without` drops the subjects' rows from a version's training data, refits its
recorded recipe and registers the result as an undeployed candidate with the training-data
hashes before and after; :func:`recourse_validity` scores issued recourse under both models.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from governance.deletion.requests import check_ids
from governance.exceptions import (
    DeletionError,
    ManifestError,
)
from governance.fileio import atomic_write_parquet
from governance.hashing import sha256_file
from governance.registry.model import DecisionModel
from governance.registry.model_registry import (
    Manifest,
    ModelRegistry,
    TrainingData,
    check_name,
    missing_training_data,
)
from governance.registry.training import TrainingRecipe

# Parent metrics key that records the holdout rule of governance.registration (test share).
HOLDOUT_KEY = "holdout_test_size"


_RETRAIN_NOTE = re.compile(
    r"^deletion retrain of (?P<parent>\S+): (?P<rows>\d+) training rows removed; "
    r"training data sha256 before (?P<before>[0-9a-f]{64}) after (?P<after>[0-9a-f]{64})$",
    re.MULTILINE,
)


# -- retraining ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CandidateVersion:
    """A version retrained without some subjects, registered but not deployed.

    Attributes
    ----------
    name, version : str
        The candidate's registry name and version.
    parent : str
        The version it was derived from.
    manifest : Manifest
        The candidate's manifest as registered.
    rows_removed : int
        Training rows dropped from the parent's file as it is now (all rows of all requested
        subjects): the delta against the previous state, when earlier erasures already
        rewrote that file.
    sha256_before, sha256_after : str
        sha256 of the parent's training file and of the candidate's.
    training_path : Path
        The candidate's training file.
    original_rows_removed : int
        Rows the candidate lacks against the parent's training data as first registered:
        this request's rows plus every earlier erasure's.
    """

    name: str
    version: str
    parent: str
    manifest: Manifest
    rows_removed: int
    sha256_before: str
    sha256_after: str
    training_path: Path
    original_rows_removed: int = 0


def next_candidate_version(registry: ModelRegistry, name: str, parent: str, tag: str) -> str:
    """A free, safe version name for a deletion candidate: ``<parent>-del-<tag>[-<n>]``.

    Parameters
    ----------
    registry : ModelRegistry
    name : str
        Model name.
    parent : str
        Version being retrained.
    tag : str
        Usually the request id; only its letters and digits are kept, at most 12 of them.

    Returns
    -------
    str
        A registry-safe version not yet registered (``-2``, ``-3``, ... added if needed).

    Raises
    ------
    DeletionError
        If ``tag`` has no letter or digit, or 99 candidates with this tag already exist.

    Examples
    --------
    >>> next_candidate_version(ModelRegistry(tmp), "credit", "v1", "req-7f3a9c21")  # doctest: +SKIP
    'v1-del-req7f3a9c21'
    """
    short = re.sub(r"[^A-Za-z0-9]", "", str(tag))[:12]
    if not short:
        raise DeletionError(f"candidate tag {tag!r} has no letter or digit")
    base = f"{check_name(parent, 'version')[: 64 - len(short) - 8]}-del-{short}"
    taken = set(registry.versions(name))
    for n in range(1, 100):
        version = base if n == 1 else f"{base}-{n}"
        if version not in taken and not registry.path(name, version).exists():
            return check_name(version, "version")
    raise DeletionError(f"99 candidate versions named {base!r} exist for model {name!r}")


def training_id_column(manifest: Manifest, id_column: str | None) -> str:
    """The column that holds subject ids in the version's training data: ``id_column`` if
    given, else the one its manifest records."""
    column = id_column or (manifest.training_data.id_column if manifest.training_data else None)
    if not column:
        raise DeletionError(
            f"model {manifest.name} {manifest.version} records no id column for its training "
            "data; pass id_column"
        )
    return column


def subject_mask(frame: pd.DataFrame, column: str, ids: list[str], where: str) -> np.ndarray:
    if column not in frame.columns:
        raise DeletionError(f"id column {column!r} not in {where}; columns: {list(frame.columns)}")
    return frame[column].astype(str).isin(ids).to_numpy()


def retrain_without(
    registry: ModelRegistry,
    name: str,
    version: str,
    subject_ids: Sequence[str],
    *,
    candidate_version: str,
    id_column: str | None = None,
    notes: str = "",
) -> CandidateVersion | None:
    """Retrain ``version`` without the subjects' rows and register the result as a candidate.

    Steps: read the version's training Parquet (sha256 checked against its manifest), drop
    every row whose id is in ``subject_ids``, write the remaining rows next to the old file as
    ``<name>-<candidate_version>.parquet`` (in the data folder's ``training-data`` when the
    old file lies outside the data folder, the registry's parent), refit the manifest's recipe
    on them and register
    the fit as ``candidate_version`` with ``parent=version``, the same schema, favourable
    class and threshold, and the parent's action set copied over. It is not deployed.

    Where the hashes are recorded: the candidate's ``training_data.sha256`` is the hash after
    deletion, and the first line of its ``notes`` reads ``deletion retrain of <parent>: <n>
    training rows removed; training data sha256 before <hex> after <hex>``
    (:func:`read_retrain_note` parses it). Neither the subject ids nor their values are written.

    Metrics: if the parent's metrics record ``holdout_test_size`` (the share held out by
    :func:`governance.registration.register_from_data`), the candidate gets ``test_rows``,
    ``auc`` and ``accuracy`` from the same rule on the reduced data (seeded, stratified split,
    fit on the rest) plus ``holdout_test_size``; otherwise it records no metrics, since numbers
    from a different rule would not be comparable.

    Parameters
    ----------
    registry : ModelRegistry
    name, version : str
        The version to retrain (usually the deployed one).
    subject_ids : sequence of str
        Subjects to remove; ids are compared as strings.
    candidate_version : str
        Version name to register (see :func:`next_candidate_version`).
    id_column : str, optional
        Column holding subject ids; default the manifest's ``training_data.id_column``.
    notes : str, default=""
        Appended after the deletion line.

    Returns
    -------
    CandidateVersion or None
        None when none of the subjects has a training row: most applicants were never in the
        training data, and then nothing needs retraining or checking (the purge still runs).

    Raises
    ------
    DeletionError
        If ``subject_ids`` is empty or no id column is known or present.
    ManifestError
        If the version records no training data or ``candidate_version`` already exists.
    ArtifactHashMismatch
        If the training file's bytes differ from the registered sha256.
    """
    ids = check_ids(subject_ids)
    manifest = registry.manifest(name, version)
    td = manifest.training_data
    if td is None:
        raise missing_training_data(manifest, "the deletion retrain")
    column = training_id_column(manifest, id_column)
    if registry.path(name, check_name(candidate_version, "version")).exists():
        raise ManifestError(f"model {name} version {candidate_version} already exists")
    frame = registry.training_frame(name, version)  # checks the sha256
    old_path = registry.training_path(name, version)
    mask = subject_mask(frame, column, ids, str(old_path))
    removed = int(mask.sum())
    if removed == 0:
        return None
    reduced = frame.loc[~mask].reset_index(drop=True)
    data_root = registry.root.parent.resolve()
    folder = old_path.parent
    if not old_path.resolve().is_relative_to(data_root):
        folder = data_root / "training-data"  # never write into a folder that is not ours
        folder.mkdir(parents=True, exist_ok=True)
    new_path = folder / f"{name}-{candidate_version}.parquet"
    atomic_write_parquet(reduced, new_path)
    sha_after = sha256_file(new_path)
    recipe, schema = manifest.recipe, manifest.schema
    y = reduced[td.label].to_numpy()
    estimator = recipe.fit(schema, reduced, y)
    metrics = _holdout_metrics(manifest, reduced, y)
    note = (
        f"deletion retrain of {version}: {removed} training rows removed; training data "
        f"sha256 before {td.sha256} after {sha_after}"
    )
    candidate = registry.register(
        name,
        candidate_version,
        estimator,
        schema,
        recipe,
        favourable_class=manifest.favourable_class,
        threshold=manifest.threshold,
        training_data=TrainingData(
            _relative(new_path, registry.root), sha_after, len(reduced), td.label, column
        ),
        metrics=metrics,
        parent=version,
        notes=note + (f"\n{notes}" if notes else ""),
        action_set_path=registry.action_set_path(name, version),
        trusted_types=manifest.trusted_types,
        category_input=manifest.category_input,
    )
    return CandidateVersion(
        name=name,
        version=candidate_version,
        parent=version,
        manifest=candidate,
        rows_removed=removed,
        sha256_before=td.sha256,
        sha256_after=sha_after,
        training_path=new_path,
        original_rows_removed=td.registered_rows - len(reduced),
    )


def refit_control(registry: ModelRegistry, name: str, version: str) -> Any:
    """Refit ``version``'s recipe (same estimator, parameters and seed) on its training data
    as it is now, subjects kept: the control a deletion candidate is compared with, so the
    deletion's own effect is told apart from what retraining alone changes.

    Returns
    -------
    estimator
        The fitted estimator (not registered).

    Raises
    ------
    ManifestError
        If the version records no training data.
    ArtifactHashMismatch
        If the training file's bytes differ from the registered sha256.
    """
    manifest = registry.manifest(name, version)
    td = manifest.training_data
    if td is None:
        raise ManifestError(f"model {name} {version} records no training data")
    frame = registry.training_frame(name, version)
    return manifest.recipe.fit(manifest.schema, frame, frame[td.label].to_numpy())


def read_retrain_note(manifest: Manifest) -> dict[str, Any] | None:
    """Parse the deletion line :func:`retrain_without` writes into a candidate's notes.

    Returns
    -------
    dict or None
        ``parent``, ``rows_removed``, ``sha256_before``, ``sha256_after``; None for versions
        not made by :func:`retrain_without`.
    """
    m = _RETRAIN_NOTE.search(manifest.notes or "")
    if m is None:
        return None
    return {
        "parent": m["parent"],
        "rows_removed": int(m["rows"]),
        "sha256_before": m["before"],
        "sha256_after": m["after"],
    }


def _relative(path: Path, root: Path) -> str:
    try:
        return os.path.relpath(path.resolve(), root.resolve())
    except ValueError:  # another drive on Windows
        return str(path.resolve())


def _holdout_metrics(manifest: Manifest, data: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    share = manifest.metrics.get(HOLDOUT_KEY)
    if share is None:
        return {}
    recipe, schema, fav = manifest.recipe, manifest.schema, manifest.favourable_class
    train, test = train_test_split(
        data,
        test_size=float(share),
        random_state=recipe.seed,
        stratify=y if len(np.unique(y)) > 1 else None,
    )
    model = DecisionModel(
        recipe.fit(schema, train, train[recipe.label].to_numpy()), schema, fav, manifest.threshold,
        category_input=manifest.category_input,
    )
    p = model.score(test)
    yt = (test[recipe.label].to_numpy() == fav).astype(int)
    return {
        HOLDOUT_KEY: float(share),
        "test_rows": len(test),
        "auc": round(float(roc_auc_score(yt, p)), 4),
        "accuracy": round(float(accuracy_score(yt, p >= manifest.threshold)), 4),
    }


def recourse_validity(
    current: DecisionModel, candidate: DecisionModel, X_recourse: pd.DataFrame | np.ndarray
) -> pd.DataFrame:
    """Exact invalidation check of issued recourse points: score them under both models.

    Parameters
    ----------
    current, candidate : DecisionModel
        The issuing version and the version retrained without the deleted subjects.
    X_recourse : DataFrame or ndarray of shape (R, n_features)
        Recourse points (the applicant after the issued action), frame or code matrix.

    Returns
    -------
    DataFrame of shape (R, 5)
        ``score_before``, ``score_after``, ``valid_before``, ``valid_after`` (score at least
        the model's threshold) and ``invalidated`` (valid before, not after).
    """
    s0, s1 = current.score(X_recourse), candidate.score(X_recourse)
    v0, v1 = s0 >= current.threshold, s1 >= candidate.threshold
    return pd.DataFrame(
        {
            "score_before": s0,
            "score_after": s1,
            "valid_before": v0,
            "valid_after": v1,
            "invalidated": v0 & ~v1,
        }
    )


def refit_scores(
    model: DecisionModel,
    recipe: TrainingRecipe,
    frame_train: pd.DataFrame,
    y: np.ndarray,
    removed: Iterable[int],
    frame_q: pd.DataFrame,
) -> np.ndarray:
    """Favourable-class scores of ``frame_q`` under the recipe retrained without the training
    rows at positions ``removed``: one exact retrain, one ``predict_proba`` call."""
    keep = np.ones(len(frame_train), dtype=bool)
    keep[list(removed)] = False
    pipe = recipe.fit(model.schema, frame_train[keep], y[keep])
    fav = list(pipe.classes_).index(model.favourable_class)
    return pipe.predict_proba(frame_q)[:, fav]
