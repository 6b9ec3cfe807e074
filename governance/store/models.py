"""The ledger's tables, declared once with SQLAlchemy 2; sql/schema.sql and migrations follow.

Keys make reruns idempotent: a decision is keyed by its id, its explanation, attributions and
reasons by (decision, model version[, feature | rank]), a run by its natural key (kind, night,
model). Rewriting a chunk replaces exactly its own rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JsonType = JSON().with_variant(JSONB(), "postgresql")
Stamp = DateTime(timezone=True)

ID_LEN = 64  # decision and subject ids
NAME_LEN = 64  # model names, versions, features


class Base(DeclarativeBase):
    type_annotation_map = {
        dict[str, Any]: JsonType, dict[str, Any] | None: JsonType, list[Any]: JsonType
    }


class ModelVersion(Base):
    """A registered model version, as the ledger knew it when it was first used."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    version: Mapped[str] = mapped_column(String(NAME_LEN))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Stamp)
    deployed_at: Mapped[datetime | None] = mapped_column(Stamp)
    manifest: Mapped[dict[str, Any]]

    def __repr__(self) -> str:
        return f"ModelVersion({self.name!r}, {self.version!r}, sha256={self.artifact_sha256[:12]})"


class Run(Base):
    """One flow run per natural key; a rerun of the same night updates the same row."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    night: Mapped[date | None] = mapped_column(Date, index=True)
    model_name: Mapped[str | None] = mapped_column(String(NAME_LEN))
    status: Mapped[str] = mapped_column(String(16))
    parameters: Mapped[dict[str, Any]]
    code_version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(Stamp)
    finished_at: Mapped[datetime | None] = mapped_column(Stamp)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    counts: Mapped[dict[str, Any]]
    timings: Mapped[dict[str, Any]]
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"Run({self.run_key!r}, {self.status})"


class RunChunk(Base):
    """A chunk of a run whose results are committed; a resumed run skips these."""

    __tablename__ = "run_chunks"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    chunk_no: Mapped[int] = mapped_column(primary_key=True)
    chunk_sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int]
    counts: Mapped[dict[str, Any]]
    seconds: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[datetime] = mapped_column(Stamp)


class Decision(Base):
    """One automated decision as logged, with the features it was made on."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_subject", "subject_id", "decided_at"),
        {"info": {"upsert": True}},
    )

    decision_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(ID_LEN))
    decided_at: Mapped[datetime] = mapped_column(Stamp)
    decision_date: Mapped[date] = mapped_column(Date, index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    score: Mapped[float] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(16))
    features: Mapped[dict[str, Any]]
    score_recomputed: Mapped[float | None] = mapped_column(Float)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)

    def __repr__(self) -> str:
        return f"Decision({self.decision_id!r}, {self.subject_id!r}, {self.decision})"


class Explainer(Base):
    """An explainer configuration: what produced a set of attributions."""

    __tablename__ = "explainers"

    id: Mapped[int] = mapped_column(primary_key=True)
    config_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    explainer: Mapped[str] = mapped_column(String(64))
    output: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, Any]]
    background_sha256: Mapped[str | None] = mapped_column(String(64))


class Explanation(Base):
    """Per decision and model version: base value, model output and the additivity check."""

    __tablename__ = "explanations"

    decision_id: Mapped[str] = mapped_column(
        ForeignKey("decisions.decision_id", ondelete="CASCADE"), primary_key=True
    )
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), primary_key=True)
    explainer_id: Mapped[int] = mapped_column(ForeignKey("explainers.id"))
    base_value: Mapped[float] = mapped_column(Float)
    model_output: Mapped[float] = mapped_column(Float)
    additivity_error: Mapped[float] = mapped_column(Float)
    additive: Mapped[bool] = mapped_column(Boolean)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)


class Attribution(Base):
    """One feature's value and attribution in one decision."""

    __tablename__ = "attributions"

    decision_id: Mapped[str] = mapped_column(
        ForeignKey("decisions.decision_id", ondelete="CASCADE"), primary_key=True
    )
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), primary_key=True)
    feature: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    attribution: Mapped[float] = mapped_column(Float)


