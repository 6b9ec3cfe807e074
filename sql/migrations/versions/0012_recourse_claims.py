"""recourse claims

Revision ID: 0012_recourse_claims
Revises: 0011_run_locks
Create Date: 2026-12-06

What a stored figure claims, exactly: ``issued_recourse.minimal_over`` says what the cost is
proven minimal over (the action set, or the candidate grid only); ``responsiveness.mu_state``
and ``reasons.mu_state`` keep "no feasible change" apart from a score of 0
(``responsiveness.mu`` becomes NULL there). The two review views show both.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_recourse_claims"
down_revision: str | None = "0011_run_locks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Views as of this revision (sql/views.sql holds the current ones).
VIEWS = [
    """
    CREATE VIEW v_decision_reasons AS
    SELECT d.decision_id, d.subject_id, d.decided_at, d.decision_date,
           mv.name AS model_name, mv.version AS model_version,
           d.score, d.decision, r.rank, r.feature, r.attribution, r.mu, r.mu_state
    FROM decisions d
    JOIN model_versions mv ON mv.id = d.model_version_id
    JOIN reasons r ON r.decision_id = d.decision_id AND r.model_version_id = d.model_version_id
    """,
    """
    CREATE VIEW v_recourse_overview AS
    SELECT d.decision_id, d.subject_id, d.decided_at, mv.name AS model_name,
           mv.version AS model_version, c.status, c.complete, c.reasons_given,
           c.responsive_reasons, c.all_reasons_unresponsive, c.fixed_with_reasons,
           i.recourse_id, i.cost, i.score_after, i.minimal_over
    FROM recourse_checks c
    JOIN decisions d ON d.decision_id = c.decision_id
    JOIN model_versions mv ON mv.id = c.model_version_id
    LEFT JOIN issued_recourse i
           ON i.decision_id = c.decision_id AND i.model_version_id = c.model_version_id
    """,
]
OLD_VIEWS = [
    """
    CREATE VIEW v_decision_reasons AS
    SELECT d.decision_id, d.subject_id, d.decided_at, d.decision_date,
           mv.name AS model_name, mv.version AS model_version,
           d.score, d.decision, r.rank, r.feature, r.attribution, r.mu
    FROM decisions d
    JOIN model_versions mv ON mv.id = d.model_version_id
    JOIN reasons r ON r.decision_id = d.decision_id AND r.model_version_id = d.model_version_id
    """,
    """
    CREATE VIEW v_recourse_overview AS
    SELECT d.decision_id, d.subject_id, d.decided_at, mv.name AS model_name,
           mv.version AS model_version, c.status, c.complete, c.reasons_given,
           c.responsive_reasons, c.all_reasons_unresponsive, c.fixed_with_reasons,
           i.recourse_id, i.cost, i.score_after
    FROM recourse_checks c
    JOIN decisions d ON d.decision_id = c.decision_id
    JOIN model_versions mv ON mv.id = c.model_version_id
    LEFT JOIN issued_recourse i
           ON i.decision_id = c.decision_id AND i.model_version_id = c.model_version_id
    """,
]
VIEW_NAMES = ("v_decision_reasons", "v_recourse_overview")


def upgrade() -> None:
    for name in VIEW_NAMES:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    # Plain ADD COLUMN: on SQLite a batch copy of issued_recourse or reasons would drop and
    # rename tables that other views (v_recontact, ...) name.
    op.add_column("issued_recourse", sa.Column("minimal_over", sa.String(length=16), nullable=True))
    op.add_column("reasons", sa.Column("mu_state", sa.String(length=16), nullable=True))
    with op.batch_alter_table("responsiveness", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mu_state", sa.String(length=16), server_default="scored", nullable=False)
        )
        batch_op.alter_column("mu", existing_type=sa.Float(), nullable=True)
    # rows written before: a recourse marked complete was minimal on its candidate grid (the
    # finer claim cannot be recovered), and empty intervention sets were stored as mu = 0 with
    # n_points = 0
    op.execute(
        "UPDATE issued_recourse SET minimal_over = 'candidate_grid' WHERE complete"
    )
    op.execute(
        "UPDATE responsiveness SET mu_state = 'no_action', mu = NULL WHERE n_points = 0"
    )
    for statement in VIEWS:
        op.execute(statement)


def downgrade() -> None:
    for name in VIEW_NAMES:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.execute("UPDATE responsiveness SET mu = 0 WHERE mu IS NULL")
    with op.batch_alter_table("responsiveness", schema=None) as batch_op:
        batch_op.alter_column("mu", existing_type=sa.Float(), nullable=False)
        batch_op.drop_column("mu_state")
    if op.get_bind().dialect.name == "sqlite":
        # in place (SQLite 3.35+), for the reason given in upgrade
        op.execute("ALTER TABLE reasons DROP COLUMN mu_state")
        op.execute("ALTER TABLE issued_recourse DROP COLUMN minimal_over")
    else:
        op.drop_column("reasons", "mu_state")
        op.drop_column("issued_recourse", "minimal_over")
    for statement in OLD_VIEWS:
        op.execute(statement)
