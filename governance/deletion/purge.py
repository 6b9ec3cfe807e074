"""Erasure of subjects from the files we own: training data, decision logs, and notices.

All or nothing
--------------
:func:`plan_erasure` reads and checks every file first (each training file against the
sha256 its manifests record, each decision-log file as Parquet with a ``subject_id`` column)
and changes nothing; any problem raises before a single row is removed. Only then does
:func:`execute_erasure` rewrite the files that hold the subjects, each atomically, after
checking again that none changed since the plan. The plan names every file and the rows it will
remove, so the caller can record it before executing, and a retry after a crash counts a file
an earlier attempt rewrote (:func:`carry_over`) instead of reporting 0.

Which files are ours
--------------------
A file inside the data folder is ours. A training file outside it (a user's own file, as
``govern models register --data`` records it) is rewritten only when its manifest declares it
owned (``training_data.owned``); otherwise it is left untouched and the plan lists it as
foreign, for an erasure notice to its owner (:func:`external_training_notice`), as for
decision logs we read but do not own (:func:`external_log_notice`).

Erasure policy for training data
--------------------------------
Every version of the model whose training file holds the subject keeps its model artifact
(needed to explain decisions already made), but its training file is rewritten in place
without the subject's rows and its manifest is annotated: ``training_data.sha256`` and
``rows`` now describe the remaining rows, ``original_sha256`` and ``original_rows`` keep the
file as registered (set by the first erasure), and an erasure line in ``notes`` records the
date, the request id, the rows removed and the sha256 before and after. The original sha256 is
an audit fingerprint of data we no longer hold; retraining that version exactly from its
recipe is no longer possible, nor lawful. Keeping an unredacted copy "for reproducibility" is
not an exception Art. 17(3) offers. Manifests are otherwise immutable; this annotation is the
only rewrite.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
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
TRAINING = "training"
LOG = "log"


# -- plan ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileErasure:
    """A file of ours that holds the subjects, as checked by :func:`plan_erasure`.

    Attributes
    ----------
    path : Path
    kind : str
        ``training`` or ``log``.
    rows : int
        Rows of the subjects it holds (to be removed).
    sha256_before : str
        The file's sha256 when planned; execution refuses a file that changed since.
    versions : tuple of (str, str)
        Training files: (name, version) of every manifest that references the file.
    column : str
        The column holding subject ids.
    night : date, optional
        Log files: the night of the partition.
    """

    path: Path
    kind: str
    rows: int
    sha256_before: str
    versions: tuple[tuple[str, str], ...] = ()
    column: str = SUBJECT
    night: date | None = None


@dataclass(frozen=True)
class ForeignTrainingFile:
    """A training file outside the data folder, not declared owned, that holds the subjects:
    left as it is, its owner gets an erasure notice.

    ``rows`` maps each subject id to the 0-based row positions it holds in the file with
    ``sha256`` (kept in memory only; a notice names the subject by salted hash).
    """

    path: Path
    sha256: str
    column: str
    versions: tuple[tuple[str, str], ...]
    rows: dict[str, list[int]]


@dataclass
class ErasurePlan:
    """What erasing the subjects will change, found before anything is changed."""

    files: list[FileErasure] = field(default_factory=list)
    foreign: list[ForeignTrainingFile] = field(default_factory=list)

    def entries(self, root: Path | None = None) -> list[dict[str, Any]]:
        """The files as JSON-ready dicts (paths relative to ``root`` when inside it)."""
        return [_entry(f, root) for f in self.files]


def _entry(f: FileErasure, root: Path | None, after: str | None = None) -> dict[str, Any]:
    return {
        "path": display_path(f.path, root),
        "kind": f.kind,
        "rows": f.rows,
        "sha256_before": f.sha256_before,
        "sha256_after": after,
        "versions": [f"{n} {v}" for n, v in f.versions],
        "night": f.night.isoformat() if f.night else None,
    }


def display_path(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` when it lies inside it, else absolute."""
    path = Path(path).resolve()
    if root is not None and path.is_relative_to(Path(root).resolve()):
        return str(path.relative_to(Path(root).resolve()))
    return str(path)


