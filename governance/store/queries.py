"""Read-side queries reviewers and the CLI run against the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
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
from governance.store.writes import batches


def decision_ids_recorded_elsewhere(session: Session, ids: Sequence[str], night: date) -> set[str]:
    """Those of ``ids`` the ledger already holds for a different decision date."""
    found: set[str] = set()
    # An id holding NUL is never stored (validation quarantines it), and PostgreSQL refuses
    # the whole query if one is sent: leave them out.
    ids = [i for i in ids if "\x00" not in i]
    for batch in batches(ids):
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


def open_recourse(
    session: Session, model_name: str, exclude_version_id: int, since: datetime
) -> pd.DataFrame:
    """Recourse issued under other versions of ``model_name`` since ``since``, in recourse_id
    order, with what re-validation needs and nothing it does not (no JSON is parsed here).

    Columns: recourse_id, decision_id, subject_id, model_version_id, kind, stability, changed,
    x_codes, layout_sha256, has_alternative.
    """
    stmt = (
        sa.select(
            IssuedRecourse.recourse_id,
            IssuedRecourse.decision_id,
            Decision.subject_id,
            IssuedRecourse.model_version_id,
            IssuedRecourse.kind,
            IssuedRecourse.stability,
            IssuedRecourse.changed,
            IssuedRecourse.x_codes,
            IssuedRecourse.layout_sha256,
            IssuedRecourse.alternative.is_not(None),
        )
        .join(Decision, Decision.decision_id == IssuedRecourse.decision_id)
        .join(ModelVersion, ModelVersion.id == IssuedRecourse.model_version_id)
        .where(
            ModelVersion.name == model_name,
            IssuedRecourse.model_version_id != exclude_version_id,
            IssuedRecourse.issued_at >= since,
        )
        .order_by(IssuedRecourse.recourse_id)
    )
    return pd.DataFrame(
        session.execute(stmt).all(),
        columns=[
            "recourse_id",
            "decision_id",
            "subject_id",
            "model_version_id",
            "kind",
            "stability",
            "changed",
            "x_codes",
            "layout_sha256",
            "has_alternative",
        ],
    )


def recourse_points(session: Session, recourse_ids: Sequence[str]) -> pd.DataFrame:
    """The promised points (x_after) and alternatives of some recourses, parsed from JSON."""
    rows: list = []
    for batch in batches(recourse_ids):
        rows += session.execute(
            sa.select(
                IssuedRecourse.recourse_id, IssuedRecourse.x_after, IssuedRecourse.alternative
            ).where(IssuedRecourse.recourse_id.in_(batch))
        ).all()
    return pd.DataFrame(rows, columns=["recourse_id", "x_after", "alternative"])


def recent_denied(
    session: Session, model_name: str, exclude_version_id: int, since: datetime
) -> pd.DataFrame:
    """Denials by other versions of ``model_name`` since ``since``: id, version, time, features."""
    stmt = (
        sa.select(
            Decision.decision_id, Decision.model_version_id, Decision.decided_at, Decision.features
        )
        .join(ModelVersion, ModelVersion.id == Decision.model_version_id)
        .where(
            ModelVersion.name == model_name,
            Decision.model_version_id != exclude_version_id,
            Decision.decision == "denied",
            Decision.decided_at >= since,
        )
        .order_by(Decision.decision_id)
    )
    return pd.DataFrame(
        session.execute(stmt).all(),
        columns=["decision_id", "model_version_id", "decided_at", "features"],
    )


def old_results(session: Session, decision_ids: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Reasons, verification verdicts, responsiveness and attributions the ledger holds for
    decisions under the version that made them."""
    from governance.store.models import Attribution, Responsiveness

    frames: dict[str, list] = {
        "reasons": [], "checks": [], "responsiveness": [], "attributions": []
    }  # fmt: skip
    own = Decision.model_version_id
    for batch in batches(decision_ids):
        frames["attributions"] += session.execute(
            sa.select(Attribution.decision_id, Attribution.feature, Attribution.attribution)
            .join(
                Decision,
                (Decision.decision_id == Attribution.decision_id)
                & (own == Attribution.model_version_id),
            )
            .where(Attribution.decision_id.in_(batch))
        ).all()
        frames["reasons"] += session.execute(
            sa.select(Reason.decision_id, Reason.rank, Reason.feature)
            .join(
                Decision,
                (Decision.decision_id == Reason.decision_id) & (own == Reason.model_version_id),
            )
            .where(Reason.decision_id.in_(batch))
        ).all()
        frames["checks"] += session.execute(
            sa.select(RecourseCheck.decision_id, RecourseCheck.status)
            .join(
                Decision,
                (Decision.decision_id == RecourseCheck.decision_id)
                & (own == RecourseCheck.model_version_id),
            )
            .where(RecourseCheck.decision_id.in_(batch))
        ).all()
        frames["responsiveness"] += session.execute(
            sa.select(Responsiveness.decision_id, Responsiveness.feature, Responsiveness.mu)
            .join(
                Decision,
                (Decision.decision_id == Responsiveness.decision_id)
                & (own == Responsiveness.model_version_id),
            )
            .where(Responsiveness.decision_id.in_(batch))
        ).all()
    return {
        "reasons": pd.DataFrame(frames["reasons"], columns=["decision_id", "rank", "feature"]),
        "checks": pd.DataFrame(frames["checks"], columns=["decision_id", "status"]),
        "responsiveness": pd.DataFrame(
            frames["responsiveness"], columns=["decision_id", "feature", "mu"]
        ),
        "attributions": pd.DataFrame(
            frames["attributions"], columns=["decision_id", "feature", "attribution"]
        ),
    }


