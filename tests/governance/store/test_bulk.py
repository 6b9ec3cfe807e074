"""The bulk writer and reader store and return exactly what SQLAlchemy's own insert and select
do, inside the caller's transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from governance.store import bulk, init_store, session_factory, writes
from governance.store.models import Base, IssuedRecourse

T = Base.metadata.tables
STAMP = datetime(2026, 11, 2, 8, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        from tests.conftest import reset_pg

        url = request.getfixturevalue("pg_url")
        reset_pg(url)
    eng = init_store(url)
    yield eng
    bulk.forget_connections()
    eng.dispose()


def _parents(session) -> tuple[int, int, int, int]:
    """A run, a model version, an action set and a cost model to hang rows on."""
    run = writes.start_run(session, "bench:bulk", "bench").id
    mv = session.execute(
        sa.insert(T["model_versions"]).returning(T["model_versions"].c.id),
        {"name": "m", "version": "v1", "artifact_sha256": "0" * 64, "created_at": STAMP,
         "manifest": {}},
    ).scalar()
    aset = writes.ensure_action_set(session, mv, {"name": "a"}, "1" * 64)
    cost = writes.ensure_cost_model(session, "pct", {}, "2" * 64)
    return run, mv, aset, cost


def _frames(run: int, mv: int, aset: int, cost: int, n: int = 7) -> dict[str, pd.DataFrame]:
    ids = [f"D{i:03d}" for i in range(n)] + ["x' OR '1'='1", "Ünïcødé-漢字"]
    m = len(ids)
    decisions = pd.DataFrame(
        {
            "decision_id": ids,
            "subject_id": [f"S{i}" for i in range(m)],
            "decided_at": pd.to_datetime([STAMP] * m, utc=True) + pd.to_timedelta(range(m), "s"),
            "decision_date": [date(2026, 11, 2)] * m,
            "model_version_id": mv,
            "score": np.linspace(0.1, 0.9, m),
            "decision": "denied",
            "features": [{"x": 1.5, "home": "RENT", "n": i, "gone": None} for i in range(m)],
            "score_recomputed": [np.nan] + [0.5] * (m - 1),
            "run_id": run,
        }
    )
    codes = [np.arange(3, dtype="<f8").tobytes()] * (m - 1) + [None]
    issued = pd.DataFrame(
        {
            "recourse_id": [f"{d}@{mv}" for d in ids],
            "decision_id": ids,
            "model_version_id": mv,
            "action_set_id": aset,
            "cost_model_id": cost,
            "issued_at": STAMP,
            "cost": 0.25,
            "score_before": 0.3,
            "score_after": 0.6,
            "complete": [True, False] * (m // 2) + [True] * (m % 2),
            "changes": [[{"feature": "x", "from": 1, "to": 2.5}]] * m,
            "x_after": [{"x": 2.5, "inf": float("inf")}] * m,
            "run_id": run,
            "kind": "minimal",
            "stability": [None] + [0.75] * (m - 1),
            "alternative": [None] * (m - 1) + [{"kind": "minimal", "cost": 1.0}],
            "x_codes": codes,
            "layout_sha256": "f" * 64,
            "changed": "x",
        }
    )
    validity = pd.DataFrame(
        {
            "recourse_id": issued["recourse_id"],
            "model_version_id": mv,
            "run_id": run,
            "valid": [True, False] * (m // 2) + [True] * (m % 2),
            "score": 0.51,
            "checked_at": writes.now(),
            "forward_validity": [np.nan] * m,
            "n_variants": None,
            "alternative_valid": [None] * (m - 1) + [False],
        }
    )
    attributions = pd.DataFrame(
        {
            "decision_id": np.repeat(ids, 2),
            "model_version_id": mv,
            "feature": ["x", "home"] * m,
            "value": ['1.5', '"RENT"'] * m,
            "attribution": np.arange(2 * m) / 7,
        }
    )
    return {
        "decisions": decisions,
        "issued_recourse": issued,
        "recourse_validity": validity,
        "attributions": attributions,
    }


def _dump(session, names) -> dict[str, list[tuple]]:
    out = {}
    for name in names:
        table = T[name]
        key = [c for c in table.primary_key.columns]
        out[name] = [tuple(r) for r in session.execute(sa.select(table).order_by(*key))]
    return out


def _orm_insert(session, frames):
    """The reference: SQLAlchemy's own executemany with its type processing."""
    for name, frame in frames.items():
        records = [
            {k: (None if (isinstance(v, float) and np.isnan(v)) else v) for k, v in r.items()}
            for r in frame.astype(object).where(frame.notna(), None).to_dict("records")
        ]
        for r in records:
            for k, v in r.items():
                if isinstance(v, pd.Timestamp):
                    r[k] = v.to_pydatetime()
                if isinstance(v, dict | list):
                    r[k] = writes.json_safe(v)
        session.execute(sa.insert(T[name]), records)


