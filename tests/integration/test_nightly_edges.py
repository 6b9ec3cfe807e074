"""The nightly flow on real components at the edges: external Dask workers, bad inputs,
tampered artifacts, and German credit attributions checked against SHAP itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
import shap
import sqlalchemy as sa

from governance.exceptions import ArtifactHashMismatch
from governance.intake.decision_log import ParquetDecisionLog, make_decisions
from tests.conftest import DEMO_NIGHT


def _count(url: str, sql: str):
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(sa.text(sql)).scalar()
    engine.dispose()
    return value


@pytest.fixture(scope="module")
def dask_processes(tmp_path_factory):
    """A real `dask scheduler` and `dask worker --nworkers 2` on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("dask")
    sched_file = folder / "scheduler.json"
    bindir = os.path.dirname(sys.executable)
    env = {**os.environ, "DASK_LOGGING__DISTRIBUTED": "error"}
    scheduler = subprocess.Popen(
        [
            f"{bindir}/dask",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(sched_file),
        ],
        env=env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = None
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        workers = subprocess.Popen(
            [
                f"{bindir}/dask",
                "worker",
                "--scheduler-file",
                str(sched_file),
                "--nworkers",
                "2",
                "--nthreads",
                "1",
                "--no-dashboard",
            ],
            env=env,
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from distributed import Client

        with Client(scheduler_file=str(sched_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            address = client.scheduler.address
        yield address
    finally:
        for proc in (workers, scheduler):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


def test_flow_runs_on_an_external_scheduler_with_two_workers(dask_processes, demo_home, tmp_path):
    from prefect_dask import DaskTaskRunner

    from flows.nightly import nightly_governance

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    flow = nightly_governance.with_options(task_runner=DaskTaskRunner(address=dask_processes))
    summary = flow(night=DEMO_NIGHT, home=str(demo_home), db=url, chunk_rows=300)
    assert summary["counts"]["decisions"] == summary["counts"]["valid"] > 0
    assert _count(url, "SELECT COUNT(*) FROM decisions") == summary["counts"]["decisions"]
    assert (
        _count(url, "SELECT COUNT(DISTINCT chunk_no) FROM run_chunks")
        == summary["counts"]["chunks"]
    )


def test_bad_rows_are_quarantined_exactly(run_nightly, demo_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    log = ParquetDecisionLog(home / "decision-logs")
    frame = pd.read_parquet(log.files(DEMO_NIGHT)[0])
    frame = frame.iloc[:300].reset_index(drop=True)  # all clean rows? drop the demo's damage
    frame = frame[
        frame["annual_income"].notna()
        & (frame["revolving_utilization"] <= 1.5)
        & (frame["home_ownership"] != "CASTLE")
    ]
    frame = frame.drop_duplicates("decision_id", keep=False).reset_index(drop=True)
    bad = {
        2: ("debt_to_income", -1.0),
        5: ("loan_purpose", "yacht"),
        9: ("model_version", "v42"),
        11: ("age", np.nan),
    }
    for row, (col, value) in bad.items():
        frame[col] = frame[col].astype(object) if isinstance(value, str) else frame[col]
        frame.loc[row, col] = value
    log.write_night(DEMO_NIGHT, frame)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    summary = run_nightly(DEMO_NIGHT, home, url)
    bad_ids = sorted(frame.loc[list(bad), "decision_id"])
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        q = pd.read_sql(sa.text('SELECT decision_id, "check", "column" FROM quarantine'), conn)
        stored = set(pd.read_sql(sa.text("SELECT decision_id FROM decisions"), conn)["decision_id"])
    engine.dispose()
    assert sorted(q["decision_id"].unique()) == bad_ids
    assert set(zip(q["decision_id"], q["column"], strict=True)) >= {
        (frame.loc[2, "decision_id"], "debt_to_income"),
        (frame.loc[5, "decision_id"], "loan_purpose"),
        (frame.loc[9, "decision_id"], "model_version"),
        (frame.loc[11, "decision_id"], "age"),
    }
    assert stored == set(frame["decision_id"]) - set(bad_ids)
    assert summary["counts"]["quarantined"] == 4


def test_tampered_artifact_fails_the_run_and_is_recorded(run_nightly, demo_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    artifact = home / "registry" / "credit-default" / "v1" / "model.skops"
    blob = bytearray(artifact.read_bytes())
    blob[-100] ^= 0x01
    artifact.write_bytes(bytes(blob))
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with pytest.raises(ArtifactHashMismatch, match="refusing to load"):
        run_nightly(DEMO_NIGHT, home, url)
    assert _count(url, "SELECT status FROM runs") == "failed"
    assert "ArtifactHashMismatch" in _count(url, "SELECT error FROM runs")
    assert _count(url, "SELECT COUNT(*) FROM decisions") == 0


def test_german_credit_attributions_equal_shap_and_are_additive(run_nightly, tmp_path):
    from governance.data.real import ENV_VAR, load_german, shared_data_dir
    from governance.registry.model_registry import ModelRegistry
    from governance.registry.training import TrainingRecipe

    folder = shared_data_dir() / "german_credit"
    if not folder.is_dir():
        pytest.skip(f"shared data folder {folder} is absent; set {ENV_VAR} to run real-data tests")
    data = load_german("decoded")
    home = tmp_path / "home"
    reg = ModelRegistry(home / "registry")
    recipe = TrainingRecipe("gradient_boosting", {"n_estimators": 60, "max_depth": 3}, seed=1)
    est = recipe.fit(data.schema, data.X, data.y)
    reg.register("german", "v1", est, data.schema, recipe)
    model = reg.load("german", "v1")
    night = date(2026, 10, 1)
    people = data.X.assign(subject_id=[f"G{i:04d}" for i in range(len(data.X))])
    scores = model.score(people)
    stamps = [datetime(2026, 10, 1, 12, tzinfo=UTC)] * len(people)
    log = make_decisions(
        people,
        scores,
        model.threshold,
        model_name="german",
        model_version="v1",
        decided_at=stamps,
        features=data.schema.names,
    )
    ParquetDecisionLog(home / "decision-logs").write_night(night, log)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    summary = run_nightly(night, home, url, chunk_rows=400)
    assert summary["counts"]["decisions"] == len(data.X) == 1000
    assert summary["counts"]["not_additive"] == 0

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        stored = pd.read_sql(
            sa.text("SELECT decision_id, feature, attribution FROM attributions"), conn
        )
        expl = pd.read_sql(
            sa.text("SELECT decision_id, base_value, model_output, additive FROM explanations"),
            conn,
        )
    engine.dispose()
    wide = stored.pivot(index="decision_id", columns="feature", values="attribution")
    wide = wide.loc[log["decision_id"], data.schema.names]
    # SHAP's own values on the transformed matrix, one-hot columns summed per feature.
    raw = shap.TreeExplainer(est[-1])(est[:-1].transform(model.frame(data.X)))
    names = list(est[:-1].get_feature_names_out())
    for feature in data.schema.names:
        cols = [i for i, n in enumerate(names) if n == feature or n.startswith(f"{feature}_")]
        np.testing.assert_allclose(
            wide[feature].to_numpy(), raw.values[:, cols].sum(axis=1), atol=1e-10
        )
    expl = expl.set_index("decision_id").loc[log["decision_id"]]
    assert expl["additive"].all()
    np.testing.assert_allclose(
        expl["base_value"] + wide.sum(axis=1).to_numpy(), expl["model_output"], atol=1e-9
    )
