"""Erasing a subject from the ledger: every row about them, in one transaction.

Rows hanging off a decision (explanations, attributions, reasons, responsiveness, verdicts,
issued recourse and its validity and fragility records, comparisons) are deleted explicitly,
children first, so the purge does not depend on the database enforcing ON DELETE CASCADE.
Run-level aggregates stay: they hold counts, never ids or feature values. Notices issued to the
subject stay too, for their legal retention (see
:func:`governance.store.notices.hold_for_retention`, called in the same transaction).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.store.models import Base
from governance.store.writes import batches

# Deleted last by hand (decisions, issued recourse, quarantine) or kept for their retention
# (notices, which the lender must keep even past an erasure).
KEPT_OR_LAST = ("decisions", "issued_recourse", "quarantine", "notices")


def select_in(session: Session, column: sa.Column, key: sa.Column, values: Sequence) -> list:
    out: list = []
    for batch in batches(values):
        out += session.scalars(sa.select(column).where(key.in_(batch))).all()
    return out


def _delete_in(session: Session, table: sa.Table, column: str, values: Sequence) -> int:
    n = 0
    for batch in batches(values):
        n += session.execute(sa.delete(table).where(table.c[column].in_(batch))).rowcount
    return n


def purge_subjects(session: Session, subject_ids: Sequence[str]) -> dict[str, int]:
    """Delete every ledger row about ``subject_ids``; return rows removed per table.

    The caller commits: a reader sees the subject whole or not at all.
    """
    tables = Base.metadata.tables
    decisions, issued = tables["decisions"], tables["issued_recourse"]
    subject_ids = list(dict.fromkeys(subject_ids))
    decision_ids = select_in(session, decisions.c.decision_id, decisions.c.subject_id, subject_ids)
    recourse_ids = select_in(session, issued.c.recourse_id, issued.c.decision_id, decision_ids)
    counts: dict[str, int] = {}
    for table in reversed(Base.metadata.sorted_tables):
        if table.name in KEPT_OR_LAST:
            continue
        if "recourse_id" in table.c:
            counts[table.name] = _delete_in(session, table, "recourse_id", recourse_ids)
    counts["issued_recourse"] = _delete_in(session, issued, "recourse_id", recourse_ids)
    for table in reversed(Base.metadata.sorted_tables):
        if table.name in KEPT_OR_LAST:
            continue
        if "decision_id" in table.c:
            counts[table.name] = counts.get(table.name, 0) + _delete_in(
                session, table, "decision_id", decision_ids
            )
    quarantine = tables["quarantine"]
    counts["quarantine"] = _delete_in(session, quarantine, "subject_id", subject_ids) + (
        _delete_in(session, quarantine, "decision_id", decision_ids)
    )
    counts["decisions"] = _delete_in(session, decisions, "decision_id", decision_ids)
    requests = tables["deletion_requests"]
    for batch in batches(subject_ids):
        session.execute(
            sa.update(requests).where(requests.c.subject_id.in_(batch)).values(subject_id=None)
        )
    return {k: v for k, v in counts.items() if v}


def compact_sqlite(engine: sa.Engine) -> None:
    """Flush the write-ahead log into the database file, so deleted rows leave no old copies.

    With ``secure_delete`` on (see :func:`governance.store.engine.make_engine`) freed pages are
    zeroed; checkpointing truncates the WAL, which still holds earlier page images.
    """
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