def _hits(table: pa.Table, column: str, ids: pa.Array) -> pa.ChunkedArray:
    return pc.fill_null(pc.is_in(pc.cast(table[column], pa.string()), value_set=ids), False)


def plan_training_files(
    registry: ModelRegistry,
    names: Iterable[str],
    subject_ids: Sequence[str],
    *,
    data_root: str | Path | None = None,
    id_column: str | None = None,
) -> ErasurePlan:
    """Check the training file of every version of ``names`` and find the subjects' rows.

    Nothing is written. Files inside ``data_root`` (default: the folder holding the registry)
    or declared owned become :class:`FileErasure` entries; other files become
    :class:`ForeignTrainingFile` entries.

    Raises
    ------
    DeletionError
        If a version has training data but no known id column (the subject could not be ruled
        out), or versions sharing a file name different id columns.
    ArtifactHashMismatch
        If a training file differs from the sha256 its manifests record.
    """
    ids = check_ids(subject_ids)
    root = Path(data_root) if data_root is not None else registry.root.parent
    by_path: dict[Path, list[Manifest]] = {}
    for name in names:
        for version in registry.versions(name):
            manifest = registry.manifest(name, version)
            if manifest.training_data is None:
                continue
            path = registry.training_path(name, version).resolve()
            by_path.setdefault(path, []).append(manifest)
    plan = ErasurePlan()
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
        column = columns.pop()
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise DeletionError(f"training data {path} is unreadable: {exc}") from exc
        if column not in table.column_names:
            raise DeletionError(f"id column {column!r} not in {path}")
        hit = _hits(table, column, pa.array(ids))
        n = int(pc.sum(hit).as_py() or 0)
        if not n:
            continue
        versions = tuple((m.name, m.version) for m in manifests)
        ours = path.is_relative_to(root.resolve()) or any(m.training_data.owned for m in manifests)
        if ours:
            plan.files.append(FileErasure(path, TRAINING, n, actual, versions, column))
        else:
            values = table[column].to_pylist()
            rows: dict[str, list[int]] = {}
            for i, v in enumerate(values):
                if v is not None and str(v) in ids:
                    rows.setdefault(str(v), []).append(i)
            plan.foreign.append(ForeignTrainingFile(path, actual, column, versions, rows))
    return plan


def plan_decision_logs(log: ParquetDecisionLog, subject_ids: Sequence[str]) -> ErasurePlan:
    """Check every file of a decision log we own and find the subjects' rows; nothing is
    written.

    Raises
    ------
    DecisionLogError
        If a file has no ``subject_id`` column or is not readable Parquet.
    """
    ids = pa.array(check_ids(subject_ids))
    plan = ErasurePlan()
    for night in log.nights():
        for path in log.files(night):
            try:
                if SUBJECT not in pq.read_schema(path).names:
                    raise DecisionLogError(f"decision log file {path} has no {SUBJECT!r} column")
                col = pq.read_table(path, columns=[SUBJECT])
            except (pa.ArrowException, OSError) as exc:
                raise DecisionLogError(f"decision log file {path} is unreadable: {exc}") from exc
            n = int(pc.sum(_hits(col, SUBJECT, ids)).as_py() or 0)
            if n:
                plan.files.append(
                    FileErasure(path, LOG, n, sha256_file(path), (), SUBJECT, night)
                )
    return plan


def plan_erasure(
    registry: ModelRegistry,
    names: Iterable[str],
    log: ParquetDecisionLog | None,
    subject_ids: Sequence[str],
    *,
    data_root: str | Path | None = None,
    id_column: str | None = None,
) -> ErasurePlan:
    """Every file the erasure of ``subject_ids`` will rewrite (training files of ``names``,
    then the decision log's files), and the foreign training files it will not; every file
    is checked and none is changed. See :func:`plan_training_files` and
    :func:`plan_decision_logs` for what raises."""
    plan = plan_training_files(
        registry, names, subject_ids, data_root=data_root, id_column=id_column
    )
    if log is not None:
        plan.files += plan_decision_logs(log, subject_ids).files
    return plan


# -- execute ---------------------------------------------------------------------------------
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


