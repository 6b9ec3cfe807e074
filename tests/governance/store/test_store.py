"""The ledger's schema, migrations and bulk writes, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from governance.store import init_store, session_factory, writes
from governance.store.ddl import SQL_DIR, render_schema, view_names, view_statements
from governance.store.engine import safe_url
from governance.store.models import Base, Decision, Reason


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        raw = sa.create_engine(url)
        with raw.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        raw.dispose()
    eng = init_store(url)
    yield eng
    eng.dispose()


def test_migrations_create_exactly_the_mapped_schema(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_schema_sql_is_in_sync_with_the_models():
    assert (SQL_DIR / "schema.sql").read_text() == render_schema(), (
        "sql/schema.sql is stale: run python -m governance.store.ddl"
    )


def test_views_sql_matches_the_migrated_views(engine):
    names = sorted(s.split()[2] for s in view_statements())
    assert view_names(engine) == names
    with engine.connect() as conn:
        for name in names:
            conn.execute(sa.text(f"SELECT * FROM {name}")).fetchall()
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            stored = dict(
                conn.execute(
                    sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'view'")
                ).all()
            )
        for statement in view_statements():
            name = statement.split()[2]
            assert " ".join(stored[name].split()) == " ".join(statement.split())


def test_init_store_is_idempotent(engine):
    again = init_store(engine)
    assert again is engine


def test_unreachable_store_is_a_clear_error():
    from governance.exceptions import StoreError

    with pytest.raises(
        StoreError, match=r"cannot reach the store at postgresql\+psycopg://u:\*\*\*@"
    ):
        init_store("postgresql+psycopg://u:secret@127.0.0.1:1/none?connect_timeout=2")


def test_safe_url_masks_passwords():
    assert safe_url("postgresql+psycopg://u:pw@h/db") == "postgresql+psycopg://u:***@h/db"


def _seed(session):
    run = writes.start_run(session, "nightly:2026-11-01:m", "nightly", night=date(2026, 11, 1))
    from governance.store.models import ModelVersion

    mv = ModelVersion(
        name="m", version="v1", artifact_sha256="0" * 64, created_at=datetime.now(UTC), manifest={}
    )
    session.add(mv)
    session.flush()
    return run.id, mv.id


def _frames(run_id, mv_id, ids, attribution=0.5):
    decisions = pd.DataFrame(
        {
            "decision_id": ids,
            "subject_id": [f"S{i}" for i in ids],
            "decided_at": [datetime(2026, 11, 1, 8, tzinfo=UTC)] * len(ids),
            "decision_date": [date(2026, 11, 1)] * len(ids),
            "model_version_id": mv_id,
            "score": 0.2,
            "decision": "denied",
            "features": [{"x": 1.5, "home": "RENT"}] * len(ids),
            "score_recomputed": 0.2,
            "run_id": run_id,
        }
    )
    reasons = pd.DataFrame(
        {
            "decision_id": ids,
            "model_version_id": mv_id,
            "rank": 1,
            "feature": "x",
            "attribution": attribution,
        }
    )
    return {"decisions": decisions, "reasons": reasons}


def test_replace_rows_is_idempotent_and_keeps_json_and_times(engine):
    sessions = session_factory(engine)
    with sessions.begin() as s:
        run_id, mv_id = _seed(s)
        ids = [f"D{i}" for i in range(1200)]  # more than one IN batch
        writes.replace_rows(s, _frames(run_id, mv_id, ids), decision_ids=ids)
    with sessions.begin() as s:
        writes.replace_rows(s, _frames(run_id, mv_id, ids, attribution=-0.7), decision_ids=ids)
    with sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Decision)) == 1200
        assert s.scalar(sa.select(sa.func.count()).select_from(Reason)) == 1200
        assert {r.attribution for r in s.scalars(sa.select(Reason))} == {-0.7}
        d = s.get(Decision, "D7")
        assert d.features == {"x": 1.5, "home": "RENT"}
        assert d.decided_at.replace(tzinfo=UTC) == datetime(2026, 11, 1, 8, tzinfo=UTC)
        assert d.decision_date == date(2026, 11, 1)


def test_reopening_a_run_counts_attempts(engine):
    sessions = session_factory(engine)
    with sessions.begin() as s:
        first = writes.start_run(s, "k", "nightly").id
    with sessions.begin() as s:
        again = writes.start_run(s, "k", "nightly")
        assert (again.id, again.attempts, again.status) == (first, 2, "running")
        writes.finish_run(s, again.id, "succeeded", counts={"n": 3, "bad": float("nan")})
    with sessions() as s:
        from governance.store.models import Run

        run = s.get(Run, first)
        assert run.status == "succeeded" and run.counts == {"n": 3, "bad": None}


def test_quarantine_is_replaced_per_run(engine):
    sessions = session_factory(engine)
    frame = pd.DataFrame(
        {
            "row_number": [1, 1, 4],
            "decision_id": ["D1", "D1", None],
            "subject_id": ["S1", "S1", None],
            "model_name": "m",
            "model_version": "v1",
            "check": ["a", "b", "a"],
            "column": ["x", "y", "x"],
            "value": ["1", "2", None],
            "row_json": ["{}", "{}", "{}"],
        }
    )
    with sessions.begin() as s:
        run_id = writes.start_run(s, "k", "nightly").id
        assert writes.replace_quarantine(s, run_id, frame) == 3
    with sessions.begin() as s:
        assert writes.replace_quarantine(s, run_id, frame.iloc[:1]) == 1
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM quarantine")).scalar() == 1
