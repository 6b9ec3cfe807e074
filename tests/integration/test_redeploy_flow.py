"""The redeploy check end to end: nightly under v1, deploy v2, re-validate what was promised."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import DEMO_NIGHT, reset_pg
from tests.helpers import finished_runs, read_sql, serve_script

ROOT = Path(__file__).resolve().parents[2]




@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, run_nightly, demo_home, tmp_path):
    """The demo night processed under v1 (with stability scores) in a fresh ledger."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        reset_pg(url)
    from governance.demo import record_first_deployment

    record_first_deployment(url, "credit-default", "v1")
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
    # a check deploys nothing: v_recontact lists applicants only once v2 is deployed
    assert len(read_sql(ledger, "SELECT DISTINCT subject_id FROM v_recontact")) == 0
    assert summary["deployed"] is False and summary["deployed_version"] == "v1"

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

    again = run_check(dask_cluster, demo_home, ledger, variants=2, gate=1.0, deploy=True)
    assert again["counts"]["invalidated"] == c["invalidated"]
    assert len(read_sql(ledger, "SELECT * FROM recourse_validity")) == len(events)
    assert len(read_sql(ledger, "SELECT * FROM runs WHERE kind = 'redeploy'")) == 1
    assert again["deployed"] is True and again["previous_version"] == "v1"
    recontact = read_sql(ledger, "SELECT DISTINCT subject_id FROM v_recontact")
    assert len(recontact) == c.get("recontact_subjects", 0)


def test_a_failed_gate_fails_the_flow_after_recording_and_deploys_nothing(
    dask_cluster, demo_home, ledger
):
    from governance.exceptions import GateFailed

    with pytest.raises(GateFailed, match="gate failed") as failed:
        run_check(dask_cluster, demo_home, ledger, variants=0, gate=0.0, deploy=True)
    summary = failed.value.summary
    assert summary["counts"]["invalidated"] > 0 and summary["counts"]["passed"] is False
    assert summary["deployed"] is False and summary["deployed_version"] == "v1"
    assert not bool(read_sql(ledger, "SELECT passed FROM deployment_checks")["passed"][0])
    states = read_sql(ledger, "SELECT version, state, passed FROM deployment_events ORDER BY id")
    assert states["state"].tolist() == ["deployed", "checked"]
    assert states["version"].tolist() == ["v1", "v2"] and not bool(states["passed"][1])
    run = read_sql(ledger, "SELECT status, error FROM runs WHERE kind = 'redeploy'")
    assert run["status"][0] == "failed" and run["error"][0].startswith("gate failed")
    assert read_sql(ledger, "SELECT COUNT(*) AS n FROM v_recontact")["n"][0] == 0


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
    assert trigger["triggers"][0]["expect"] == ["governance.model.proposed"]
    assert trigger["triggers"][0]["parameters"]["deploy"] is True


SERVE = serve_script("flows.redeploy", "redeploy_check", "redeploy-check")


def _events(client, name, since):
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    page = client.read_events(
        filter=EventFilter(
            event=EventNameFilter(name=[name]), occurred=EventOccurredFilter(since=since)
        ),
        limit=50,
    )
    return page.events


def test_served_redeploy_check_gates_a_proposed_version(
    dask_cluster, run_nightly, demo_home, tmp_path
):
    """The Prefect-server path for real: `govern deploy` proposes v2 (governance.model.proposed),
    the redeploy-check deployment served with deploy/prefect.yaml's trigger checks it; a failed
    gate ends that flow run Failed with nothing deployed, a passed one deploys v2 and emits
    governance.model.deployed."""
    from datetime import UTC, datetime

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from governance.demo import record_first_deployment
    from governance.store import deployments, init_store, session_factory

    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    record_first_deployment(url, "credit-default", "v1")
    run_nightly(DEMO_NIGHT, home, url)
    since = datetime.now(UTC)
    env = {
        **os.environ,
        "GOVERNANCE_HOME": str(home),
        "GOVERNANCE_DB_URL": url,
        "GOVERNANCE_DASK_ADDRESS": dask_cluster.scheduler_address,
        "GOVERNANCE_ACTOR": "risk-officer",
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        with get_client(sync_client=True) as client:
            deadline = time.time() + 120
            deployment = None
            while deployment is None and time.time() < deadline:
                assert server.poll() is None, server.stderr.read()
                try:
                    deployment = client.read_deployment_by_name("redeploy-check/redeploy-check")
                except Exception:  # noqa: BLE001 - not registered yet
                    time.sleep(1)
            assert deployment is not None, "the redeploy-check deployment was never served"
            time.sleep(3)  # the triggers service picks up the new automation
            govern = str(Path(sys.executable).with_name("govern"))
            strict = subprocess.run(
                [govern, "deploy", "credit-default", "v2", "--gate", "0"],
                capture_output=True, text=True, env=env, timeout=300,
            )
            assert strict.returncode == 0, strict.stderr
            assert "emitted governance.model.proposed" in " ".join(strict.stdout.split())

            (failed,) = finished_runs(client, deployment.id, 1, time.time() + 300)
            assert failed.state.is_failed(), failed.state
            assert failed.parameters["gate"] == 0.0 and failed.parameters["deploy"] is True
            sessions = session_factory(init_store(url))
            with sessions() as session:
                assert deployments.deployed_version(session, "credit-default") == "v1"
                check = deployments.latest_check(session, "credit-default", "v2")
                assert check.passed is False and check.actor == "risk-officer"
                assert check.via == f"redeploy-check flow run {failed.id}"
            assert read_sql(url, "SELECT COUNT(*) AS n FROM v_recontact")["n"][0] == 0
            assert read_sql(url, "SELECT status FROM runs WHERE kind = 'redeploy'")[
                "status"
            ].tolist() == ["failed"]
            proposed = _events(client, "governance.model.proposed", since)
            assert proposed and proposed[0].payload == {
                "name": "credit-default", "version": "v2", "previous_version": "v1",
                "gate": 0.0, "proposed_by": "risk-officer",
            }
            assert _events(client, "governance.model.deployed", since) == []

            lenient = subprocess.run(
                [govern, "deploy", "credit-default", "v2", "--gate", "1"],
                capture_output=True, text=True, env=env, timeout=300,
            )
            assert lenient.returncode == 0, lenient.stderr
            runs = finished_runs(client, deployment.id, 2, time.time() + 300)
            assert runs[-1].state.is_completed(), runs[-1].state
            with sessions() as session:
                assert deployments.deployed_version(session, "credit-default") == "v2"
                history = deployments.deployment_history(session, "credit-default", "v2")
            assert [h["state"] for h in history] == [
                "candidate", "checked", "candidate", "checked", "deployed"
            ]
            assert history[-1]["actor"] == "risk-officer" and not history[-1]["forced"]
            assert history[-1]["check_run_id"] == history[-2]["check_run_id"]
            deadline = time.time() + 60
            deployed = []
            while not deployed and time.time() < deadline:
                deployed = _events(client, "governance.model.deployed", since)
                time.sleep(1)
            assert [e.payload["version"] for e in deployed] == ["v2"]
            client.delete_deployment(deployment.id)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