def execute_erasure(
    plan: ErasurePlan,
    registry: ModelRegistry,
    subject_ids: Sequence[str],
    *,
    request_id: str,
    erased_at: datetime,
    root: Path | None = None,
) -> list[dict[str, Any]]:
    """Rewrite every file of ``plan`` without the subjects' rows.

    Every file is first checked against the sha256 it had when planned; if any changed,
    nothing is written. Each file is then replaced atomically; training files get their
    manifests annotated (see the module docstring). Foreign files are not touched.

    Parameters
    ----------
    plan : ErasurePlan
    registry : ModelRegistry
    subject_ids : sequence of str
    request_id : str
        Written into the manifests' erasure line (never the subject id).
    erased_at : datetime
        Time-zone aware.
    root : Path, optional
        Paths in the result are relative to it when inside it.

    Returns
    -------
    list of dict
        Per file rewritten: path, kind, rows, sha256_before, sha256_after, versions, night.

    Raises
    ------
    ArtifactHashMismatch
        If a file changed since it was planned (nothing is written).
    DeletionError
        If ``erased_at`` is naive or ``request_id`` is malformed.
    """
    ids = pa.array(check_ids(subject_ids))
    check_request_id(request_id)
    if erased_at.utcoffset() is None:
        raise DeletionError(f"erased_at {erased_at!r} must be time-zone aware")
    for f in plan.files:
        actual = sha256_file(f.path) if f.path.exists() else "missing"
        if actual != f.sha256_before:
            raise ArtifactHashMismatch(
                f"{f.kind} file {f.path} changed since the erasure was planned "
                f"(sha256 {actual[:16]}…, planned {f.sha256_before[:16]}…); nothing rewritten"
            )
    stamp = erased_at.astimezone(UTC).isoformat()
    done = []
    for f in plan.files:
        table = pq.read_table(f.path)
        hit = _hits(table, f.column, ids)
        kept = table.filter(pc.invert(hit))
        atomic_write_parquet(kept, f.path)
        after = sha256_file(f.path)
        if f.kind == TRAINING:
            line = (
                f"erasure {stamp} request {request_id}: {f.rows} training rows removed; "
                f"training data sha256 before {f.sha256_before} after {after}; exact retraining "
                "of this version is no longer possible"
            )
            for name, version in f.versions:
                m = registry.manifest(name, version)
                td = m.training_data
                updated = replace(
                    m,
                    training_data=replace(
                        td,
                        sha256=after,
                        rows=kept.num_rows,
                        original_sha256=td.original_sha256 or td.sha256,
                        original_rows=td.registered_rows,
                    ),
                    notes=f"{m.notes}\n{line}" if m.notes else line,
                )
                atomic_write_json(registry.path(name, version) / MANIFEST, updated.to_dict())
        done.append(_entry(f, root, after))
    return done


def carry_over(previous: Sequence[dict[str, Any]], root: Path | None = None) -> list[dict]:
    """The files an earlier, interrupted attempt recorded in its plan and did rewrite.

    A planned file whose sha256 is still the one planned was not rewritten (a new plan finds
    its rows again) and is dropped; one whose bytes changed was rewritten by that attempt and
    is kept, with its planned row count, so the final counts are the true ones.
    """
    kept = []
    for entry in previous:
        path = Path(entry["path"])
        if not path.is_absolute() and root is not None:
            path = Path(root) / path
        now = sha256_file(path) if path.exists() else None
        if now is not None and now != entry["sha256_before"]:
            kept.append({**entry, "sha256_after": entry.get("sha256_after") or now})
    return kept


