"""Read-side queries reviewers and the CLI run against the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.store.models import Decision, ModelVersion, Reason, Run
from governance.store.writes import _batches


def decision_ids_recorded_elsewhere(session: Session, ids: Sequence[str], night: date) -> set[str]:
    """Those of ``ids`` the ledger already holds for a different decision date."""
    found: set[str] = set()
    for batch in _batches(ids):
        found.update(
            session.scalars(
                sa.select(Decision.decision_id).where(
                    Decision.decision_id.in_(batch), Decision.decision_date != night
                )
            )
        )
    return found


def recent_runs(session: Session, limit: int = 20, kind: str | None = None) -> pd.DataFrame:
    """The most recent runs, newest first, with status and counts."""
    stmt = sa.select(Run).order_by(Run.started_at.desc(), Run.id.desc()).limit(limit)
    if kind:
        stmt = stmt.where(Run.kind == kind)
    rows = []
    for run in session.scalars(stmt):
        counts = run.counts or {}
        rows.append(
            {
                "run_id": run.id,
                "kind": run.kind,
                "night": run.night,
                "model": run.model_name,
                "status": run.status,
                "attempts": run.attempts,
                "started_at": run.started_at,
                "seconds": (
                    (run.finished_at - run.started_at).total_seconds()
                    if run.finished_at and run.started_at
                    else None
                ),
                **{k: v for k, v in counts.items() if not isinstance(v, dict | list)},
            }
        )
    return pd.DataFrame(rows)


def subject_history(session: Session, subject_id: str) -> list[dict[str, Any]]:
    """Every decision about ``subject_id``, oldest first, with its model version and reasons."""
    stmt = (
        sa.select(Decision, ModelVersion)
        .join(ModelVersion, ModelVersion.id == Decision.model_version_id)
        .where(Decision.subject_id == subject_id)
        .order_by(Decision.decided_at, Decision.decision_id)
    )
    out = []
    for decision, mv in session.execute(stmt):
        reasons = session.scalars(
            sa.select(Reason)
            .where(
                Reason.decision_id == decision.decision_id,
                Reason.model_version_id == decision.model_version_id,
            )
            .order_by(Reason.rank)
        ).all()
        out.append(
            {
                "decision_id": decision.decision_id,
                "subject_id": decision.subject_id,
                "decided_at": decision.decided_at.isoformat(),
                "model": mv.name,
                "model_version": mv.version,
                "model_sha256": mv.artifact_sha256,
                "score": decision.score,
                "decision": decision.decision,
                "reasons": [
                    {
                        "rank": r.rank,
                        "feature": r.feature,
                        "value": decision.features.get(r.feature),
                        "attribution": r.attribution,
                    }
                    for r in reasons
                ],
            }
        )
    return out


def chunk_totals(session: Session, run_id: int) -> dict[str, int]:
    """Per-chunk counts summed over the run's committed chunks."""
    from governance.store.models import RunChunk

    totals: dict[str, int] = {}
    for counts in session.scalars(sa.select(RunChunk.counts).where(RunChunk.run_id == run_id)):
        for k, v in (counts or {}).items():
            if isinstance(v, int | float):
                totals[k] = totals.get(k, 0) + v
    return totals