def recontact(session: Session, run_id: int, limit: int | None = None) -> list[str]:
    """Subjects whose recourse the check in ``run_id`` found no longer valid, oldest first."""
    from governance.store.models import RecourseValidity

    stmt = (
        sa.select(Decision.subject_id, sa.func.min(IssuedRecourse.issued_at))
        .join(IssuedRecourse, IssuedRecourse.decision_id == Decision.decision_id)
        .join(RecourseValidity, RecourseValidity.recourse_id == IssuedRecourse.recourse_id)
        .where(RecourseValidity.run_id == run_id, sa.not_(RecourseValidity.valid))
        .group_by(Decision.subject_id)
        .order_by(sa.func.min(IssuedRecourse.issued_at), Decision.subject_id)
    )
    if limit:
        stmt = stmt.limit(limit)
    return [row[0] for row in session.execute(stmt)]


def tombstones_for(session: Session, subject_hash: str) -> list[dict[str, Any]]:
    """Tombstones left by erasing the subject whose salted hash is ``subject_hash``."""
    from governance.store.models import Tombstone

    out = []
    for t in session.scalars(sa.select(Tombstone).where(Tombstone.subject_hash == subject_hash)):
        rows = t.counts.get("ledger_rows", {})
        out.append(
            {
                "request_id": t.request_id,
                "received_at": t.received_at,
                "purged_at": t.purged_at,
                "decisions": rows.get("decisions", 0),
                "ledger_rows": sum(rows.values()),
            }
        )
    return out


def deletion_requests(session: Session) -> pd.DataFrame:
    """Every deletion request with due date and status; open and overdue first."""
    from datetime import UTC

    from governance.store.models import DeletionRequest

    now = datetime.now(UTC)
    rows = []
    for r in session.scalars(sa.select(DeletionRequest).order_by(DeletionRequest.due_at)):
        due = r.due_at if r.due_at.tzinfo else r.due_at.replace(tzinfo=UTC)
        done = r.status == "purged"
        rows.append(
            {
                "request_id": r.request_id,
                "received": r.received_at.date(),
                "due": due.date(),
                "status": r.status,
                "days_left": None if done else (due - now).days,
                "overdue": (not done) and now > due,
                "completed": r.completed_at.date() if r.completed_at else None,
                "reason": r.reason,
            }
        )
    frame = pd.DataFrame(rows)
    if len(frame):
        frame = frame.sort_values(["overdue", "status", "due"], ascending=[False, True, True])
    return frame