def summarise_files(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts over rewritten files (as :func:`execute_erasure` returns them), naming each."""
    training = [e for e in entries if e["kind"] == TRAINING]
    logs = [e for e in entries if e["kind"] == LOG]
    return {
        "training_files": len(training),
        "training_rows": sum(e["rows"] for e in training),
        "log_files": len(logs),
        "log_rows": sum(e["rows"] for e in logs),
        "log_nights": len({e["night"] for e in logs}),
        "rewritten": [
            {k: e[k] for k in ("path", "kind", "rows", "sha256_before", "sha256_after")}
            for e in entries
        ],
    }


# -- one kind of file at a time --------------------------------------------------------------
def purge_training_files(
    registry: ModelRegistry,
    name: str,
    subject_ids: Sequence[str],
    *,
    request_id: str,
    erased_at: datetime,
    id_column: str | None = None,
    data_root: str | Path | None = None,
) -> list[ErasureRecord]:
    """Erase the subjects from the training files of every version of ``name`` that are ours.

    Every file is checked before any is rewritten (:func:`plan_training_files`, then
    :func:`execute_erasure`); each file that holds the subjects is rewritten in place without
    their rows (atomically) and every manifest that references it is annotated (see the module
    docstring). Model artifacts are kept. Run it after the candidate is registered. Running it
    again finds nothing and changes nothing. Foreign files (outside ``data_root``, not
    declared owned) are not touched: :func:`plan_training_files` lists them.

    Returns
    -------
    list of ErasureRecord
        One per rewritten file; empty when no file of ours held the subjects.

    Raises
    ------
    DeletionError
        If a version has training data but no known id column, or ``erased_at`` is naive.
    ArtifactHashMismatch
        If a training file differs from the sha256 its manifests record (nothing is rewritten).
    """
    check_request_id(request_id)
    if erased_at.utcoffset() is None:
        raise DeletionError(f"erased_at {erased_at!r} must be time-zone aware")
    plan = plan_training_files(
        registry, [name], subject_ids, data_root=data_root, id_column=id_column
    )
    plan.foreign = []
    done = execute_erasure(
        plan, registry, subject_ids, request_id=request_id, erased_at=erased_at
    )
    return [
        ErasureRecord(
            f.path, tuple(v for _, v in f.versions), f.rows, f.sha256_before, e["sha256_after"]
        )
        for f, e in zip(plan.files, done, strict=True)
    ]


def purge_decision_logs(log: ParquetDecisionLog, subject_ids: Sequence[str]) -> dict[date, int]:
    """Rewrite every decision-log file we own without the subjects' rows.

    Every file is read and checked first; only then is each affected Parquet file replaced
    atomically by a copy without the rows whose ``subject_id`` is listed (same schema and
    column order); files without such rows are not touched, so their bytes stay identical.

    Returns
    -------
    dict of date to int
        Rows removed per night, for every night of the log (0 where the subjects had none).

    Raises
    ------
    DecisionLogError
        If a file has no ``subject_id`` column or is not readable Parquet (nothing is written).
    """
    plan = plan_decision_logs(log, subject_ids)
    removed = {night: 0 for night in log.nights()}
    ids = pa.array(check_ids(subject_ids))
    for f in plan.files:
        table = pq.read_table(f.path)
        atomic_write_parquet(table.filter(pc.invert(_hits(table, SUBJECT, ids))), f.path)
        removed[f.night] += f.rows
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


def external_training_notice(
    foreign: ForeignTrainingFile,
    subject_id: str,
    subject_id_hash: str,
    *,
    request_id: str,
    received_at: datetime,
    due_at: datetime | None = None,
) -> dict[str, Any] | None:
    """What the owner of a training file we may not rewrite must delete, as a JSON-ready dict.

    The rows are named by their 0-based positions in the file whose sha256 the notice gives,
    and the subject only by salted hash: the notice we keep holds no subject id.

    Returns
    -------
    dict or None
        ``format``, ``request_id``, ``source`` (the file and the model versions trained on
        it), ``sha256``, ``id_column``, ``subject_hash``, ``received_at``, ``due_at``,
        ``action``, ``rows`` and ``row_positions``; None when the subject has no row there.
    """
    positions = foreign.rows.get(subject_id)
    if not positions:
        return None
    notice = external_log_notice(
        f"training data {foreign.path} of "
        + ", ".join(f"{n} {v}" for n, v in foreign.versions),
        subject_id_hash,
        [],
        request_id=request_id,
        received_at=received_at,
        due_at=due_at,
    )
    del notice["decision_ids"]
    notice.update(
        sha256=foreign.sha256,
        id_column=foreign.column,
        action=(
            "Erase (GDPR Art. 17) the listed rows (0-based positions in the file with this "
            "sha256) of this training file, including copies and backups you control, and "
            "confirm to the sender by due_at. This product does not own the file and left it "
            "unchanged; register the file as owned to let it erase such rows itself."
        ),
        rows=len(positions),
        row_positions=sorted(positions),
    )
    return notice
