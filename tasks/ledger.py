"""Tasks that open and close a run in the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from governance.store import writes
from tasks import worker


@task(name="open-run", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def open_run(
    db_url: str,
    kind: str,
    night: date | None,
    model: str | None,
    parameters: Mapping[str, Any],
    *,
    force: bool = False,
    extra_key: str = "",
) -> dict[str, Any]:
    """Open the run for this night (or reopen it on a rerun); return its id and finished chunks."""
    key = writes.run_key(kind, night, model, extra_key)
    with worker.sessions(db_url).begin() as session:
        run = writes.start_run(
            session,
            key,
            kind,
            night=night,
            model_name=model,
            parameters=parameters,
            flow_run_id=str(flow_run.get_id() or "") or None,
        )
        if force:
            writes.reset_chunks(session, run.id)
        done = writes.done_chunks(session, run.id)
        return {"run_id": run.id, "run_key": key, "attempt": run.attempts, "done": done}


def error_line(exc: BaseException) -> str:
    """A failure as the ledger records it: exception type and first line, at most 500
    characters (tracebacks stay in the logs)."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]


@task(name="close-run", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def close_run(
    db_url: str,
    run_id: int,
    status: str,
    counts: Mapping[str, Any],
    timings: Mapping[str, Any],
    error: str | None = None,
) -> None:
    with worker.sessions(db_url).begin() as session:
        writes.finish_run(session, run_id, status, counts=counts, timings=timings, error=error)
