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


def test_replace_rows_clears_tables_a_rerun_no_longer_produces(engine):
    """A chunk recomputed with recourse switched off must not leave the reasons (or
    responsiveness) of the earlier settings behind, attributed to the new ones."""
    sessions = session_factory(engine)
    ids = ["D1", "D2"]
    with sessions.begin() as s:
        run_id, mv_id = _seed(s)
        writes.replace_rows(s, _frames(run_id, mv_id, ids), decision_ids=ids)
    with sessions.begin() as s:
        frames = {"decisions": _frames(run_id, mv_id, ids)["decisions"]}
        writes.replace_rows(s, frames, decision_ids=ids, clear=("reasons",))
    with sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Decision)) == 2
        assert s.scalar(sa.select(sa.func.count()).select_from(Reason)) == 0


def test_provenance_is_recorded_once_per_settings_and_code(engine):
    from governance.provenance import code_identity, provenance_sha256, result_settings
    from governance.store.models import ResultProvenance

    sessions = session_factory(engine)
    settings = result_settings({"max_points": 64}, {"name": "m", "version": "v1"})
    code = code_identity()
    with sessions.begin() as s:
        first = writes.ensure_provenance(s, settings, code)
        assert writes.ensure_provenance(s, dict(settings), dict(code)) == first
        other = writes.ensure_provenance(s, {**settings, "max_points": 128}, code)
        newer = writes.ensure_provenance(s, settings, {**code, "code_version": "9.9"})
    assert len({first, other, newer}) == 3
    with sessions() as s:
        row = s.get(ResultProvenance, first)
        assert row.sha256 == provenance_sha256(settings, code)
        assert row.settings["max_points"] == 64 and row.settings["model"]["version"] == "v1"
        assert row.code_version == code["code_version"]


def test_alembic_by_hand_migrates_the_url_given_with_x(tmp_path):
    """`alembic -c sql/alembic.ini -x url=... upgrade head` migrates that URL, not the default
    SQLite store of $GOVERNANCE_HOME."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    target = tmp_path / "given.db"
    home = tmp_path / "home"
    env = {**os.environ, "GOVERNANCE_HOME": str(home)}
    env.pop("GOVERNANCE_DB_URL", None)
    alembic = str(Path(sys.executable).with_name("alembic"))
    result = subprocess.run(
        [alembic, "-c", str(SQL_DIR / "alembic.ini"), "-x", f"url=sqlite:///{target}",
         "upgrade", "head"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert not (home / "governance.db").exists()
    migrated = sa.create_engine(f"sqlite:///{target}")
    with migrated.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    migrated.dispose()
    assert diff == []


def test_migration_gives_a_nights_only_nightly_run_the_nights_key(engine):
    """Nightly runs were keyed by night and model filter; a night with a single run takes the
    night's key (so the next run reopens it), a night with two keeps both."""
    from alembic import command

    from governance.store.engine import alembic_config
    from governance.store.models import Run

    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM runs"))
    command.downgrade(alembic_config(engine), "0004")
    rows = [
        ("nightly:2026-11-01:credit-default", "credit-default"),
        ("nightly:2026-11-02:credit-default", "credit-default"),
        ("nightly:2026-11-02:*", None),
        ("redeploy:-:credit-default:v2", "credit-default"),
    ]
    with engine.begin() as conn:
        for key, model in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO runs (run_key, kind, model_name, status, parameters, "
                    "code_version, started_at, attempts, counts, timings) VALUES (:k, :kind, "
                    ":m, 'succeeded', '{}', 'x', :t, 1, '{}', '{}')"
                ),
                {"k": key, "kind": key.split(":")[0], "m": model, "t": datetime.now(UTC)},
            )
    init_store(engine)
    with session_factory(engine)() as s:
        keys = {r.run_key: r.model_name for r in s.scalars(sa.select(Run))}
    assert keys == {
        "nightly:2026-11-01:*": None,
        "nightly:2026-11-02:credit-default": "credit-default",
        "nightly:2026-11-02:*": None,
        "redeploy:-:credit-default:v2": "credit-default",
    }
