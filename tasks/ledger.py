"""Tasks that open and close a run in the ledger, holding the run's lock in between."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from governance.exceptions import GovernanceError
from governance.store import locks, writes
from governance.store.locks import RunLock, run_lock_key
from tasks import worker


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a failed open only for errors that may pass (a busy or restarting database), not
    for a refusal the core raised on purpose (another process holds the lock)."""
    return not isinstance(getattr(state, "data", None), GovernanceError)


@task(
    name="open-run",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=_transient,
)
def open_run(
    db_url: str,
    kind: str,
    night: date | None,
    model: str | None,
    parameters: Mapping[str, Any],
    *,
    force: bool = False,
    extra_key: str = "",
    wait_seconds: float = 0.0,
) -> dict[str, Any]:
    """Take the run's lock, open the run for this night (or reopen it on a rerun), and return
    its id and finished chunks. The lock is held until :func:`close_run`.

    Raises
    ------
    RunInProgress
        If another process holds the lock after ``wait_seconds``; nothing is written.
    """
    key = writes.run_key(kind, night, model, extra_key)
    lock = RunLock(worker.engine(db_url), run_lock_key(kind, night, model, extra_key), key)
    lock.acquire(wait_seconds=wait_seconds)
    try:
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
            opened = {"run_id": run.id, "run_key": key, "attempt": run.attempts, "done": done}
    except BaseException:
        lock.release()
        raise
    lock.describe(f"run {opened['run_id']} ({key})")
    # close_run gives it back; both run in the flow's own process (a task called in a flow body
    # runs there, not on a worker).
    locks.keep(opened["run_id"], lock)
    return opened


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
    """Record how the run ended and give its lock back."""
    try:
        with worker.sessions(db_url).begin() as session:
            writes.finish_run(
                session, run_id, status, counts=counts, timings=timings, error=error
            )
    finally:
        locks.release_kept(run_id)
