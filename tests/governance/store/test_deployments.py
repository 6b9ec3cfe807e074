"""Deployment states in the ledger: candidate -> checked -> deployed, forced with a reason, and
a re-contact view that only a deployed version fills."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from governance.exceptions import DeploymentError
from governance.store import deployments, init_store, session_factory, writes
from governance.store.models import (
    Decision,
    IssuedRecourse,
    ModelVersion,
    RecourseValidity,
)
from tests.conftest import reset_pg


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        reset_pg(url)
    engine = init_store(url)
    yield session_factory(engine)
    engine.dispose()


def _check(s, version, run_id, passed, rate=0.2):
    return deployments.record_check(
        s, "m", version, run_id=run_id, passed=passed, invalidation_rate=rate, gate=0.1,
        actor="alice", via="test",
    )


def test_a_version_is_deployed_only_after_a_passed_check_or_forced_with_a_reason(sessions):
    with sessions.begin() as s:
        run_id = writes.start_run(s, "redeploy::m:v2", "redeploy").id
        assert deployments.deployed_version(s, "m") is None
        # the first deployment of a model has nothing earlier to re-check
        first = deployments.record_deployment(s, "m", "v1", actor="alice", via="test")
        assert first.reason.startswith("first deployment") and not first.forced
        deployments.propose_candidate(s, "m", "v2", actor="bob", via="test")
        assert deployments.version_state(s, "m", "v2") == "candidate"
        with pytest.raises(DeploymentError, match="has not been checked"):
            deployments.record_deployment(s, "m", "v2", actor="bob", via="test")
        _check(s, "v2", run_id, passed=False)
        assert deployments.version_state(s, "m", "v2") == "check failed"
        with pytest.raises(DeploymentError, match="failed its redeploy check"):
            deployments.record_deployment(s, "m", "v2", actor="bob", via="test")
        with pytest.raises(DeploymentError, match="needs a reason"):
            deployments.record_deployment(s, "m", "v2", actor="bob", via="test", forced=True,
                                          reason="  ")
        assert deployments.deployed_version(s, "m") == "v1"
        forced = deployments.record_deployment(
            s, "m", "v2", actor="bob", via="test", forced=True, reason="regulator deadline"
        )
        assert (forced.forced, forced.check_run_id, forced.previous_version) == (
            True, run_id, "v1")
        assert deployments.deployed_version(s, "m") == "v2"
        assert deployments.version_state(s, "m", "v1") == "retired"
        # a passed check deploys without force; states are appended, never rewritten
        deployments.propose_candidate(s, "m", "v3", actor="carol", via="test")
        _check(s, "v3", run_id, passed=True, rate=0.01)
        deployments.record_deployment(s, "m", "v3", actor="carol", via="test")
        assert deployments.deployed_versions(s) == {"m": "v3"}
    with sessions() as s:
        history = deployments.deployment_history(s, "m")
    assert [(h["version"], h["state"], h["passed"], h["forced"]) for h in history] == [
        ("v1", "deployed", None, False),
        ("v2", "candidate", None, False),
        ("v2", "checked", False, False),
        ("v2", "deployed", None, True),
        ("v3", "candidate", None, False),
        ("v3", "checked", True, False),
        ("v3", "deployed", None, False),
    ]
    assert [h["actor"] for h in history][-3:] == ["carol", "alice", "carol"]
    assert history[3]["reason"] == "regulator deadline"
    assert all(h["at"] is not None for h in history)


def test_a_failed_check_blocks_even_a_first_deployment(sessions):
    with sessions.begin() as s:
        run_id = writes.start_run(s, "redeploy::n:v1", "redeploy").id
        deployments.record_check(
            s, "n", "v1", run_id=run_id, passed=False, invalidation_rate=0.5, gate=0.1,
            actor="a", via="test",
        )
        with pytest.raises(DeploymentError, match="failed its redeploy check"):
            deployments.record_deployment(s, "n", "v1", actor="a", via="test")
        assert deployments.deployed_version(s, "n") is None


def test_recontact_lists_only_recourse_invalidated_by_a_deployed_version(sessions):
    """A check of a candidate records validity events under it; v_recontact shows them only
    once that version is actually deployed."""
    now = datetime(2026, 11, 2, 9, tzinfo=UTC)
    with sessions.begin() as s:
        run_id = writes.start_run(s, "nightly:2026-11-02:m", "nightly").id
        ids = {}
        for v in ("v1", "v2"):
            mv = ModelVersion(name="m", version=v, artifact_sha256=v * 32, created_at=now,
                              manifest={})
            s.add(mv)
            s.flush()
            ids[v] = mv.id
        s.add(Decision(decision_id="D1", subject_id="S1", decided_at=now,
                       decision_date=date(2026, 11, 2), model_version_id=ids["v1"], score=0.3,
                       decision="denied", features={}, run_id=run_id))
        s.flush()
        s.add(IssuedRecourse(recourse_id="R1", decision_id="D1", model_version_id=ids["v1"],
                             action_set_id=_aset(s, ids["v1"]), cost_model_id=_cost(s),
                             issued_at=now, cost=1.0, score_before=0.3, score_after=0.6,
                             complete=True, changes=[], x_after={}, run_id=run_id))
        s.flush()
        s.add(RecourseValidity(recourse_id="R1", model_version_id=ids["v2"], run_id=run_id,
                               valid=False, score=0.4, checked_at=now))
        deployments.record_deployment(s, "m", "v1", actor="a", via="test")
        _check(s, "v2", run_id, passed=False)
    count = sa.text("SELECT COUNT(*) FROM v_recontact")
    with sessions() as s:
        assert s.execute(count).scalar() == 0
    with sessions.begin() as s:
        deployments.record_deployment(s, "m", "v2", actor="a", via="test", forced=True,
                                      reason="accepted")
    with sessions() as s:
        assert s.execute(count).scalar() == 1


def _aset(s, mv_id):
    return writes.ensure_action_set(s, mv_id, {"features": []}, "a" * 64)


def _cost(s):
    return writes.ensure_cost_model(s, "percentile", {}, "c" * 64)
