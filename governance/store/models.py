"""The ledger's tables, declared once with SQLAlchemy 2; sql/schema.sql and migrations follow.

Keys make reruns idempotent: a decision is keyed by its id, its explanation, attributions and
reasons by (decision, model version[, feature | rank]), a run by its natural key (kind, night,
model). Rewriting a chunk replaces exactly its own rows.

The module reads best whole: it is the ledger's schema, one declaration per table in the order
of the data flow (as sql/schema.sql renders it), and its foreign keys tie the tables together.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
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
from sqlalchemy import column as sa_column
from sqlalchemy import func as sa_func
from sqlalchemy import text as sa_text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

JsonType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator):
    """A point in time, always read back in UTC with its zone.

    SQLite keeps no zone: values are stored as UTC text, and read back as naive datetimes, which
    this type marks as UTC, so callers (and JSON output) see the same value on every backend.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        if value is not None and value.tzinfo is not None and dialect.name == "sqlite":
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


Stamp = UTCDateTime()

ID_LEN = 64  # decision and subject ids
NAME_LEN = 64  # model names, versions, features


class Base(DeclarativeBase):
    type_annotation_map = {
        dict[str, Any]: JsonType, dict[str, Any] | None: JsonType, list[Any]: JsonType,
        list[Any] | None: JsonType,
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


class ResultProvenance(Base):
    """What produced a set of result rows: every setting that changes them and the code that ran
    (see governance.provenance), one row per distinct combination. Nightly chunks, decisions
    and issued recourse point to the one that produced them."""

    __tablename__ = "result_provenance"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)  # settings and code together
    settings_sha256: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]]
    code_version: Mapped[str] = mapped_column(String(64))
    libraries: Mapped[dict[str, Any]]


class RunLockRow(Base):
    """Who holds the lock of a piece of work (kind and night), until when.

    On SQLite the row is the lock: its holder's heartbeat keeps ``expires_at`` ahead, and a
    lapsed row may be taken over. On PostgreSQL an advisory lock decides; the row names the
    holder. See governance/store/locks.py.
    """

    __tablename__ = "run_locks"

    lock_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(Stamp)
    heartbeat_at: Mapped[datetime] = mapped_column(Stamp)
    expires_at: Mapped[datetime] = mapped_column(Stamp)


class RunChunk(Base):
    """A chunk of a run whose results are committed; a resumed run skips it only while its rows
    (chunk_sha256, a hash of their contents) and its provenance are unchanged."""

    __tablename__ = "run_chunks"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    chunk_no: Mapped[int] = mapped_column(primary_key=True)
    chunk_sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int]
    counts: Mapped[dict[str, Any]]
    seconds: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[datetime] = mapped_column(Stamp)
    provenance_id: Mapped[int | None] = mapped_column(ForeignKey("result_provenance.id"))


