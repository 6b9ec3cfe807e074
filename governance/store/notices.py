"""Reason statements and notices in the ledger: reviewed statements per model version, the
notices issued, which are overdue, and how long an erased applicant's notices are kept.

Statements are never edited in place: setting one supersedes the current statement for the
same (feature, direction), which stays with its reviewer and dates.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.store.models import (
    ActionSetRecord,
    Decision,
    IssuedRecourse,
    ModelVersion,
    Notice,
    Reason,
    ReasonStatement,
    RecourseCheck,
    Tombstone,
)

RETENTION_MONTHS = 25  # Regulation B 1002.12(b)(1)
# Legal ground for keeping an erased applicant's notices (printed on the tombstone).
RETENTION_BASIS = "Regulation B 1002.12(b) record retention; GDPR Art. 17(3)(b)"


def aware(stamp: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC stamps; make them comparable with aware ones."""
    if stamp is None:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def retention_end(issued_at: datetime) -> datetime:
    """``issued_at`` plus 25 months (the same day of the month, or the month's last day)."""
    month = issued_at.month - 1 + RETENTION_MONTHS
    year, month = issued_at.year + month // 12, month % 12 + 1
    for day in range(issued_at.day, 27, -1):
        try:
            return issued_at.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return issued_at.replace(year=year, month=month, day=min(issued_at.day, 28))


# -- reason statements ---------------------------------------------------------------------
def model_version_id(session: Session, name: str, version: str) -> int | None:
    return session.scalar(
        sa.select(ModelVersion.id).where(ModelVersion.name == name, ModelVersion.version == version)
    )


def set_statement(
    session: Session,
    model_version_id: int,
    feature: str,
    direction: str,
    statement: str,
    reviewer: str,
    at: datetime,
) -> int:
    """Record a reviewed statement, superseding the current one for the same key; its id."""
    session.execute(
        sa.update(ReasonStatement)
        .where(
            ReasonStatement.model_version_id == model_version_id,
            ReasonStatement.feature == feature,
            ReasonStatement.direction == direction,
            ReasonStatement.superseded_at.is_(None),
        )
        .values(superseded_at=at)
    )
    row = ReasonStatement(
        model_version_id=model_version_id,
        feature=feature,
        direction=direction,
        statement=statement,
        reviewer=reviewer,
        reviewed_at=at,
    )
    session.add(row)
    session.flush()
    return row.id


def statements(session: Session, model_version_id: int, *, history: bool = False) -> list[dict]:
    """The version's statements (current ones only unless ``history``), by feature."""
    stmt = sa.select(ReasonStatement).where(ReasonStatement.model_version_id == model_version_id)
    if not history:
        stmt = stmt.where(ReasonStatement.superseded_at.is_(None))
    stmt = stmt.order_by(
        ReasonStatement.feature, ReasonStatement.direction, ReasonStatement.reviewed_at
    )
    return [
        {
            "feature": s.feature,
            "direction": s.direction,
            "statement": s.statement,
            "reviewer": s.reviewer,
            "reviewed_at": s.reviewed_at,
            "superseded_at": s.superseded_at,
        }
        for s in session.scalars(stmt)
    ]


def statement_map(session: Session, model_version_id: int) -> dict[tuple[str, str], str]:
    """(feature, direction) -> current statement, as the linter takes it."""
    return {
        (s["feature"], s["direction"]): s["statement"]
        for s in statements(session, model_version_id)
    }


# -- what a notice is built from -----------------------------------------------------------
def no_action_column() -> sa.Column | None:
    """The reasons' "no feasible action" marker (``mu_state``), where the ledger has one."""
    return Reason.__table__.c.get("mu_state")


def no_action(state: Any) -> bool | None:
    """Whether a reason's ``mu_state`` says no feasible change exists (None: not recorded)."""
    return None if state is None else state == "no_action"


def notice_inputs(session: Session, decision_id: str) -> dict[str, Any] | None:
    """A decision with what its notice needs: model version and features, the reasons with
    responsiveness, the verification verdict, the issued recourse and the action set."""
    found = session.execute(
        sa.select(Decision, ModelVersion)
        .join(ModelVersion, ModelVersion.id == Decision.model_version_id)
        .where(Decision.decision_id == decision_id)
    ).one_or_none()
    if found is None:
        return None
    decision, mv = found
    mv_id = decision.model_version_id
    reasons = session.scalars(
        sa.select(Reason)
        .where(Reason.decision_id == decision_id, Reason.model_version_id == mv_id)
        .order_by(Reason.rank)
    ).all()
    check = session.get(RecourseCheck, (decision_id, mv_id))
    aset = session.get(ActionSetRecord, check.action_set_id) if check else None
    if aset is None:
        aset = session.scalars(
            sa.select(ActionSetRecord).where(ActionSetRecord.model_version_id == mv_id).limit(1)
        ).first()
    issued = session.scalars(
        sa.select(IssuedRecourse).where(
            IssuedRecourse.decision_id == decision_id, IssuedRecourse.model_version_id == mv_id
        )
    ).one_or_none()
    return {
        "decision_id": decision.decision_id,
        "subject_id": decision.subject_id,
        "decided_at": aware(decision.decided_at),
        "completed_at": aware(decision.completed_at),
        "decision": decision.decision,
        "score": decision.score,
        "features": decision.features,
        "model_version_id": mv_id,
        "model_name": mv.name,
        "model_version": mv.version,
        "feature_specs": list((mv.manifest or {}).get("features", [])),
        "reasons": [
            {
                "rank": r.rank,
                "feature": r.feature,
                "attribution": r.attribution,
                "mu": r.mu,
                "no_feasible_action": no_action(getattr(r, "mu_state", None)),
            }
            for r in reasons
        ],
        "recourse_status": check.status if check else None,
        "action_set": aset.body if aset else None,
        "recourse": None
        if issued is None
        else {
            "changes": issued.changes,
            "cost": issued.cost,
            "complete": issued.complete,
            "stability": issued.stability,
            "score_after": issued.score_after,
        },
    }


