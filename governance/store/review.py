"""Read-only queries behind the review pages and reports: every list paginated, every value
plain Python (dicts, lists, numbers, datetimes), so a template or a chart can use it as is.

Nothing here writes. Tables another part of the ledger may not have yet (on an older schema)
are looked up by name in ``tables`` and left out when absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.store.models import (
    ActionSetRecord,
    Base,
    CalibrationBin,
    Decision,
    DeletionCheck,
    DeletionRequest,
    DeploymentCheck,
    Explainer,
    IssuedRecourse,
    ModelVersion,
    Quarantine,
    Reason,
    RecourseCheck,
    RecourseValidity,
    Run,
    Tombstone,
)
from governance.store.notices import aware, statements
from governance.store.subjects import tombstone_dict

PER_PAGE = 50
MU_BINS = np.linspace(0.0, 1.0, 11)


def offset(page: int, per: int) -> int:
    return (max(1, page) - 1) * per


def scalar_counts(counts: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (counts or {}).items() if not isinstance(v, dict | list)}


def seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (aware(end) - aware(start)).total_seconds()


def run_dict(r: Run) -> dict[str, Any]:
    return {
        "run_id": r.id,
        "run_key": r.run_key,
        "kind": r.kind,
        "night": r.night,
        "model": r.model_name,
        "status": r.status,
        "attempts": r.attempts,
        "started_at": aware(r.started_at),
        "finished_at": aware(r.finished_at),
        "seconds": seconds(r.started_at, r.finished_at),
        "counts": r.counts or {},
        "scalars": scalar_counts(r.counts),
        "timings": r.timings or {},
        "parameters": r.parameters or {},
        "code_version": r.code_version,
        "flow_run_id": r.flow_run_id,
        "error": r.error,
    }


# -- runs ----------------------------------------------------------------------------------
def runs_page(
    session: Session, page: int = 1, per: int = PER_PAGE, kind: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Runs, newest first, and how many there are."""
    where = [Run.kind == kind] if kind else []
    total = session.scalar(sa.select(sa.func.count()).select_from(Run).where(*where))
    stmt = (
        sa.select(Run)
        .where(*where)
        .order_by(Run.started_at.desc(), Run.id.desc())
        .limit(per)
        .offset(offset(page, per))
    )
    return [run_dict(r) for r in session.scalars(stmt)], int(total or 0)


def run(session: Session, run_id: int) -> dict[str, Any] | None:
    r = session.get(Run, run_id)
    return None if r is None else run_dict(r)


def erasures(session: Session) -> int:
    """How many erasures the ledger has seen (tombstones): cached reports key on it."""
    return int(session.scalar(sa.select(sa.func.count()).select_from(Tombstone)) or 0)


def quarantine_by_check(session: Session, run_id: int) -> list[dict[str, Any]]:
    """Quarantined rows of a run per failed check and column, most rows first."""
    n = sa.func.count()
    rows = session.execute(
        sa.select(Quarantine.check, Quarantine.column, n)
        .where(Quarantine.run_id == run_id)
        .group_by(Quarantine.check, Quarantine.column)
        .order_by(n.desc(), Quarantine.check)
    ).all()
    return [{"check": c, "column": col, "rows": int(k)} for c, col, k in rows]


def quarantine_page(
    session: Session, run_id: int, page: int = 1, per: int = PER_PAGE
) -> tuple[list[dict[str, Any]], int]:
    """A run's quarantined rows (one per failed check), in log order."""
    total = session.scalar(
        sa.select(sa.func.count()).select_from(Quarantine).where(Quarantine.run_id == run_id)
    )
    rows = session.scalars(
        sa.select(Quarantine)
        .where(Quarantine.run_id == run_id)
        .order_by(Quarantine.row_number, Quarantine.id)
        .limit(per)
        .offset(offset(page, per))
    )
    return [
        {
            "row_number": q.row_number,
            "decision_id": q.decision_id,
            "subject_id": q.subject_id,
            "model": " ".join(x for x in (q.model_name, q.model_version) if x),
            "check": q.check,
            "column": q.column,
            "value": q.value,
        }
        for q in rows
    ], int(total or 0)


