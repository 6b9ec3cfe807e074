"""Explain one chunk of decisions and write its rows to the ledger in one transaction."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from governance.chunk import explain_chunk as explain_rows
from governance.store import writes
from tasks import worker
from tasks.worker import ModelRef


@task(name="explain-chunk", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def explain_chunk(
    chunk: pd.DataFrame,
    chunk_no: int,
    chunk_sha256: str,
    ref: ModelRef,
    model_version_id: int,
    run_id: int,
    db_url: str,
) -> dict[str, Any]:
    """Compute attributions and reasons for ``chunk`` and replace its rows in the ledger.

    Safe to retry and to rerun: the chunk's rows are replaced as a whole, and the chunk is
    recorded as done in the same transaction.
    """
    t0 = time.perf_counter()
    model = worker.model(ref)
    explainer = worker.explainer(ref)
    sessions = worker.sessions(db_url)
    with sessions.begin() as session:
        explainer_id = writes.ensure_explainer(
            session, model_version_id, explainer.config.to_dict()
        )
    result = explain_rows(
        chunk,
        model,
        explainer,
        model_version_id=model_version_id,
        explainer_id=explainer_id,
        run_id=run_id,
    )
    t1 = time.perf_counter()
    with sessions.begin() as session:
        writes.replace_rows(
            session,
            result.frames,
            decision_ids=result.frames["decisions"]["decision_id"].tolist(),
        )
        seconds = {**result.seconds, "store": time.perf_counter() - t1}
        writes.record_chunk(
            session,
            run_id,
            chunk_no,
            chunk_sha256,
            len(chunk),
            result.counts,
            time.perf_counter() - t0,
        )
    seconds["store"] = time.perf_counter() - t1
    seconds["load"] = t1 - t0 - result.seconds["explain"]
    return {"chunk_no": chunk_no, "counts": result.counts, "seconds": seconds}
