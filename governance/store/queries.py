"""Read-side queries reviewers and the CLI run against the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.store.models import (
    ActionSetRecord,
    Decision,
    IssuedRecourse,
    ModelVersion,
    Reason,
    RecourseCheck,
    ResponsiveReason,
    Run,
)
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
        check = session.get(RecourseCheck, (decision.decision_id, decision.model_version_id))
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
                        "mu": r.mu,
                    }
                    for r in reasons
                ],
                "recourse_status": check.status if check else None,
            }
        )
    return out


def subject_recourse(session: Session, subject_id: str) -> list[dict[str, Any]]:
    """For each denied decision about ``subject_id``: reasons with their responsiveness, the
    responsiveness ranking, the verification verdict and the issued recourse."""
    out = []
    for record in subject_history(session, subject_id):
        if record["decision"] != "denied":
            continue
        key = record["decision_id"]
        decision = session.get(Decision, key)
        mv_id = decision.model_version_id
        check = session.get(RecourseCheck, (key, mv_id))
        ranked = session.scalars(
            sa.select(ResponsiveReason)
            .where(ResponsiveReason.decision_id == key, ResponsiveReason.model_version_id == mv_id)
            .order_by(ResponsiveReason.rank)
        ).all()
        issued = session.scalars(
            sa.select(IssuedRecourse).where(
                IssuedRecourse.decision_id == key, IssuedRecourse.model_version_id == mv_id
            )
        ).one_or_none()
        aset = session.get(ActionSetRecord, check.action_set_id) if check else None
        out.append(
            {
                **record,
                "verification": None
                if check is None
                else {
                    "status": check.status,
                    "complete_search": check.complete,
                    "points_evaluated": check.n_points,
                    "all_reasons_unresponsive": check.all_reasons_unresponsive,
                    "fixed_with_reasons": check.fixed_with_reasons,
                },
                "action_set": None
                if aset is None
                else {
                    "name": aset.name,
                    "version": aset.version,
                    "sha256": aset.sha256,
                },
                "responsive_ranking": [
                    {"rank": r.rank, "feature": r.feature, "mu": r.mu} for r in ranked
                ],
                "recourse": None
                if issued is None
                else {
                    "recourse_id": issued.recourse_id,
                    "changes": issued.changes,
                    "cost": issued.cost,
                    "score_before": issued.score_before,
                    "score_after": issued.score_after,
                    "proven_cheapest": issued.complete,
                },
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
