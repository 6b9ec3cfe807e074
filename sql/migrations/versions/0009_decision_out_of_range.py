"""decision out of range

Revision ID: 0009_decision_out_of_range
Revises: 0008_deletion_effects
Create Date: 2026-12-06

Per decision, the features whose logged value lies beyond the range observed in the
model's training data or reference sample: processed and flagged, not quarantined.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_decision_out_of_range"
down_revision: str | None = "0008_deletion_effects"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "decisions",
        sa.Column(
            "out_of_range",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
    )


def downgrade() -> None:
    op.drop_column("decisions", "out_of_range")
