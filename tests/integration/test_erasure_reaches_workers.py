"""Erasure reaches long-lived workers: a `dask scheduler` and `dask worker` processes that
outlive the runs keep no cost model, background or scale fitted on an erased person's rows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import DEMO_NIGHT

ROOT = Path(__file__).resolve().parents[2]
DASK = str(Path(sys.executable).with_name("dask"))
FEATURE = "annual_income"
TCP_TIMEOUT = "300s"


@pytest.fixture
def long_lived_cluster(tmp_path):
    """A real scheduler and two single-threaded worker processes on 127.0.0.1, started as an
    operator starts them, for this test alone; its address."""
    scheduler_file = tmp_path / "scheduler.json"
    # A loaded test machine can starve the scheduler's event loop for longer than the default
    # 30 s TCP timeout; an operator's cluster would not be this busy.
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__TCP": TCP_TIMEOUT}
    procs = [
        subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert scheduler_file.exists(), "the dask scheduler did not start"
        procs.append(
            subprocess.Popen(
                [DASK, "worker", "--scheduler-file", str(scheduler_file), "--nworkers", "2",
                 "--nthreads", "1", "--no-dashboard"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )
        address = json.loads(scheduler_file.read_text())["address"]
        import dask
        from distributed import Client

        with dask.config.set({"distributed.comm.timeouts.tcp": TCP_TIMEOUT}):
            with Client(address, timeout=60) as client:
                client.wait_for_workers(2, timeout=120)
                pids = set(client.run(os.getpid).values())
            yield address, pids
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _rows(url: str, sql: str, **params) -> list:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), params).all()
    engine.dispose()
    return rows


def test_after_a_purge_no_worker_uses_the_erased_persons_values(
    long_lived_cluster, demo_home, tmp_path
):
    from datetime import UTC, datetime

    from prefect_dask import DaskTaskRunner

    from flows.deletion import process_deletions
    from flows.nightly import nightly_governance
    from governance.deletion.requests import due_date, load_or_create_salt, subject_hash
    from governance.demo import record_first_deployment
    from governance.recourse.costs import PercentileShiftCost
    from governance.registry.model_registry import ModelRegistry
    from governance.store import deletions, init_store, session_factory

    address, pids = long_lived_cluster
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    record_first_deployment(url, "credit-default", "v1")
    reg = ModelRegistry(home / "registry")
    schema = reg.manifest("credit-default", "v1").schema
    train = reg.training_frame("credit-default", "v1")
    # The person with the highest income: their income is the top knot of v1's percentile
    # cost (a quantile grid keeps the minimum and maximum exactly).
    top = train.loc[train[FEATURE].idxmax()]
    assert (train[FEATURE] == top[FEATURE]).sum() == 1
    subject, erased_value = str(top["subject_id"]), float(top[FEATURE])
    fitted_before = PercentileShiftCost.fit(train, schema)
    assert fitted_before.knots[FEATURE][0][-1] == erased_value

    runner = DaskTaskRunner(address=address)
    night = nightly_governance.with_options(task_runner=runner)
    settings = {"chunk_rows": 300, "n_samples": 100, "stability": False}  # small: seconds
    first = night(night=DEMO_NIGHT, home=str(home), db=url, **settings)
    first_run = first["run_id"]

    def cost_models_of(run_id: int) -> set[str]:
        return {
            r[0]
            for r in _rows(
                url,
                "SELECT DISTINCT c.sha256 FROM issued_recourse i JOIN cost_models c "
                "ON c.id = i.cost_model_id WHERE i.run_id = :r",
                r=run_id,
            )
        }

    assert cost_models_of(first_run) == {fitted_before.sha256}

    received = datetime.now(UTC)
    salt = load_or_create_salt(home / "secrets" / "tombstone.salt")
    with session_factory(init_store(url)).begin() as session:
        request_id, _ = deletions.record_deletion_request(
            session, subject, subject_hash(subject, salt), received_at=received,
            due_at=due_date(received), reason="test",
        )
    process_deletions.with_options(task_runner=runner)(
        request_ids=[request_id], home=str(home), db=url, check=False
    )
    purged = reg.training_frame("credit-default", "v1")
    assert subject not in set(purged["subject_id"])
    fitted_after = PercentileShiftCost.fit(purged, schema)
    assert erased_value not in set(fitted_after.knots[FEATURE][0])

    second = night(night=DEMO_NIGHT, home=str(home), db=url, force=True, **settings)
    assert second["run_id"] == first_run  # the same night, recomputed on the same workers
    from distributed import Client

    with Client(address, timeout=60) as client:
        assert set(client.run(os.getpid).values()) == pids  # no worker was restarted
    # Every recourse of the rerun was costed by the percentile cost refitted on the purged
    # data (the sha256 pins its knots; the ledger keeps no knots), none by the cached one.
    used = cost_models_of(first_run)
    assert used == {fitted_after.sha256}, "a worker kept the cost fitted on the erased rows"
