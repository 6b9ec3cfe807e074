"""Model registry: one folder per model version, a skops artifact and a manifest that pins its hash.

Layout::

    <root>/<name>/<version>/model.skops      fitted estimator, saved with skops (never pickle)
    <root>/<name>/<version>/manifest.json    schema, decision rule, training data, recipe, metrics
    <root>/<name>/<version>/action_set.json  optional: what applicants can change
    <root>/<name>/<version>/reference.parquet  imported versions: the sample the import scored
    <root>/<name>/<version>/training.parquet   imported versions: training rows, if given

Which version is deployed is not the registry's to say: the ledger records every deployment
state (governance.store.deployments). Loading verifies the artifact's sha256 against the
manifest and refuses any type outside an allow-list before skops builds a single object.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
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
    MissingTrainingData,
    UnknownModelVersion,
    UntrustedArtifact,
)
from governance.fileio import atomic_write_json, atomic_write_parquet
from governance.hashing import sha256_bytes, sha256_file
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema
from governance.registry.training import CLONE, TrainingRecipe

MANIFEST_FORMAT = "governance.manifest/1"
ARTIFACT = "model.skops"
MANIFEST = "manifest.json"
ACTION_SET = "action_set.json"
REFERENCE = "reference.parquet"
TRAINING = "training.parquet"
CATEGORY_INPUTS = ("text", "category")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Types skops may build beyond its own defaults: estimator internals of the libraries we train.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "xgboost.", "lightgbm.")
# functools.partial builds nothing by itself: the function it wraps is listed, and checked,
# on its own (histogram gradient boosting's encoder wraps sklearn's check_array).
TRUSTED_EXACT = frozenset({"collections.OrderedDict", "functools.partial"})


def is_trusted_type(name: str, extra: Sequence[str] = ()) -> bool:
    """Whether skops may build type ``name``: on the allow-list, or trusted by the user."""
    return name.startswith(TRUSTED_PREFIXES) or name in TRUSTED_EXACT or name in extra


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
    """Reference to the exact rows a version was trained on.

    Attributes
    ----------
    path : str
        The Parquet file; a relative path is relative to the registry.
    sha256, rows : str, int
        The file as it is now (an erasure rewrites it and updates both).
    label : str
    id_column : str, optional
        Column holding subject ids (needed to erase a subject).
    original_sha256, original_rows : str and int, optional
        The file as registered, kept once an erasure first rewrites it; None while untouched.
    owned : bool, default=False
        Declared at registration: this product may rewrite the file to erase a subject even
        though it lies outside the data folder (a file inside it is always ours). An undeclared
        outside file is left to its owner, who gets an erasure notice.
    """

    path: str
    sha256: str
    rows: int
    label: str
    id_column: str | None = None
    original_sha256: str | None = None
    original_rows: int | None = None
    owned: bool = False

    @property
    def registered_rows(self) -> int:
        """Rows of the file as registered, before any erasure."""
        return self.rows if self.original_rows is None else self.original_rows


@dataclass(frozen=True)
class ReferenceData:
    """The sample an imported version was checked on (features only), kept in its folder."""

    path: str
    sha256: str
    rows: int


@dataclass(frozen=True)
class Manifest:
    """Everything needed to trust, use and rebuild one model version.

    Imported versions (:func:`governance.registry.importing.import_fitted`) also record
    ``source`` (where the artifact came from: format, file, sha256, whether pickle was
    trusted, and any fields an importer adds), ``reference_data``, ``trusted_types`` (skops
    types outside the allow-list that the user trusted by name), ``category_input`` (how
    category features reach the estimator: ``"text"`` or pandas ``"category"``) and
    ``import_report`` (what the import checked and which exact paths apply).
    """

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
    parent: str | None = None
    notes: str = ""
    action_set_sha256: str | None = None
    source: Mapping[str, Any] | None = None
    reference_data: ReferenceData | None = None
    trusted_types: tuple[str, ...] = ()
    category_input: str = "text"
    import_report: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.source is not None:
            extra["source"] = dict(self.source)
        if self.reference_data is not None:
            extra["reference_data"] = vars(self.reference_data)
        if self.trusted_types:
            extra["trusted_types"] = list(self.trusted_types)
        if self.category_input != "text":
            extra["category_input"] = self.category_input
        if self.import_report is not None:
            extra["import_report"] = dict(self.import_report)
        return {
            "format": MANIFEST_FORMAT,
            "name": self.name,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "artifact": {"file": ARTIFACT, "sha256": self.artifact_sha256},
            "features": self.schema.to_list(),
            "favourable_class": _jsonable(self.favourable_class),
            "threshold": self.threshold,
            "training_data": None
            if self.training_data is None
            else _training_dict(self.training_data),
            "recipe": self.recipe.to_dict(),
            "metrics": dict(self.metrics),
            "parent": self.parent,
            "notes": self.notes,
            "action_set": None
            if self.action_set_sha256 is None
            else {"file": ACTION_SET, "sha256": self.action_set_sha256},
            **extra,
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
                source=dict(d["source"]) if d.get("source") else None,
                reference_data=ReferenceData(**d["reference_data"])
                if d.get("reference_data")
                else None,
                trusted_types=tuple(str(t) for t in d.get("trusted_types") or ()),
                category_input=str(d.get("category_input") or "text"),
                import_report=dict(d["import_report"]) if d.get("import_report") else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, ManifestError | InvalidName):
                raise
            raise ManifestError(f"malformed manifest: {exc!r}") from exc
        if manifest.category_input not in CATEGORY_INPUTS:
            raise ManifestError(
                f"manifest of {manifest.name} {manifest.version}: category_input "
                f"{manifest.category_input!r}; expected one of {', '.join(CATEGORY_INPUTS)}"
            )
        if not 0.0 < manifest.threshold < 1.0:
            raise ManifestError(
                f"manifest of {manifest.name} {manifest.version}: decision threshold "
                f"{manifest.threshold} must lie strictly between 0 and 1"
            )
        return manifest


def _training_dict(td: TrainingData) -> dict[str, Any]:
    """The training-data entry of a manifest; the optional fields only once they say something,
    so untouched manifests keep their earlier form."""
    out = vars(td).copy()
    for key in ("original_sha256", "original_rows"):
        if out[key] is None:
            del out[key]
    if not out["owned"]:
        del out["owned"]
    return out


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
        source: Mapping[str, Any] | None = None,
        reference: pd.DataFrame | None = None,
        training: pd.DataFrame | None = None,
        training_label: str | None = None,
        training_id_column: str | None = None,
        trusted_types: Sequence[str] = (),
        category_input: str = "text",
        import_report: Mapping[str, Any] | None = None,
    ) -> Manifest:
        """Save a fitted estimator as a new version and return its manifest.

        ``reference`` and ``training`` (with ``training_label``) are written into the version's
        folder and pinned by sha256; the other keywords are recorded in the manifest as given.

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
            ref_data = None
            if reference is not None:
                atomic_write_parquet(reference, staging / REFERENCE)
                ref_data = ReferenceData(
                    f"{name}/{version}/{REFERENCE}", sha256_file(staging / REFERENCE),
                    len(reference),
                )
            if training is not None:
                if training_label is None or training_label not in training.columns:
                    raise ManifestError(
                        f"training data lacks its label column {training_label!r}"
                    )
                atomic_write_parquet(training, staging / TRAINING)
                training_data = TrainingData(
                    f"{name}/{version}/{TRAINING}", sha256_file(staging / TRAINING),
                    len(training), training_label, training_id_column,
                )
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
                source=dict(source) if source is not None else None,
                reference_data=ref_data,
                trusted_types=tuple(trusted_types),
                category_input=category_input,
                import_report=dict(import_report) if import_report is not None else None,
            )
            atomic_write_json(staging / MANIFEST, manifest.to_dict())
            os.replace(staging, final)  # a version appears whole or not at all
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return manifest

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
        if manifest.recipe.estimator == CLONE:
            template = ArtifactTemplate(
                str(path.parent / ARTIFACT), manifest.artifact_sha256, manifest.trusted_types
            )
            manifest = replace(manifest, recipe=replace(manifest.recipe, template=template))
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
        estimator = load_trusted(artifact, manifest.trusted_types)
        _check_fits(manifest, estimator)
        return DecisionModel(
            estimator=estimator,
            schema=manifest.schema,
            favourable_class=manifest.favourable_class,
            threshold=manifest.threshold,
            name=name,
            version=version,
            sha256=manifest.artifact_sha256,
            category_input=manifest.category_input,
        )

    def attach_action_set(self, name: str, version: str, path: str | Path) -> Manifest:
        """Give a version without an action set the one at ``path`` (copied, hash pinned).

        Raises
        ------
        ManifestError
            If the version already has an action set with other content (a version's action
            set is part of the provenance of every score made under it, so it is never
            replaced; register a new version instead).
        """
        manifest = self.manifest(name, version)
        sha = sha256_file(path)
        if manifest.action_set_sha256 is not None:
            if manifest.action_set_sha256 == sha:
                return manifest
            raise ManifestError(
                f"model {name} {version} already has an action set (sha256 "
                f"{manifest.action_set_sha256[:12]}…); register a new version to use another"
            )
        folder = self._dir(name, version)
        shutil.copyfile(path, folder / ACTION_SET)
        updated = replace(manifest, action_set_sha256=sha256_file(folder / ACTION_SET))
        atomic_write_json(folder / MANIFEST, updated.to_dict())
        return updated

    def reference_frame(self, name: str, version: str) -> pd.DataFrame:
        """Read an imported version's reference sample after checking its sha256."""
        ref = self.manifest(name, version).reference_data
        if ref is None:
            raise ManifestError(f"model {name} {version} records no reference sample")
        path = self.root / ref.path
        actual = sha256_file(path) if path.exists() else "missing"
        if actual != ref.sha256:
            raise ArtifactHashMismatch(
                f"reference sample {path} has sha256 {actual[:16]}…, but the manifest "
                f"registers {ref.sha256[:16]}…"
            )
        return pd.read_parquet(path)

    def fit_frame(self, name: str, version: str) -> pd.DataFrame:
        """The rows the version's cost model and explainer background are fitted on: its
        training data, or for a version imported without them its reference sample."""
        manifest = self.manifest(name, version)
        if manifest.training_data is not None:
            return self.training_frame(name, version)
        if manifest.reference_data is not None:
            return self.reference_frame(name, version)
        raise MissingTrainingData(
            f"model {name} {version} records neither training data nor a reference sample "
            "to fit the recourse cost on"
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

    def training_frame(self, name: str, version: str, sha256: str | None = None) -> pd.DataFrame:
        """Read the version's training data after checking its sha256.

        The bytes are read once and hashed before they are parsed, so the frame is exactly the
        file with the checked hash even if an erasure replaces the file meanwhile.

        Parameters
        ----------
        name, version : str
        sha256 : str, optional
            The hash the data must have; default the one the manifest records now.

        Raises
        ------
        ArtifactHashMismatch
            If the file's bytes have another sha256.
        """
        manifest = self.manifest(name, version)
        td = manifest.training_data
        if td is None:
            raise missing_training_data(manifest, "this check")
        expected = sha256 or td.sha256
        path = self.training_path(name, version)
        data = path.read_bytes() if path.exists() else None
        actual = sha256_bytes(data) if data is not None else "missing"
        if actual != expected:
            raise ArtifactHashMismatch(
                f"training data {path} has sha256 {actual[:16]}…, but "
                f"{'the manifest registers' if sha256 is None else 'expected'} {expected[:16]}…"
            )
        return pd.read_parquet(io.BytesIO(data))

    def training_path(self, name: str, version: str) -> Path:
        """Where the version's training data lies; relative paths are relative to the registry."""
        td = self.manifest(name, version).training_data
        if td is None:
            raise ManifestError(f"model {name} {version} records no training data")
        path = Path(td.path)
        return path if path.is_absolute() else self.root / path


class ArtifactTemplate:
    """A registered artifact that a clone recipe refits: loaded once, after its hash check."""

    def __init__(self, path: str, sha256: str, trusted_types: Sequence[str] = ()) -> None:
        self.path, self.sha256, self.trusted_types = path, sha256, tuple(trusted_types)
        self._estimator: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_estimator": None}  # ship the path, not the model

    def load(self) -> Any:
        if self._estimator is None:
            actual = sha256_file(self.path) if Path(self.path).exists() else "missing"
            if actual != self.sha256:
                raise ArtifactHashMismatch(
                    f"artifact {self.path} has sha256 {actual[:16]}…, but the manifest "
                    f"registers {self.sha256[:16]}…; refusing to load"
                )
            self._estimator = load_trusted(self.path, self.trusted_types)
        return self._estimator


def missing_training_data(manifest: Manifest, purpose: str) -> MissingTrainingData:
    """The error for ``purpose`` (say, "the deletion retrain") on a version without training
    data, saying exactly what to supply."""
    how = (
        "import it again as a new version with --training-data FILE --label COLUMN (and "
        "--id-column for deletion requests)"
        if manifest.source is not None
        else "register a version with its training data"
    )
    return MissingTrainingData(
        f"{purpose} needs the rows model {manifest.name} {manifest.version} was trained on, "
        f"and the version records no training data; {how}"
    )


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


def load_trusted(path: str | Path, extra: Sequence[str] = ()) -> Any:
    """Load a skops file, refusing any type outside the allow-list and ``extra``.

    Parameters
    ----------
    path : str or Path
    extra : sequence of str, default=()
        Fully qualified type names the user trusted explicitly, beyond the allow-list.

    Raises
    ------
    UntrustedArtifact
        If the file names a type outside scikit-learn, NumPy, SciPy sparse, XGBoost or LightGBM
        (and ``extra``), or cannot be parsed as a skops file.
    """
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises assorted errors on corrupt zips
        raise UntrustedArtifact(f"{path} is not a readable skops file: {exc}") from exc
    refused = [t for t in untrusted if not is_trusted_type(t, extra)]
    if refused:
        raise UntrustedArtifact(
            f"{path} holds types outside the allow-list: {', '.join(sorted(refused))}"
        )
    try:
        return sio.load(path, trusted=untrusted)
    except Exception as exc:
        raise UntrustedArtifact(f"{path} could not be loaded by skops: {exc}") from exc
