"""Read-only queries behind a subject's review page: every decision about one person with all
the ledger knows about it, their tombstones and retained notices, and id search."""

from __future__ import annotations

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
    RecourseCheck,
    RecourseFragility,
    RecourseValidity,
    ResponsiveReason,
    Run,
    Tombstone,
    VersionComparison,
)
from governance.store.notices import aware, no_action, notice_dict

PER_PAGE = 50


def subject_of_decision(session: Session, decision_id: str) -> str | None:
    return session.scalar(sa.select(Decision.subject_id).where(Decision.decision_id == decision_id))


def subject(session: Session, subject_id: str) -> list[dict[str, Any]]:
    """Every decision about ``subject_id``, oldest first, with everything the ledger knows
    about it: reasons and responsiveness, verdict, issued recourse, what later checks found,
    and the notices issued."""
    rows = session.execute(
        sa.select(Decision, ModelVersion)
        .join(ModelVersion, ModelVersion.id == Decision.model_version_id)
        .where(Decision.subject_id == subject_id)
        .order_by(Decision.decided_at, Decision.decision_id)
    ).all()
    return [decision_record(session, d, mv) for d, mv in rows]


def decision_record(session: Session, d: Decision, mv: ModelVersion) -> dict[str, Any]:
    key, mv_id = d.decision_id, d.model_version_id
    reasons = session.scalars(
        sa.select(Reason)
        .where(Reason.decision_id == key, Reason.model_version_id == mv_id)
        .order_by(Reason.rank)
    ).all()
    check = session.get(RecourseCheck, (key, mv_id))
    aset = session.get(ActionSetRecord, check.action_set_id) if check else None
    ranked = session.scalars(
        sa.select(ResponsiveReason)
        .where(ResponsiveReason.decision_id == key, ResponsiveReason.model_version_id == mv_id)
        .order_by(ResponsiveReason.rank)
    ).all()
    issued = session.scalars(
        sa.select(IssuedRecourse).where(IssuedRecourse.decision_id == key)
    ).all()
    recourse = []
    for i in issued:
        events = session.execute(
            sa.select(RecourseValidity, ModelVersion, Run)
            .join(ModelVersion, ModelVersion.id == RecourseValidity.model_version_id)
            .join(Run, Run.id == RecourseValidity.run_id)
            .where(RecourseValidity.recourse_id == i.recourse_id)
            .order_by(RecourseValidity.checked_at)
        ).all()
        fragility = session.execute(
            sa.select(RecourseFragility, ModelVersion)
            .join(ModelVersion, ModelVersion.id == RecourseFragility.model_version_id)
            .where(RecourseFragility.recourse_id == i.recourse_id)
        ).all()
        recourse.append(
            {
                "recourse_id": i.recourse_id,
                "kind": i.kind,
                "issued_at": aware(i.issued_at),
                "cost": i.cost,
                "score_before": i.score_before,
                "score_after": i.score_after,
                "minimal_proven": i.complete,
                # over what the minimum is proven, where the ledger says
                "minimal_over": getattr(i, "minimal_over", None),
                "stability": i.stability,
                "changes": i.changes or [],
                "alternative": i.alternative,
                "later": [
                    {
                        "run_id": v.run_id,
                        "run_kind": r.kind,
                        "model_version": f"{m.name} {m.version}",
                        "model_version_id": m.id,
                        "valid": v.valid,
                        "score": v.score,
                        "forward_validity": v.forward_validity,
                        "n_variants": v.n_variants,
                        "alternative_valid": v.alternative_valid,
                        "checked_at": aware(v.checked_at),
                    }
                    for v, m, r in events
                ],
                "fragility": [
                    {
                        "model_version": f"{m.name} {m.version}",
                        "k": f.k,
                        "budget": f.budget,
                        "method": f.method,
                    }
                    for f, m in fragility
                ],
            }
        )
    comparisons = session.execute(
        sa.select(VersionComparison, ModelVersion, Run)
        .join(ModelVersion, ModelVersion.id == VersionComparison.model_version_id)
        .join(Run, Run.id == VersionComparison.run_id)
        .where(VersionComparison.decision_id == key)
    ).all()
    notices = session.scalars(
        sa.select(Notice).where(Notice.decision_id == key).order_by(Notice.issued_at)
    ).all()
    return {
        "decision_id": key,
        "subject_id": d.subject_id,
        "decided_at": aware(d.decided_at),
        "completed_at": aware(d.completed_at),
        "decision": d.decision,
        "score": d.score,
        "score_recomputed": d.score_recomputed,
        "run_id": d.run_id,
        "model_version_id": mv_id,
        "model": mv.name,
        "model_version": mv.version,
        "model_sha256": mv.artifact_sha256,
        "reasons": [
            {
                "rank": r.rank,
                "feature": r.feature,
                "value": (d.features or {}).get(r.feature),
                "attribution": r.attribution,
                "mu": r.mu,
                "no_feasible_action": no_action(getattr(r, "mu_state", None)),
            }
            for r in reasons
        ],
        "verdict": None
        if check is None
        else {
            "status": check.status,
            "complete": check.complete,
            "points": check.n_points,
            "all_reasons_unresponsive": check.all_reasons_unresponsive,
            "fixed_with_reasons": check.fixed_with_reasons,
            "action_set": None if aset is None else f"{aset.name} v{aset.version}",
            "action_set_sha256": None if aset is None else aset.sha256,
        },
        "responsive_ranking": [{"rank": r.rank, "feature": r.feature, "mu": r.mu} for r in ranked],
        "recourse": recourse,
        "comparisons": [
            {
                "run_id": c.run_id,
                "run_kind": r.kind,
                "model_version": f"{m.name} {m.version}",
                "new_score": c.new_score,
                "reasons_changed": c.reasons_changed,
                "feature_agreement": c.feature_agreement,
                "old_status": c.old_status,
                "new_status": c.new_status,
                "became_fixed": c.became_fixed,
                "gained_recourse": c.gained_recourse,
            }
            for c, m, r in comparisons
        ],
        "notices": [notice_dict(n) for n in notices],
    }


