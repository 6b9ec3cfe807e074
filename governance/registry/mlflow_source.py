"""An MLflow model registry as a source of models: read a version safely, and read and move its
aliases and tags.

The client is ``mlflow-skinny`` (the ``mlflow`` extra), imported only when used. A version is
downloaded, its scikit-learn artifact hashed and checked like any imported file (a skops file
with ``skops.io.get_untrusted_types`` before anything is built; a pickle only with
``trust_pickle``) and handed to :func:`governance.registry.importing.import_fitted`, so the
registry keeps its own skops copy and the manifest records where the model came from.

MLflow keeps no alias history: the ledger does (``governance.store.aliases``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from governance.exceptions import ImportRefused

MODELS_PREFIX = "models:/"
TAG_CHECK = "governance.check"
TAG_RATE = "governance.invalidation_rate"
TAG_RUN = "governance.check_run_id"
TAG_MODEL = "governance.model"
PASSED, FAILED = "passed", "failed"


def mask_uri(uri: str) -> str:
    """The URI with any password replaced by ``***`` (it goes into manifests and the ledger)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """Split ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` into (name, alias, version).

    Raises
    ------
    ImportRefused
        If the URI is of another form.
    """
    if not uri.startswith(MODELS_PREFIX):
        raise ImportRefused(
            f"{uri!r} is not an MLflow model URI: use models:/NAME@ALIAS or models:/NAME/VERSION"
        )
    rest = uri[len(MODELS_PREFIX):].strip("/")
    if "@" in rest:
        name, alias = rest.rsplit("@", 1)
        if name and alias and "/" not in name:
            return name, alias, None
    elif rest.count("/") == 1:
        name, version = rest.split("/")
        if name and version.isdigit():
            return name, None, version
    raise ImportRefused(
        f"{uri!r} is not an MLflow model URI: use models:/NAME@ALIAS or models:/NAME/VERSION"
    )


