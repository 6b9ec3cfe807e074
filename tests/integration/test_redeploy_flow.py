"""The redeploy check end to end: nightly under v1, deploy v2, re-validate what was promised."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import DEMO_NIGHT, reset_pg
from tests.helpers import read_sql

ROOT = Path(__file__).resolve().parents[2]




@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, run_nightly, demo_home, tmp_path):
    """The demo night processed under v1 (with stability scores) in a fresh ledger."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        reset_pg(url)
    run_nightly(DEMO_NIGHT, demo_home, url)
    return url


def run_check(dask_cluster, home, url, **kwargs):
    from prefect_dask import DaskTaskRunner

    from flows.redeploy import redeploy_check

    flow = redeploy_check.with_options(
        task_runner=DaskTaskRunner(address=dask_cluster.scheduler_address)
    )
    return flow(
        model="credit-default",
        version="v2",
        home=str(home),
        db=url,
        recent_days=100_000,
        window_months=1_000,
        **kwargs,
    )


def test_redeploy_check_records_a_validity_event_per_recourse(dask_cluster, demo_home, ledger):
    summary = run_check(dask_cluster, demo_home, ledger, variants=2, gate=1.0)
    c = summary["counts"]
    issued = read_sql(ledger, "SELECT recourse_id, stability FROM issued_recourse")
    events = read_sql(
        ledger,
        "SELECT recourse_id, valid, score, forward_validity, n_variants FROM recourse_validity",
    )
    assert len(issued) > 0 and issued["stability"].notna().all()
    assert sorted(events["recourse_id"]) == sorted(issued["recourse_id"])
    assert c["recourses_checked"] == len(issued)
    assert c["invalidated"] == int((~events["valid"].astype(bool)).sum())
    assert events["forward_validity"].between(0, 1).all() and (events["n_variants"] == 2).all()
    recontact = read_sql(ledger, "SELECT DISTINCT subject_id FROM v_recontact")
    assert len(recontact) == c.get("recontact_subjects", 0)

    denied = read_sql(ledger, "SELECT COUNT(*) AS n FROM decisions WHERE decision = 'denied'")
    denied = denied["n"][0]
    comparisons = read_sql(ledger, "SELECT * FROM version_comparisons")
    assert len(comparisons) == denied == c["recent_denials"]["compared"]
    assert comparisons["feature_agreement"].between(0, 1).all()
    assert comparisons["old_status"].notna().all()
    # what v2 would say is stored under v2, and nothing is issued in its name
    v2_checks = read_sql(
        ledger,
        "SELECT COUNT(*) AS n FROM recourse_checks rc JOIN model_versions "
        "mv ON mv.id = rc.model_version_id WHERE mv.version = 'v2'",
    )["n"][0]
    assert v2_checks == denied - c["recent_denials"]["now_approved"]
    assert (
        read_sql(
            ledger,
            "SELECT COUNT(*) AS n FROM issued_recourse i JOIN model_versions mv "
            "ON mv.id = i.model_version_id WHERE mv.version = 'v2'",
        )["n"][0]
        == 0
    )
    bins = read_sql(ledger, "SELECT * FROM calibration_bins")
    assert bins["n"].sum() == len(issued)
    check = read_sql(ledger, "SELECT * FROM deployment_checks")
    assert len(check) == 1 and bool(check["passed"][0])

    again = run_check(dask_cluster, demo_home, ledger, variants=2, gate=1.0)
    assert again["counts"]["invalidated"] == c["invalidated"]
    assert len(read_sql(ledger, "SELECT * FROM recourse_validity")) == len(events)
    assert len(read_sql(ledger, "SELECT * FROM runs WHERE kind = 'redeploy'")) == 1


def test_gate_fails_the_check_above_the_threshold(dask_cluster, demo_home, ledger):
    summary = run_check(dask_cluster, demo_home, ledger, variants=0, gate=0.0)
    # the demo's v2 is drifted on purpose: it invalidates some recourse, so a 0% gate trips
    assert summary["counts"]["invalidated"] > 0
    assert summary["counts"]["passed"] is False
    assert not bool(read_sql(ledger, "SELECT passed FROM deployment_checks")["passed"][0])


def test_deploy_definitions_load_with_prefects_own_loader():
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.flows import load_flow_from_entrypoint

    raw = yaml.safe_load((ROOT / "deploy" / "prefect.yaml").read_text())
    model = PrefectYamlModel.model_validate(raw)
    by_name = {d.name: d for d in model.deployments}
    assert {"nightly", "redeploy-check"} <= set(by_name)
    assert by_name["nightly"].schedules[0].cron == "30 2 * * *"
    for d in model.deployments:
        flow = load_flow_from_entrypoint(str(ROOT / d.entrypoint))
        assert callable(flow)
    trigger = raw["deployments"][[d["name"] for d in raw["deployments"]].index("redeploy-check")]
    assert trigger["triggers"][0]["expect"] == ["governance.model.deployed"]


def test_govern_deploy_emits_the_event_the_trigger_expects(demo_home, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter
    from prefect.server.events.schemas.automations import EventTrigger
    from prefect.server.events.schemas.events import ReceivedEvent

    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "GOVERNANCE_HOME": str(home), "PREFECT_API_URL": PREFECT_API_URL.value()}
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("govern")),
            "deploy",
            "credit-default",
            "v2",
            "--no-check",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "emitted governance.model.deployed" in result.stdout

    raw = yaml.safe_load((ROOT / "deploy" / "prefect.yaml").read_text())
    spec = next(d for d in raw["deployments"] if d["name"] == "redeploy-check")["triggers"][0]
    trigger = EventTrigger(
        expect=set(spec["expect"]), match=spec["match"], posture="Reactive", threshold=1
    )
    events = []
    deadline = time.time() + 60
    with get_client(sync_client=True) as client:
        while not events and time.time() < deadline:
            page = client.read_events(
                filter=EventFilter(event=EventNameFilter(name=["governance.model.deployed"])),
                limit=50,
            )
            events = page.events
            time.sleep(1)
    assert events, "no governance.model.deployed event reached the server"
    event = events[0]
    assert event.payload == {"name": "credit-default", "version": "v2", "previous_version": "v1"}
    assert trigger.covers(ReceivedEvent(**json.loads(event.model_dump_json())))
    assert event.resource["governance.model.version"] == "v2"