def retained_notices(session: Session, subject_id: str) -> list[dict[str, Any]]:
    """Notices kept for an erased subject under their legal retention."""
    found = session.scalars(
        sa.select(Notice)
        .where(Notice.subject_id == subject_id, Notice.erasure_request_id.is_not(None))
        .order_by(Notice.issued_at)
    )
    return [notice_dict(n) for n in found]


def tombstones(session: Session, subject_hash: str) -> list[dict[str, Any]]:
    return [
        tombstone_dict(t)
        for t in session.scalars(sa.select(Tombstone).where(Tombstone.subject_hash == subject_hash))
    ]


def tombstone_dict(t: Tombstone) -> dict[str, Any]:
    counts = t.counts or {}
    rows = counts.get("ledger_rows") or {}
    return {
        "request_id": t.request_id,
        "received_at": aware(t.received_at),
        "purged_at": aware(t.purged_at),
        "decisions": rows.get("decisions", 0),
        "ledger_rows": int(sum(v for v in rows.values() if isinstance(v, int | float))),
        "files": counts.get("files") or {},
        "notices": counts.get("notices") or {},
    }


def search(session: Session, q: str, page: int = 1, per: int = PER_PAGE) -> dict[str, Any]:
    """Subject and decision ids equal to ``q`` or starting with it, ``per`` of each a page,
    in id order; ``more`` says whether a next page has any."""
    out: dict[str, Any] = {"more": False}
    for name, col in (("subjects", Decision.subject_id), ("decisions", Decision.decision_id)):
        # A range scan on the index, then the prefix test here: no LIKE, so no wildcard in q
        # means anything. Ids from q on are in order, so the matches come first.
        found = session.scalars(
            sa.select(col)
            .where(col >= q)
            .group_by(col)
            .order_by(col)
            .limit(per + 1)
            .offset((max(1, page) - 1) * per)
        ).all()
        matches = [v for v in found if v.startswith(q)]
        out[name] = matches[:per]
        out["more"] = out["more"] or len(matches) > per
    return out
