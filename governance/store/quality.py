"""Read-side queries over the explanation-quality tables, for the CLI, the review pages and the
notice linter: the explainer chosen per version, one decision's quality figures, the denials
whose reasons are flagged against the random control, the per-version distribution, a
redeploy check's explanation drift, and a subject's explanation timeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.store.models import Decision, ModelVersion, Reason


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