def issued_under(session: Session, model_version_id: int, limit: int | None = None) -> pd.DataFrame:
    """Recourse issued under one model version: recourse_id and the promised point."""
    stmt = (
        sa.select(IssuedRecourse.recourse_id, IssuedRecourse.x_after)
        .where(IssuedRecourse.model_version_id == model_version_id)
        .order_by(IssuedRecourse.recourse_id)
    )
    if limit:
        stmt = stmt.limit(limit)
    return pd.DataFrame(session.execute(stmt).all(), columns=["recourse_id", "x_after"])


def example_denied_subject(session: Session) -> str | None:
    """A denied applicant who was issued recourse (else any denied one), for the CLI's hints."""
    found = session.scalar(
        sa.select(Decision.subject_id)
        .join(IssuedRecourse, IssuedRecourse.decision_id == Decision.decision_id)
        .order_by(Decision.decision_id)
        .limit(1)
    )
    return found or session.scalar(
        sa.select(Decision.subject_id)
        .where(Decision.decision == "denied")
        .order_by(Decision.decision_id)
        .limit(1)
    )


def example_past_borrower(session: Session, below: str = "S1") -> str | None:
    """The first subject id below ``below``: in the demo, ids under S1 are past borrowers whose
    loans are in the training data, so erasing one retrains the model."""
    return session.scalar(
        sa.select(Decision.subject_id)
        .where(Decision.subject_id < below)
        .order_by(Decision.subject_id)
        .limit(1)
    )



# -- explanation quality ----------------------------------------------------------------------
def explainer_choices(session: Session, model_version_ids: Sequence[int]) -> dict[int, str]:
    """The explainer kind chosen per model version (``govern explainers compare``), where one
    was chosen."""
    from governance.store.models import ExplainerChoice

    if not model_version_ids:
        return {}
    rows = session.execute(
        sa.select(ExplainerChoice.model_version_id, ExplainerChoice.kind).where(
            ExplainerChoice.model_version_id.in_(list(model_version_ids))
        )
    )
    return {int(i): k for i, k in rows}


def explainer_choice(session: Session, model_name: str, version: str) -> dict[str, Any] | None:
    """The stored choice for one version: kind, rule, evidence, sample size, seed, when."""
    from governance.store.models import ExplainerChoice

    row = session.execute(
        sa.select(ExplainerChoice)
        .join(ModelVersion, ModelVersion.id == ExplainerChoice.model_version_id)
        .where(ModelVersion.name == model_name, ModelVersion.version == version)
    ).scalar_one_or_none()
    if row is None:
        return None
    return {
        "model": model_name,
        "version": version,
        "kind": row.kind,
        "rule": row.rule,
        "evidence": row.evidence,
        "sample_rows": row.sample_rows,
        "seed": row.seed,
        "chosen_at": row.chosen_at,
    }


def decision_quality(session: Session, decision_id: str, model_version_id: int) -> dict[str, Any]:
    """Explanation quality of one decision under one version: faithfulness per neighbourhood,
    stability if sampled, and every agreement recorded, with the settings rows they cite."""
    from governance.store.models import (
        ExplanationAgreement,
        ExplanationFaithfulness,
        ExplanationStability,
    )

    key = (
        ExplanationFaithfulness.decision_id == decision_id,
        ExplanationFaithfulness.model_version_id == model_version_id,
    )
    out: dict[str, Any] = {"faithfulness": {}, "stability": None, "agreement": {}}
    for f in session.scalars(sa.select(ExplanationFaithfulness).where(*key)):
        out["faithfulness"][f.perturbation] = {
            "k": f.k,
            "pgi": f.pgi,
            "pgu": f.pgu,
            "pgi_random": f.pgi_random,
            "reasons_not_above_random": f.reasons_not_above_random,
            "settings_id": f.settings_id,
        }
    s = session.get(ExplanationStability, (decision_id, model_version_id))
    if s is not None:
        out["stability"] = {
            "ris": s.ris,
            "ros": s.ros,
            "neighbours": s.n_same_class,
            "ris_skipped": s.ris_skipped,
            "ros_skipped": s.ros_skipped,
            "neighbourhood_std": s.neighbourhood_std,
            "settings_id": s.settings_id,
        }
    for a in session.scalars(
        sa.select(ExplanationAgreement).where(
            ExplanationAgreement.decision_id == decision_id,
            ExplanationAgreement.model_version_id == model_version_id,
        )
    ):
        out["agreement"][a.comparison] = {
            "other": a.other,
            "other_model_version_id": a.other_model_version_id,
            "k": a.k,
            "feature_agreement": a.feature_agreement,
            "rank_agreement": a.rank_agreement,
            "sign_agreement": a.sign_agreement,
            "signed_rank_agreement": a.signed_rank_agreement,
            "rank_correlation": a.rank_correlation,
            "pairwise_rank_agreement": a.pairwise_rank_agreement,
            "reasons_feature_agreement": a.reasons_feature_agreement,
            "reasons_rank_agreement": a.reasons_rank_agreement,
            "top1_same": a.top1_same,
        }
    return out


