"""Integration fixtures: one Prefect test server and one real Dask LocalCluster per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_backend(prefect_server):
    """Every flow of these tests reports to the session's Prefect test server."""
    return prefect_server


@pytest.fixture(scope="session")
def dask_cluster():
    """A real LocalCluster of two single-threaded worker processes, shared by the session."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    yield cluster
    cluster.close()


@pytest.fixture
def run_nightly(dask_cluster):
    """Run the real nightly flow on the shared cluster and return its summary."""
    from prefect_dask import DaskTaskRunner

    from flows.nightly import nightly_governance

    def run(night, home, db, **kwargs):
        flow = nightly_governance.with_options(
            task_runner=DaskTaskRunner(address=dask_cluster.scheduler_address)
        )
        return flow(night=night, home=str(home), db=db, **kwargs)

    return run
