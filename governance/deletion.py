"""Right to be forgotten: due dates, tombstone hashes, retraining without a subject, and purge.

A deletion request (GDPR Art. 17) runs in this order; the flow in ``flows/`` calls one function
per step and this module does no scheduling, no clock reading and no SQL:

1. :func:`due_date` of the request (one calendar month after receipt).
2. :func:`retrain_without`: the subject's rows leave the training data of the current version,
   the recorded recipe is refitted and the result registered as a *candidate* version (never
   deployed here) with the training-data hashes before and after.
3. The exact invalidation check compares the current and candidate models on every issued
   recourse (:func:`recourse_validity`; reasons and fixed status are the flow's job).
4. Purge, once the candidate exists: :func:`purge_training_files` (policy below),
   :func:`purge_decision_logs` for the Parquet logs we own, :func:`external_log_notice` for a
   read-only log owned by someone else, and the tombstone keeps only :func:`subject_hash`.
5. :func:`scan_for_subject` proves the purge: no file we own still holds the subject's id or
   their feature values (:func:`subject_needles`).

Erasure policy for training data (:func:`purge_training_files`)
---------------------------------------------------------------
Every version of the model whose training file holds the subject keeps its model artifact
(needed to explain decisions already made), but its training file is rewritten in place
without the subject's rows and its manifest is annotated: ``training_data.sha256`` and
``rows`` now describe the remaining rows, and an erasure line in ``notes`` records the date,
the request id, the rows removed and the sha256 before and after. The original sha256 stays in
that line as an audit fingerprint of data we no longer hold; retraining that version exactly
from its recipe is no longer possible, nor lawful. Keeping an unredacted copy "for
reproducibility" is not an exception Art. 17(3) offers. Manifests are otherwise immutable;
this annotation and ``deploy`` are the only rewrites.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import struct
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from governance.decision_log import ID, SUBJECT, DecisionSource, ParquetDecisionLog
from governance.exceptions import (
    ArtifactHashMismatch,
    DecisionLogError,
    DeletionError,
    ManifestError,
)
from governance.hashing import sha256_file
from governance.model import DecisionModel
from governance.registry import MANIFEST, Manifest, ModelRegistry, TrainingData, check_name

DUE_DAYS = 30
"""Nominal length of the Art. 17(1) deadline ("without undue delay and in any event within one
month", Art. 12(3)) for places that cannot do calendar arithmetic, such as a SQL alert on overdue
requests. A calendar month lasts 28 to 31 days; :func:`due_date` is the authoritative date."""

SALT_BYTES = 32
NOTICE_FORMAT = "governance.erasure-notice/1"
# Parent metrics key that records the holdout rule of governance.registration (test share).
HOLDOUT_KEY = "holdout_test_size"
_MIN_SALT = 16
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SCAN_BLOCK = 1 << 22
_NUMBER_TEXT = re.compile(r"[0-9.eE+-]+")
_RETRAIN_NOTE = re.compile(
    r"^deletion retrain of (?P<parent>\S+): (?P<rows>\d+) training rows removed; "
    r"training data sha256 before (?P<before>[0-9a-f]{64}) after (?P<after>[0-9a-f]{64})$",
    re.MULTILINE,
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


# -- dates and tombstones --------------------------------------------------------------------
def due_date(received_at: datetime) -> datetime:
    """Deadline of a request: the same time one calendar month after receipt, in UTC.

    The month is counted on the UTC calendar. When the next month has no such day, the deadline
    is that month's last day (Jan 31 -> Feb 28, or Feb 29 in a leap year; Mar 31 -> Apr 30), as
    Regulation (EEC, Euratom) No 1182/71 Art. 3(2)(c) counts periods expressed in months.

    Parameters
    ----------
    received_at : datetime
        Time of receipt; must carry a time zone.

    Returns
    -------
    datetime
        Time-zone aware, in UTC.

    Raises
    ------
    DeletionError
        If ``received_at`` is naive.

    Examples
    --------
    >>> due_date(datetime(2024, 1, 31, 9, 0, tzinfo=UTC)).isoformat()
    '2024-02-29T09:00:00+00:00'
    """
    if not isinstance(received_at, datetime) or received_at.utcoffset() is None:
        raise DeletionError(
            f"received_at {received_at!r} must be a time-zone aware datetime; got a naive one"
        )
    t = received_at.astimezone(UTC)
    year, month = t.year + t.month // 12, t.month % 12 + 1
    return t.replace(year=year, month=month, day=min(t.day, calendar.monthrange(year, month)[1]))


def subject_hash(subject_id: str, salt: bytes) -> str:
    """Salted hash of a subject id for tombstones: hex HMAC-SHA256 keyed by ``salt``.

    Subject ids are short and guessable (``S00001234``), so a plain hash is as good as the id:
    anyone could hash every candidate id. The salt is a secret kept outside the ledger (a 0600
    file, see :func:`load_or_create_salt`, or a secret store); with it the operator can answer
    "was this person's request carried out?", without it the tombstone names nobody. Losing
    the salt loses that ability, not any data.

    Parameters
    ----------
    subject_id : str
        The subject's id as the decision log writes it.
    salt : bytes
        At least 16 secret bytes.

    Returns
    -------
    str
        64 lowercase hex characters.

    Raises
    ------
    DeletionError
        If the id is empty or not a string, or the salt is shorter than 16 bytes.
    """
    if not isinstance(subject_id, str) or not subject_id:
        raise DeletionError(
            f"subject id must be a non-empty string; got {type(subject_id).__name__} "
            f"of length {len(subject_id) if isinstance(subject_id, str) else 'n/a'}"
        )
    if not isinstance(salt, bytes) or len(salt) < _MIN_SALT:
        raise DeletionError(f"salt must be at least {_MIN_SALT} bytes; got {_describe_salt(salt)}")
    return hmac.new(salt, subject_id.encode("utf-8"), hashlib.sha256).hexdigest()


def _describe_salt(salt: object) -> str:
    return f"{len(salt)} bytes" if isinstance(salt, bytes) else type(salt).__name__


def load_or_create_salt(path: str | Path) -> bytes:
    """Read the tombstone salt, creating it (32 random bytes, mode 0600) on first use.

    Creation is atomic: the bytes go to a private temporary file that is hard-linked into place,
    so two processes starting at once end up with the same salt and nobody reads a half-written
    one.

    Parameters
    ----------
    path : str or Path
        The salt file; keep it out of the ledger and its backups' reach.

    Returns
    -------
    bytes
        The 32-byte salt.

    Raises
    ------
    DeletionError
        If the file is readable or writable by group or others, or does not hold 32 bytes.
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(SALT_BYTES))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process won the race
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise DeletionError(
            f"salt file {path} has mode {mode:04o}; expected 0600 (owner only), it is a secret"
        )
    salt = path.read_bytes()
    if len(salt) != SALT_BYTES:
        raise DeletionError(f"salt file {path} holds {len(salt)} bytes; expected {SALT_BYTES}")
    return salt