def reasons_not_above_random(
    session: Session,
    model_name: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Denials whose disclosed reasons' PGI is not above that of as many random features (the
    seeded control, OpenXAI's perturbation): a reviewer's and the notice linter's flag.

    Columns: decision_id, subject_id, decided_at, model_name, model_version, own_version,
    reasons, pgi, pgi_random, pgu. Newest first.
    """
    from governance.store.models import ExplanationFaithfulness as F

    stmt = (
        sa.select(
            Decision.decision_id,
            Decision.subject_id,
            Decision.decided_at,
            ModelVersion.name,
            ModelVersion.version,
            (Decision.model_version_id == F.model_version_id).label("own_version"),
            F.k,
            F.pgi,
            F.pgi_random,
            F.pgu,
        )
        .join(Decision, Decision.decision_id == F.decision_id)
        .join(ModelVersion, ModelVersion.id == F.model_version_id)
        .where(F.perturbation == "openxai_normal", F.reasons_not_above_random.is_(True))
        .order_by(Decision.decided_at.desc(), Decision.decision_id)
    )
    if model_name:
        stmt = stmt.where(ModelVersion.name == model_name)
    if since is not None:
        stmt = stmt.where(Decision.decided_at >= since)
    if limit:
        stmt = stmt.limit(limit)
    return pd.DataFrame(
        session.execute(stmt).all(),
        columns=[
            "decision_id", "subject_id", "decided_at", "model_name", "model_version",
            "own_version", "reasons", "pgi", "pgi_random", "pgu",
        ],
    )  # fmt: skip


def quality_by_version(session: Session, model_name: str | None = None) -> pd.DataFrame:
    """The per-version distribution of explanation quality (``v_explanation_quality_by_version``)
    with the quartiles of PGI, PGU and RIS, which SQLite cannot compute in a view."""
    where = " WHERE model_name = :m" if model_name else ""
    params = {"m": model_name} if model_name else {}
    summary = pd.DataFrame(
        session.execute(
            sa.text(f"SELECT * FROM v_explanation_quality_by_version{where}"), params
        ).mappings().all()
    )
    if summary.empty:
        return summary
    rows = pd.DataFrame(
        session.execute(
            sa.text(
                "SELECT model_name, model_version, own_version, pgi, pgu, ris "
                f"FROM v_explanation_quality{where}"
            ),
            params,
        ).mappings().all()
    )
    keys = ["model_name", "model_version", "own_version"]
    rows["own_version"] = rows["own_version"].astype(bool)
    summary["own_version"] = summary["own_version"].astype(bool)
    quart = rows.groupby(keys)[["pgi", "pgu", "ris"]].quantile([0.25, 0.5, 0.75]).unstack()
    quart.columns = [f"{m}_q{int(q * 100)}" for m, q in quart.columns]
    out = summary.merge(quart.reset_index(), on=keys, how="left")
    return out.sort_values(keys).reset_index(drop=True)


def explanation_drift(session: Session, run_id: int) -> dict[str, Any]:
    """What changed in the explanations of the denials a redeploy (or deletion) check compared:
    the share whose top-4 reasons and whose top reason changed (among those denied under both
    versions) and Clarify's global drift, the nDCG of the new version's mean |attribution|
    ranking scored against the old version's (flagged below 0.9)."""
    import numpy as np

    from governance.explain.agreement import NDCG_FLAG, ndcg_drift
    from governance.store.models import Attribution, ExplanationAgreement, VersionComparison

    agree = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.sum(
                sa.case((ExplanationAgreement.reasons_feature_agreement < 1.0, 1), else_=0)
            ),
            sa.func.sum(sa.case((ExplanationAgreement.top1_same.is_(False), 1), else_=0)),
        )
        .join(
            VersionComparison,
            (VersionComparison.decision_id == ExplanationAgreement.decision_id)
            & (VersionComparison.model_version_id == ExplanationAgreement.model_version_id),
        )
        .where(
            ExplanationAgreement.run_id == run_id,
            ExplanationAgreement.comparison == "version_vs_previous",
            sa.or_(
                VersionComparison.new_status.is_(None), VersionComparison.new_status != "approved"
            ),
        )
    ).one()
    n, top4, top1 = int(agree[0] or 0), int(agree[1] or 0), int(agree[2] or 0)
    means = {}
    for side, version in (
        ("old", VersionComparison.old_model_version_id),
        ("new", VersionComparison.model_version_id),
    ):
        means[side] = dict(
            session.execute(
                sa.select(Attribution.feature, sa.func.avg(sa.func.abs(Attribution.attribution)))
                .join(
                    VersionComparison,
                    (VersionComparison.decision_id == Attribution.decision_id)
                    & (version == Attribution.model_version_id),
                )
                .where(VersionComparison.run_id == run_id)
                .group_by(Attribution.feature)
            ).all()
        )
    features = sorted(set(means["old"]) & set(means["new"]))
    ndcg = (
        ndcg_drift(
            np.array([means["old"][f] for f in features], dtype=float),
            np.array([means["new"][f] for f in features], dtype=float),
        )
        if features
        else None
    )
    return {
        "denied_under_both": n,
        "share_top4_changed": round(top4 / n, 6) if n else None,
        "share_top1_changed": round(top1 / n, 6) if n else None,
        "attribution_ndcg": None if ndcg is None else round(ndcg, 6),
        "attribution_drift_flag": None if ndcg is None else bool(ndcg < NDCG_FLAG),
        "ndcg_threshold": NDCG_FLAG,
        "ndcg_baseline": "mean |attribution| of the same denials under the previous version",
    }