class Decision(Base):
    """One automated decision as logged, with the features it was made on."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_subject", "subject_id", "decided_at"),
        # denials in the order their adverse-action notices fall due (notices past due)
        Index(
            "ix_decisions_notice_due",
            sa_func.coalesce(sa_column("completed_at"), sa_column("decided_at")),
            "decision_id",
            postgresql_where=sa_text("decision = 'denied'"),
            sqlite_where=sa_text("decision = 'denied'"),
        ),
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
    # when the application was complete, if the log says (an adverse-action notice is due 30
    # days after it); otherwise the decision time stands in
    completed_at: Mapped[datetime | None] = mapped_column(Stamp)
    # settings and code of the nightly chunk that wrote this decision and the rows under its
    # own model version (explanation, attributions, reasons, responsiveness, verdict)
    provenance_id: Mapped[int | None] = mapped_column(ForeignKey("result_provenance.id"))
    # Features whose value lies beyond the range observed in training (processed, flagged).
    out_of_range: Mapped[list[Any] | None]

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
    provenance_id: Mapped[int | None] = mapped_column(ForeignKey("result_provenance.id"))


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


class DeploymentEvent(Base):
    """One change in a model version's deployment state, with who made it, when and why.

    The ledger's only record of which version is deployed: the newest ``deployed`` event of a
    model names it. A version moves ``candidate`` (proposed) -> ``checked`` (the redeploy
    check ran: ``passed`` true or false, ``check_run_id`` its run) -> ``deployed`` (only
    after a passed check, unless ``forced``, which needs a ``reason``). Rows are appended and
    never changed; the check's figures are copied in, since a rerun of the check replaces
    its run's rows.
    """

    __tablename__ = "deployment_events"
    __table_args__ = (Index("ix_deployment_events_model", "model_name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(String(NAME_LEN))
    version: Mapped[str] = mapped_column(String(NAME_LEN))
    state: Mapped[str] = mapped_column(String(16))  # candidate, checked, deployed
    at: Mapped[datetime] = mapped_column(Stamp)
    actor: Mapped[str] = mapped_column(String(128))  # who
    via: Mapped[str] = mapped_column(String(128))  # the command or flow run that made it
    reason: Mapped[str | None] = mapped_column(Text)  # why (required when forced)
    passed: Mapped[bool | None] = mapped_column(Boolean)  # checked: the gate's verdict
    forced: Mapped[bool] = mapped_column(Boolean, default=False)  # deployed over the gate
    check_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    invalidation_rate: Mapped[float | None] = mapped_column(Float)  # checked: as found
    gate: Mapped[float | None] = mapped_column(Float)  # checked: the gate applied
    previous_version: Mapped[str | None] = mapped_column(String(NAME_LEN))  # deployed: replaced

    def __repr__(self) -> str:
        return f"DeploymentEvent({self.model_name!r}, {self.version!r}, {self.state})"


class MlflowAliasEvent(Base):
    """One observed move of an alias in an MLflow model registry, which keeps only each
    alias's current version (no history): the ledger keeps the history.

    ``via`` says how the move was seen or made: ``poll`` (``govern models sync`` found the
    alias elsewhere than last recorded), ``webhook`` (a registry webhook reported it) or
    ``governance`` (we moved it, after a passed check). ``version`` is None when the alias was
    removed; ``previous_version`` is what the ledger had last recorded. ``action`` says what
    the move meant for us (e.g. ``proposed``, ``promoted``, ``deployed unchecked``).
    Rows are appended and never changed.
    """

    __tablename__ = "mlflow_alias_events"
    __table_args__ = (Index("ix_mlflow_alias_events_alias", "registered_model", "alias"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tracking_uri: Mapped[str] = mapped_column(String(256))  # password masked
    registered_model: Mapped[str] = mapped_column(String(NAME_LEN))
    alias: Mapped[str] = mapped_column(String(NAME_LEN))
    version: Mapped[str | None] = mapped_column(String(NAME_LEN))  # None: alias removed
    previous_version: Mapped[str | None] = mapped_column(String(NAME_LEN))
    observed_at: Mapped[datetime] = mapped_column(Stamp)
    via: Mapped[str] = mapped_column(String(16))  # poll, webhook, governance
    actor: Mapped[str] = mapped_column(String(128))
    model_name: Mapped[str] = mapped_column(String(NAME_LEN))  # the governed model
    action: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return (
            f"MlflowAliasEvent({self.registered_model!r}@{self.alias}: "
            f"{self.previous_version} -> {self.version})"
        )


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
    # Rows this request removed from the training file as earlier purges left it (the delta),
    # and rows the candidate lacks against the current version's data as first registered.
    training_rows_removed: Mapped[int]
    original_rows_removed: Mapped[int | None]
    sha256_before: Mapped[str | None] = mapped_column(String(64))
    sha256_after: Mapped[str | None] = mapped_column(String(64))
    recourses_checked: Mapped[int]
    # Issued recourse the candidate no longer approves: retraining and deletion together.
    invalidated: Mapped[int]
    reasons_changed: Mapped[int]
    became_fixed: Mapped[int]
    gained_recourse: Mapped[int]
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    # A control refit with the subjects kept (same recipe, seed and data otherwise) separates
    # the deletion's effect (valid under the control, not under the candidate) from
    # retraining's (valid under the current version, not under the control).
    invalidated_by_deletion: Mapped[int | None]
    invalidated_by_retraining: Mapped[int | None]


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
    """Deletion fragility of an issued recourse: how few training deletions flip it.

    ``k`` is always the size of a deletion set whose retrained (or, for the approximate
    logistic-regression greedy outside its band, estimated) score breaks the recourse, an upper
    bound on the fewest. ``k`` None means, for ``method`` "approximate" or "exact", that the
    greedy path did not break it within ``budget`` deletions, and for "screen" only that no
    deletion set among those tried broke it; neither proves it survives ``budget`` deletions.
    """

    __tablename__ = "recourse_fragility"

    recourse_id: Mapped[str] = mapped_column(
        ForeignKey("issued_recourse.recourse_id", ondelete="CASCADE"), primary_key=True
    )
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), primary_key=True
    )
    k: Mapped[int | None]  # None: not broken within K by the sets tried (see the docstring)
    budget: Mapped[int]  # K
    method: Mapped[str] = mapped_column(String(16))  # approximate, exact or screen
    final_score: Mapped[float | None] = mapped_column(Float)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    computed_at: Mapped[datetime] = mapped_column(Stamp)


class ReasonStatement(Base):
    """A reviewed adverse-action statement for one feature (and direction) of a model version.

    Written only by ``govern reasons set``; a new statement for the same key supersedes the old
    one, which stays with its reviewer and dates.
    """

    __tablename__ = "reason_statements"
    __table_args__ = (
        Index("ix_reason_statements_key", "model_version_id", "feature", "direction"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    feature: Mapped[str] = mapped_column(String(NAME_LEN))
    direction: Mapped[str] = mapped_column(String(8))  # any, high or low
    statement: Mapped[str] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String(128))
    reviewed_at: Mapped[datetime] = mapped_column(Stamp)
    superseded_at: Mapped[datetime | None] = mapped_column(Stamp)


class Notice(Base):
    """A notice issued to an applicant (adverse action, or an automated-decision letter), as sent.

    No foreign key to the decision: a notice is a record the lender must keep (Regulation B
    1002.12(b), 25 months), so it outlives the decision's erasure until ``retain_until``.
    """

    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("decision_id", "kind"),)

    notice_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    decision_id: Mapped[str] = mapped_column(String(ID_LEN))
    subject_id: Mapped[str | None] = mapped_column(String(ID_LEN), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    kind: Mapped[str] = mapped_column(String(16))  # credit or gdpr
    text: Mapped[str] = mapped_column(Text)  # plain-text rendering, as sent
    html: Mapped[str] = mapped_column(Text)  # the HTML document (PDFs are rendered from it)
    sha256: Mapped[str] = mapped_column(String(64))  # of ``text``
    reasons: Mapped[list[Any]]  # [{"rank", "feature", "direction", "statement"}]
    flags: Mapped[list[Any]]  # what the reason linter flagged without refusing
    issued_at: Mapped[datetime] = mapped_column(Stamp)
    due_at: Mapped[datetime] = mapped_column(Stamp)
    retain_until: Mapped[datetime] = mapped_column(Stamp, index=True)
    erasure_request_id: Mapped[str | None] = mapped_column(String(64))  # kept past an erasure


class QualitySettings(Base):
    """How a set of explanation-quality figures was computed: the metric's settings, the
    feature scales and background it perturbed with, and the seeds, by content hash."""

    __tablename__ = "quality_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    metric: Mapped[str] = mapped_column(String(32))  # faithfulness, stability, agreement
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    explainer_id: Mapped[int | None] = mapped_column(ForeignKey("explainers.id"))
    background_sha256: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[dict[str, Any]]


class ExplanationFaithfulness(Base):
    """PGI and PGU of the reasons disclosed for a denial (OpenXAI's prediction gaps), under one
    neighbourhood: OpenXAI's normal perturbation or the explainer's background replacement."""

    __tablename__ = "explanation_faithfulness"

    decision_id: Mapped[str] = mapped_column(
        ForeignKey("decisions.decision_id", ondelete="CASCADE"), primary_key=True
    )
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), primary_key=True
    )
    perturbation: Mapped[str] = mapped_column(String(32), primary_key=True)
    explainer_id: Mapped[int] = mapped_column(ForeignKey("explainers.id"))
    settings_id: Mapped[int | None] = mapped_column(ForeignKey("quality_settings.id"))
    k: Mapped[int]  # reasons perturbed for PGI
    pgi: Mapped[float | None] = mapped_column(Float)
    pgu: Mapped[float | None] = mapped_column(Float)
    pgi_random: Mapped[float | None] = mapped_column(Float)  # as many random features
    reasons_not_above_random: Mapped[bool | None] = mapped_column(Boolean)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)


class ExplanationStability(Base):
    """RIS and ROS of a sampled denial's explanation (OpenXAI's relative stability)."""

    __tablename__ = "explanation_stability"

    decision_id: Mapped[str] = mapped_column(
        ForeignKey("decisions.decision_id", ondelete="CASCADE"), primary_key=True
    )
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), primary_key=True
    )
    explainer_id: Mapped[int] = mapped_column(ForeignKey("explainers.id"))
    settings_id: Mapped[int | None] = mapped_column(ForeignKey("quality_settings.id"))
    ris: Mapped[float | None] = mapped_column(Float)
    ros: Mapped[float | None] = mapped_column(Float)
    n_draws: Mapped[int]
    n_same_class: Mapped[int]  # neighbours kept and explained (at most 100)
    ris_skipped: Mapped[int]  # of those, with an undefined ratio
    ros_skipped: Mapped[int]
    neighbourhood_std: Mapped[float] = mapped_column(Float)  # units of training std
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)


class ExplanationAgreement(Base):
    """How a decision's explanation agrees with another: the responsiveness ranking, a second
    explainer, or the same applicant under the previous model version."""

    __tablename__ = "explanation_agreement"

    decision_id: Mapped[str] = mapped_column(
        ForeignKey("decisions.decision_id", ondelete="CASCADE"), primary_key=True
    )
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), primary_key=True
    )
    comparison: Mapped[str] = mapped_column(String(32), primary_key=True)
    other: Mapped[str] = mapped_column(String(64))
    other_model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    settings_id: Mapped[int | None] = mapped_column(ForeignKey("quality_settings.id"))
    k: Mapped[int]
    feature_agreement: Mapped[float] = mapped_column(Float)
    rank_agreement: Mapped[float] = mapped_column(Float)
    sign_agreement: Mapped[float | None] = mapped_column(Float)
    signed_rank_agreement: Mapped[float | None] = mapped_column(Float)
    rank_correlation: Mapped[float | None] = mapped_column(Float)
    pairwise_rank_agreement: Mapped[float | None] = mapped_column(Float)
    reasons_feature_agreement: Mapped[float] = mapped_column(Float)  # disclosed top-4 lists
    reasons_rank_agreement: Mapped[float] = mapped_column(Float)
    top1_same: Mapped[bool] = mapped_column(Boolean)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)


class ExplainerChoice(Base):
    """The explainer chosen for a model version by ``govern explainers compare``, with the rule
    and the side-by-side evidence it was chosen on; the nightly run uses it."""

    __tablename__ = "explainer_choices"

    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    rule: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]]
    sample_rows: Mapped[int]
    seed: Mapped[int]
    chosen_at: Mapped[datetime] = mapped_column(Stamp)
