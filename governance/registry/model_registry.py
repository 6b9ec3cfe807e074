"""Model registry: one folder per model version, a skops artifact and a manifest that pins its hash.

Layout::

    <root>/<name>/<version>/model.skops      fitted estimator, saved with skops (never pickle)
    <root>/<name>/<version>/manifest.json    schema, decision rule, training data, recipe, metrics
    <root>/<name>/<version>/action_set.json  optional: what applicants can change
    <root>/<name>/deployments.json           deployment history, newest last

Loading verifies the artifact's sha256 against the manifest and refuses any type outside an
allow-list before skops builds a single object.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from governance.exceptions import (
    ArtifactHashMismatch,
    InvalidName,
    ManifestError,
    UnknownModelVersion,
    UntrustedArtifact,
)
from governance.fileio import atomic_write_json
from governance.hashing import sha256_file
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema
from governance.registry.training import TrainingRecipe

MANIFEST_FORMAT = "governance.manifest/1"
ARTIFACT = "model.skops"
MANIFEST = "manifest.json"
ACTION_SET = "action_set.json"
DEPLOYMENTS = "deployments.json"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Types skops may build beyond its own defaults: estimator internals of the libraries we train.
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "xgboost.", "lightgbm.")
_TRUSTED_EXACT = frozenset({"collections.OrderedDict"})


def check_name(value: str, what: str = "name") -> str:
    """Return ``value`` if it is a safe registry name or version, else raise InvalidName.

    Names become folder names, so they may hold letters, digits, '.', '_' and '-' only, must
    start with a letter or digit and can never be '.', '..' or contain a path separator.
    """
    if not isinstance(value, str) or not _NAME.match(value) or value in {".", ".."}:
        raise InvalidName(
            f"model {what} {value!r} is not allowed; use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class TrainingData:
    """Reference to the exact rows a version was trained on."""

    path: str
    sha256: str
    rows: int
    label: str
    id_column: str | None = None


@dataclass(frozen=True)
class Manifest:
    """Everything needed to trust, use and rebuild one model version."""

    name: str
    version: str
    created_at: datetime
    artifact_sha256: str
    schema: FeatureSchema
    favourable_class: Any
    threshold: float
    recipe: TrainingRecipe
    training_data: TrainingData | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    deployed_at: datetime | None = None
    parent: str | None = None
    notes: str = ""
    action_set_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "name": self.name,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "deployed_at": self.deployed_at.isoformat() if self.deployed_at else None,
            "artifact": {"file": ARTIFACT, "sha256": self.artifact_sha256},
            "features": self.schema.to_list(),
            "favourable_class": _jsonable(self.favourable_class),
            "threshold": self.threshold,
            "training_data": None if self.training_data is None else vars(self.training_data),
            "recipe": self.recipe.to_dict(),
            "metrics": dict(self.metrics),
            "parent": self.parent,
            "notes": self.notes,
            "action_set": None
            if self.action_set_sha256 is None
            else {"file": ACTION_SET, "sha256": self.action_set_sha256},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Manifest:
        if not isinstance(d, Mapping):
            raise ManifestError(f"a manifest must be a JSON object; got {type(d).__name__}")
        if d.get("format") != MANIFEST_FORMAT:
            raise ManifestError(
                f"manifest format {d.get('format')!r} not supported; expected {MANIFEST_FORMAT!r}"
            )
        try:
            td = d.get("training_data")
            aset = d.get("action_set")
            manifest = cls(
                name=check_name(d["name"]),
                version=check_name(d["version"], "version"),
                created_at=datetime.fromisoformat(d["created_at"]),
                deployed_at=datetime.fromisoformat(d["deployed_at"])
                if d.get("deployed_at")
                else None,
                artifact_sha256=str(d["artifact"]["sha256"]),
                schema=FeatureSchema.from_list(d["features"]),
                favourable_class=d["favourable_class"],
                threshold=float(d["threshold"]),
                recipe=TrainingRecipe.from_dict(d["recipe"]),
                training_data=TrainingData(**td) if td else None,
                metrics=dict(d.get("metrics") or {}),
                parent=d.get("parent"),
                notes=d.get("notes", ""),
                action_set_sha256=aset["sha256"] if aset else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, ManifestError | InvalidName):
                raise
            raise ManifestError(f"malformed manifest: {exc!r}") from exc
        if not 0.0 < manifest.threshold < 1.0:
            raise ManifestError(
                f"manifest of {manifest.name} {manifest.version}: decision threshold "
                f"{manifest.threshold} must lie strictly between 0 and 1"
            )
        return manifest


def _jsonable(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class ModelRegistry:
    """A folder of model versions.

    Parameters
    ----------
    root : str or Path
        Registry folder; created on first registration.

    Examples
    --------
    >>> reg = ModelRegistry(tmp_path)                                 # doctest: +SKIP
    >>> reg.register("credit", "v1", pipeline, schema, recipe)       # doctest: +SKIP
    >>> model = reg.load("credit", "v1")                              # doctest: +SKIP
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- paths -------------------------------------------------------------------------------
    def _dir(self, name: str, version: str | None = None) -> Path:
        path = self.root / check_name(name)
        if version is not None:
            path = path / check_name(version, "version")
        # Belt and braces: names are checked above, but never follow a link out of the root.
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise InvalidName(f"model path {path} escapes the registry folder {self.root}")
        return path

    def path(self, name: str, version: str) -> Path:
        """Folder of one version (which need not exist yet)."""
        return self._dir(name, version)

    # -- writing -----------------------------------------------------------------------------
    def register(
        self,
        name: str,
        version: str,
        estimator: Any,
        schema: FeatureSchema,
        recipe: TrainingRecipe,
        *,
        favourable_class: Any = 1,
        threshold: float = 0.5,
        training_data: TrainingData | None = None,
        metrics: Mapping[str, float] | None = None,
        parent: str | None = None,
        notes: str = "",
        action_set_path: str | Path | None = None,
    ) -> Manifest:
        """Save a fitted estimator as a new version and return its manifest.

        Raises
        ------
        InvalidName
            If ``name`` or ``version`` is not a safe folder name.
        ManifestError
            If the version already exists (versions are immutable) or the favourable class is
            not one of the estimator's classes.
        """
        if favourable_class not in list(getattr(estimator, "classes_", [])):
            raise ManifestError(
                f"favourable class {favourable_class!r} is not a class of the estimator; "
                f"classes: {list(getattr(estimator, 'classes_', []))}"
            )
        if not 0.0 < threshold < 1.0:
            raise ManifestError(f"decision threshold {threshold} must lie strictly between 0 and 1")
        final = self._dir(name, version)
        if final.exists():
            raise ManifestError(f"model {name} version {version} already exists at {final}")
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{version}."))
        try:
            import skops.io as sio  # here, not at import: skops alone takes about a second

            sio.dump(estimator, staging / ARTIFACT)
            aset_sha = None
            if action_set_path is not None:
                shutil.copyfile(action_set_path, staging / ACTION_SET)
                aset_sha = sha256_file(staging / ACTION_SET)
            manifest = Manifest(
                name=name,
                version=version,
                created_at=_now(),
                artifact_sha256=sha256_file(staging / ARTIFACT),
                schema=schema,
                favourable_class=_jsonable(favourable_class),
                threshold=float(threshold),
                recipe=recipe,
                training_data=training_data,
                metrics=dict(metrics or {}),
                parent=parent,
                notes=notes,
                action_set_sha256=aset_sha,
            )
            atomic_write_json(staging / MANIFEST, manifest.to_dict())
            os.replace(staging, final)  # a version appears whole or not at all
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return manifest

    def deploy(self, name: str, version: str, at: datetime | None = None) -> Manifest:
        """Mark ``version`` as the deployed version of ``name`` and return its updated manifest."""
        manifest = self.manifest(name, version)
        when = at or _now()
        updated = replace(manifest, deployed_at=manifest.deployed_at or when)
        atomic_write_json(self._dir(name, version) / MANIFEST, updated.to_dict())
        history = self.deployments(name)
        history.append({"version": version, "deployed_at": when.isoformat()})
        atomic_write_json(self._dir(name) / DEPLOYMENTS, history)
        return updated

    # -- reading -----------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Model names with at least one registered version."""
        if not self.root.exists():
            return []
        return sorted(
            p.name for p in self.root.iterdir()
            if p.is_dir() and _NAME.match(p.name)
            and any((q / MANIFEST).exists() for q in p.iterdir() if q.is_dir())
        )

    def versions(self, name: str) -> list[str]:
        folder = self._dir(name)
        if not folder.exists():
            return []
        found = [p for p in folder.iterdir() if p.is_dir() and (p / MANIFEST).exists()]
        return [p.name for p in sorted(found, key=lambda p: (self._created(p), p.name))]

    @staticmethod
    def _created(folder: Path) -> str:
        try:
            return json.loads((folder / MANIFEST).read_text())["created_at"]
        except (OSError, ValueError, KeyError):
            return ""

    def deployments(self, name: str) -> list[dict[str, str]]:
        path = self._dir(name) / DEPLOYMENTS
        if not path.exists():
            return []
        return json.loads(path.read_text())

    def deployed_version(self, name: str) -> str:
        """The version of ``name`` deployed most recently."""
        history = self.deployments(name)
        if not history:
            raise UnknownModelVersion(f"model {name!r} has no deployed version")
        return history[-1]["version"]

    def manifest(self, name: str, version: str) -> Manifest:
        """Read a version's manifest.

        Raises
        ------
        UnknownModelVersion
            If the name or version is not registered.
        ManifestError
            If the manifest cannot be parsed.
        """
        path = self._dir(name, version) / MANIFEST
        if not path.exists():
            known = self.versions(name)
            raise UnknownModelVersion(
                f"model {name!r} version {version!r} not in registry {self.root}; known: "
                + (", ".join(known) if known else "none")
            )
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise ManifestError(f"manifest {path} is not valid JSON: {exc}") from exc
        manifest = Manifest.from_dict(data)
        if (manifest.name, manifest.version) != (name, version):
            raise ManifestError(
                f"manifest {path} names {manifest.name}/{manifest.version}, not {name}/{version}"
            )
        return manifest

    def load(self, name: str, version: str) -> DecisionModel:
        """Verify and load a version as a :class:`DecisionModel`.

        Raises
        ------
        ArtifactHashMismatch
            If the artifact's bytes differ from the registered sha256.
        UntrustedArtifact
            If the artifact holds a type outside the allow-list.
        """
        manifest = self.manifest(name, version)
        artifact = self._dir(name, version) / ARTIFACT
        if not artifact.exists():
            raise ManifestError(f"artifact {artifact} is missing")
        actual = sha256_file(artifact)
        if actual != manifest.artifact_sha256:
            raise ArtifactHashMismatch(
                f"artifact {artifact} has sha256 {actual[:16]}…, but the manifest registers "
                f"{manifest.artifact_sha256[:16]}…; refusing to load"
            )
        estimator = load_trusted(artifact)
        _check_fits(manifest, estimator)
        return DecisionModel(
            estimator=estimator,
            schema=manifest.schema,
            favourable_class=manifest.favourable_class,
            threshold=manifest.threshold,
            name=name,
            version=version,
            sha256=manifest.artifact_sha256,
        )

    def action_set_path(self, name: str, version: str) -> Path | None:
        """Path of the version's action set after checking its hash, or None if it has none."""
        manifest = self.manifest(name, version)
        if manifest.action_set_sha256 is None:
            return None
        path = self._dir(name, version) / ACTION_SET
        actual = sha256_file(path) if path.exists() else "missing"
        if actual != manifest.action_set_sha256:
            raise ArtifactHashMismatch(
                f"action set {path} has sha256 {actual[:16]}…, but the manifest registers "
                f"{manifest.action_set_sha256[:16]}…"
            )
        return path

    def training_frame(self, name: str, version: str) -> pd.DataFrame:
        """Read the version's training data after checking its sha256."""
        manifest = self.manifest(name, version)
        td = manifest.training_data
        if td is None:
            raise ManifestError(f"model {name} {version} records no training data")
        path = self.training_path(name, version)
        actual = sha256_file(path) if path.exists() else "missing"
        if actual != td.sha256:
            raise ArtifactHashMismatch(
                f"training data {path} has sha256 {actual[:16]}…, but the manifest registers "
                f"{td.sha256[:16]}…"
            )
        return pd.read_parquet(path)

    def training_path(self, name: str, version: str) -> Path:
        """Where the version's training data lies; relative paths are relative to the registry."""
        td = self.manifest(name, version).training_data
        if td is None:
            raise ManifestError(f"model {name} {version} records no training data")
        path = Path(td.path)
        return path if path.is_absolute() else self.root / path