class Reason(Base):
    """The reasons given for a denial, ranked from the strongest push towards denial."""

    __tablename__ = "reasons"

    decision_id: Mapped[str] = mapped_column(
        ForeignKey("decisions.decision_id", ondelete="CASCADE"), primary_key=True
    )
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), primary_key=True)
    rank: Mapped[int] = mapped_column(primary_key=True)
    feature: Mapped[str] = mapped_column(String(NAME_LEN))
    attribution: Mapped[float] = mapped_column(Float)
    mu: Mapped[float | None] = mapped_column(Float)  # responsiveness of this reason
    # "scored", or "no_action" (no feasible change of the feature: mu is NULL, not 0);
    # NULL when no responsiveness was computed (no action set)
    mu_state: Mapped[str | None] = mapped_column(String(16))


class Quarantine(Base):
    """A log row rejected by validation, with the check it failed and the offending value."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("run_id", "row_number", "check", "column"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    row_number: Mapped[int]
    decision_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    subject_id: Mapped[str | None] = mapped_column(String(ID_LEN), index=True)
    model_name: Mapped[str | None] = mapped_column(String(NAME_LEN))
    model_version: Mapped[str | None] = mapped_column(String(NAME_LEN))
    check: Mapped[str] = mapped_column(String(100))
    column: Mapped[str | None] = mapped_column(String(NAME_LEN))
    value: Mapped[str | None] = mapped_column(Text)
    row_json: Mapped[str] = mapped_column(Text)
    quarantined_at: Mapped[datetime] = mapped_column(Stamp)


class ActionSetRecord(Base):
    """An action set as used for a model version: what applicants can change."""

    __tablename__ = "action_sets"
    __table_args__ = (UniqueConstraint("model_version_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    version: Mapped[str] = mapped_column(String(NAME_LEN))
    sha256: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]]


class CostModel(Base):
    """A fitted recourse cost (e.g. percentile shift with its quantile grids), by content hash."""

    __tablename__ = "cost_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    body: Mapped[dict[str, Any]]


class Responsiveness(Base):
    """Per denied decision and feature: attribution, responsiveness score and how it was found."""

    __tablename__ = "responsiveness"

    decision_id: Mapped[str] = mapped_column(
        ForeignKey("decisions.decision_id", ondelete="CASCADE"), primary_key=True
    )
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), primary_key=True
    )
    feature: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    action_set_id: Mapped[int] = mapped_column(ForeignKey("action_sets.id"))
    attribution: Mapped[float | None] = mapped_column(Float)
    # the score; NULL where the feature has no feasible change at all (mu_state "no_action").
    # 0 means that changing this feature alone cannot lead to approval.
    mu: Mapped[float | None] = mapped_column(Float)
    mu_state: Mapped[str] = mapped_column(String(16), default="scored", server_default="scored")
    n_points: Mapped[int]
    method: Mapped[str] = mapped_column(String(16))


class RecourseCheck(Base):
    """Per denied decision: can any action flip it (recourse, fixed, undetermined) and how its
    reasons fare (all unresponsive, fixed yet given reasons)."""

    __tablename__ = "recourse_checks"

    decision_id: Mapped[str] = mapped_column(
        ForeignKey("decisions.decision_id", ondelete="CASCADE"), primary_key=True
    )
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), primary_key=True
    )
    action_set_id: Mapped[int] = mapped_column(ForeignKey("action_sets.id"))
    status: Mapped[str] = mapped_column(String(16), index=True)
    complete: Mapped[bool] = mapped_column(Boolean)
    n_points: Mapped[int]
    reasons_given: Mapped[int]
    responsive_reasons: Mapped[int]
    all_reasons_unresponsive: Mapped[bool] = mapped_column(Boolean)
    fixed_with_reasons: Mapped[bool] = mapped_column(Boolean)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)


class ResponsiveReason(Base):
    """The paper's alternative ranking: features ranked by responsiveness instead of attribution."""

    __tablename__ = "responsive_reasons"

    decision_id: Mapped[str] = mapped_column(
        ForeignKey("decisions.decision_id", ondelete="CASCADE"), primary_key=True
    )
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(primary_key=True)
    feature: Mapped[str] = mapped_column(String(NAME_LEN))
    mu: Mapped[float] = mapped_column(Float)