def reason_timeline(session: Session, subject_id: str) -> list[dict[str, Any]]:
    """Every explanation given about a subject, in order: each decision under the version that
    made it, then under each later version a redeploy or deletion check re-explained it with,
    with its reasons and quality figures (for ``govern history --diff``)."""
    from governance.store.models import Explanation, VersionComparison

    out = []
    decisions = session.scalars(
        sa.select(Decision)
        .where(Decision.subject_id == subject_id)
        .order_by(Decision.decided_at, Decision.decision_id)
    ).all()
    for d in decisions:
        versions = session.scalars(
            sa.select(Explanation.model_version_id)
            .where(Explanation.decision_id == d.decision_id)
            .order_by(Explanation.model_version_id)
        ).all()
        ordered = [d.model_version_id] + [v for v in versions if v != d.model_version_id]
        for mv_id in ordered:
            mv = session.get(ModelVersion, mv_id)
            own = mv_id == d.model_version_id
            outcome = d.decision
            if not own:
                cmp = session.get(VersionComparison, (d.decision_id, mv_id))
                outcome = (
                    "approved" if cmp is not None and cmp.new_status == "approved" else "denied"
                )
            reasons = session.scalars(
                sa.select(Reason)
                .where(Reason.decision_id == d.decision_id, Reason.model_version_id == mv_id)
                .order_by(Reason.rank)
            ).all()
            out.append(
                {
                    "decision_id": d.decision_id,
                    "decided_at": d.decided_at.isoformat(),
                    "model": mv.name,
                    "model_version": mv.version,
                    "own_version": own,
                    "decision": outcome,
                    "reasons": [
                        {"rank": r.rank, "feature": r.feature, "attribution": r.attribution}
                        for r in reasons
                    ],
                    "quality": decision_quality(session, d.decision_id, mv_id),
                }
            )
    return out
