"""The nightly flow end to end: real Prefect, real Dask, real SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
import sqlalchemy as sa

from governance.store.models import Base
from tests.conftest import DEMO_NIGHT, DEMO_ROWS, reset_pg

RESULT_TABLES = [
    "decisions",
    "explanations",
    "attributions",
    "reasons",
    "quarantine",
    "responsiveness",
    "recourse_checks",
    "responsive_reasons",
    "issued_recourse",
]
VOLATILE = {"run_id", "id", "quarantined_at", "explainer_id", "action_set_id", "cost_model_id"}


def table_digest(url: str) -> dict[str, tuple[int, str]]:
    """Row count and content hash of each result table, ignoring ids and timestamps."""
    engine = sa.create_engine(url)
    out = {}
    with engine.connect() as conn:
        for name in RESULT_TABLES:
            table = Base.metadata.tables[name]
            cols = [c.name for c in table.columns if c.name not in VOLATILE]
            frame = pd.read_sql(sa.select(*[table.c[c] for c in cols]), conn)
            rows = sorted(
                json.dumps(r, sort_keys=True, default=str) for r in frame.to_dict("records")
            )
            out[name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    engine.dispose()
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    base = request.getfixturevalue("pg_url")
    # One schema-free database per test: drop every table the previous test left.
    reset_pg(base)
    return base


def test_nightly_run_stores_every_decision_and_reasons(run_nightly, demo_home, db_url):
    summary = run_nightly(DEMO_NIGHT, demo_home, db_url, chunk_rows=400)

    counts = summary["counts"]
    assert counts["pulled"] == DEMO_ROWS
    assert counts["quarantined"] >= 4  # the demo damages a few rows on purpose
    assert counts["decisions"] == counts["valid"] == DEMO_ROWS - counts["quarantined"]
    assert counts["chunks"] == -(-counts["valid"] // 400)
    assert counts["not_additive"] == 0 and counts["score_mismatch"] == 0
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        n_dec = conn.execute(sa.text("SELECT COUNT(*) FROM decisions")).scalar()
        denied = conn.execute(
            sa.text("SELECT COUNT(*) FROM decisions WHERE decision = 'denied'")
        ).scalar()
        n_attr = conn.execute(sa.text("SELECT COUNT(*) FROM attributions")).scalar()
        with_reasons = conn.execute(
            sa.text("SELECT COUNT(DISTINCT decision_id) FROM reasons")
        ).scalar()
        max_rank = conn.execute(sa.text("SELECT MAX(rank) FROM reasons")).scalar()
        status = conn.execute(sa.text("SELECT status FROM runs")).scalar()
        view = conn.execute(sa.text("SELECT COUNT(*) FROM v_decision_reasons")).scalar()
    engine.dispose()
    assert n_dec == counts["decisions"]
    assert n_attr == n_dec * 20
    assert denied == counts["denied"] and 0 < with_reasons <= denied
    assert max_rank == 4
    assert status == "succeeded"
    assert view == counts["reasons_issued"]
    # every denied decision is scored, verified, and given recourse unless fixed
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        checks = pd.read_sql(sa.text("SELECT status FROM recourse_checks"), conn)
        n_resp = conn.execute(sa.text("SELECT COUNT(*) FROM responsiveness")).scalar()
        n_issued = conn.execute(sa.text("SELECT COUNT(*) FROM issued_recourse")).scalar()
        unscored = conn.execute(
            sa.text("SELECT COUNT(*) FROM reasons WHERE mu_state IS NULL")
        ).scalar()
        states = pd.read_sql(sa.text("SELECT mu, mu_state FROM responsiveness"), conn)
        issued = pd.read_sql(sa.text("SELECT complete, minimal_over FROM issued_recourse"), conn)
    engine.dispose()
    # no feasible change is its own state (mu NULL), never a score of 0
    assert set(states["mu_state"]) == {"scored", "no_action"}
    assert (states["mu"].isna() == (states["mu_state"] == "no_action")).all()
    # float features are searched on a grid: a proven minimum is a minimum on that grid only
    proven = issued["complete"].astype(bool)
    assert set(issued.loc[proven, "minimal_over"]) == {"candidate_grid"}
    assert issued.loc[~proven, "minimal_over"].isna().all()
    assert counts["recourse_minimal_on_grid"] == proven.sum() > 0
    assert counts["recourse_minimal_in_action_set"] == 0
    assert len(checks) == denied == counts["responsiveness_scored"]
    assert n_resp == denied * 20
    assert n_issued == (checks["status"] == "recourse").sum() == counts["recourse"]
    assert set(checks["status"]) <= {"recourse", "fixed", "undetermined"}
    assert unscored == 0
    metrics = counts["metrics"]
    assert metrics["share_denied_with_reasons"] == 1.0
    assert 0 <= metrics["share_reasons_all_unresponsive"] <= 1


def test_rerun_of_a_night_leaves_exactly_one_run(run_nightly, demo_home, db_url):
    run_nightly(DEMO_NIGHT, demo_home, db_url, chunk_rows=500)
    first = table_digest(db_url)
    again = run_nightly(DEMO_NIGHT, demo_home, db_url, chunk_rows=500)
    assert again["counts"]["chunks_skipped"] == again["counts"]["chunks"]
    assert table_digest(db_url) == first
    forced = run_nightly(DEMO_NIGHT, demo_home, db_url, chunk_rows=500, force=True)
    assert forced["counts"]["chunks_skipped"] == 0
    assert table_digest(db_url) == first
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT COUNT(*), MAX(attempts) FROM runs")).one()
    engine.dispose()
    assert tuple(runs) == (1, 3)
