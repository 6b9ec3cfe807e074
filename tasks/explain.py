"""Explain one chunk of decisions and write its rows to the ledger in one transaction."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.orm import Session

from governance.chunk import RecourseSetup, drop_decisions
from governance.chunk import explain_chunk as explain_rows
from governance.store import writes
from tasks import worker
from tasks.staging import StagedChunk, read_chunk
from tasks.worker import ModelRef

RECOURSE_OPTIONS = (
    "n_samples",
    "seed",
    "max_points",
    "stability_k",
    "stability_sigma",
    "robust_tau",
)


def recourse_setup(
    session: Session, ref: ModelRef, model_version_id: int, options: dict[str, Any]
) -> RecourseSetup | None:
    """The version's action set, cost and settings for the recourse stages, with their ledger
    ids; None when ``options["recourse"]`` is off or the version has no action set."""
    inputs = worker.recourse_inputs(ref) if options.get("recourse", True) else None
    if inputs is None:
        return None
    action_set, cost, scale = inputs
    return RecourseSetup(
        action_set,
        cost,
        action_set_id=writes.ensure_action_set(
            session, model_version_id, action_set.to_dict(), action_set.sha256
        ),
        cost_model_id=writes.ensure_cost_model(session, cost.kind, cost.to_dict(), cost.sha256),
        scale=scale if options.get("stability", True) else None,
        **{k: options[k] for k in RECOURSE_OPTIONS if options.get(k) is not None},
    )


@task(name="explain-chunk", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def explain_chunk(
    chunk: pd.DataFrame | StagedChunk,
    chunk_no: int,
    chunk_sha256: str,
    ref: ModelRef,
    model_version_id: int,
    run_id: int,
    db_url: str,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Attributions, reasons, responsiveness and recourse for ``chunk``, written to the ledger.

    ``options``: ``recourse`` and ``stability`` (bools, default True) and the settings
    ``n_samples``, ``seed``, ``max_points``, ``stability_k``, ``stability_sigma`` and
    ``robust_tau``. Safe to retry and to rerun: the chunk's rows are replaced as a
    whole, and the chunk is recorded as done in the same transaction. ``chunk`` is the rows,
    or where they are staged (the task then reads them itself).
    """
    options = options or {}
    t0 = time.perf_counter()
    if isinstance(chunk, StagedChunk):
        chunk = read_chunk(chunk)
    model = worker.model(ref)
    explainer = worker.explainer(ref)
    sessions = worker.sessions(db_url)
    with sessions.begin() as session:
        explainer_id = writes.ensure_explainer(
            session, model_version_id, explainer.config.to_dict()
        )
        setup = recourse_setup(session, ref, model_version_id, options)
    t_load = time.perf_counter() - t0
    result = explain_rows(
        chunk,
        model,
        explainer,
        model_version_id=model_version_id,
        explainer_id=explainer_id,
        run_id=run_id,
        recourse=setup,
    )
    t1 = time.perf_counter()
    # Bound before the transaction: SQLite's single writer lock is held only for the writes.
    prepared = writes.prepare_frames(result.frames, worker.engine(db_url).dialect)
    with sessions.begin() as session:
        # Subjects erased since this chunk was pulled must not come back with it.
        writes.erasure_guard(session)
        decisions = result.frames["decisions"]
        erased = writes.erased_subjects(
            session, decisions["subject_id"].unique().tolist(), worker.salt_for(ref.registry)
        )
        gone = set(decisions.loc[decisions["subject_id"].isin(erased), "decision_id"])
        frames = drop_decisions(result.frames, gone) if gone else prepared
        writes.replace_rows(
            session,
            frames,
            decision_ids=[d for d in decisions["decision_id"].tolist() if d not in gone],
            model_version_id=model_version_id,
        )
        writes.record_chunk(
            session,
            run_id,
            chunk_no,
            chunk_sha256,
            len(chunk),
            result.counts,
            time.perf_counter() - t0,
        )
    seconds = {**result.seconds, "store": time.perf_counter() - t1, "load": t_load}
    return {"chunk_no": chunk_no, "counts": result.counts, "seconds": seconds}
