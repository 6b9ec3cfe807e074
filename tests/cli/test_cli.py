"""The `govern` command line, run as a user runs it: a subprocess per command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import DEMO_NIGHT

GOVERN = str(Path(sys.executable).with_name("govern"))
COMMANDS = [
    [],
    ["demo"],
    ["nightly"],
    ["history"],
    ["runs"],
    ["deploy"],
    ["models"],
    ["models", "list"],
    ["models", "show"],
    ["models", "register"],
    ["models", "import"],
    ["log", "check"],
    ["action-set", "draft"],
    ["action-set", "check"],
    ["explainers"],
    ["explainers", "compare"],
    ["explainers", "show"],
    ["explainers", "quality"],
]


def govern(
    *args: str, home: Path | None = None, server: str | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """Run `govern`; flows start their own Prefect server unless given one's URL."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    if server:
        env["PREFECT_API_URL"] = server
    cmd = [GOVERN, *args] + (["--home", str(home)] if home else [])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "govern")
def test_every_command_has_help(command):
    result = govern(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: govern" in result.stdout


@pytest.fixture(scope="module")
def ledger_home(demo_home, tmp_path_factory):
    """The small demo after one real `govern nightly` run (own Prefect server, LocalCluster),
    as a user runs it; later flow commands share the session's server to save its start."""
    home = tmp_path_factory.mktemp("cli") / "home"
    shutil.copytree(demo_home, home)
    result = govern("nightly", "--date", DEMO_NIGHT.isoformat(), "--workers", "2", home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Nightly governance runs" in result.stdout
    return home


def _denied_subject(home: Path) -> str:
    engine = sa.create_engine(f"sqlite:///{home / 'governance.db'}")
    with engine.connect() as conn:
        subject = conn.execute(
            sa.text(
                "SELECT subject_id FROM decisions WHERE decision = 'denied' ORDER BY decision_id"
            )
        ).scalar()
    engine.dispose()
    return subject


def test_history_shows_reasons_as_table_and_json(ledger_home):
    subject = _denied_subject(ledger_home)
    table = govern("history", "--subject", subject, home=ledger_home)
    assert table.returncode == 0 and subject in table.stdout and "denied" in table.stdout
    assert "reason (feature)" in table.stdout
    data = json.loads(govern("history", "--subject", subject, "--json", home=ledger_home).stdout)
    decision = data["decisions"][0]
    assert decision["decision"] == "denied" and decision["model_version"] == "v1"
    assert 1 <= len(decision["reasons"]) <= 4
    assert [r["rank"] for r in decision["reasons"]] == list(range(1, len(decision["reasons"]) + 1))


def test_runs_lists_the_night(ledger_home):
    data = json.loads(govern("runs", "--json", home=ledger_home).stdout)
    assert data[0]["kind"] == "nightly" and data[0]["status"] == "succeeded"


def test_hostile_subject_ids_are_data_not_sql(ledger_home):
    hostile = "x' OR '1'='1'; DROP TABLE decisions; --"
    result = govern("history", "--subject", hostile, "--json", home=ledger_home)
    assert result.returncode == 0
    assert json.loads(result.stdout)["decisions"] == []
    assert _denied_subject(ledger_home)  # the table is still there


@pytest.mark.parametrize("name", ["../../etc", "a/b", "x;rm -rf"])
def test_hostile_model_names_get_a_one_line_error(ledger_home, name):
    result = govern("models", "show", name, "v1", home=ledger_home)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "is not allowed" in result.stderr


def test_unknown_version_and_bad_date_are_clear(ledger_home):
    unknown = govern("models", "show", "credit-default", "v9", home=ledger_home)
    assert unknown.returncode == 2 and "'v9' not in registry" in unknown.stderr
    bad_date = govern("nightly", "--date", "2026-13-01", home=ledger_home)
    assert bad_date.returncode == 2 and "expected YYYY-MM-DD" in bad_date.stderr


def test_unreachable_database_is_a_one_line_error(ledger_home):
    result = govern(
        "runs", "--db", "postgresql+psycopg://u:topsecret@127.0.0.1:1/x", home=ledger_home
    )
    assert result.returncode == 2
    assert "cannot reach the store" in result.stderr
    assert "topsecret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_redeploy_check_exit_code_follows_the_gate(ledger_home, prefect_server):
    common = [
        "redeploy-check",
        "credit-default",
        "v2",
        "--variants",
        "0",
        "--recent-days",
        "0",  # the gate reads re-validation alone; reason comparisons are the flow tests' part
        "--window-months",
        "1000",
        "--workers",
        "2",
    ]
    strict = govern(*common, "--gate", "0", home=ledger_home, server=prefect_server)
    engine = sa.create_engine(f"sqlite:///{ledger_home / 'governance.db'}")
    with engine.connect() as conn:
        invalidated = conn.execute(sa.text("SELECT invalidated FROM deployment_checks")).scalar()
    engine.dispose()
    assert strict.returncode == (3 if invalidated else 0), strict.stdout + strict.stderr
    if invalidated:
        assert "gate failed" in strict.stderr and "Traceback" not in strict.stderr
    lenient = govern(*common, "--gate", "1", home=ledger_home, server=prefect_server)
    assert lenient.returncode == 0, lenient.stderr
    assert "passed" in lenient.stdout
    # a check by hand deploys nothing, so nobody is listed for re-contact
    engine = sa.create_engine(f"sqlite:///{ledger_home / 'governance.db'}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM v_recontact")).scalar() == 0
        states = conn.execute(
            sa.text("SELECT state, passed FROM deployment_events WHERE version = 'v2' ORDER BY id")
        ).all()
    engine.dispose()
    assert states == [("checked", (not invalidated)), ("checked", True)]


def _ledger(home: Path, sql: str):
    engine = sa.create_engine(f"sqlite:///{home / 'governance.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql)).all()
    engine.dispose()
    return rows


def test_deploy_runs_the_gate_first_and_force_needs_a_reason(ledger_home, tmp_path):
    """After the demo, `govern deploy credit-default v2` fails the gate: exit 3, v1 stays
    deployed, nobody is listed for re-contact and no deployment is recorded; `--force
    --reason` then deploys it over the recorded check, saying who and why."""
    home = tmp_path / "home"
    shutil.copytree(ledger_home, home)
    before = _ledger(home, "SELECT COALESCE(MAX(id), 0) FROM deployment_events")[0][0]
    gated = govern("deploy", "credit-default", "v2", "--workers", "2", home=home)
    assert gated.returncode == 3, gated.stdout + gated.stderr
    assert "gate failed" in gated.stderr and "not deployed" in gated.stderr
    assert "Traceback" not in gated.stderr
    listed = json.loads(govern("models", "list", "--json", home=home).stdout)
    assert {r["version"]: r["deployed"] for r in listed} == {"v1": True, "v2": False}
    assert {r["version"]: r["state"] for r in listed}["v2"] == "check failed"
    assert _ledger(home, "SELECT COUNT(*) FROM v_recontact") == [(0,)]
    invalid = _ledger(home, "SELECT COUNT(*) FROM recourse_validity WHERE NOT valid")[0][0]
    assert invalid > 0  # the check found broken promises; the view keeps them out

    no_reason = govern("deploy", "credit-default", "v2", "--force", home=home)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    forced = govern(
        "deploy", "credit-default", "v2", "--force", "--reason", "accepted by the model-risk "
        "committee", home=home, timeout=120,
    )
    assert forced.returncode == 0, forced.stdout + forced.stderr
    events = _ledger(
        home,
        "SELECT version, state, passed, forced, reason, check_run_id, previous_version "
        f"FROM deployment_events WHERE id > {before} ORDER BY id",
    )
    assert [(e[0], e[1]) for e in events] == [
        ("v2", "candidate"), ("v2", "checked"), ("v2", "candidate"), ("v2", "deployed"),
    ]
    check, deployed = events[1], events[-1]
    assert bool(check[2]) is False
    assert bool(deployed[3]) and deployed[4] == "accepted by the model-risk committee"
    assert deployed[5] == check[5] and deployed[6] == "v1"
    assert _ledger(home, "SELECT COUNT(*) FROM v_recontact") == [(invalid,)]
    listed = json.loads(govern("models", "list", "--json", home=home).stdout)
    assert {r["version"]: r["deployed"] for r in listed} == {"v1": False, "v2": True}


def test_forget_purges_and_history_shows_the_tombstone(ledger_home, prefect_server):
    engine = sa.create_engine(f"sqlite:///{ledger_home / 'governance.db'}")
    with engine.connect() as conn:
        subject = conn.execute(
            sa.text("SELECT subject_id FROM decisions WHERE subject_id < 'S1' ORDER BY subject_id")
        ).scalar()
    engine.dispose()
    result = govern(
        "forget",
        "--subject",
        subject,
        "--reason",
        "Art. 17 request",
        "--workers",
        "2",
        home=ledger_home,
        server=prefect_server,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "candidate" in result.stdout and "tombstone kept" in result.stdout
    history = govern("history", "--subject", subject, "--json", home=ledger_home)
    data = json.loads(history.stdout)
    assert data["decisions"] == [] and len(data["tombstones"]) == 1
    listed = json.loads(govern("deletions", "--json", home=ledger_home).stdout)
    assert [r["status"] for r in listed] == ["purged"] and listed[0]["overdue"] is False
