"""Where flows run: one Prefect API for the process and its Dask workers, and the task runner."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from prefect_dask import DaskTaskRunner

from governance.config import dask_address

DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))


@contextmanager
def prefect_api() -> Iterator[str]:
    """Use $PREFECT_API_URL if set; otherwise start one local Prefect server for this process.

    Dask workers inherit the URL, so they report to the same server instead of each starting
    their own (Prefect's implicit ephemeral mode would start one per worker process).
    """
    url = os.environ.get("PREFECT_API_URL")
    if url:
        yield url
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = SubprocessASGIServer()
    server.start()
    try:
        os.environ["PREFECT_API_URL"] = server.api_url
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url
            finally:
                drain_to_api()
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def drain_to_api(timeout: float = 10.0) -> None:
    """Send the logs and events still queued to the API, before a temporary server stops.

    Prefect ships them from background workers; left queued, they are sent at interpreter
    exit to a server that is gone, and each attempt prints "Error logging to API" on stderr.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=timeout)
        except Exception:  # noqa: BLE001 - best effort: a failed flush must not hide the result
            continue


def task_runner(address: str | None = None, n_workers: int | None = None) -> DaskTaskRunner:
    """A DaskTaskRunner on an existing scheduler (``address`` or $GOVERNANCE_DASK_ADDRESS), else
    on a local cluster of single-threaded worker processes."""
    address = dask_address(address)
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": n_workers or DEFAULT_WORKERS,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": ":0",
        }
    )


def same_cluster() -> DaskTaskRunner:
    """A task runner on the Dask cluster of the flow now running, for a subflow.

    A subflow would otherwise start a cluster of its own.
    """
    from prefect.context import get_run_context

    runner = getattr(get_run_context(), "task_runner", None)
    client = getattr(runner, "_client", None)
    if client is not None:
        return DaskTaskRunner(address=client.scheduler.address)
    return task_runner()


@contextmanager
def cluster(address: str | None = None, n_workers: int | None = None) -> Iterator[str]:
    """An existing scheduler's address, or a local cluster kept up for several flow runs.

    Runs that share it also share each worker's loaded models, explainers and engines.
    """
    address = dask_address(address)
    if address:
        yield address
        return
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=n_workers or DEFAULT_WORKERS,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
    ) as local:
        yield local.scheduler_address
