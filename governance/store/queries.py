"""Read-side queries reviewers and the CLI run against the ledger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.intake.decision_log import score_reproduced
from governance.store import bulk
from governance.store.models import (
    ActionSetRecord,
    CostModel,
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
    """The most recent runs, newest first, with status, wall time and counts.

    Count columns hold integers (pandas ``Int64``, missing where a run of another kind has no
    such count), so mixing run kinds never turns a count into a float.
    """
    stmt = sa.select(Run).order_by(Run.started_at.desc(), Run.id.desc()).limit(limit)
    if kind:
        stmt = stmt.where(Run.kind == kind)
    rows = []
    for run in session.scalars(stmt):
        counts = run.counts or {}
        wall = (run.timings or {}).get("wall")
        if wall is None and run.finished_at and run.started_at:
            wall = (run.finished_at - run.started_at).total_seconds()
        rows.append(
            {
                "run_id": run.id,
                "kind": run.kind,
                "night": run.night,
                "model": run.model_name,
                "status": run.status,
                "attempts": run.attempts,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "wall_s": wall,
                **{k: v for k, v in counts.items() if not isinstance(v, dict | list)},
                "error": run.error,
            }
        )
    return records_frame(rows)


def records_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A frame of ``rows`` in which a column of integers (some missing) is ``Int64``, so a count
    stays an integer when some rows lack it, instead of becoming a float."""
    frame = pd.DataFrame(rows)
    for col in frame.columns:
        values = [r.get(col) for r in rows]
        present = [v for v in values if v is not None]
        if present and all(
            isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_) for v in present
        ):
            frame[col] = pd.array([None if v is None else int(v) for v in values], "Int64")
    return frame


def run_kinds(session: Session) -> list[str]:
    """The kinds of run the ledger holds, sorted."""
    return sorted(session.scalars(sa.select(Run.kind).distinct()))


def subject_history(session: Session, subject_id: str) -> list[dict[str, Any]]:
    """Every decision about ``subject_id``, oldest first, with its model version, reasons and
    their faithfulness (PGI, PGU, random control and its flag; None where not measured)."""
    from governance.store.models import ExplanationFaithfulness

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
        faith = session.get(
            ExplanationFaithfulness,
            (decision.decision_id, decision.model_version_id, "openxai_normal"),
        )
        out.append(
            {
                "decision_id": decision.decision_id,
                "subject_id": decision.subject_id,
                "decided_at": decision.decided_at.isoformat(),  # with its zone (UTCDateTime)
                "model": mv.name,
                "model_version": mv.version,
                "model_sha256": mv.artifact_sha256,
                "score": decision.score,
                "score_recomputed": decision.score_recomputed,
                # False: the registered model does not reproduce the logged score
                "reproduced": None
                if decision.score_recomputed is None
                else bool(score_reproduced(decision.score, decision.score_recomputed)),
                "decision": decision.decision,
                "out_of_range": decision.out_of_range or [],
                "reasons": [
                    {
                        "rank": r.rank,
                        "feature": r.feature,
                        "value": decision.features.get(r.feature),
                        "attribution": r.attribution,
                        "mu": r.mu,
                        "mu_state": r.mu_state,
                    }
                    for r in reasons
                ],
                "recourse_status": check.status if check else None,
                "faithfulness": None
                if faith is None
                else {
                    "pgi": faith.pgi,
                    "pgu": faith.pgu,
                    "pgi_random": faith.pgi_random,
                    "reasons_not_above_random": faith.reasons_not_above_random,
                },
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
        cost_model = session.get(CostModel, issued.cost_model_id) if issued else None
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
                    "cost_kind": cost_model.kind if cost_model else None,
                    "category_cost": (cost_model.body or {}).get("category_cost")
                    if cost_model
                    else None,
                    "score_before": issued.score_before,
                    "score_after": issued.score_after,
                    "complete": issued.complete,
                    "minimal_over": issued.minimal_over,
                },
            }
        )
    return out


def chunk_totals(session: Session, run_id: int) -> dict[str, int]:
    """Per-chunk counts summed over the run's committed chunks: integers exactly, floats with
    :func:`math.fsum` (correctly rounded, so the total does not depend on the order in which
    chunks were committed, as a rerun's must not)."""
    import math

    from governance.store.models import RunChunk

    parts: dict[str, list[int | float]] = {}
    for counts in session.scalars(sa.select(RunChunk.counts).where(RunChunk.run_id == run_id)):
        for k, v in (counts or {}).items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                parts.setdefault(k, []).append(v)
    return {
        k: sum(v) if all(isinstance(x, int) for x in v) else math.fsum(v)
        for k, v in parts.items()
    }