def _check_ids(subject_ids: Sequence[str]) -> list[str]:
    # Messages never echo ids: errors end up in run logs, which a purge does not rewrite.
    if isinstance(subject_ids, str | bytes):
        raise DeletionError("subject_ids must be a sequence of ids, not a single string")
    ids = [str(s) for s in subject_ids]
    if not ids or any(not s for s in ids):
        raise DeletionError(
            f"subject_ids must hold at least one id and no empty one; got {len(ids)} ids, "
            f"{sum(not s for s in ids)} empty"
        )
    return sorted(set(ids))


def _check_request_id(request_id: str) -> str:
    if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
        raise DeletionError(
            f"request id {request_id!r} must be 1-128 letters, digits, '.', '_', ':' or '-'"
        )
    return request_id


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
        Training rows dropped (all rows of all requested subjects).
    sha256_before, sha256_after : str
        sha256 of the parent's training file and of the candidate's.
    training_path : Path
        The candidate's training file.
    """

    name: str
    version: str
    parent: str
    manifest: Manifest
    rows_removed: int
    sha256_before: str
    sha256_after: str
    training_path: Path


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


def _atomic_parquet(table: pa.Table | pd.DataFrame, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        if isinstance(table, pd.DataFrame):
            table.reset_index(drop=True).to_parquet(tmp, index=False)
        else:
            pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _id_column(manifest: Manifest, id_column: str | None) -> str:
    column = id_column or (manifest.training_data.id_column if manifest.training_data else None)
    if not column:
        raise DeletionError(
            f"model {manifest.name} {manifest.version} records no id column for its training "
            "data; pass id_column"
        )
    return column


def _subject_mask(frame: pd.DataFrame, column: str, ids: list[str], where: str) -> np.ndarray:
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
    ``<name>-<candidate_version>.parquet``, refit the manifest's recipe on them and register
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
    ids = _check_ids(subject_ids)
    manifest = registry.manifest(name, version)
    td = manifest.training_data
    if td is None:
        raise ManifestError(f"model {name} {version} records no training data")
    column = _id_column(manifest, id_column)
    if registry.path(name, check_name(candidate_version, "version")).exists():
        raise ManifestError(f"model {name} version {candidate_version} already exists")
    frame = registry.training_frame(name, version)  # checks the sha256
    old_path = registry.training_path(name, version)
    mask = _subject_mask(frame, column, ids, str(old_path))
    removed = int(mask.sum())
    if removed == 0:
        return None
    reduced = frame.loc[~mask].reset_index(drop=True)
    new_path = old_path.parent / f"{name}-{candidate_version}.parquet"
    _atomic_parquet(reduced, new_path)
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
    )


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
        recipe.fit(schema, train, train[recipe.label].to_numpy()), schema, fav, manifest.threshold
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


# -- purge -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ErasureRecord:
    """One training file rewritten without the erased subjects.

    Attributes
    ----------
    path : Path
        The training file (rewritten in place).
    versions : tuple of str
        Versions whose manifests reference it (all annotated).
    rows_removed : int
    sha256_before, sha256_after : str
    """

    path: Path
    versions: tuple[str, ...]
    rows_removed: int
    sha256_before: str
    sha256_after: str


def purge_training_files(
    registry: ModelRegistry,
    name: str,
    subject_ids: Sequence[str],
    *,
    request_id: str,
    erased_at: datetime,
    id_column: str | None = None,
) -> list[ErasureRecord]:
    """Erase the subjects from the training files of every version of ``name``.

    Policy (see the module docstring): each training file that holds the subjects is rewritten
    in place without their rows (atomically); every manifest that references it gets the new
    ``sha256`` and ``rows`` and a notes line ``erasure <date> request <id>: <n> training rows
    removed; training data sha256 before <hex> after <hex>; exact retraining of this version is
    no longer possible``. Model artifacts are kept. Run it after the candidate is registered.
    Running it again finds nothing and changes nothing.

    Parameters
    ----------
    registry : ModelRegistry
    name : str
        Model name; every version with training data is examined.
    subject_ids : sequence of str
    request_id : str
        Id of the deletion request, written into the erasure line (never the subject id).
    erased_at : datetime
        Time-zone aware time of the erasure.
    id_column : str, optional
        Overrides each manifest's ``training_data.id_column``.

    Returns
    -------
    list of ErasureRecord
        One per rewritten file; empty when no file held the subjects.

    Raises
    ------
    DeletionError
        If a version has training data but no known id column (the subject could not be
        ruled out), or ``erased_at`` is naive.
    ArtifactHashMismatch
        If a training file differs from the sha256 its manifests record (nothing is rewritten).
    """
    ids = _check_ids(subject_ids)
    _check_request_id(request_id)
    if erased_at.utcoffset() is None:
        raise DeletionError(f"erased_at {erased_at!r} must be time-zone aware")
    by_path: dict[Path, list[Manifest]] = {}
    for version in registry.versions(name):
        manifest = registry.manifest(name, version)
        if manifest.training_data is None:
            continue
        by_path.setdefault(registry.training_path(name, version).resolve(), []).append(manifest)
    plans = []
    for path, manifests in sorted(by_path.items()):
        if not path.exists():
            continue  # nothing held there; the manifest already cannot be retrained
        actual = sha256_file(path)
        for m in manifests:
            if m.training_data.sha256 != actual:
                raise ArtifactHashMismatch(
                    f"training data {path} has sha256 {actual[:16]}…, but {m.name} {m.version} "
                    f"registers {m.training_data.sha256[:16]}…; refusing to rewrite it"
                )
        columns = {_id_column(m, id_column) for m in manifests}
        if len(columns) != 1:
            raise DeletionError(f"versions sharing {path} name different id columns: {columns}")
        table = pq.read_table(path)
        column = columns.pop()
        if column not in table.column_names:
            raise DeletionError(f"id column {column!r} not in {path}")
        hit = pc.is_in(pc.cast(table[column], pa.string()), value_set=pa.array(ids))
        hit = pc.fill_null(hit, False)
        n = int(pc.sum(hit).as_py() or 0)
        if n:
            plans.append((path, manifests, table.filter(pc.invert(hit)), n, actual))
    records = []
    stamp = erased_at.astimezone(UTC).isoformat()
    for path, manifests, kept, n, before in plans:
        _atomic_parquet(kept, path)
        after = sha256_file(path)
        line = (
            f"erasure {stamp} request {request_id}: {n} training rows removed; training data "
            f"sha256 before {before} after {after}; exact retraining of this version is no "
            "longer possible"
        )
        for m in manifests:
            updated = replace(
                m,
                training_data=replace(m.training_data, sha256=after, rows=kept.num_rows),
                notes=f"{m.notes}\n{line}" if m.notes else line,
            )
            _atomic_json(registry.path(m.name, m.version) / MANIFEST, updated.to_dict())
        records.append(ErasureRecord(path, tuple(m.version for m in manifests), n, before, after))
    return records


def _atomic_json(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def purge_decision_logs(log: ParquetDecisionLog, subject_ids: Sequence[str]) -> dict[date, int]:
    """Rewrite every decision-log file we own without the subjects' rows.

    Each affected Parquet file is replaced atomically by a copy without the rows whose
    ``subject_id`` is listed (same schema and column order); files without such rows are not
    touched, so their bytes stay identical. A crash part-way leaves each file either old or
    new, and a rerun finishes the job.

    Parameters
    ----------
    log : ParquetDecisionLog
    subject_ids : sequence of str

    Returns
    -------
    dict of date to int
        Rows removed per night, for every night of the log (0 where the subjects had none).

    Raises
    ------
    DecisionLogError
        If a file has no ``subject_id`` column or is not readable Parquet.
    """
    ids = pa.array(_check_ids(subject_ids))
    removed: dict[date, int] = {}
    for night in log.nights():
        removed[night] = 0
        for path in log.files(night):
            try:
                schema = pq.read_schema(path)
                if SUBJECT not in schema.names:
                    raise DecisionLogError(f"decision log file {path} has no {SUBJECT!r} column")
                col = pq.read_table(path, columns=[SUBJECT])[SUBJECT]
                hit = pc.fill_null(pc.is_in(pc.cast(col, pa.string()), value_set=ids), False)
                n = int(pc.sum(hit).as_py() or 0)
                if n:
                    table = pq.read_table(path)
                    _atomic_parquet(table.filter(pc.invert(hit)), path)
            except (pa.ArrowException, OSError) as exc:
                raise DecisionLogError(f"decision log file {path} is unreadable: {exc}") from exc
            removed[night] += n
    return removed


def subject_decision_ids(
    source: DecisionSource, nights: Sequence[date], subject_ids: Sequence[str]
) -> dict[date, list[str]]:
    """Decision ids of the subjects in a (possibly read-only) log, per night that has any.

    Parameters
    ----------
    source : DecisionSource
        Parquet or SQL decision log.
    nights : sequence of date
    subject_ids : sequence of str

    Returns
    -------
    dict of date to list of str
        Sorted decision ids; nights without the subjects are left out.
    """
    ids = _check_ids(subject_ids)
    found: dict[date, list[str]] = {}
    for night in nights:
        got: list[str] = []
        for chunk in source.iter_night(night):
            if chunk.empty:
                continue
            mine = chunk[SUBJECT].astype(str).isin(ids)
            got.extend(chunk.loc[mine, ID].astype(str))
        if got:
            found[night] = sorted(got)
    return found


def external_log_notice(
    source_description: str,
    subject_id_hash: str,
    decision_ids: Sequence[str],
    *,
    request_id: str,
    received_at: datetime,
    due_at: datetime | None = None,
) -> dict[str, Any]:
    """What the owner of a read-only decision log must delete, as a JSON-ready dict.

    The notice names the rows by decision id and the subject only by their salted hash, so the
    notice itself (which we keep) holds no subject id.

    Parameters
    ----------
    source_description : str
        The log as :meth:`DecisionSource.describe` gives it (passwords hidden).
    subject_id_hash : str
        :func:`subject_hash` of the subject (64 hex characters; a raw id is refused).
    decision_ids : sequence of str
        Rows to delete (may be empty: the owner learns there is nothing to delete).
    request_id : str
    received_at : datetime
        Receipt of the request (time-zone aware).
    due_at : datetime, optional
        Default :func:`due_date` of ``received_at``.

    Returns
    -------
    dict
        ``format``, ``request_id``, ``source``, ``subject_hash``, ``received_at``, ``due_at``
        (ISO 8601, UTC), ``action``, ``rows`` and ``decision_ids`` (sorted, unique).

    Raises
    ------
    DeletionError
        If ``subject_id_hash`` is not 64 lowercase hex characters or the dates are naive.
    """
    if not isinstance(subject_id_hash, str) or not re.fullmatch(r"[0-9a-f]{64}", subject_id_hash):
        raise DeletionError(  # not echoed: it may be the raw id passed by mistake
            "subject hash is not 64 lowercase hex characters; pass subject_hash(id, salt), "
            "never the id itself"
        )
    _check_request_id(request_id)
    due = due_at if due_at is not None else due_date(received_at)
    for label, when in (("received_at", received_at), ("due_at", due)):
        if when.utcoffset() is None:
            raise DeletionError(f"{label} {when!r} must be time-zone aware")
    rows = sorted({str(d) for d in decision_ids})
    return {
        "format": NOTICE_FORMAT,
        "request_id": request_id,
        "source": source_description,
        "subject_hash": subject_id_hash,
        "received_at": received_at.astimezone(UTC).isoformat(),
        "due_at": due.astimezone(UTC).isoformat(),
        "action": (
            "Erase (GDPR Art. 17) every row of this log whose decision_id is listed, including "
            "copies and backups you control, and confirm to the sender by due_at."
        ),
        "rows": len(rows),
        "decision_ids": rows,
    }


# -- proving the purge -----------------------------------------------------------------------
def subject_needles(
    frame: pd.DataFrame,
    subject_ids: Sequence[str],
    *,
    id_column: str = SUBJECT,
    columns: Sequence[str] | None = None,
    min_chars: int = 5,
) -> list[str | float]:
    """What a purge check should look for: the ids and each value only these subjects hold.

    A value shared with anyone else (an income of exactly 50,000, in any column) would be found
    after a correct purge, so only values that appear in the subjects' rows and nowhere in the
    other rows of ``frame`` are returned: numbers as floats, everything else as text. Values
    whose text is shorter than ``min_chars`` (an age of ``37.0``) are left out too: a short
    string turns up by chance in any binary file.

    Parameters
    ----------
    frame : DataFrame
        Data holding the subjects and others (training data, a decision log).
    subject_ids : sequence of str
    id_column : str, default="subject_id"
    columns : sequence of str, optional
        Columns to take values from; default every other column.
    min_chars : int, default=5
        Values are kept only if their shortest text form has this many characters (a number's
        forms are its ``repr`` and, when integral, the integer: ``88.0`` and ``88``).

    Returns
    -------
    list of str or float
        The ids first, then the distinctive values.
    """
    ids = _check_ids(subject_ids)
    mine = _subject_mask(frame, id_column, ids, "the frame")
    needles: list[str | float] = list(ids)
    chosen = list(columns or [c for c in frame.columns if c != id_column])
    # A value anyone else holds in ANY column would be found after a correct purge too (a
    # savings balance equal to someone's checking balance), so compare against all of them.
    others_num: set[float] = set()
    others_text: set[str] = set()
    for c in chosen:
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            others_num.update(col.to_numpy(dtype=float, na_value=np.nan)[~mine].tolist())
        else:
            others_text.update(col.astype(str).to_numpy()[~mine].tolist())
    for c in chosen:
        col = frame[c]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        values = col.to_numpy(dtype=float, na_value=np.nan) if numeric else col.astype(str)
        values = np.asarray(values)
        others = others_num if numeric else others_text
        for v in dict.fromkeys(values[mine].tolist()):
            if v in others or (numeric and not np.isfinite(v)):
                continue
            needle = float(v) if numeric else str(v)
            if min(len(f) for f in _text_forms(needle)) >= min_chars:
                needles.append(needle)
    return needles


def _text_forms(needle: str | float) -> list[str]:
    if isinstance(needle, str):
        return [needle]
    v = float(needle)
    forms = [repr(v)]
    if v.is_integer():
        forms.append(str(int(v)))
    return forms


def _number_regex(form: str) -> str:
    # A number's text counts only as a whole number: 0.0675 is not inside 10.0675, -0.0675,
    # 0.06751 or 0.0675e-3 (other people's values, which a plain substring search would find).
    return rf"(?<![0-9.\-]){re.escape(form)}(?![0-9]|[eE][-+]?[0-9]|\.[0-9])"


def _byte_patterns(needle: str | float) -> list[bytes | re.Pattern[bytes]]:
    """Exact byte strings (text needles, binary doubles) and, for numbers, bounded regexes."""
    if isinstance(needle, str):
        return [needle.encode("utf-8")]
    out: list[bytes | re.Pattern[bytes]] = [
        re.compile(_number_regex(f).encode("ascii")) for f in _text_forms(needle)
    ]
    # Binary doubles: little-endian (NumPy, Parquet PLAIN) and big-endian (SQLite records).
    return out + [struct.pack("<d", float(needle)), struct.pack(">d", float(needle))]


def contains_needle(text: str, needle: str | float) -> bool:
    """Whether ``text`` holds the needle: a text needle anywhere, a number as a whole number.

    Parameters
    ----------
    text : str
    needle : str or float

    Returns
    -------
    bool
    """
    if isinstance(needle, str):
        return needle in text
    return any(re.search(_number_regex(f), text) for f in _text_forms(needle))


def _search_stream(
    chunks: Iterator[bytes], patterns: dict[bytes | re.Pattern[bytes], int]
) -> set[int]:
    found: set[int] = set()
    # Keep enough of each block's end that a match cut by the block boundary, and the bytes
    # that bound a number on either side, are seen whole in the next buffer.
    keep = max((len(p.pattern if isinstance(p, re.Pattern) else p) for p in patterns), default=1)
    keep += 8
    tail = b""
    chunks = iter(chunks)
    chunk = next(chunks, None)
    while chunk is not None:
        following = next(chunks, None)
        buf = tail + chunk
        for p, i in patterns.items():
            if i in found:
                continue
            if isinstance(p, bytes):
                if p in buf:
                    found.add(i)
            else:
                # A match touching the buffer's end may continue in the next block (0.0675|1):
                # leave it to the next buffer, which holds it whole.
                limit = len(buf) if following is None else len(buf) - 1
                if any(m.end() <= limit for m in p.finditer(buf)):
                    found.add(i)
        tail = buf[-keep:]
        chunk = following
    return found


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while block := fh.read(_SCAN_BLOCK):
            yield block


def _cell_hits(values: list[Any], needles: Sequence[str | float], todo: set[int]) -> set[int]:
    """Needles (by index) found among decoded cell values."""
    found: set[int] = set()
    num_set = {
        float(v)
        for v in values
        if isinstance(v, int | float | np.number) and not isinstance(v, bool)
    }
    texts: list[str] | None = None
    for i in todo:
        n = needles[i]
        if not isinstance(n, str) and float(n) in num_set:
            found.add(i)
            continue
        if texts is None:
            texts = [str(v) for v in values if v is not None]
        if any(contains_needle(t, n) for t in texts):
            found.add(i)
    return found


def _parquet_hits(path: Path, needles: Sequence[str | float], todo: set[int]) -> set[int]:
    """Needles found among the decoded cells of a Parquet file, column by column."""
    found: set[int] = set()
    table = pq.read_table(path)
    for name in table.column_names:
        left = todo - found
        if not left:
            break
        col = table[name]
        kind = col.type
        if pa.types.is_dictionary(kind):
            col, kind = pc.cast(col, kind.value_type), kind.value_type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
            texts: list[str] | None = None
            for i in left:
                n = needles[i]
                if not isinstance(n, str):
                    if np.any(values == float(n)):
                        found.add(i)
                elif _NUMBER_TEXT.fullmatch(n):  # other text never occurs in a number
                    texts = texts or [str(v) for v in col.to_pylist() if v is not None]
                    if any(n in t for t in texts):
                        found.add(i)
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            for i in left:
                n = needles[i]
                for f in _text_forms(n):
                    # Arrow's substring search first; a number's hits then checked whole.
                    hit = pc.match_substring(col, f)
                    if not pc.any(hit).as_py():
                        continue
                    cells = pc.filter(col, hit).to_pylist()
                    if any(contains_needle(t, n) for t in cells):
                        found.add(i)
                        break
        else:  # timestamps, booleans, nested values: compare their text
            found |= _cell_hits(
                [None if v is None else str(v) for v in col.to_pylist()], needles, left
            )
    return found


def _sqlite_hits(path: Path, needles: Sequence[str | float], todo: set[int]) -> set[int]:
    found: set[int] = set()
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            quoted = '"' + t.replace('"', '""') + '"'
            for row in conn.execute(f"SELECT * FROM {quoted}"):  # noqa: S608 (names from the db)
                found |= _cell_hits(list(row), needles, todo - found)
                if not todo - found:
                    return found
    finally:
        conn.close()
    return found


def _scan_file(path: Path, needles: Sequence[str | float]) -> set[int]:
    patterns: dict[bytes | re.Pattern[bytes], int] = {}
    for i, n in enumerate(needles):
        for p in _byte_patterns(n):
            patterns.setdefault(p, i)
    found = _search_stream(_file_chunks(path), patterns)
    with open(path, "rb") as fh:
        head = fh.read(16)
    todo = set(range(len(needles))) - found
    if not todo:
        return found
    try:
        if head[:4] == b"PAR1":
            found |= _parquet_hits(path, needles, todo)
        elif head == _SQLITE_MAGIC:
            found |= _sqlite_hits(path, needles, todo)
        elif zipfile.is_zipfile(path):  # skops artifacts, zipped exports
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    with zf.open(info) as member:
                        found |= _search_stream(
                            iter(lambda m=member: m.read(_SCAN_BLOCK), b""), patterns
                        )
    except (pa.ArrowException, sqlite3.Error, zipfile.BadZipFile, OSError):
        pass  # undecodable: the byte scan above is all we can do, and it ran
    return found


def _files(paths: Sequence[str | Path]) -> Iterator[Path]:
    for root in paths:
        root = Path(root)
        if root.is_file() and not root.is_symlink():
            yield root
        elif root.is_dir():
            for folder, _dirs, names in os.walk(root):  # does not follow links out
                for name in sorted(names):
                    p = Path(folder) / name
                    if p.is_file() and not p.is_symlink():
                        yield p


def scan_for_subject(
    paths: Sequence[str | Path], needles: Sequence[str | float]
) -> list[tuple[Path, str]]:
    """Search every file under ``paths`` for any needle; the purge check.

    Each file is searched twice over:

    - raw bytes, for the needle's text (UTF-8; numbers as ``repr`` and, when integral, without
      ``.0``, found only as whole numbers: ``0.0675`` is not found in ``0.06751`` or
      ``10.0675``) and, for numbers, their 8-byte IEEE doubles in both byte orders. This finds
      JSON, CSV, logs, uncompressed Parquet pages, ``.npy`` arrays and rows that SQLite
      deleted but left in free pages (run ``VACUUM`` or ``PRAGMA secure_delete``);
    - decoded content: Parquet cells (every column), every table of a SQLite database through
      SQL (opened read-only), and the members of zip files (skops artifacts) as bytes. A text
      needle matches a cell whose text contains it; a number matches an equal numeric cell
      or a text cell holding its text form as a whole number (:func:`contains_needle`).

    Symbolic links are not followed. Choose needles that only the subject holds
    (:func:`subject_needles`); a common value is found in everyone's rows.

    Parameters
    ----------
    paths : sequence of str or Path
        Files or folders (searched recursively).
    needles : sequence of str or float
        Subject ids and feature values.

    Returns
    -------
    list of (Path, str)
        One entry per file and needle found, the needle as text (``repr`` for numbers),
        sorted; empty when nothing is found.

    Raises
    ------
    DeletionError
        If ``needles`` is empty or holds an empty string or a non-finite number.
    """
    needles = list(needles)
    if not needles:
        raise DeletionError("scan_for_subject needs at least one needle")
    for n in needles:
        bad = (n == "") if isinstance(n, str) else not np.isfinite(float(n))
        if bad:
            raise DeletionError(f"needle {n!r} is empty or not finite")
    hits = set()
    for path in _files(paths):
        for i in _scan_file(path, needles):
            n = needles[i]
            hits.add((path, n if isinstance(n, str) else repr(float(n))))
    return sorted(hits, key=lambda h: (str(h[0]), h[1]))


def read_salt(path: str | Path) -> bytes | None:
    """The tombstone salt if one was ever created, else None (nobody was erased yet)."""
    path = Path(path)
    if not path.exists():
        return None
    return load_or_create_salt(path)
