"""The nightly governance run: source -> validate -> chunk -> explain -> store -> summary."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger

from flows.runtime import task_runner
from governance import config
from governance.explain.metrics import recourse_metrics
from governance.store import init_store
from governance.store.engine import safe_url
from tasks.explain import explain_chunk
from tasks.ledger import close_run, error_line, open_run
from tasks.pull import source_for
from tasks.staging import stage_night, staged_file

DEFAULT_CHUNK_ROWS = 5_000


def _sum(dicts: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


@flow(name="nightly-governance", task_runner=task_runner(), log_prints=True)
def nightly_governance(
    night: date | None = None,
    model: str | None = None,
    home: str | None = None,
    db: str | None = None,
    log: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    force: bool = False,
    recourse: bool = True,
    n_samples: int = 500,
    max_points: int | None = None,
    stability: bool = True,
    robust_tau: float | None = None,
    deletions: bool = True,
) -> dict[str, Any]:
    """Explain one night of automated decisions and record them in the ledger.

    1. Open (or reopen) the run for (night, model) in the ledger.
    2. Pull the night's decision log from its source.
    3. Validate it against each referenced model version; quarantine failing rows.
    4. Chunk the valid rows; a rerun skips chunks already committed.
    5. On the Dask cluster, explain each chunk and store its rows in one transaction.
    6. Close the run with counts and timings, and return the summary.

    Parameters
    ----------
    night : date, optional
        UTC decision date to process; default yesterday (UTC), which is what the nightly
        schedule wants.
    model : str, optional
        Only this model's decisions; default all models in the log.
    home : str, optional
        Data folder (registry, logs, default SQLite store); default $GOVERNANCE_HOME.
    db : str, optional
        Store URL. Prefer $GOVERNANCE_DB_URL for URLs with passwords: flow parameters are
        recorded by Prefect.
    log : str, optional
        Decision-log folder, or ``table:<name>`` for a SQL table; default the data folder's log.
    chunk_rows : int, default=5000
    force : bool, default=False
        Recompute chunks already committed.
    recourse : bool, default=True
        Score responsiveness, verify recourse and issue minimal-cost recourse for every denied
        decision of a model version that has an action set.
    n_samples : int, default=500
        Draws per continuous feature for sampled responsiveness scores.
    max_points : int, optional
        Candidate points per person for the recourse search; default the library's.
    stability : bool, default=True
        Store each issued recourse's stability R (Hamman et al.; k = 1000, sigma = 0.05).
    robust_tau : float, optional
        Recommend the cheapest action with R >= robust_tau (e.g. 0.75) instead of the
        minimal-cost one, which is kept as the alternative.
    deletions : bool, default=True
        Afterwards, carry out the deletion requests recorded with ``govern forget --defer``.
    """
    t0 = time.perf_counter()
    logger = get_run_logger()
    night = night or (datetime.now(UTC).date() - timedelta(days=1))
    db_url = config.db_url(db, home)
    registry = str(config.registry_dir(home))
    log = log or str(config.decision_log_dir(home))
    init_store(db_url)
    parameters = {
        "night": night.isoformat(),
        "model": model,
        "log": source_for(log, db_url).describe(),
        "db": safe_url(db_url),
        "chunk_rows": chunk_rows,
        "force": force,
        "recourse": recourse,
        "n_samples": n_samples,
        "max_points": max_points,
        "seed": 0,
        "stability": stability,
        "robust_tau": robust_tau,
    }
    options = {
        k: parameters[k]
        for k in ("recourse", "n_samples", "max_points", "seed", "stability", "robust_tau")
    }
    opened = open_run(db_url, "nightly", night, model, parameters, force=force)
    run_id = opened["run_id"]
    timings: dict[str, float] = {}
    staged = staged_file(config.staging_dir(home), night, run_id)
    try:
        # One task pulls, validates and stages the night on a worker; the chunk tasks read
        # their own rows from the staged file. Only counts and key ranges pass through here.
        intake = stage_night(
            log, db_url, night, model, registry, run_id, chunk_rows, opened["done"],
            str(config.staging_dir(home)),
        )
        timings["pull"], timings["validate"] = intake["pull_seconds"], intake["validate_seconds"]
        todo, skipped = intake["todo"], intake["skipped"]
        logger.info(
            "%s: %d rows, %d quarantined, %d chunks to explain (%d already done)",
            night,
            intake["pulled"],
            intake["quarantined_rows"],
            len(todo),
            skipped,
        )
        t_fan = time.perf_counter()
        futures = explain_chunk.map(
            [c["staged"] for c in todo],
            [c["chunk_no"] for c in todo],
            [c["sha"] for c in todo],
            [c["ref"] for c in todo],
            [c["model_version_id"] for c in todo],
            [run_id] * len(todo),
            [db_url] * len(todo),
            [options] * len(todo),
        )
        results = [f.result() for f in futures]
        timings["fanout_wall"] = time.perf_counter() - t_fan
        timings.update(_sum([r["seconds"] for r in results]))
        timings["wall"] = time.perf_counter() - t0
        this_attempt = _sum([r["counts"] for r in results])
        totals = close_totals(db_url, run_id)
        counts = {
            "pulled": intake["pulled"],
            "quarantined": intake["quarantined_rows"],
            "erased_rows_skipped": intake["erased_rows_skipped"],
            "valid": intake["valid"],
            "chunks": len(todo) + skipped,
            "chunks_skipped": skipped,
            **totals,
            "metrics": recourse_metrics(totals),
            "checks": intake["checks"],
        }
        close_run(db_url, run_id, "succeeded", counts, timings)
        if deletions:
            counts["deletions"] = _deferred_deletions(home, db)
        return {
            "run_id": run_id,
            "run_key": opened["run_key"],
            "night": night.isoformat(),
            "counts": counts,
            "timings": timings,
            "this_attempt": this_attempt,
        }
    except BaseException as exc:
        timings["wall"] = time.perf_counter() - t0
        message = error_line(exc)
        close_run(db_url, run_id, "failed", {}, timings, error=message)
        raise
    finally:
        staged.unlink(missing_ok=True)  # the staged rows hold personal data: never keep them


def close_totals(db_url: str, run_id: int) -> dict[str, int]:
    """Counts summed over every committed chunk of the run, this attempt's and earlier ones."""
    from governance.store.queries import chunk_totals
    from tasks import worker

    with worker.sessions(db_url)() as session:
        return chunk_totals(session, run_id)


def _deferred_deletions(home: str | None, db: str | None) -> dict[str, Any]:
    """Carry out open deletion requests as a subflow on the same cluster, if there are any."""
    from flows.deletion import process_deletions
    from flows.runtime import same_cluster
    from governance.store.deletions import pending_requests
    from tasks import worker

    with worker.sessions(config.db_url(db, home))() as session:
        pending = pending_requests(session)
    if not pending:
        return {"requests": 0}
    result = process_deletions.with_options(task_runner=same_cluster())(home=home, db=db)
    return {"requests": len(result.get("requests", [])), "run_id": result.get("run_id")}


if __name__ == "__main__":
    import sys

    from flows.runtime import prefect_api

    with prefect_api():
        print(nightly_governance(date.fromisoformat(sys.argv[1])))