def test_bulk_insert_stores_what_sqlalchemy_stores(engine):
    sessions = session_factory(engine)
    names = ["decisions", "issued_recourse", "recourse_validity", "attributions"]
    with sessions.begin() as s:
        parents = _parents(s)
        frames = _frames(*parents)
        for name in names:  # parents before children
            writes.bulk_insert(s, T[name], frames[name])
    with sessions() as s:
        ours = _dump(s, names)
    with sessions.begin() as s:
        for name in reversed(names):
            s.execute(sa.delete(T[name]))
        _orm_insert(s, {n: frames[n] for n in names})
    with sessions() as s:
        theirs = _dump(s, names)
    for name in names:
        assert len(ours[name]) == len(frames[name])
        assert ours[name] == theirs[name], name


def test_a_bulk_write_rolls_back_with_its_transaction(engine):
    sessions = session_factory(engine)
    with sessions.begin() as s:
        parents = _parents(s)
    frames = _frames(*parents)
    with pytest.raises(RuntimeError), sessions.begin() as s:
        writes.bulk_insert(s, T["decisions"], frames["decisions"])
        writes.upsert(s, T["issued_recourse"], frames["issued_recourse"])
        raise RuntimeError("the chunk failed after its rows were sent")
    with sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(T["decisions"])) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(T["issued_recourse"])) == 0


def test_prepared_rows_write_the_same_and_upsert_updates(engine):
    sessions = session_factory(engine)
    with sessions.begin() as s:
        parents = _parents(s)
    frames = _frames(*parents)
    del frames["recourse_validity"]  # keyed by recourse, not decision
    prepared = writes.prepare_frames(frames, engine.dialect)
    ids = frames["decisions"]["decision_id"].tolist()
    with sessions.begin() as s:
        writes.replace_rows(s, prepared, decision_ids=ids)
    changed = frames["issued_recourse"].assign(cost=0.5)
    with sessions.begin() as s:
        writes.replace_rows(
            s, {**frames, "issued_recourse": changed}, decision_ids=ids, model_version_id=parents[1]
        )
    with sessions() as s:
        costs = s.scalars(sa.select(IssuedRecourse.cost)).all()
        counts = {
            n: s.scalar(sa.select(sa.func.count()).select_from(T[n])) for n in frames
        }
    assert costs == [0.5] * len(ids)
    assert counts == {n: len(f) for n, f in frames.items()}


def test_delete_keys_removes_exactly_the_given_composite_keys(engine):
    sessions = session_factory(engine)
    with sessions.begin() as s:
        parents = _parents(s)
        frames = _frames(*parents)
        for name in ("decisions", "attributions"):
            writes.bulk_insert(s, T[name], frames[name])
    gone = pd.DataFrame(
        {"decision_id": ["D001", "x' OR '1'='1"], "model_version_id": parents[1],
         "feature": ["home", "x"]}
    )
    with sessions.begin() as s:
        assert bulk.delete_keys(s, T["attributions"], gone) == 2
    with sessions() as s:
        a = T["attributions"]
        left = set(s.execute(sa.select(a.c.decision_id, a.c.feature)))
    assert ("D001", "home") not in left and ("x' OR '1'='1", "x") not in left
    assert ("D001", "x") in left and len(left) == len(frames["attributions"]) - 2


