"""run locks

Revision ID: 0011_run_locks
Revises: 0010_explanation_quality
Create Date: 2026-12-06

One run at a time: the lease row of each piece of work (kind and night) in progress, with
its holder and expiry (governance/store/locks.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_run_locks"
down_revision: str | None = "0010_explanation_quality"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_locks",
        sa.Column("lock_key", sa.String(length=200), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("lock_key"),
    )


def downgrade() -> None:
    op.drop_table("run_locks")
