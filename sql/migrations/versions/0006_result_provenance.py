"""result provenance

Revision ID: 0006_result_provenance
Revises: 0005_review_notices
Create Date: 2026-11-27

What produced each nightly chunk's rows: the settings that change results and the code that
ran (result_provenance), referenced by run_chunks, decisions and issued_recourse. One nightly
run per night: a night's only nightly run, opened under a model's name, takes the night's key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_result_provenance"
down_revision: str | None = "0005_review_notices"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
REFERENCING = ("run_chunks", "decisions", "issued_recourse")


def upgrade() -> None:
    op.create_table(
        "result_provenance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("settings_sha256", sa.String(length=64), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("code_version", sa.String(length=64), nullable=False),
        sa.Column("libraries", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in REFERENCING:
        if sqlite:
            # In place: a batch copy would drop and recreate decisions, and with foreign keys
            # on, dropping it cascades into every table that hangs off it.
            op.execute(
                f"ALTER TABLE {table} ADD COLUMN provenance_id INTEGER "
                "REFERENCES result_provenance (id)"
            )
            continue
        op.add_column(
            table,
            sa.Column(
                "provenance_id",
                sa.Integer(),
                sa.ForeignKey("result_provenance.id", name=f"fk_{table}_provenance_id"),
                nullable=True,
            ),
        )
    _one_nightly_run_per_night()


def _one_nightly_run_per_night() -> None:
    """Nightly runs were keyed by night and model filter ("nightly:D:credit-default" beside
    "nightly:D:*"); now by night alone ("nightly:D:*"). A night with one nightly run takes the
    new key; a night with two keeps both as they are (its rows were written twice)."""
    runs = sa.table(
        "runs",
        sa.column("id", sa.Integer),
        sa.column("run_key", sa.String),
        sa.column("kind", sa.String),
        sa.column("model_name", sa.String),
    )
    conn = op.get_bind()
    by_night: dict[str, list[tuple[int, str]]] = {}
    for run_id, key in conn.execute(
        sa.select(runs.c.id, runs.c.run_key).where(runs.c.kind == "nightly")
    ):
        parts = key.split(":")
        if len(parts) == 3:
            by_night.setdefault(parts[1], []).append((run_id, key))
    for night, found in by_night.items():
        new = f"nightly:{night}:*"
        if len(found) == 1 and found[0][1] != new:
            conn.execute(
                runs.update()
                .where(runs.c.id == found[0][0])
                .values(run_key=new, model_name=None)
            )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in reversed(REFERENCING):
        if sqlite:  # SQLite 3.35+ drops a column in place when no index or constraint names it
            op.execute(f"ALTER TABLE {table} DROP COLUMN provenance_id")
            continue
        op.drop_constraint(f"fk_{table}_provenance_id", table, type_="foreignkey")
        op.drop_column(table, "provenance_id")
    op.drop_table("result_provenance")