class IssuedRecourse(Base):
    """The action recommended to a denied applicant: a promise the redeploy and deletion checks
    keep testing. With the robust option the recommended action is the cheapest with stability
    R >= tau, and the minimal-cost one is kept as ``alternative`` (and vice versa)."""

    __tablename__ = "issued_recourse"
    __table_args__ = (
        UniqueConstraint("decision_id", "model_version_id"),
        {"info": {"upsert": True}},
    )

    recourse_id: Mapped[str] = mapped_column(String(ID_LEN + 24), primary_key=True)
    decision_id: Mapped[str] = mapped_column(
        ForeignKey("decisions.decision_id", ondelete="CASCADE"), index=True
    )
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    action_set_id: Mapped[int] = mapped_column(ForeignKey("action_sets.id"))
    cost_model_id: Mapped[int] = mapped_column(ForeignKey("cost_models.id"))
    issued_at: Mapped[datetime] = mapped_column(Stamp, index=True)
    cost: Mapped[float] = mapped_column(Float)
    score_before: Mapped[float] = mapped_column(Float)
    score_after: Mapped[float] = mapped_column(Float)
    complete: Mapped[bool] = mapped_column(Boolean)  # cost proven minimal on the candidate grid
    # what the cost is proven minimal over: "action_set" (every point of A(x)), "candidate_grid"
    # (float features searched on a grid: a cheaper point between grid values may exist), or
    # NULL (a valid recourse whose cost is not proven minimal)
    minimal_over: Mapped[str | None] = mapped_column(String(16))
    changes: Mapped[list[Any]]  # [{"feature", "from", "to"}] for each feature the action changes
    x_after: Mapped[dict[str, Any]]  # the full point the applicant would reach
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    # which search produced it, its stability at issue time, and the other candidate
    kind: Mapped[str] = mapped_column(String(16), default="minimal", server_default="minimal")
    stability: Mapped[float | None] = mapped_column(Float)  # Hamman et al. R(x') at issue time
    alternative: Mapped[dict[str, Any] | None]  # {kind, cost, score_after, stability, x_after}
    # Machine copy of x_after for re-validating millions of promises without parsing JSON: the
    # point as little-endian float64 in the issuing schema's layout (categories as codes).
    x_codes: Mapped[bytes | None] = mapped_column(LargeBinary)
    layout_sha256: Mapped[str | None] = mapped_column(String(64))
    changed: Mapped[str | None] = mapped_column(Text)  # features the action changes, comma-joined


class RecourseValidity(Base):
    """An issued recourse re-checked under a later model version (redeploy or deletion)."""

    __tablename__ = "recourse_validity"

    recourse_id: Mapped[str] = mapped_column(
        ForeignKey("issued_recourse.recourse_id", ondelete="CASCADE"), primary_key=True
    )
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), primary_key=True
    )
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    valid: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float] = mapped_column(Float)
    checked_at: Mapped[datetime] = mapped_column(Stamp)
    forward_validity: Mapped[float | None] = mapped_column(Float)  # share of retrained variants
    n_variants: Mapped[int | None]
    alternative_valid: Mapped[bool | None] = mapped_column(Boolean)


class VersionComparison(Base):
    """What a later version would tell a recently denied applicant, against what they were told."""

    __tablename__ = "version_comparisons"

    decision_id: Mapped[str] = mapped_column(
        ForeignKey("decisions.decision_id", ondelete="CASCADE"), primary_key=True
    )
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), primary_key=True
    )
    old_model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    new_score: Mapped[float] = mapped_column(Float)
    reasons_changed: Mapped[bool] = mapped_column(Boolean)
    feature_agreement: Mapped[float] = mapped_column(Float)
    rank_agreement: Mapped[float] = mapped_column(Float)
    old_status: Mapped[str | None] = mapped_column(String(16))
    new_status: Mapped[str | None] = mapped_column(String(16))
    became_fixed: Mapped[bool] = mapped_column(Boolean)
    gained_recourse: Mapped[bool] = mapped_column(Boolean)
    mu_mean_abs_change: Mapped[float | None] = mapped_column(Float)