def run_decisions_page(
    session: Session, run_id: int, page: int = 1, per: int = PER_PAGE
) -> tuple[list[dict[str, Any]], int]:
    """Decisions a run stored, in id order (the primary key's), with their verdict."""
    total = session.scalar(
        sa.select(sa.func.count()).select_from(Decision).where(Decision.run_id == run_id)
    )
    verdict = (RecourseCheck.decision_id == Decision.decision_id) & (
        RecourseCheck.model_version_id == Decision.model_version_id
    )
    rows = session.execute(
        sa.select(
            Decision.decision_id,
            Decision.subject_id,
            Decision.decided_at,
            Decision.score,
            Decision.decision,
            RecourseCheck.status,
        )
        .outerjoin(RecourseCheck, verdict)
        .where(Decision.run_id == run_id)
        .order_by(Decision.decision_id)
        .limit(per)
        .offset(offset(page, per))
    ).all()
    keys = ("decision_id", "subject_id", "decided_at", "score", "decision", "status")
    return [dict(zip(keys, r, strict=True)) for r in rows], int(total or 0)


def histogram(values: np.ndarray, bins: int | np.ndarray = 20) -> list[dict[str, float]]:
    """Counts per bin, as rows a chart takes (binned here: charts never see raw rows)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return []
    if isinstance(bins, int):
        lo, hi = float(values.min()), float(values.max())
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.linspace(lo, hi, bins + 1)
    counts, edges = np.histogram(values, bins=bins)
    return [
        {"lo": float(a), "hi": float(b), "n": int(c)}
        for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True)
    ]


def run_report(session: Session, run_id: int) -> dict[str, Any] | None:
    """What the run page and ``govern report`` show: counts and rates, reasons and their
    responsiveness, verdicts, recourse cost and stability, quarantine, and for a redeploy
    check its invalidation rate, calibration and re-contact count."""
    info = run(session, run_id)
    if info is None:
        return None
    own = (Decision.decision_id == Reason.decision_id) & (
        Decision.model_version_id == Reason.model_version_id
    )
    by_decision = dict(
        session.execute(
            sa.select(Decision.decision, sa.func.count())
            .where(Decision.run_id == run_id)
            .group_by(Decision.decision)
        ).all()
    )
    reasons = session.execute(
        sa.select(Reason.feature, Reason.rank, sa.func.count())
        .join(Decision, own)
        .where(Decision.run_id == run_id)
        .group_by(Reason.feature, Reason.rank)
    ).all()
    mus = np.array(
        session.scalars(
            sa.select(Reason.mu).join(Decision, own).where(Decision.run_id == run_id)
        ).all(),
        dtype=float,
    )
    scored = mus[np.isfinite(mus)]
    statuses = dict(
        session.execute(
            sa.select(RecourseCheck.status, sa.func.count())
            .where(RecourseCheck.run_id == run_id)
            .group_by(RecourseCheck.status)
        ).all()
    )
    issued = session.execute(
        sa.select(IssuedRecourse.cost, IssuedRecourse.stability, IssuedRecourse.complete).where(
            IssuedRecourse.run_id == run_id
        )
    ).all()
    costs = np.array([c for c, _, _ in issued], dtype=float)
    stab = np.array([s for _, s, _ in issued if s is not None], dtype=float)
    checked = sum(statuses.values())
    report = {
        "run": info,
        "decisions": {
            "total": int(sum(by_decision.values())),
            "approved": int(by_decision.get("approved", 0)),
            "denied": int(by_decision.get("denied", 0)),
        },
        "reasons": [{"feature": f, "rank": int(r), "n": int(n)} for f, r, n in reasons],
        "mu": {
            "scored": int(len(scored)),
            "zero": int((scored == 0).sum()),
            "hist": histogram(scored, MU_BINS),
        },
        "verdicts": [{"status": s, "n": int(n)} for s, n in sorted(statuses.items())],
        "fixed_share": (statuses.get("fixed", 0) / checked) if checked else None,
        "recourse": {
            "issued": len(issued),
            "proven_minimal": int(sum(1 for *_, c in issued if c)),
            "cost_hist": histogram(costs),
            "stability_hist": histogram(stab, np.linspace(0.0, 1.0, 11)),
            "with_stability": int(len(stab)),
        },
        "quarantine": quarantine_by_check(session, run_id),
        "redeploy": redeploy_summary(session, run_id),
        "deletion": [
            {
                "request_id": c.request_id,
                "model": c.model_name,
                "current_version": c.current_version,
                "candidate_version": c.candidate_version,
                "recourses_checked": c.recourses_checked,
                "invalidated": c.invalidated,
            }
            for c in session.scalars(sa.select(DeletionCheck).where(DeletionCheck.run_id == run_id))
        ],
    }
    return report


def redeploy_summary(session: Session, run_id: int) -> dict[str, Any] | None:
    """The deployment check of a redeploy run: gate verdict, calibration, re-contacts."""
    check = session.get(DeploymentCheck, run_id)
    if check is None:
        return None
    bins = session.scalars(
        sa.select(CalibrationBin)
        .where(CalibrationBin.run_id == run_id)
        .order_by(CalibrationBin.bin)
    ).all()
    recontact = session.scalar(
        sa.select(sa.func.count(sa.distinct(Decision.subject_id)))
        .join(IssuedRecourse, IssuedRecourse.decision_id == Decision.decision_id)
        .join(RecourseValidity, RecourseValidity.recourse_id == IssuedRecourse.recourse_id)
        .where(RecourseValidity.run_id == run_id, sa.not_(RecourseValidity.valid))
    )
    return {
        "model": check.model_name,
        "version": check.new_version,
        "recourses_checked": check.recourses_checked,
        "invalidated": check.invalidated,
        "invalidation_rate": check.invalidation_rate,
        "gate": check.gate,
        "passed": check.passed,
        "checked_at": aware(check.checked_at),
        "calibration": [calibration_dict(b) for b in bins],
        "recontact_subjects": int(recontact or 0),
    }


def calibration_dict(b: CalibrationBin) -> dict[str, Any]:
    return {
        "bin": b.bin,
        "lower": b.lower,
        "upper": b.upper,
        "n": b.n,
        "mean_stability": b.mean_stability,
        "realised_validity": b.realised_validity,
        "ci_low": b.ci_low,
        "ci_high": b.ci_high,
    }


# -- model versions ----------------------------------------------------------------------------
def model_versions(session: Session) -> list[dict[str, Any]]:
    """Every version the ledger has seen, with its decision count and last redeploy check."""
    n = (
        sa.select(sa.func.count())
        .select_from(Decision)
        .where(Decision.model_version_id == ModelVersion.id)
        .scalar_subquery()
    )
    rows = session.execute(sa.select(ModelVersion, n).order_by(ModelVersion.name, ModelVersion.id))
    return [{**model_version_dict(mv), "decisions": int(k or 0)} for mv, k in rows]


def model_version_dict(mv: ModelVersion) -> dict[str, Any]:
    return {
        "id": mv.id,
        "name": mv.name,
        "version": mv.version,
        "artifact_sha256": mv.artifact_sha256,
        "created_at": aware(mv.created_at),
        "deployed_at": aware(getattr(mv, "deployed_at", None)),
        "manifest": mv.manifest or {},
    }


def model_version(session: Session, mv_id: int) -> dict[str, Any] | None:
    """A version with its manifest, action sets, explainers, redeploy checks (with
    calibration), deletion candidates and reviewed reason statements."""
    mv = session.get(ModelVersion, mv_id)
    if mv is None:
        return None
    checks = []
    for c in session.scalars(
        sa.select(DeploymentCheck)
        .where(DeploymentCheck.model_name == mv.name, DeploymentCheck.new_version == mv.version)
        .order_by(DeploymentCheck.checked_at)
    ):
        summary = redeploy_summary(session, c.run_id)
        checks.append({"run_id": c.run_id, **(summary or {})})
    return {
        **model_version_dict(mv),
        "action_sets": [
            {"name": a.name, "version": a.version, "sha256": a.sha256}
            for a in session.scalars(
                sa.select(ActionSetRecord).where(ActionSetRecord.model_version_id == mv_id)
            )
        ],
        "explainers": [
            {
                "explainer": e.explainer,
                "output": e.output,
                "config_sha256": e.config_sha256,
                "background_sha256": e.background_sha256,
            }
            for e in session.scalars(
                sa.select(Explainer).where(Explainer.model_version_id == mv_id)
            )
        ],
        "redeploy_checks": checks,
        "deletion_candidates": [
            {
                "request_id": c.request_id,
                "current_version": c.current_version,
                "training_rows_removed": c.training_rows_removed,
                "invalidated": c.invalidated,
                "recourses_checked": c.recourses_checked,
            }
            for c in session.scalars(
                sa.select(DeletionCheck).where(
                    DeletionCheck.model_name == mv.name,
                    DeletionCheck.candidate_version == mv.version,
                )
            )
        ],
        "statements": statements(session, mv_id, history=True),
        "states": deployment_states(session, mv_id),
    }


def deployment_states(session: Session, mv_id: int) -> list[dict[str, Any]] | None:
    """The ledger's record of a version's deployment states (candidate, checked, deployed:
    who, when, why), oldest first; None where the ledger keeps no such record."""
    table = Base.metadata.tables.get("deployment_events")
    if table is None:
        return None
    mv = session.get(ModelVersion, mv_id)
    cols = table.c
    stmt = (
        sa.select(table)
        .where(cols.model_name == mv.name, cols.version == mv.version)
        .order_by(*[c for c in (cols.get("at"), cols.get("id")) if c is not None])
    )
    return [dict(r) for r in session.execute(stmt).mappings()]


# -- deletion requests -------------------------------------------------------------------------
def deletions_page(
    session: Session, now: datetime, page: int = 1, per: int = PER_PAGE
) -> tuple[list[dict[str, Any]], int]:
    """Deletion requests, open and overdue first, with what each check invalidated and the
    tombstone."""
    open_first = sa.case((DeletionRequest.status == "purged", 1), else_=0)
    total = session.scalar(sa.select(sa.func.count()).select_from(DeletionRequest))
    rows = session.scalars(
        sa.select(DeletionRequest)
        .order_by(open_first, DeletionRequest.due_at, DeletionRequest.request_id)
        .limit(per)
        .offset(offset(page, per))
    ).all()
    out = []
    for r in rows:
        due = aware(r.due_at)
        done = r.status == "purged"
        grave = session.get(Tombstone, r.request_id)
        out.append(
            {
                "request_id": r.request_id,
                "received_at": aware(r.received_at),
                "due_at": due,
                "status": r.status,
                "overdue": (not done) and now > due,
                "days_left": None if done else (due - now).days,
                "completed_at": aware(r.completed_at),
                "reason": r.reason,
                "model": r.model_name,
                "error": r.error,
                "checks": [
                    {
                        "model": c.model_name,
                        "current_version": c.current_version,
                        "candidate_version": c.candidate_version,
                        "training_rows_removed": c.training_rows_removed,
                        "recourses_checked": c.recourses_checked,
                        "invalidated": c.invalidated,
                        "reasons_changed": c.reasons_changed,
                        "became_fixed": c.became_fixed,
                        "gained_recourse": c.gained_recourse,
                    }
                    for c in session.scalars(
                        sa.select(DeletionCheck).where(DeletionCheck.request_id == r.request_id)
                    )
                ],
                "tombstone": None if grave is None else tombstone_dict(grave),
            }
        )
    # overdue first, then open by due date, then purged
    out.sort(key=lambda x: (not x["overdue"], x["status"] == "purged"))
    return out, int(total or 0)


# -- re-contact --------------------------------------------------------------------------------
RECONTACT_COLUMNS = (
    "subject_id",
    "decision_id",
    "recourse_id",
    "issued_at",
    "model_name",
    "issued_under",
    "checked_under",
    "promised_score",
    "new_score",
    "stability",
    "checked_at",
    "run_id",
)


def recontact_runs(session: Session) -> list[int]:
    """Runs that found recourse no longer valid (the re-contact list's filter)."""
    return list(
        session.scalars(
            sa.select(RecourseValidity.run_id)
            .where(sa.not_(RecourseValidity.valid))
            .group_by(RecourseValidity.run_id)
            .order_by(RecourseValidity.run_id.desc())
        )
    )


TYPES = {
    "issued_at": sa.DateTime(timezone=True),
    "checked_at": sa.DateTime(timezone=True),
    "promised_score": sa.Float(),
    "new_score": sa.Float(),
    "stability": sa.Float(),
    "run_id": sa.Integer(),
}


def _recontact_select(run_id: int | None) -> sa.Select:
    v = sa.table("v_recontact", *[sa.column(c, TYPES.get(c)) for c in RECONTACT_COLUMNS])
    stmt = sa.select(*[v.c[c] for c in RECONTACT_COLUMNS])
    if run_id is not None:
        stmt = stmt.where(v.c.run_id == run_id)
    return stmt.order_by(v.c.issued_at, v.c.subject_id, v.c.recourse_id)


def recontact_page(
    session: Session, run_id: int | None = None, page: int = 1, per: int = PER_PAGE
) -> tuple[list[dict[str, Any]], int]:
    """Rows of ``v_recontact`` (applicants told something that no longer holds)."""
    stmt = _recontact_select(run_id)
    total = session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    rows = session.execute(stmt.limit(per).offset(offset(page, per))).mappings()
    return [dict(r) for r in rows], int(total or 0)


def recontact_rows(session: Session, run_id: int | None = None) -> Iterator[tuple]:
    """Every row of ``v_recontact`` (optionally of one run), streamed, in RECONTACT_COLUMNS."""
    result = session.execute(_recontact_select(run_id), execution_options={"yield_per": 5_000})
    yield from result


def now() -> datetime:
    return datetime.now(UTC)
