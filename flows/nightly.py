"""The nightly governance run: source -> validate -> chunk -> explain -> store -> summary."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger

from flows.runtime import task_runner
from governance import config
from governance.explain.metrics import recourse_metrics
from governance.explain.quality import quality_metrics
from governance.provenance import result_settings
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
    columns: dict[str, str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    force: bool = False,
    recourse: bool = True,
    n_samples: int = 500,
    max_points: int | None = None,
    semantics: str = "paper",
    stability: bool = True,
    robust_tau: float | None = None,
    deletions: bool = True,
    score_mismatch: str = "flag",
    faithfulness: bool = True,
    stability_sample: int | str | None = None,
    agreement_sample: int | None = None,
    wait: float = 0.0,
) -> dict[str, Any]:
    """Explain one night of automated decisions and record them in the ledger.

    1. Open (or reopen) the night's run in the ledger: one run per night, however the
       command was spelled (``model`` limits the work, not the run).
    2. Pull the night's decision log from its source.
    3. Validate it against each referenced model version; quarantine failing rows.
    4. Chunk the valid rows; a rerun skips chunks already committed from the same rows under
       the same settings and code, and recomputes the others.
    5. On the Dask cluster, explain each chunk and store its rows, with their provenance, in
       one transaction.
    6. Close the run with counts and timings, and return the summary. A night whose log
       holds no rows closes as ``empty``, not ``succeeded``.

    Parameters
    ----------
    night : date, optional
        UTC decision date to process; default yesterday (UTC), which is what the nightly
        schedule wants.
    model : str, optional
        Explain only this model's decisions; default all models in the log. The whole night
        is still validated (its quarantine is the night's, whatever the filter) and the run
        is the night's.
    home : str, optional
        Data folder (registry, logs, default SQLite store); default $GOVERNANCE_HOME.
    db : str, optional
        Store URL. Prefer $GOVERNANCE_DB_URL for URLs with passwords: flow parameters are
        recorded by Prefect.
    log : str, optional
        Decision-log folder or file (``parquet:<path>``, ``csv:<path>``; a bare folder is
        Parquet), or ``table:<name>`` for a SQL table; default the data folder's log.
    columns : dict, optional
        Our column name -> the log's, for a log that names its columns its own way.
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
    semantics : {"paper", "release"}, default="paper"
        Responsiveness under the paper's single-feature search (its early stop when changing
        the feature alone is feasible) or reachml 0.2.0a1's search as released.
    stability : bool, default=True
        Store each issued recourse's stability R (Hamman et al.; k = 1000, sigma = 0.05).
    robust_tau : float, optional
        Recommend the cheapest action with R >= robust_tau (e.g. 0.75) instead of the
        minimal-cost one, which is kept as the alternative.
    deletions : bool, default=True
        Afterwards, carry out the deletion requests recorded with ``govern forget --defer``.
    score_mismatch : {"flag", "quarantine", "fail"}, default="flag"
        Logged decisions the registered model does not reproduce (the log names another
        model): ``flag`` explains them but keeps them out of every count but
        ``score_mismatch`` and issues them no recourse; ``quarantine`` quarantines them;
        ``fail`` fails the run before anything is explained.
    faithfulness : bool, default=True
        Store PGI and PGU of every denial's reasons (OpenXAI's prediction gaps, 100 seeded
        perturbations each, and under background replacement) with a random control.
    stability_sample : int or "all", optional
        Denials in the seeded daily sample whose explanations get RIS and ROS ("all": every
        denial; 0: none); default $GOVERNANCE_STABILITY_SAMPLE, else 1,000. Models explained
        by the permutation explainer use at most 20.
    agreement_sample : int, optional
        Denials of the same sample explained again by the permutation explainer, to store
        the agreement of the two (0: none); default $GOVERNANCE_AGREEMENT_SAMPLE, else 100.
    wait : float, default=0
        Seconds to wait for another process running the same night to finish; after them,
        the run is refused with RunInProgress naming that process.
    """
    t0 = time.perf_counter()
    logger = get_run_logger()
    night = night or (datetime.now(UTC).date() - timedelta(days=1))
    db_url = config.db_url(db, home)
    registry = str(config.registry_dir(home))
    log = log or str(config.decision_log_dir(home))
    init_store(db_url)
    stability_sample = config.stability_sample(stability_sample)
    agreement_sample = config.agreement_sample(agreement_sample)
    options = {
        "recourse": recourse,
        "n_samples": n_samples,
        "max_points": max_points,
        "semantics": semantics,
        "seed": 0,
        "stability": stability,
        "robust_tau": robust_tau,
        "score_mismatch": score_mismatch,
        "faithfulness": faithfulness,
        "stability_sample": "all" if stability_sample is None else stability_sample,
        "agreement_sample": agreement_sample,
    }
    result_settings(options)  # a bad setting fails here, before the run is opened
    parameters = {
        "night": night.isoformat(),
        "model": model,
        "log": source_for(log, db_url, columns).describe(),
        "columns": columns or {},
        "db": safe_url(db_url),
        "chunk_rows": chunk_rows,
        "force": force,
        "recourse": recourse,
        "n_samples": n_samples,
        "max_points": max_points,
        "semantics": semantics,
        "seed": 0,
        "stability": stability,
        "robust_tau": robust_tau,
        "score_mismatch": score_mismatch,
        "faithfulness": faithfulness,
        "stability_sample": "all" if stability_sample is None else stability_sample,
        "agreement_sample": agreement_sample,
    }
    opened = open_run(
        db_url, "nightly", night, None, parameters, force=force, wait_seconds=wait
    )
    run_id = opened["run_id"]
    timings: dict[str, float] = {}
    staged = staged_file(config.staging_dir(home), night, run_id)
    try:
        # One task pulls, validates and stages the night on a worker; the chunk tasks read
        # their own rows from the staged file. Only counts, settings and key ranges pass
        # through here.
        intake = stage_night(
            log, db_url, night, model, registry, run_id, chunk_rows, opened["done"],
            str(config.staging_dir(home)), options, columns, stability_sample, agreement_sample,
        )  # fmt: skip
        timings["pull"], timings["validate"] = intake["pull_seconds"], intake["validate_seconds"]
        todo, tally = intake["todo"], intake["tally"]
        logger.info(
            "%s: %d rows, %d quarantined, %d chunks to explain (%d already done, %d of other "
            "models)",
            night,
            intake["pulled"],
            intake["quarantined_rows"],
            len(todo),
            tally["skipped"],
            tally["not_selected"],
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
            [c["options"] for c in todo],
        )
        results = [f.result() for f in futures]
        timings["fanout_wall"] = time.perf_counter() - t_fan
        timings.update(_sum([r["seconds"] for r in results]))
        timings["wall"] = time.perf_counter() - t0
        this_attempt = _sum([r["counts"] for r in results])
        totals = close_totals(db_url, run_id, tally["chunks"])
        counts = {
            "pulled": intake["pulled"],
            "quarantined": intake["quarantined_rows"],
            "score_mismatch_quarantined": intake["score_mismatch_quarantined"],
            "erased_rows_skipped": intake["erased_rows_skipped"],
            "valid": intake["valid"],
            "chunks": tally["chunks"],
            "chunks_skipped": tally["skipped"],
            "chunks_not_selected": tally["not_selected"],
            "score_mismatch": 0,
            **totals,
            "metrics": {**recourse_metrics(totals), **quality_metrics(totals)},
            "checks": intake["checks"],
            "out_of_range_rows": intake["out_of_range_rows"],
            "out_of_range": intake["flags"],
        }
        status = "succeeded" if intake["pulled"] else "empty"
        if status == "empty":
            logger.warning("%s: the decision log holds no rows for this night", night)
        close_run(db_url, run_id, status, counts, timings)
        if deletions:
            counts["deletions"] = _deferred_deletions(home, db)
        return {
            "run_id": run_id,
            "run_key": opened["run_key"],
            "night": night.isoformat(),
            "status": status,
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


def close_totals(db_url: str, run_id: int, n_chunks: int) -> dict[str, int]:
    """Counts summed over every committed chunk of the run, this attempt's and earlier ones,
    after forgetting chunks numbered past the night's ``n_chunks`` (the night shrank)."""
    from governance.store.queries import chunk_totals
    from governance.store.writes import forget_chunks_from
    from tasks import worker

    with worker.sessions(db_url).begin() as session:
        forget_chunks_from(session, run_id, n_chunks)
        return chunk_totals(session, run_id)


def _deferred_deletions(home: str | None, db: str | None) -> dict[str, Any]:
    """Carry out open deletion requests as a subflow on the same cluster, if there are any;
    every night, purge erased applicants' notices whose legal retention has ended."""
    from datetime import UTC, datetime

    from flows.deletion import process_deletions
    from flows.runtime import same_cluster
    from governance.store.deletions import pending_requests
    from governance.store.notices import purge_expired_notices
    from tasks import worker

    sessions = worker.sessions(config.db_url(db, home))
    with sessions.begin() as session:
        expired = purge_expired_notices(session, datetime.now(UTC))
    with sessions() as session:
        pending = pending_requests(session)
    if not pending:
        return {"requests": 0, "notices_purged": expired} if expired else {"requests": 0}
    result = process_deletions.with_options(task_runner=same_cluster())(home=home, db=db)
    return {"requests": len(result.get("requests", [])), "run_id": result.get("run_id")}


if __name__ == "__main__":
    import sys

    from flows.runtime import prefect_api

    with prefect_api():
        print(nightly_governance(date.fromisoformat(sys.argv[1])))