# -- notices -------------------------------------------------------------------------------
def notice_of(session: Session, decision_id: str, kind: str) -> dict[str, Any] | None:
    n = session.scalars(
        sa.select(Notice).where(Notice.decision_id == decision_id, Notice.kind == kind)
    ).one_or_none()
    return None if n is None else notice_dict(n)


def notice_dict(n: Notice) -> dict[str, Any]:
    return {
        "notice_id": n.notice_id,
        "decision_id": n.decision_id,
        "subject_id": n.subject_id,
        "kind": n.kind,
        "text": n.text,
        "html": n.html,
        "sha256": n.sha256,
        "reasons": n.reasons,
        "flags": n.flags,
        "issued_at": aware(n.issued_at),
        "due_at": aware(n.due_at),
        "retain_until": aware(n.retain_until),
        "erasure_request_id": n.erasure_request_id,
    }


def record_notice(session: Session, **fields: Any) -> str:
    """Store an issued notice (its text, HTML, hash, reasons, flags and dates); its id."""
    fields.setdefault("retain_until", retention_end(fields["issued_at"]))
    session.add(Notice(**fields))
    session.flush()
    return fields["notice_id"]


def overdue(
    session: Session, now: datetime, due_days: int, *, limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Denials whose credit notice is past due and not issued, oldest first, and how many.

    Due ``due_days`` after the application was complete, or after the decision when the log
    did not say when it was complete.
    """
    cutoff = now - timedelta(days=due_days)
    start = sa.func.coalesce(Decision.completed_at, Decision.decided_at)
    has_notice = (
        sa.select(Notice.notice_id)
        .where(Notice.decision_id == Decision.decision_id, Notice.kind == "credit")
        .exists()
    )
    where = (Decision.decision == "denied", start < cutoff, ~has_notice)
    total = session.scalar(sa.select(sa.func.count()).select_from(Decision).where(*where))
    rows = session.execute(
        sa.select(
            Decision.decision_id,
            Decision.subject_id,
            Decision.decided_at,
            Decision.completed_at,
            ModelVersion.name,
            ModelVersion.version,
        )
        .join(ModelVersion, ModelVersion.id == Decision.model_version_id)
        .where(*where)
        .order_by(start, Decision.decision_id)
        .limit(limit)
        .offset(offset)
    ).all()
    out = []
    for d_id, subject, decided, completed, name, version in rows:
        due = (aware(completed) or aware(decided)) + timedelta(days=due_days)
        out.append(
            {
                "decision_id": d_id,
                "subject_id": subject,
                "model": f"{name} {version}",
                "decided_at": aware(decided),
                "due": due,
                "days_overdue": (now - due).days,
            }
        )
    return out, int(total or 0)


# -- erasure and retention -----------------------------------------------------------------
def hold_for_retention(
    session: Session, request_of_subject: Mapping[str, str], now: datetime
) -> dict[str, Any]:
    """Keep the notices of subjects being erased under their legal retention; purge those
    whose retention has already ended. Call in the purge's transaction.

    Returns what the tombstone records: how many were kept, until when, on what ground.
    """
    kept, until, purged = 0, None, 0
    for subject, request_id in request_of_subject.items():
        for n in session.scalars(sa.select(Notice).where(Notice.subject_id == subject)):
            if aware(n.retain_until) <= now:
                session.delete(n)
                purged += 1
                continue
            n.erasure_request_id = request_id
            kept += 1
            end = aware(n.retain_until)
            until = end if until is None or end > until else until
    out: dict[str, Any] = {"kept": kept, "purged": purged}
    if kept:
        out.update(until=until.isoformat(), basis=RETENTION_BASIS)
    return out


def purge_expired_notices(session: Session, now: datetime) -> int:
    """Delete erased applicants' notices whose retention has ended, and say so on their
    tombstones; how many were deleted."""
    expired = session.scalars(
        sa.select(Notice).where(Notice.erasure_request_id.is_not(None), Notice.retain_until <= now)
    ).all()
    by_request: dict[str, int] = {}
    for n in expired:
        by_request[n.erasure_request_id] = by_request.get(n.erasure_request_id, 0) + 1
        session.delete(n)
    for request_id, n in by_request.items():
        grave = session.get(Tombstone, request_id)
        if grave is None:
            continue
        counts = dict(grave.counts or {})
        notices = dict(counts.get("notices") or {})
        notices["purged_after_retention"] = notices.get("purged_after_retention", 0) + n
        notices["purged_at"] = now.isoformat()
        notices["kept"] = max(0, int(notices.get("kept", 0)) - n)
        counts["notices"] = notices
        grave.counts = counts
    return len(expired)


def issued(session: Session, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    """Notices issued, newest first (without their text), and how many in all."""
    total = session.scalar(sa.select(sa.func.count()).select_from(Notice))
    rows = session.scalars(
        sa.select(Notice)
        .order_by(Notice.issued_at.desc(), Notice.notice_id)
        .limit(limit)
        .offset(offset)
    )
    out = []
    for n in rows:
        d = notice_dict(n)
        d.pop("text"), d.pop("html")
        out.append(d)
    return out, int(total or 0)