def _check_fits(manifest: Manifest, estimator: Any) -> None:
    """Refuse a manifest that does not describe its artifact: the manifest is not hashed, so
    an edited one must fail here, by name, rather than deep inside a nightly chunk."""
    where = f"manifest of {manifest.name} {manifest.version}"
    classes = list(getattr(estimator, "classes_", []))
    if manifest.favourable_class not in classes:
        raise ManifestError(
            f"{where}: favourable class {manifest.favourable_class!r} is not a class of the "
            f"artifact; classes: {classes}"
        )
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is not None and list(fitted) != manifest.schema.names:
        raise ManifestError(
            f"{where}: features {manifest.schema.names} differ from those the artifact was "
            f"fitted on, {list(fitted)}"
        )


def load_trusted(path: str | Path) -> Any:
    """Load a skops file, refusing any type outside the allow-list.

    Raises
    ------
    UntrustedArtifact
        If the file names a type outside scikit-learn, NumPy, SciPy sparse, XGBoost or LightGBM,
        or cannot be parsed as a skops file.
    """
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises assorted errors on corrupt zips
        raise UntrustedArtifact(f"{path} is not a readable skops file: {exc}") from exc
    refused = [t for t in untrusted if not (t.startswith(_TRUSTED_PREFIXES) or t in _TRUSTED_EXACT)]
    if refused:
        raise UntrustedArtifact(
            f"{path} holds types outside the allow-list: {', '.join(sorted(refused))}"
        )
    try:
        return sio.load(path, trusted=untrusted)
    except Exception as exc:
        raise UntrustedArtifact(f"{path} could not be loaded by skops: {exc}") from exc
