"""Reason statements, notices and their retention in the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from governance.store import notices, session_factory
from governance.store.engine import make_engine
from governance.store.models import DeletionRequest, Notice, Tombstone
from governance.store.purge import purge_subjects
from tests import review_ledger as rl


@pytest.fixture
def ledger(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    info = rl.build(url)
    engine = make_engine(url)
    yield session_factory(engine), info
    engine.dispose()


def test_a_new_statement_supersedes_the_old_one_which_is_kept(ledger):
    sessions, info = ledger
    v1 = info["versions"]["v1"]
    t1 = datetime(2026, 11, 1, tzinfo=UTC)
    with sessions.begin() as s:
        notices.set_statement(s, v1, "income", "any", "Income too low", "A. Reviewer", t1)
    with sessions() as s:
        current = notices.statement_map(s, v1)
        every = notices.statements(s, v1, history=True)
    assert current[("income", "any")] == "Income too low"
    old = [x for x in every if x["feature"] == "income" and x["superseded_at"] is not None]
    assert len(old) == 1 and old[0]["statement"].startswith("Income insufficient")
    assert len([x for x in every if x["feature"] == "income"]) == 2


def test_overdue_lists_denials_past_due_without_a_notice(ledger):
    sessions, info = ledger
    now = rl.T0 + timedelta(days=40)
    with sessions() as s:
        rows, total = notices.overdue(s, now, 30, limit=100)
        early, _ = notices.overdue(s, rl.T0 + timedelta(days=28), 30, limit=100)
    ids = [r["decision_id"] for r in rows]
    denied = [rl.decision_of(i) for i in range(info["n"]) if i % 2 == 0]
    assert total == len(ids) == len(denied) - 1  # decision 2 has its notice
    assert rl.decision_of(2) not in ids and set(ids) <= set(denied)
    # decision 0's application was complete 3 days before the decision: due 3 days earlier
    assert [r["decision_id"] for r in early] == [rl.decision_of(0)]
    first = next(r for r in rows if r["decision_id"] == rl.decision_of(0))
    assert first["due"] == rl.T0 + timedelta(days=27)


def test_retention_is_twenty_five_months():
    assert notices.retention_end(datetime(2026, 1, 31, tzinfo=UTC)) == datetime(
        2028, 2, 29, tzinfo=UTC
    )
    assert notices.retention_end(datetime(2026, 11, 5, 9, tzinfo=UTC)) == datetime(
        2028, 12, 5, 9, tzinfo=UTC
    )


def test_an_erasure_keeps_notices_until_their_retention_ends_then_purges_them(ledger):
    sessions, _ = ledger
    subject = rl.subject_of(2)
    erased = rl.T0 + timedelta(days=60)
    with sessions.begin() as s:
        removed = purge_subjects(s, [subject])
        held = notices.hold_for_retention(s, {subject: "del-x"}, erased)
        s.add(
            DeletionRequest(
                request_id="del-x",
                subject_hash="f" * 64,
                received_at=erased,
                due_at=erased,
                status="purged",
                counts={},
            )
        )
        s.flush()
        s.add(
            Tombstone(
                request_id="del-x",
                subject_hash="f" * 64,
                received_at=erased,
                purged_at=erased,
                counts={"ledger_rows": removed, "notices": held},
            )
        )
    assert removed["decisions"] == 1 and "notices" not in removed
    assert held["kept"] == 1 and "1002.12(b)" in held["basis"]
    with sessions() as s:
        kept = s.scalars(sa.select(Notice).where(Notice.subject_id == subject)).all()
        assert [n.erasure_request_id for n in kept] == ["del-x"]
        # before the retention ends nothing goes
        assert notices.purge_expired_notices(s, erased + timedelta(days=30)) == 0
    end = held["until"]
    with sessions.begin() as s:
        assert notices.purge_expired_notices(s, datetime.fromisoformat(end) + timedelta(1)) == 1
    with sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Notice)) == 0
        grave = s.get(Tombstone, "del-x")
        assert grave.counts["notices"]["purged_after_retention"] == 1
        assert grave.counts["notices"]["kept"] == 0


def test_notices_past_their_retention_go_with_the_erasure(ledger):
    sessions, _ = ledger
    subject = rl.subject_of(2)
    with sessions.begin() as s:
        held = notices.hold_for_retention(s, {subject: "del-y"}, rl.T0 + timedelta(days=900))
    assert held == {"kept": 0, "purged": 1}


def test_notice_inputs_gather_what_a_notice_needs(ledger):
    sessions, info = ledger
    with sessions() as s:
        record = notices.notice_inputs(s, rl.decision_of(0))
        assert notices.notice_inputs(s, "absent") is None
    assert record["decision"] == "denied" and record["model_version"] == "v1"
    assert [r["feature"] for r in record["reasons"]] == rl.FEATURES
    assert record["action_set"]["name"] == "test" and record["recourse"]["changes"]
    assert record["completed_at"] == rl.T0 - timedelta(days=3)
