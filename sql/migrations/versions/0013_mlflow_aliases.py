"""mlflow aliases

Revision ID: 0013_mlflow_aliases
Revises: 0012_recourse_claims
Create Date: 2026-12-06

The history of aliases in an MLflow model registry (which keeps only each alias's current
version): every move `govern models sync` observes or makes, with how it was seen and what it
meant for the gate.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_mlflow_aliases"
down_revision: str | None = "0012_recourse_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mlflow_alias_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracking_uri", sa.String(length=256), nullable=False),
        sa.Column("registered_model", sa.String(length=64), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("previous_version", sa.String(length=64), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("model_name", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_mlflow_alias_events_alias",
        "mlflow_alias_events",
        ["registered_model", "alias"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_mlflow_alias_events_alias", table_name="mlflow_alias_events")
    op.drop_table("mlflow_alias_events")
