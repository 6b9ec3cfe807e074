"""deployment states

Revision ID: 0007_deployment_states
Revises: 0006_result_provenance
Create Date: 2026-11-27

Deployment as recorded states in the ledger (candidate, checked, deployed; who, when, why
and the check's run), replacing the registry's deployments.json and the manifest's
deployed_at; the re-contact view lists only recourse invalidated by a version that was
actually deployed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_deployment_states"
down_revision: str | None = "0006_result_provenance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEWS = [
    """
    CREATE VIEW v_recontact AS
    SELECT d.subject_id, d.decision_id, i.recourse_id, i.issued_at,
           mv_old.name AS model_name, mv_old.version AS issued_under,
           mv_new.version AS checked_under, i.score_after AS promised_score,
           v.score AS new_score, i.changes, i.stability, v.checked_at, v.run_id
    FROM recourse_validity v
    JOIN issued_recourse i ON i.recourse_id = v.recourse_id
    JOIN decisions d ON d.decision_id = i.decision_id
    JOIN model_versions mv_old ON mv_old.id = i.model_version_id
    JOIN model_versions mv_new ON mv_new.id = v.model_version_id
    WHERE NOT v.valid
      AND EXISTS (SELECT 1 FROM deployment_events e
                  WHERE e.model_name = mv_new.name AND e.version = mv_new.version
                    AND e.state = 'deployed')
    """,
]

OLD_VIEWS = [
    """
    CREATE VIEW v_recontact AS
    SELECT d.subject_id, d.decision_id, i.recourse_id, i.issued_at,
           mv_old.name AS model_name, mv_old.version AS issued_under,
           mv_new.version AS checked_under, i.score_after AS promised_score,
           v.score AS new_score, i.changes, i.stability, v.checked_at, v.run_id
    FROM recourse_validity v
    JOIN issued_recourse i ON i.recourse_id = v.recourse_id
    JOIN decisions d ON d.decision_id = i.decision_id
    JOIN model_versions mv_old ON mv_old.id = i.model_version_id
    JOIN model_versions mv_new ON mv_new.id = v.model_version_id
    WHERE NOT v.valid
    """,
]


def upgrade() -> None:
    op.execute("DROP VIEW IF EXISTS v_recontact")
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("via", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("check_run_id", sa.Integer(), nullable=True),
        sa.Column("invalidation_rate", sa.Float(), nullable=True),
        sa.Column("gate", sa.Float(), nullable=True),
        sa.Column("previous_version", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["check_run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deployment_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deployment_events_model", ["model_name", "version"], unique=False
        )
    # Which version is deployed lives in deployment_events alone. A plain ALTER TABLE (SQLite
    # 3.35+ drops a column in place): a batch copy would drop a table that views and foreign
    # keys point at.
    op.drop_column("model_versions", "deployed_at")
    for statement in VIEWS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS v_recontact")
    op.add_column(
        "model_versions", sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=True)
    )
    with op.batch_alter_table("deployment_events", schema=None) as batch_op:
        batch_op.drop_index("ix_deployment_events_model")
    op.drop_table("deployment_events")
    for statement in OLD_VIEWS:
        op.execute(statement)