class CalibrationBin(Base):
    """Stability at issue time against validity realised after a redeploy, per bin of R."""

    __tablename__ = "calibration_bins"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    bin: Mapped[int] = mapped_column(primary_key=True)
    lower: Mapped[float] = mapped_column(Float)
    upper: Mapped[float] = mapped_column(Float)
    n: Mapped[int]
    mean_stability: Mapped[float | None] = mapped_column(Float)
    realised_validity: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)


class DeploymentCheck(Base):
    """The redeploy check's verdict on one deployment: the gate the CLI exits on."""

    __tablename__ = "deployment_checks"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(NAME_LEN))
    new_version: Mapped[str] = mapped_column(String(NAME_LEN))
    recourses_checked: Mapped[int]
    invalidated: Mapped[int]
    invalidation_rate: Mapped[float | None] = mapped_column(Float)
    gate: Mapped[float | None] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(Boolean)
    checked_at: Mapped[datetime] = mapped_column(Stamp)


class DeletionRequest(Base):
    """A request to erase a subject (GDPR Art. 17), due one month after receipt.

    The subject id is held only until the purge; afterwards the salted hash and the
    tombstone are all that is left.
    """

    __tablename__ = "deletion_requests"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_hash: Mapped[str] = mapped_column(String(64), index=True)
    subject_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    reason: Mapped[str | None] = mapped_column(Text)
    model_name: Mapped[str | None] = mapped_column(String(NAME_LEN))
    received_at: Mapped[datetime] = mapped_column(Stamp)
    due_at: Mapped[datetime] = mapped_column(Stamp, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    completed_at: Mapped[datetime | None] = mapped_column(Stamp)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    counts: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text)


class DeletionCheck(Base):
    """Per request and model: the candidate retrained without the subject, and what it breaks."""

    __tablename__ = "deletion_checks"

    request_id: Mapped[str] = mapped_column(
        ForeignKey("deletion_requests.request_id", ondelete="CASCADE"), primary_key=True
    )
    model_name: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    current_version: Mapped[str] = mapped_column(String(NAME_LEN))
    candidate_version: Mapped[str | None] = mapped_column(String(NAME_LEN))
    training_rows_removed: Mapped[int]
    sha256_before: Mapped[str | None] = mapped_column(String(64))
    sha256_after: Mapped[str | None] = mapped_column(String(64))
    recourses_checked: Mapped[int]
    invalidated: Mapped[int]
    reasons_changed: Mapped[int]
    became_fixed: Mapped[int]
    gained_recourse: Mapped[int]
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))


class Tombstone(Base):
    """What remains of an erased subject: a salted hash, the request, dates and counts."""

    __tablename__ = "tombstones"

    request_id: Mapped[str] = mapped_column(
        ForeignKey("deletion_requests.request_id", ondelete="CASCADE"), primary_key=True
    )
    subject_hash: Mapped[str] = mapped_column(String(64), index=True)
    received_at: Mapped[datetime] = mapped_column(Stamp)
    purged_at: Mapped[datetime] = mapped_column(Stamp)
    counts: Mapped[dict[str, Any]]


class RecourseFragility(Base):
    """Worst-case fragility of an issued recourse: the fewest training deletions that flip it."""

    __tablename__ = "recourse_fragility"

    recourse_id: Mapped[str] = mapped_column(
        ForeignKey("issued_recourse.recourse_id", ondelete="CASCADE"), primary_key=True
    )
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), primary_key=True
    )
    k: Mapped[int | None]  # None: more than K deletions needed
    budget: Mapped[int]  # K
    method: Mapped[str] = mapped_column(String(16))
    final_score: Mapped[float | None] = mapped_column(Float)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    computed_at: Mapped[datetime] = mapped_column(Stamp)
