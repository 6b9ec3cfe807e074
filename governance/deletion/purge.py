"""Erasure of subjects from the files we own: training data, decision logs, and notices.

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

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from governance.deletion.requests import check_ids, check_request_id, due_date
from governance.deletion.retrain import training_id_column
from governance.exceptions import (
    ArtifactHashMismatch,
    DecisionLogError,
    DeletionError,
)
from governance.fileio import atomic_write_json, atomic_write_parquet
from governance.hashing import sha256_file
from governance.intake.decision_log import ID, SUBJECT, DecisionSource, ParquetDecisionLog
from governance.registry.model_registry import (
    MANIFEST,
    Manifest,
    ModelRegistry,
)

NOTICE_FORMAT = "governance.erasure-notice/1"


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
    ids = check_ids(subject_ids)
    check_request_id(request_id)
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
        columns = {training_id_column(m, id_column) for m in manifests}
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
        atomic_write_parquet(kept, path)
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
            atomic_write_json(registry.path(m.name, m.version) / MANIFEST, updated.to_dict())
        records.append(ErasureRecord(path, tuple(m.version for m in manifests), n, before, after))
    return records


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
    ids = pa.array(check_ids(subject_ids))
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
                    atomic_write_parquet(table.filter(pc.invert(hit)), path)
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
    ids = check_ids(subject_ids)
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
    check_request_id(request_id)
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