def slice_bounds(session: Session, stmt: sa.Select, rows: int) -> list[tuple[Any, Any]]:
    """Split the rows of ``stmt`` (a select of one key column, with its joins and filters)
    into consecutive key ranges of ``rows`` rows each, in key order.

    Returns ``[(lo, hi), ...]``: ``lo`` inclusive, ``hi`` exclusive, ``None`` for an open
    end. Only the boundary keys leave the database (a window function numbers the rows), so
    a flow can hand each worker a range to read for itself.
    """
    key = stmt.selected_columns[0]
    numbered = stmt.add_columns(sa.func.row_number().over(order_by=key).label("rn")).subquery()
    first = numbered.c[key.key]
    starts = session.scalars(
        sa.select(first).where((numbered.c.rn - 1) % max(1, rows) == 0).order_by(first)
    ).all()
    return [(lo, starts[i + 1] if i + 1 < len(starts) else None) for i, lo in enumerate(starts)]


def _in_range(stmt: sa.Select, key: sa.ColumnElement, bounds: tuple[Any, Any] | None) -> sa.Select:
    lo, hi = bounds or (None, None)
    if lo is not None:
        stmt = stmt.where(key >= lo)
    if hi is not None:
        stmt = stmt.where(key < hi)
    return stmt


def open_recourse_keys(
    model_name: str,
    exclude_version_id: int,
    since: datetime,
    exclude_decisions: Sequence[str] = (),
) -> sa.Select:
    """Recourse issued under other versions of ``model_name`` since ``since``, except that of
    ``exclude_decisions``: its ids."""
    stmt = (
        sa.select(IssuedRecourse.recourse_id)
        .join(ModelVersion, ModelVersion.id == IssuedRecourse.model_version_id)
        .where(
            ModelVersion.name == model_name,
            IssuedRecourse.model_version_id != exclude_version_id,
            IssuedRecourse.issued_at >= since,
        )
    )
    for batch in batches(list(exclude_decisions)):
        stmt = stmt.where(IssuedRecourse.decision_id.not_in(batch))
    return stmt


def open_recourse_slice(
    bind: sa.Engine | str,
    model_name: str,
    exclude_version_id: int,
    since: datetime,
    bounds: tuple[Any, Any] | None,
    *,
    layout: str,
    exclude_decisions: Sequence[str] = (),
) -> pa.Table:
    """One key range of the open recourse, in recourse_id order, as Arrow, with what
    re-validation reads and nothing else (no JSON is parsed, no id leaves that is not needed).

    Columns: recourse_id, kind, stability, changed, x_codes, same_layout (the binary point
    is in ``layout``), has_alternative.
    """
    ir = IssuedRecourse
    stmt = (
        open_recourse_keys(model_name, exclude_version_id, since, exclude_decisions)
        .add_columns(
            ir.kind,
            ir.stability,
            ir.changed,
            ir.x_codes,
            sa.and_(ir.layout_sha256 == layout, ir.x_codes.is_not(None)).label("same_layout"),
            ir.alternative.is_not(None).label("has_alternative"),
        )
        .order_by(ir.recourse_id)
    )
    return bulk.read_arrow(bind, _in_range(stmt, ir.recourse_id, bounds))


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
            IssuedRecourse.alternative.is_not(None).label("has_alternative"),
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
    return bulk.read_frame(session.get_bind(), stmt)


