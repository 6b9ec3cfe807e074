"""An MLflow registry governed for real: a tracking server (its own venv, SQLite, local
artifacts), a Prefect server serving the mlflow-sync deployment as deploy/prefect.yaml
declares it, MLflow's own webhook delivered to our receiver, and the ledger.

Register a version and move the challenger alias: the webhook becomes a Prefect event, the
served sync imports and checks the version, moves champion only after the check passed, and
writes the verdict back as tags; every move is in the alias history. A champion moved by hand
is recorded as deployed unchecked, alarms and is checked at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import finished_runs, serve_script
from tests.mlflow_server import mlflow_server

ROOT = Path(__file__).resolve().parents[2]
NAME = "credit"
SECRET = "test-webhook-secret"
FEATURES = ["income", "debt", "segment"]


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory):
    try:
        import mlflow  # noqa: F401 - the client (mlflow-skinny, in the test extra)
    except ImportError as exc:  # not on the CI allow-list: a run without it fails
        pytest.skip(f"mlflow client not installed: {exc}")
    folder = tmp_path_factory.mktemp("mlflow-server")
    try:
        with mlflow_server(folder) as url:
            yield url
    except RuntimeError as exc:
        if "did not start" in str(exc):
            raise
        pytest.skip(f"MLflow tracking server venv could not be built: {exc}")


def _frame(seed: int, n: int = 400) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({
        "income": rng.normal(50, 15, n).round(1),
        "debt": rng.normal(20, 8, n).round(1),
        "segment": rng.choice(["a", "b", "c"], n),
    })
    y = (x["income"] - x["debt"] + rng.normal(0, 10, n) > 30).astype(int).to_numpy()
    return x, y


def _pipeline(c: float):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return Pipeline([
        ("pre", ColumnTransformer([("num", StandardScaler(), ["income", "debt"]),
                                   ("cat", OneHotEncoder(handle_unknown="ignore"), ["segment"])])),
        ("clf", LogisticRegression(C=c, max_iter=500)),
    ])


def _log_version(client, c: float, *, fmt: str = "skops") -> str:
    import mlflow
    from mlflow.models import infer_signature

    x, y = _frame(0)
    x = x.astype({"income": float, "debt": float})
    model = _pipeline(c).fit(x, y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(x.head(20), model.predict(x.head(20))),
            registered_model_name=NAME, serialization_format=fmt,
        )
    return str(info.registered_model_version)


@pytest.fixture(scope="module")
def world(mlflow_url, tmp_path_factory):
    """Tracking URI in the environment, a governance home and ledger, a reference sample."""
    import mlflow

    folder = tmp_path_factory.mktemp("governed")
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_DISABLE_TELEMETRY")}
    os.environ.update({"MLFLOW_TRACKING_URI": mlflow_url, "MLFLOW_DISABLE_TELEMETRY": "true"})
    mlflow.set_tracking_uri(mlflow_url)
    mlflow.set_experiment("governance-tests")
    ref = folder / "reference.csv"
    _frame(1, 300)[0].to_csv(ref, index=False)
    yield {
        "client": mlflow.MlflowClient(tracking_uri=mlflow_url),
        "home": folder / "home",
        "db": f"sqlite:///{folder / 'ledger.db'}",
        "reference": ref,
        "url": mlflow_url,
    }
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _govern(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    govern = str(Path(sys.executable).with_name("govern"))
    return subprocess.run([govern, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_import_from_mlflow_records_where_the_model_came_from(world):
    client = world["client"]
    v = _log_version(client, 1.0)
    client.set_registered_model_alias(NAME, "champion", v)
    out = _govern("models", "import", "imported", "m1", "--from", f"models:/{NAME}@champion",
                  "--reference-data", str(world["reference"]), "--home", str(world["home"]),
                  "--json")
    assert out.returncode == 0, out.stderr
    source = json.loads(out.stdout)["source"]
    mv = client.get_model_version(NAME, v)
    assert source["kind"] == "mlflow" and source["tracking_uri"] == world["url"]
    assert (source["registered_model"], source["mlflow_version"], source["alias"]) == (
        NAME, v, "champion")
    assert source["run_id"] == mv.run_id and source["model_id"].startswith("m-")
    assert source["model_id"] == mv.source.removeprefix("models:/")
    assert [c["name"] for c in json.loads(source["signature"]["inputs"])] == FEATURES
    assert source["format"] == "skops" and source["serialization_format"] == "skops"
    assert source["sha256"] == source["mlflow_artifact_sha256"] and len(source["sha256"]) == 64
    # the registry keeps its own skops copy, pinned by the manifest
    from governance.registry.model_registry import ModelRegistry

    reg = ModelRegistry(world["home"] / "registry")
    assert reg.load("imported", "m1").estimator is not None
    assert (reg.path("imported", "m1") / "model.skops").is_file()


def test_a_pickled_mlflow_model_needs_trust_pickle(world):
    from governance.exceptions import ImportRefused
    from governance.registry.mlflow_source import import_from_mlflow
    from governance.registry.model_registry import ModelRegistry

    v = _log_version(world["client"], 0.5, fmt="pickle")
    reg = ModelRegistry(world["home"] / "registry")
    uri = f"models:/{NAME}/{v}"
    with pytest.raises(ImportRefused, match="--trust-pickle"):
        import_from_mlflow(reg, "pickled", "p1", uri, reference=world["reference"])
    assert not reg.path("pickled", "p1").exists()
    report = import_from_mlflow(reg, "pickled", "p1", uri, reference=world["reference"],
                                trust_pickle=True)
    source = report.manifest.source
    assert source["trust_pickle"] is True and source["format"] == "pickle"
    assert source["serialization_format"] == "pickle" and source["mlflow_version"] == v
    assert (reg.path("pickled", "p1") / "model.skops").is_file()  # our copy is skops


SERVE = serve_script("flows.mlflow_sync", "mlflow_sync", "mlflow-sync")


def test_challenger_is_checked_before_champion_moves_and_a_hand_move_alarms(
    world, dask_cluster, monkeypatch
):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from flows.mlflow_sync import mlflow_sync
    from govern_cli.mlflow_webhook import PATH, make_server
    from governance.store import aliases, deployments, init_store, session_factory

    client, db, home = world["client"], world["db"], world["home"]
    api = PREFECT_API_URL.value()
    env = {
        "GOVERNANCE_HOME": str(home), "GOVERNANCE_DB_URL": db,
        "GOVERNANCE_DASK_ADDRESS": dask_cluster.scheduler_address,
        "GOVERNANCE_ACTOR": "mlflow-bot", "PREFECT_API_URL": api,
        "PREFECT_RUNNER_POLL_FREQUENCY": "1", "GOVERNANCE_MLFLOW_MODELS": NAME,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    sessions = session_factory(init_store(db))

    # 1. champion -> a version: the first sync imports it as the first deployment
    v1 = _log_version(client, 1.0)
    client.set_registered_model_alias(NAME, "champion", v1)
    first = mlflow_sync(reference_data=str(world["reference"]), variants=0, recent_days=0)
    assert first["alarms"] == []
    with sessions() as s:
        assert deployments.deployed_version(s, NAME) == v1

    # 2. the webhook receiver, and MLflow's webhook pointing at it
    receiver = make_server("127.0.0.1", 0, SECRET)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{receiver.server_address[1]}{PATH}"
    client.create_webhook(name="governance", url=hook_url,
                          events=["model_version_alias.created"], secret=SECRET)
    server = subprocess.Popen([sys.executable, "-c", SERVE], cwd=ROOT,
                              env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        with get_client(sync_client=True) as prefect:
            deadline, deployment = time.time() + 120, None
            while deployment is None and time.time() < deadline:
                assert server.poll() is None, server.stderr.read()
                try:
                    deployment = prefect.read_deployment_by_name("mlflow-sync/mlflow-sync")
                except Exception:  # noqa: BLE001 - not registered yet
                    time.sleep(1)
            assert deployment is not None, "the mlflow-sync deployment was never served"
            time.sleep(3)  # the triggers service picks up the new automation

            # 3. a new version proposed through challenger: the webhook starts the served sync
            v2 = _log_version(client, 0.05)
            client.set_registered_model_alias(NAME, "challenger", v2)
            # two runs: the challenger's webhook, then the webhook of our own champion move,
            # which finds nothing new
            runs = finished_runs(prefect, deployment.id, 2, time.time() + 300)
            assert all(r.state.is_completed() for r in runs), [r.state for r in runs]
            assert runs[0].parameters["models"] == [NAME]
            assert runs[0].parameters["via"] == "webhook"
            prefect.delete_deployment(deployment.id)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        receiver.shutdown()
        receiver.server_close()

    assert client.get_registered_model(NAME).aliases["champion"] == v2
    tags = client.get_model_version(NAME, v2).tags
    with sessions() as s:
        assert deployments.deployed_version(s, NAME) == v2
        check = deployments.latest_check(s, NAME, v2)
        history = aliases.alias_history(s, NAME)
    assert check.passed and check.actor == "mlflow-bot"
    assert tags["governance.check"] == "passed"
    assert tags["governance.check_run_id"] == str(check.check_run_id)
    moves = [(h["alias"], h["previous_version"], h["version"], h["via"], h["action"])
             for h in history]
    assert moves == [
        ("champion", None, v1, "poll", "first deployment"),
        ("challenger", None, v2, "webhook", "proposed"),
        ("champion", v1, v2, "governance", "promoted"),
    ]

    # 4. champion moved back by hand: deployed unchecked, alarm, checked at once
    client.set_registered_model_alias(NAME, "champion", v1)
    out = _govern("models", "sync", "--variants", "0", "--json", env=env)
    assert out.returncode == 3, out.stderr
    assert "ALARM" in out.stderr and "deployed unchecked" in " ".join(out.stderr.split())
    summary = json.loads(out.stdout)
    assert summary["models"][NAME]["checks"][0]["version"] == v1
    with sessions() as s:
        assert deployments.deployed_version(s, NAME) == v1
        last = deployments.deployment_history(s, NAME, v1)[-2:]
        history = aliases.alias_history(s, NAME, "champion")
    assert last[0]["state"] == "deployed" and last[0]["forced"]
    assert "moved by hand" in last[0]["reason"] and last[1]["state"] == "checked"
    assert history[-1]["version"] == v1 and history[-1]["action"] == "deployed unchecked"
    assert client.get_model_version(NAME, v1).tags["governance.check"] in ("passed", "failed")
    # a second poll finds nothing new
    again = mlflow_sync(variants=0, recent_days=0)
    assert again["alarms"] == [] and again["models"][NAME]["moves"] == []


def test_a_challenger_that_fails_the_check_leaves_champion_where_it_is(
    world, dask_cluster, run_nightly, monkeypatch, tmp_path
):
    """Recourse promised under the champion, then a challenger fitted on flipped outcomes:
    its check fails, champion stays, the failed verdict and its rate go back as tags."""
    from datetime import UTC, date, datetime, timedelta

    from flows.mlflow_sync import mlflow_sync
    from governance.registry.model_registry import ModelRegistry
    from governance.store import aliases, deployments, init_store, session_factory

    client, db, home = world["client"], world["db"], world["home"]
    monkeypatch.setenv("GOVERNANCE_HOME", str(home))
    monkeypatch.setenv("GOVERNANCE_DB_URL", db)
    monkeypatch.setenv("GOVERNANCE_DASK_ADDRESS", dask_cluster.scheduler_address)
    sessions = session_factory(init_store(db))
    with sessions() as s:
        champion = deployments.deployed_version(s, NAME)
    assert champion == client.get_registered_model(NAME).aliases["champion"]
    # an action set for the champion, drafted and attached with the README's commands
    actions = tmp_path / "actions.json"
    draft = _govern("action-set", "draft", "--model", NAME, champion, "--data",
                    str(world["reference"]), "--immutable", "segment", "--out", str(actions),
                    "--home", str(home))
    assert draft.returncode == 0, draft.stderr
    attach = _govern("action-set", "check", str(actions), "--model", NAME, champion, "--data",
                     str(world["reference"]), "--attach", "--home", str(home))
    assert attach.returncode == 0, attach.stderr
    # a night decided by the champion: recourse is promised to the denied
    night = date(2026, 11, 3)
    x, _ = _frame(2, 120)
    ref = pd.read_csv(world["reference"])
    for c in ("income", "debt"):  # within the observed range: nothing flagged out of range
        x[c] = x[c].clip(ref[c].min(), ref[c].max())
    scores = ModelRegistry(home / "registry").load(NAME, champion).score(x)
    start = datetime.combine(night, datetime.min.time(), tzinfo=UTC)
    log = x.assign(
        decision_id=[f"D{i:04d}" for i in range(len(x))],
        subject_id=[f"S{i:04d}" for i in range(len(x))],
        decided_at=[(start + timedelta(minutes=i)).isoformat() for i in range(len(x))],
        model_name=NAME, model_version=champion, score=scores,
        decision=np.where(scores >= 0.5, "approved", "denied"),
    )
    log.to_csv(tmp_path / "decisions.csv", index=False)
    run_nightly(night, home, db, log=f"csv:{tmp_path / 'decisions.csv'}")
    # the challenger learnt the opposite: what it would tell the denied no longer holds
    import mlflow

    xs, ys = _frame(0)
    flipped = _pipeline(1.0).fit(xs, 1 - ys)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(flipped, name="model", registered_model_name=NAME)
    bad = str(info.registered_model_version)
    client.set_registered_model_alias(NAME, "challenger", bad)
    result = mlflow_sync([NAME], gate=0.0, variants=0, recent_days=0)["models"][NAME]
    (check,) = result["checks"]
    assert check["version"] == bad and not check["passed"]
    assert check["invalidation_rate"] > 0 and result["promoted"] is None
    assert client.get_registered_model(NAME).aliases["champion"] == champion
    tags = client.get_model_version(NAME, bad).tags
    assert tags["governance.check"] == "failed"
    assert float(tags["governance.invalidation_rate"]) == pytest.approx(
        check["invalidation_rate"], rel=1e-5)
    with sessions() as s:
        assert deployments.deployed_version(s, NAME) == champion
        assert deployments.latest_check(s, NAME, bad).passed is False
        last = aliases.alias_history(s, NAME)[-1]
    assert (last["alias"], last["version"], last["action"]) == ("challenger", bad, "proposed")