def tracking_uri(uri: str | None = None) -> str:
    """The tracking URI given, else ``$MLFLOW_TRACKING_URI``.

    Raises
    ------
    ImportRefused
        If neither is set.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise ImportRefused("no MLflow tracking server: set MLFLOW_TRACKING_URI")
    return uri


def client(uri: str | None = None) -> Any:
    """An ``MlflowClient`` for the tracking (and registry) server at ``uri``.

    Raises
    ------
    ImportRefused
        If the MLflow client is not installed or no tracking URI is known.
    """
    uri = tracking_uri(uri)
    try:
        from mlflow import MlflowClient
    except ImportError as exc:
        raise ImportRefused(
            'the MLflow client is not installed: pip install -e ".[mlflow]"'
        ) from exc
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@dataclass(frozen=True)
class MlflowModel:
    """A registered model version downloaded from MLflow.

    Attributes
    ----------
    artifact : Path
        The scikit-learn flavour's model file (``model.skops`` or ``model.pkl``).
    source : dict
        What the manifest records: tracking URI (password masked), registered model, version,
        alias, run id, model id, signature and the artifact's sha256.
    """

    artifact: Path
    source: dict[str, Any]


def _read_mlmodel(folder: Path) -> dict[str, Any]:
    import yaml

    path = folder / "MLmodel"
    if not path.is_file():
        raise ImportRefused(f"the MLflow model at {folder.name} has no MLmodel file")
    return yaml.safe_load(path.read_text()) or {}


def download(
    mlflow_client: Any,
    name: str,
    *,
    alias: str | None = None,
    version: str | None = None,
    dest: str | Path | None = None,
) -> MlflowModel:
    """Resolve ``name@alias`` (or ``name/version``) and download its model files.

    Only the scikit-learn flavour is accepted: its file is what the import loads (and checks).

    Raises
    ------
    ImportRefused
        If the version or alias does not exist, or the model has no scikit-learn flavour.
    """
    from mlflow.exceptions import MlflowException

    try:
        if alias is not None:
            mv = mlflow_client.get_model_version_by_alias(name, alias)
        else:
            mv = mlflow_client.get_model_version(name, str(version))
    except MlflowException as exc:
        what = f"{name}@{alias}" if alias is not None else f"{name} version {version}"
        raise ImportRefused(f"MLflow has no model {what}: {exc.message}") from exc
    dest = Path(dest or tempfile.mkdtemp(prefix="mlflow-model-"))
    from mlflow.artifacts import download_artifacts

    folder = Path(
        download_artifacts(
            artifact_uri=f"{MODELS_PREFIX}{name}/{mv.version}",
            dst_path=str(dest),
            tracking_uri=mlflow_client.tracking_uri,
        )
    )
    mlmodel = _read_mlmodel(folder)
    flavor = (mlmodel.get("flavors") or {}).get("sklearn")
    if not flavor or not flavor.get("pickled_model"):
        raise ImportRefused(
            f"MLflow model {name} version {mv.version} has no scikit-learn flavour "
            f"(flavours: {', '.join(sorted(mlmodel.get('flavors') or {})) or 'none'}); log it "
            "with mlflow.sklearn.log_model"
        )
    artifact = folder / flavor["pickled_model"]
    if not artifact.is_file():
        raise ImportRefused(f"MLflow model {name} version {mv.version} lacks {artifact.name}")
    source_uri = mv.source or ""
    model_id = mlmodel.get("model_id") or (
        source_uri.removeprefix(MODELS_PREFIX) if source_uri.startswith(MODELS_PREFIX) else None
    )
    signature = mlmodel.get("signature")
    return MlflowModel(
        artifact=artifact,
        source={
            "kind": "mlflow",
            "tracking_uri": mask_uri(mlflow_client.tracking_uri),
            "registered_model": name,
            "mlflow_version": str(mv.version),
            "alias": alias,
            "run_id": mv.run_id,
            "model_id": model_id,
            "signature": dict(signature) if isinstance(signature, Mapping) else None,
            "serialization_format": flavor.get("serialization_format", "pickle"),
            "mlflow_artifact_sha256": _sha256(artifact),
        },
    )


def _sha256(path: Path) -> str:
    from governance.hashing import sha256_file

    return sha256_file(path)


def import_from_mlflow(
    registry: Any,
    name: str,
    version: str,
    uri: str,
    *,
    tracking: str | None = None,
    mlflow_client: Any = None,
    **kwargs: Any,
) -> Any:
    """Import a version of an MLflow registered model (``models:/NAME@ALIAS`` or
    ``models:/NAME/VERSION``) as ``name`` ``version`` of our registry.

    The downloaded artifact goes through :func:`~governance.registry.importing.import_fitted`
    (skops checked before loading, pickle only with ``trust_pickle``); ``kwargs`` are its
    options (``reference`` is required). The manifest's ``source`` records the MLflow fields
    of :func:`download`.

    Returns
    -------
    ImportReport
    """
    from governance.registry.importing import import_fitted

    reg_name, alias, mlflow_version = parse_model_uri(uri)
    mlflow_client = mlflow_client or client(tracking)
    with tempfile.TemporaryDirectory(prefix="mlflow-model-") as tmp:
        got = download(mlflow_client, reg_name, alias=alias, version=mlflow_version, dest=tmp)
        return import_fitted(
            registry, name, version, got.artifact, source=got.source, **kwargs
        )


def aliases(mlflow_client: Any, name: str) -> dict[str, str]:
    """Every alias of registered model ``name`` and the version it points at now."""
    return {a: str(v) for a, v in (mlflow_client.get_registered_model(name).aliases or {}).items()}


def move_alias(mlflow_client: Any, name: str, alias: str, version: str) -> None:
    """Point ``alias`` of ``name`` at ``version`` (MLflow moves an alias by setting it again)."""
    mlflow_client.set_registered_model_alias(name, alias, str(version))


def write_verdict(
    mlflow_client: Any,
    name: str,
    version: str,
    *,
    passed: bool,
    invalidation_rate: float | None,
    run_id: int | None,
    model: str | None = None,
) -> dict[str, str]:
    """Write the redeploy check's verdict on an MLflow model version as its tags.

    Returns
    -------
    dict
        The tags written: ``governance.check`` (passed/failed), ``governance.invalidation_rate``
        (empty when no recourse was open to re-check), ``governance.check_run_id`` (the
        check's run in our ledger) and ``governance.model`` (the governed name and version).
    """
    tags = {
        TAG_CHECK: PASSED if passed else FAILED,
        TAG_RATE: "" if invalidation_rate is None else f"{invalidation_rate:.6g}",
        TAG_RUN: "" if run_id is None else str(run_id),
    }
    if model is not None:
        tags[TAG_MODEL] = model
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(name, str(version), key, value)
    return tags


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's webhook signature of a delivery: ``v1,`` and the base64 HMAC-SHA256 of
    ``"{delivery_id}.{timestamp}.{body}"`` under the webhook's secret."""
    message = f"{delivery_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_signature(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> tuple[bool, str]:
    """Whether a webhook delivery is signed with ``secret`` and recent.

    The raw body is verified (not re-serialised JSON); a timestamp more than ``tolerance_s``
    from ``now`` is refused so a captured delivery cannot be replayed later.

    Returns
    -------
    ok : bool
    reason : str
        Why it was refused (empty when ok).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    did = lower.get("x-mlflow-delivery-id")
    ts = lower.get("x-mlflow-timestamp")
    sig = lower.get("x-mlflow-signature")
    if not (did and ts and sig):
        return False, "missing signature headers"
    try:
        age = abs((time.time() if now is None else now) - int(ts))
    except ValueError:
        return False, "malformed timestamp"
    if age > tolerance_s:
        return False, f"timestamp {age:.0f} s away from now"
    if not sig.startswith("v1,"):
        return False, "unknown signature version"
    if not hmac.compare_digest(sign(secret, did, ts, body), sig):
        return False, "signature mismatch"
    return True, ""


__all__ = [
    "FAILED",
    "PASSED",
    "TAG_CHECK",
    "TAG_MODEL",
    "TAG_RATE",
    "TAG_RUN",
    "MlflowModel",
    "aliases",
    "client",
    "download",
    "import_from_mlflow",
    "mask_uri",
    "move_alias",
    "parse_model_uri",
    "sign",
    "tracking_uri",
    "verify_signature",
    "write_verdict",
]
