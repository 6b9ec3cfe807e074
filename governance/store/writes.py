"""Writes to the ledger: runs, model versions, quarantine and per-chunk results, in bulk.

Functions take a Session and never commit; the caller owns the transaction, so a chunk's rows
land together or not at all. Bulk loads go through governance.store.bulk (binary COPY on
PostgreSQL, one prepared executemany on SQLite), never one ORM object per row.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.config import code_version
from governance.exceptions import ArtifactHashMismatch
from governance.registry.model_registry import Manifest
from governance.store import bulk
from governance.store.models import (
    ActionSetRecord,
    Base,
    CostModel,
    Explainer,
    ExplainerChoice,
    IssuedRecourse,
    ModelVersion,
    QualitySettings,
    Quarantine,
    ResultProvenance,
    Run,
    RunChunk,
)

_IN_BATCH = 500  # ids per IN (...) clause: well under every driver's parameter limit


def now() -> datetime:
    return datetime.now(UTC)


# -- model versions and explainers ------------------------------------------------------------
def ensure_model_version(session: Session, manifest: Manifest) -> int:
    """Return the ledger id of a model version, recording it on first use.

    Raises
    ------
    ArtifactHashMismatch
        If the ledger recorded a different artifact hash for the same name and version, i.e.
        the registry's artifact was replaced after decisions were explained with it.
    """
    row = session.scalars(
        sa.select(ModelVersion).where(
            ModelVersion.name == manifest.name, ModelVersion.version == manifest.version
        )
    ).one_or_none()
    if row is not None:
        if row.artifact_sha256 != manifest.artifact_sha256:
            raise ArtifactHashMismatch(
                f"the ledger recorded {manifest.name} {manifest.version} with sha256 "
                f"{row.artifact_sha256[:16]}…, the registry now holds "
                f"{manifest.artifact_sha256[:16]}…"
            )
        return row.id
    row = ModelVersion(
        name=manifest.name,
        version=manifest.version,
        artifact_sha256=manifest.artifact_sha256,
        created_at=manifest.created_at,
        manifest=manifest.to_dict(),
    )
    session.add(row)
    session.flush()
    return row.id


def _ensure(session: Session, model: type, key: dict[str, Any], values: dict[str, Any]) -> int:
    """Id of the row matching ``key``, inserting it first if absent.

    Several Dask workers may record the same configuration at once; the insert runs in a
    savepoint so the loser of that race reads the winner's row instead of failing.
    """
    stmt = sa.select(model.id).filter_by(**key)
    found = session.scalar(stmt)
    if found is not None:
        return found
    try:
        with session.begin_nested():
            row = model(**key, **values)
            session.add(row)
            session.flush()
            return row.id
    except sa.exc.IntegrityError:
        return session.scalar(stmt)


def _canonical_sha(obj: Any) -> str:
    from governance.hashing import sha256_bytes

    return sha256_bytes(json.dumps(json_safe(obj), sort_keys=True, default=str).encode())


def ensure_explainer(session: Session, model_version_id: int, config: Mapping[str, Any]) -> int:
    """Return the id of an explainer configuration, recording it on first use."""
    key = _canonical_sha({"model_version_id": model_version_id, **config})
    return _ensure(
        session,
        Explainer,
        {"config_sha256": key},
        {
            "model_version_id": model_version_id,
            "explainer": config["explainer"],
            "output": config["output"],
            "settings": json_safe(config.get("settings", {})),
            "background_sha256": config.get("background_sha256"),
        },
    )


def ensure_quality_settings(
    session: Session,
    model_version_id: int,
    metric: str,
    body: Mapping[str, Any],
    *,
    explainer_id: int | None = None,
    background_sha256: str | None = None,
) -> int:
    """Return the id of the settings an explanation-quality metric ran with, recording them on
    first use (keyed by their content, so identical settings share a row)."""
    key = _canonical_sha(
        {
            "model_version_id": model_version_id,
            "metric": metric,
            "explainer_id": explainer_id,
            "background_sha256": background_sha256,
            "body": body,
        }
    )
    return _ensure(
        session,
        QualitySettings,
        {"sha256": key},
        {
            "metric": metric,
            "model_version_id": model_version_id,
            "explainer_id": explainer_id,
            "background_sha256": background_sha256,
            "body": json_safe(dict(body)),
        },
    )


def record_explainer_choice(
    session: Session,
    model_version_id: int,
    kind: str,
    *,
    rule: str,
    evidence: Mapping[str, Any],
    sample_rows: int,
    seed: int,
) -> None:
    """Store (or replace) the explainer chosen for a model version, with its evidence."""
    row = session.get(ExplainerChoice, model_version_id)
    if row is None:
        row = ExplainerChoice(model_version_id=model_version_id)
        session.add(row)
    row.kind = kind
    row.rule = rule
    row.evidence = json_safe(dict(evidence))
    row.sample_rows = int(sample_rows)
    row.seed = int(seed)
    row.chosen_at = now()
    session.flush()


def ensure_action_set(
    session: Session, model_version_id: int, body: Mapping[str, Any], sha256: str
) -> int:
    """Return the id of an action set as used for a model version, recording it on first use."""
    return _ensure(
        session,
        ActionSetRecord,
        {"model_version_id": model_version_id, "sha256": sha256},
        {
            "name": str(body.get("name", "")),
            "version": str(body.get("version", "")),
            "body": json_safe(dict(body)),
        },
    )


def ensure_cost_model(session: Session, kind: str, body: Mapping[str, Any], sha256: str) -> int:
    """Return the id of a fitted cost model, recording it on first use.

    The fitted state (quantile knots, spreads) is left out: it is made of training values,
    which may be a person's own, and it is refitted exactly from the version's training data;
    the sha256 pins it.
    """
    kept = {k: v for k, v in dict(body).items() if k != "params"}
    return _ensure(session, CostModel, {"sha256": sha256}, {"kind": kind, "body": json_safe(kept)})


def ensure_provenance(
    session: Session, settings: Mapping[str, Any], code: Mapping[str, Any]
) -> int:
    """Return the id of a result provenance (settings and code), recording it on first use."""
    from governance.provenance import canonical_sha256, provenance_sha256

    return _ensure(
        session,
        ResultProvenance,
        {"sha256": provenance_sha256(settings, code)},
        {
            "settings_sha256": canonical_sha256(settings),
            "settings": json_safe(dict(settings)),
            "code_version": str(code.get("code_version", "")),
            "libraries": json_safe(dict(code.get("libraries") or {})),
        },
    )


# -- runs --------------------------------------------------------------------------------------
RUN_KINDS = ("nightly", "redeploy", "deletion", "fragility")  # what the flows record


def run_key(kind: str, night: date | None = None, model: str | None = None, extra: str = "") -> str:
    """Natural key of a run: a rerun of the same work maps to the same key."""
    parts = [kind, night.isoformat() if night else "-", model or "*"]
    if extra:
        parts.append(extra)
    return ":".join(parts)


def start_run(
    session: Session,
    key: str,
    kind: str,
    *,
    night: date | None = None,
    model_name: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    flow_run_id: str | None = None,
) -> Run:
    """Open (or reopen) the run for ``key`` and mark it running."""
    run = session.scalars(sa.select(Run).where(Run.run_key == key)).one_or_none()
    if run is None:
        run = Run(
            run_key=key,
            kind=kind,
            night=night,
            model_name=model_name,
            status="running",
            parameters=dict(parameters or {}),
            code_version=code_version(),
            started_at=now(),
            attempts=1,
            counts={},
            timings={},
            flow_run_id=flow_run_id,
        )
        session.add(run)
    else:
        run.status = "running"
        run.model_name = model_name
        run.parameters = dict(parameters or {})
        run.code_version = code_version()
        run.started_at = now()
        run.finished_at = None
        run.attempts = (run.attempts or 0) + 1
        run.flow_run_id = flow_run_id
        run.error = None
    session.flush()
    return run


def finish_run(
    session: Session,
    run_id: int,
    status: str,
    *,
    counts: Mapping[str, Any] | None = None,
    timings: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> None:
    run = session.get(Run, run_id)
    run.status = status
    run.finished_at = now()
    if counts is not None:
        run.counts = json_safe(dict(counts))
    if timings is not None:
        run.timings = json_safe(dict(timings))
    run.error = error


def done_chunks(session: Session, run_id: int) -> dict[int, tuple[str, str | None]]:
    """Chunk number -> (rows' content hash, provenance hash) of the chunks whose results are
    committed; a chunk recorded before provenance was kept has None for the second."""
    rows = session.execute(
        sa.select(RunChunk.chunk_no, RunChunk.chunk_sha256, ResultProvenance.sha256)
        .outerjoin(ResultProvenance, ResultProvenance.id == RunChunk.provenance_id)
        .where(RunChunk.run_id == run_id)
    )
    return {int(n): (sha, prov) for n, sha, prov in rows}


def record_chunk(
    session: Session,
    run_id: int,
    chunk_no: int,
    chunk_sha256: str,
    rows: int,
    counts: Mapping[str, Any],
    seconds: float,
    provenance_id: int | None = None,
) -> None:
    session.execute(
        sa.delete(RunChunk).where(RunChunk.run_id == run_id, RunChunk.chunk_no == chunk_no)
    )
    session.add(
        RunChunk(
            run_id=run_id,
            chunk_no=chunk_no,
            chunk_sha256=chunk_sha256,
            rows=rows,
            counts=json_safe(dict(counts)),
            seconds=float(seconds),
            finished_at=now(),
            provenance_id=provenance_id,
        )
    )


def reset_chunks(session: Session, run_id: int) -> None:
    """Forget which chunks were done, so a forced rerun recomputes everything."""
    session.execute(sa.delete(RunChunk).where(RunChunk.run_id == run_id))


def forget_chunks_from(session: Session, run_id: int, n_chunks: int) -> int:
    """Forget chunks numbered ``n_chunks`` and up: the night now has fewer, and their counts
    must not add to the run's. Returns how many were forgotten."""
    return session.execute(
        sa.delete(RunChunk).where(RunChunk.run_id == run_id, RunChunk.chunk_no >= n_chunks)
    ).rowcount


# -- quarantine --------------------------------------------------------------------------------
def replace_quarantine(session: Session, run_id: int, frame: pd.DataFrame) -> int:
    """Replace the run's quarantine records with ``frame`` (validation's output)."""
    session.execute(sa.delete(Quarantine).where(Quarantine.run_id == run_id))
    if frame.empty:
        return 0
    records = frame.assign(run_id=run_id, quarantined_at=now())
    bulk_insert(session, Quarantine.__table__, records)
    return len(frame)


# -- results -----------------------------------------------------------------------------------
Frame = pd.DataFrame | bulk.Rows


def prepare_frames(
    frames: Mapping[str, pd.DataFrame], dialect: sa.Dialect
) -> dict[str, bulk.Rows]:
    """Bind each table's rows ahead of the write transaction (see :func:`bulk.prepare`): on
    SQLite the single writer lock is then held only for the inserts."""
    tables = Base.metadata.tables
    return {name: bulk.prepare(tables[name], frame, dialect) for name, frame in frames.items()}


def replace_rows(
    session: Session,
    frames: Mapping[str, Frame],
    *,
    decision_ids: Sequence[str],
    model_version_id: int | None = None,
    clear: Iterable[str] = (),
) -> None:
    """Write, for the given decisions, the rows of each table in ``frames``.

    Tables marked ``info={"upsert": True}`` (those other tables point to, such as decisions)
    are upserted by primary key, so rows that hang off them survive a rerun; every other table
    has the decisions' rows deleted and inserted again. With ``model_version_id`` only that
    version's rows are replaced, other versions' results for the same decisions stay. Tables
    named in ``clear`` but absent from ``frames`` lose the decisions' rows too (a rerun that no
    longer produces them must not leave rows of other settings behind).
    ``frames`` holds DataFrames or rows bound ahead by :func:`prepare_frames`.
    """
    order = [t for t in Base.metadata.sorted_tables if t.name in frames]
    wiped = [t for t in Base.metadata.sorted_tables if t.name in set(clear) - set(frames)]
    ids = pd.DataFrame({"decision_id": pd.Series(list(decision_ids), dtype=object)})
    for table in reversed(sorted({*order, *wiped}, key=Base.metadata.sorted_tables.index)):
        if table.info.get("upsert") or ids.empty:
            continue
        if model_version_id is not None and "model_version_id" in table.c:
            bulk.delete_keys(session, table, ids.assign(model_version_id=model_version_id))
        else:
            bulk.delete_keys(session, table, ids)
    for table in order:
        if table.info.get("upsert"):
            upsert(session, table, frames[table.name])
        else:
            bulk_insert(session, table, frames[table.name])


def replace_keyed(
    session: Session,
    table: sa.Table,
    frame: Frame,
    *,
    key: str,
    values: Sequence[Any],
    model_version_id: int,
    within: tuple[Any, Any] | None = None,
) -> None:
    """Replace one model version's rows of ``table`` for the given ``key`` values.

    ``within`` is a key range, ``(lo, hi)`` with ``hi`` exclusive and None for an open end,
    that the database itself found ``values`` in (a slice read by range): when no row of the
    version lies in it (or in the whole table, without ``within``), there is nothing to delete
    and the deletes are skipped. Concurrent writers of other ranges do not make each other
    delete.
    """
    values = list(values)
    probe = sa.select(sa.literal(1)).where(table.c.model_version_id == model_version_id)
    lo, hi = within or (None, None)
    if lo is not None:
        probe = probe.where(table.c[key] >= lo)
    if hi is not None:
        probe = probe.where(table.c[key] < hi)
    if values and session.execute(probe.limit(1)).first():
        keys = pd.DataFrame({key: pd.Series(values, dtype=object)})
        bulk.delete_keys(session, table, keys.assign(model_version_id=model_version_id))
    bulk_insert(session, table, frame)


def replace_recourse_rows(
    session: Session,
    table: sa.Table,
    frame: Frame,
    *,
    model_version_id: int,
    read_mark: tuple[Any, ...] | None = None,
    within: tuple[Any, Any] | None = None,
) -> pd.DataFrame:
    """Replace one model version's rows of ``table`` (keyed by recourse_id) with ``frame``,
    keeping only rows whose issued recourse is still in the ledger.

    Takes the erasure guard first: recourse purged since ``frame`` was computed is not written
    back. ``read_mark`` is :func:`erasure_mark` taken before the recourse was read: when no
    purge has committed since, every recourse read is still there and the per-row check is
    skipped. ``frame`` may be rows bound ahead (:func:`bulk.prepare`); ``within`` is the key
    range they were read from (see :func:`replace_keyed`). Returns the rows written.
    """
    erasure_guard(session)
    rows = frame
    frame = frame.frame if isinstance(frame, bulk.Rows) else frame
    if read_mark is None or erasure_mark(session) != read_mark:
        kept = existing(session, IssuedRecourse.recourse_id, frame["recourse_id"].tolist())
        if len(kept) < len(frame):
            frame = rows = frame.loc[frame["recourse_id"].isin(kept)]
    replace_keyed(
        session,
        table,
        rows,
        key="recourse_id",
        values=frame["recourse_id"].tolist(),
        model_version_id=model_version_id,
        within=within,
    )
    return frame


def upsert(session: Session, table: sa.Table, frame: Frame) -> None:
    """Insert rows, updating every non-key column of rows whose primary key exists."""
    if not isinstance(frame, bulk.Rows):
        if frame.empty:
            return
        frame = bulk.prepare(table, frame, session.connection().dialect)
    bulk.upsert(session, frame)


def bulk_insert(session: Session, table: sa.Table, frame: Frame | Iterable[dict]) -> None:
    """Insert many rows into ``table`` in the session's transaction: binary COPY on
    PostgreSQL, one prepared executemany elsewhere (:mod:`governance.store.bulk`)."""
    if isinstance(frame, bulk.Rows):
        bulk.insert(session, frame)
        return
    records = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(list(frame))
    if records.empty:
        return
    bulk.insert(session, bulk.prepare(table, records, session.connection().dialect))


def delete_where_in(session: Session, table: sa.Table, column: str, values: Sequence[Any]) -> int:
    """Delete rows whose ``column`` is in ``values``, in bound-parameter batches."""
    deleted = 0
    for batch in batches(values):
        deleted += session.execute(sa.delete(table).where(table.c[column].in_(batch))).rowcount
    return deleted


def batches(values: Sequence[Any], size: int = _IN_BATCH) -> Iterable[list[Any]]:
    values = list(values)
    for i in range(0, len(values), size):
        yield values[i : i + size]


def json_safe(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    return obj


# -- erasure guard ------------------------------------------------------------------------------
_ERASURE_LOCK = 7_402_612


def erasure_guard(session: Session, *, exclusive: bool = False) -> None:
    """Order this transaction against purges of erased subjects.

    A purge takes the guard exclusively; every write that could bring an erased subject back
    (a nightly chunk, comparisons, validity events computed from rows read earlier) takes it
    shared and then re-checks what it is about to write. On PostgreSQL this is a transaction
    advisory lock; SQLite has one writer at a time, so a first (empty) write takes its lock.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        session.execute(sa.text(f"SELECT {fn}(:k)"), {"k": _ERASURE_LOCK})
    else:
        session.execute(sa.text("DELETE FROM run_chunks WHERE 0 = 1"))


def erasure_mark(session: Session) -> tuple[Any, ...]:
    """A mark that changes whenever a purge commits: the tombstones' count and latest purge
    time (a purge leaves or renews a tombstone per request in its own transaction).

    Take it before reading rows that a later write must not bring back; if it is unchanged
    under :func:`erasure_guard`, nothing read since has been purged.
    """
    from governance.store.models import Tombstone

    count, latest = session.execute(
        sa.select(sa.func.count(), sa.func.max(Tombstone.purged_at))
    ).one()
    return int(count), None if latest is None else str(latest)


def erased_subjects(session: Session, subject_ids: Sequence[str], salt: bytes | None) -> set[str]:
    """Those of ``subject_ids`` whose salted hash has a tombstone (they were erased)."""
    from governance.deletion.requests import subject_hash
    from governance.store.models import Tombstone

    if salt is None or not subject_ids:
        return set()
    by_hash = {subject_hash(s, salt): s for s in set(subject_ids)}
    found: set[str] = set()
    for batch in batches(list(by_hash), 5_000):
        found.update(
            by_hash[h]
            for h in session.scalars(
                sa.select(Tombstone.subject_hash).where(Tombstone.subject_hash.in_(batch))
            )
        )
    return found


def existing(session: Session, column: sa.Column, values: Sequence[Any]) -> set[Any]:
    """Those of ``values`` still present in ``column`` (rows may have been purged meanwhile)."""
    found: set[Any] = set()
    for batch in batches(values, 5_000):
        found.update(session.scalars(sa.select(column).where(column.in_(batch))))
    return found