def test_read_frame_returns_what_a_select_returns(engine):
    sessions = session_factory(engine)
    with sessions.begin() as s:
        parents = _parents(s)
        frames = _frames(*parents)
        for name in ("decisions", "issued_recourse", "recourse_validity"):
            writes.bulk_insert(s, T[name], frames[name])
    ir, rv = T["issued_recourse"], T["recourse_validity"]
    stmt = (
        sa.select(ir.c.recourse_id, ir.c.issued_at, ir.c.complete, ir.c.x_after, ir.c.stability,
                  rv.c.alternative_valid, (ir.c.layout_sha256 == "f" * 64).label("same"))
        .join(rv, rv.c.recourse_id == ir.c.recourse_id)
        .where(ir.c.issued_at >= datetime(2026, 1, 1, tzinfo=UTC), ir.c.recourse_id >= "D002")
        .order_by(ir.c.recourse_id)
    )
    got = bulk.read_frame(engine, stmt)
    with sessions() as s:
        want = s.execute(stmt).all()
    assert got["recourse_id"].tolist() == [r.recourse_id for r in want]
    assert [t.to_pydatetime() for t in got["issued_at"]] == [
        r.issued_at.replace(tzinfo=UTC) if r.issued_at.tzinfo is None else r.issued_at
        for r in want
    ]
    assert got["complete"].tolist() == [r.complete for r in want]
    assert got["same"].tolist() == [True] * len(want)
    assert got["x_after"].tolist() == [r.x_after for r in want]
    assert [None if pd.isna(v) else v for v in got["stability"]] == [r.stability for r in want]
    assert got["alternative_valid"].tolist() == [r.alternative_valid for r in want]


_TRY_WRITE = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    con.execute("BEGIN IMMEDIATE")
    print("got the write lock")
except sqlite3.OperationalError as exc:
    print(exc)
"""


def test_a_bulk_read_keeps_this_process_sqlite_write_lock(tmp_path):
    # A second SQLite library in the process (ADBC's driver links its own) drops this
    # process's POSIX locks when it closes the file: another process could then write while
    # this one holds the write lock.
    path = tmp_path / "ledger.db"
    engine = init_store(f"sqlite:///{path}")
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")

        def other_process() -> str:
            res = subprocess.run([sys.executable, "-c", _TRY_WRITE, str(path)],
                                 capture_output=True, text=True, timeout=60, check=True)
            return res.stdout.strip()

        assert other_process() == "database is locked"
        got = bulk.read_frame(engine, sa.select(T["runs"].c.id))
        bulk.forget_connections()  # closes whatever the read opened
        assert got.empty
        assert other_process() == "database is locked"
    finally:
        writer.rollback()
        writer.close()
        bulk.forget_connections()
        engine.dispose()


def test_binary_matrix_decodes_fixed_width_rows_and_marks_the_rest():
    rows = [np.array([1.0, 2.0, 3.0]).tobytes(), None, b"short", np.array([4.0, 5, 6]).tobytes()]
    out = bulk.binary_matrix(pa.array(rows, pa.binary()), 3)
    assert out[0].tolist() == [1.0, 2.0, 3.0] and out[3].tolist() == [4.0, 5.0, 6.0]
    assert np.isnan(out[1]).all() and np.isnan(out[2]).all()
    whole = bulk.binary_matrix(pa.chunked_array([pa.array(rows[:1]), pa.array(rows[3:])]), 3)
    assert whole.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
