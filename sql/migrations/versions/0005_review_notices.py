"""review notices

Revision ID: 0005_review_notices
Revises: 0004
Create Date: 2026-12-06

Reviewed reason statements per model version, the notices issued to applicants (kept for
their retention period even past an erasure), and when an application was complete.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_review_notices"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("notice_id", sa.String(length=32), nullable=False),
        sa.Column("decision_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=True),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "flags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erasure_request_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
        ),
        sa.PrimaryKeyConstraint("notice_id"),
        sa.UniqueConstraint("decision_id", "kind"),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notices_retain_until"), ["retain_until"], unique=False)
        batch_op.create_index(batch_op.f("ix_notices_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "reason_statements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("feature", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.String(length=128), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reason_statements", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reason_statements_key", ["model_version_id", "feature", "direction"], unique=False
        )

    # a plain ADD COLUMN on every backend: no batch copy of decisions (see downgrade)
    op.add_column("decisions", sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
    denied = sa.text("decision = 'denied'")
    op.create_index(
        "ix_decisions_notice_due",
        "decisions",
        [sa.text("coalesce(completed_at, decided_at)"), "decision_id"],
        postgresql_where=denied,
        sqlite_where=denied,
    )


def downgrade() -> None:
    op.drop_index("ix_decisions_notice_due", table_name="decisions")
    if op.get_bind().dialect.name == "sqlite":
        # In place (SQLite 3.35+): a batch copy would drop and recreate decisions, which the
        # review views name and whose dependants a drop with foreign keys on would cascade into.
        op.execute("ALTER TABLE decisions DROP COLUMN completed_at")
    else:
        op.drop_column("decisions", "completed_at")

    with op.batch_alter_table("reason_statements", schema=None) as batch_op:
        batch_op.drop_index("ix_reason_statements_key")

    op.drop_table("reason_statements")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notices_subject_id"))
        batch_op.drop_index(batch_op.f("ix_notices_retain_until"))

    op.drop_table("notices")