def recontact_count(session: Session, run_id: int) -> int:
    """Distinct subjects whose recourse the check in ``run_id`` found no longer valid."""
    from governance.store.models import RecourseValidity

    return int(
        session.scalar(
            sa.select(sa.func.count(sa.distinct(Decision.subject_id)))
            .join(IssuedRecourse, IssuedRecourse.decision_id == Decision.decision_id)
            .join(RecourseValidity, RecourseValidity.recourse_id == IssuedRecourse.recourse_id)
            .where(RecourseValidity.run_id == run_id, sa.not_(RecourseValidity.valid))
        )
        or 0
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


def recent_denied_keys(
    model_name: str,
    exclude_version_id: int,
    since: datetime,
    exclude_decisions: Sequence[str] = (),
) -> sa.Select:
    """Denials by other versions of ``model_name`` since ``since``, except
    ``exclude_decisions``: their decision ids."""
    stmt = (
        sa.select(Decision.decision_id)
        .join(ModelVersion, ModelVersion.id == Decision.model_version_id)
        .where(
            ModelVersion.name == model_name,
            Decision.model_version_id != exclude_version_id,
            Decision.decision == "denied",
            Decision.decided_at >= since,
        )
    )
    for batch in batches(list(exclude_decisions)):
        stmt = stmt.where(Decision.decision_id.not_in(batch))
    return stmt


def recent_denied(
    session: Session,
    model_name: str,
    exclude_version_id: int,
    since: datetime,
    bounds: tuple[Any, Any] | None = None,
    exclude_decisions: Sequence[str] = (),
) -> pd.DataFrame:
    """Denials by other versions of ``model_name`` since ``since``, except
    ``exclude_decisions`` (within a decision-id range if ``bounds`` is given), in id order:
    id, version, time, features."""
    stmt = (
        recent_denied_keys(model_name, exclude_version_id, since, exclude_decisions)
        .add_columns(Decision.model_version_id, Decision.decided_at, Decision.features)
        .order_by(Decision.decision_id)
    )
    stmt = _in_range(stmt, Decision.decision_id, bounds)
    frame = bulk.read_frame(session.get_bind(), stmt)
    return frame.reindex(columns=["decision_id", "model_version_id", "decided_at", "features"])


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
    """Every deletion request with due date and status; open and overdue first.

    With the request's deletion checks summed over models: ``rows_removed``, the training rows
    this request removed from the files as earlier erasures left them (its own rows, the delta
    against the previous state); ``rows_vs_registered``, the rows the candidate lacks against
    the deployed version's training data as registered (every erasure so far);
    ``invalid_by_deletion``, others' recourse the candidate no longer approves that a control
    refit with the subject kept does (the deletion's own effect); ``invalid_by_retraining``,
    recourse the deployed version approves that the control does not (retraining's effect).
    """
    from datetime import UTC

    from governance.store.models import DeletionCheck, DeletionRequest

    sums = {
        request_id: (delta, original, by_deletion, by_retraining)
        for request_id, delta, original, by_deletion, by_retraining in session.execute(
            sa.select(
                DeletionCheck.request_id,
                sa.func.sum(DeletionCheck.training_rows_removed),
                sa.func.sum(DeletionCheck.original_rows_removed),
                sa.func.sum(DeletionCheck.invalidated_by_deletion),
                sa.func.sum(DeletionCheck.invalidated_by_retraining),
            ).group_by(DeletionCheck.request_id)
        )
    }
    now = datetime.now(UTC)
    rows = []
    for r in session.scalars(sa.select(DeletionRequest).order_by(DeletionRequest.due_at)):
        due = r.due_at if r.due_at.tzinfo else r.due_at.replace(tzinfo=UTC)
        done = r.status == "purged"
        delta, original, by_deletion, by_retraining = sums.get(r.request_id, (None,) * 4)
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
                "rows_removed": _int(delta),
                "rows_vs_registered": _int(original),
                "invalid_by_deletion": _int(by_deletion),
                "invalid_by_retraining": _int(by_retraining),
            }
        )
    frame = records_frame(rows)
    if len(frame):
        frame = frame.sort_values(["overdue", "status", "due"], ascending=[False, True, True])
        for col in DELETION_COUNTS:
            frame[col] = frame[col].astype("Int64")
    return frame


DELETION_COUNTS = (
    "rows_removed", "rows_vs_registered", "invalid_by_deletion", "invalid_by_retraining"
)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def issued_under(session: Session, model_version_id: int, limit: int | None = None) -> pd.DataFrame:
    """Recourse issued under one model version: recourse_id and the promised point."""
    stmt = (
        sa.select(IssuedRecourse.recourse_id, IssuedRecourse.x_after)
        .where(IssuedRecourse.model_version_id == model_version_id)
        .order_by(IssuedRecourse.recourse_id)
    )
    if limit:
        stmt = stmt.limit(limit)
    return bulk.read_frame(session.get_bind(), stmt).reindex(columns=["recourse_id", "x_after"])


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
