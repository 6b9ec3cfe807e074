"""Deletion requests in the ledger: their lifecycle, the checks run for them, and tombstones.

A request is recorded (``received``), checked against a retrained candidate (``checked``),
and purged (``purged``, the subject id cleared and a tombstone left); a failure keeps the
request open (``failed``) for the next attempt.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.store.models import Decision, DeletionCheck, DeletionRequest, Run, Tombstone
from governance.store.purge import select_in
from governance.store.writes import json_safe

OPEN = ("received", "failed")


def record_deletion_request(
    session: Session,
    subject_id: str,
    subject_hash: str,
    *,
    received_at: datetime,
    due_at: datetime,
    reason: str | None = None,
    model_name: str | None = None,
) -> tuple[str, bool]:
    """Record a request to erase ``subject_id``; an open request for the same subject is reused.

    Returns the request id and whether it is new.
    """
    open_request = session.scalar(
        sa.select(DeletionRequest.request_id).where(
            DeletionRequest.subject_hash == subject_hash,
            DeletionRequest.status.in_(("received", "failed")),
        )
    )
    if open_request is not None:
        return open_request, False
    request_id = f"del-{secrets.token_hex(6)}"
    session.add(
        DeletionRequest(
            request_id=request_id,
            subject_hash=subject_hash,
            subject_id=subject_id,
            reason=reason,
            model_name=model_name,
            received_at=received_at,
            due_at=due_at,
            status="received",
            counts={},
        )
    )
    session.flush()
    return request_id, True


def pending_requests(session: Session) -> int:
    """How many requests are still open (received, or failed and to be retried)."""
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(DeletionRequest)
        .where(DeletionRequest.status.in_(OPEN))
    )


def requests_to_process(
    session: Session, request_ids: Sequence[str] | None = None
) -> list[DeletionRequest]:
    """The given requests (else every open one) that still name their subject, oldest first."""
    stmt = sa.select(DeletionRequest)
    if request_ids:
        stmt = stmt.where(DeletionRequest.request_id.in_(list(request_ids)))
    else:
        stmt = stmt.where(DeletionRequest.status.in_(OPEN))
    return [
        r
        for r in session.scalars(stmt.order_by(DeletionRequest.received_at))
        if r.subject_id is not None
    ]


def record_checks(
    session: Session, request_ids: Sequence[str], checks: Sequence[Mapping[str, Any]], run_id: int
) -> None:
    """Replace each request's check rows with ``checks`` and mark it checked by ``run_id``."""
    for request_id in request_ids:
        session.execute(sa.delete(DeletionCheck).where(DeletionCheck.request_id == request_id))
        for c in checks:
            session.add(DeletionCheck(request_id=request_id, run_id=run_id, **c))
        req = session.get(DeletionRequest, request_id)
        req.status, req.run_id = "checked", run_id
        req.counts = json_safe({**(req.counts or {}), "checks": list(checks)})


def recorded_checks(session: Session, request_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The check rows an earlier attempt recorded for these requests, by model name (the
    first request's where several have one), as :func:`record_checks` took them."""
    out: dict[str, dict[str, Any]] = {}
    columns = [c.key for c in DeletionCheck.__table__.columns if c.key not in ("request_id",
                                                                                 "run_id")]
    rows = session.scalars(
        sa.select(DeletionCheck)
        .where(DeletionCheck.request_id.in_(list(request_ids)))
        .order_by(DeletionCheck.request_id)
    )
    for row in rows:
        out.setdefault(row.model_name, {c: getattr(row, c) for c in columns})
    return out


def record_purge_plan(
    session: Session, request_ids: Sequence[str], files: Sequence[Mapping[str, Any]]
) -> None:
    """Keep the files a purge is about to rewrite (path, kind, rows, sha256 before) on each
    request, committed before any is rewritten, so a retry after a crash counts the files
    this attempt rewrote (:func:`governance.deletion.purge.carry_over`)."""
    for request_id in request_ids:
        req = session.get(DeletionRequest, request_id)
        req.counts = json_safe({**(req.counts or {}), "purge_plan": list(files)})


def purge_plan(session: Session, request_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The files an earlier attempt planned to rewrite for these requests (deduplicated by
    path), or an empty list."""
    seen: dict[str, dict[str, Any]] = {}
    for request_id in request_ids:
        req = session.get(DeletionRequest, request_id)
        for entry in (req.counts or {}).get("purge_plan", []) if req else []:
            seen.setdefault(entry["path"], entry)
    return list(seen.values())


def record_tombstones(
    session: Session, request_ids: Sequence[str], counts: Mapping[str, Any], purged_at: datetime
) -> None:
    """Leave a tombstone per request (salted hash, dates, counts) and close the requests:
    status purged, subject id cleared. Call in the purge's transaction."""
    for request_id in request_ids:
        req = session.get(DeletionRequest, request_id)
        session.execute(sa.delete(Tombstone).where(Tombstone.request_id == request_id))
        session.add(
            Tombstone(
                request_id=request_id,
                subject_hash=req.subject_hash,
                received_at=req.received_at,
                purged_at=purged_at,
                counts=json_safe(dict(counts)),
            )
        )
        req.status, req.completed_at, req.subject_id = "purged", purged_at, None


def mark_failed(session: Session, request_ids: Sequence[str], message: str) -> None:
    """Record ``message`` on the requests not yet purged and leave them open for a retry."""
    for request_id in request_ids:
        req = session.get(DeletionRequest, request_id)
        if req.status != "purged":
            req.status, req.error = "failed", message


def decision_ids_of_subjects(session: Session, subject_ids: Sequence[str]) -> set[str]:
    """Decision ids the ledger holds about the subjects."""
    return set(select_in(session, Decision.decision_id, Decision.subject_id, subject_ids))


def subject_decisions_by_log(session: Session, subject_id: str) -> dict[str, list[str]]:
    """The subject's decision ids, grouped by the decision log (as the run recorded it) they
    were read from."""
    rows = session.execute(
        sa.select(Decision.decision_id, Run.parameters)
        .join(Run, Run.id == Decision.run_id)
        .where(Decision.subject_id == subject_id)
    ).all()
    by_log: dict[str, list[str]] = {}
    for decision_id, params in rows:
        by_log.setdefault(str((params or {}).get("log", "")), []).append(decision_id)
    return by_log
