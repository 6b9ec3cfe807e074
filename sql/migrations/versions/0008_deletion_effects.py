"""deletion effects

Revision ID: 0008_deletion_effects
Revises: 0007_deployment_states
Create Date: 2026-11-27

Per deletion check: rows removed against the current version's training data as first
registered (beside the delta against the file as earlier purges left it), and the recourse
a control refit with the subjects kept separates into the deletion's own effect and
retraining's.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_deletion_effects"
down_revision: str | None = "0007_deployment_states"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deletion_checks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("original_rows_removed", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("invalidated_by_deletion", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("invalidated_by_retraining", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deletion_checks", schema=None) as batch_op:
        batch_op.drop_column("invalidated_by_retraining")
        batch_op.drop_column("invalidated_by_deletion")
        batch_op.drop_column("original_rows_removed")
