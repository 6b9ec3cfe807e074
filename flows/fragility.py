"""Worst-case fragility of issued recourse to training-data deletions, ahead of any request."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
from prefect import flow

from flows.runtime import task_runner
from governance import config
from governance.deletion.fragility_search import resolve_method
from governance.registry.model_registry import ModelRegistry
from governance.store import init_store, writes
from governance.store.engine import safe_url
from governance.store.queries import issued_under
from tasks import worker
from tasks.deletion import fragility_chunk
from tasks.ledger import close_run, error_line, open_run
from tasks.worker import ModelRef


def _points(issued: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """recourse_id and the promised point's features, from the stored x_after dicts."""
    values = pd.DataFrame(list(issued["x_after"]), index=issued.index).reindex(columns=names)
    return pd.concat([issued[["recourse_id"]], values], axis=1)


@flow(name="recourse-fragility", task_runner=task_runner(), log_prints=True)
def fragility_scan(
    model: str,
    version: str,
    home: str | None = None,
    db: str | None = None,
    budget: int = 5,
    method: str = "auto",
    limit: int | None = None,
    chunk_rows: int = 250,
    n_jobs: int | None = None,
) -> dict[str, Any]:
    """For each recourse issued under ``model`` ``version``: how few training deletions
    (k <= ``budget``) would invalidate it (:mod:`governance.deletion.fragility_search`).

    ``method="auto"`` is the influence-ranked greedy for logistic regression and the shared
    screen for other families. The greedy methods search per recourse, chunk by chunk; the
    screen takes every recourse in one task, retrains each deletion set once (``n_jobs``
    retrains at once, default the worker's cores) and scores all recourses under it. A
    screened k is the size of a tried deletion set whose exact retrain breaks the recourse;
    None there means only that no tried set broke it.

    1. Open the run; 2. load the recourse issued under the version; 3. search on the Dask
    cluster and store k (None: not broken within K) per recourse; 4. summarise.
    """
    t0 = time.perf_counter()
    db_url = config.db_url(db, home)
    registry = ModelRegistry(config.registry_dir(home))
    manifest = registry.manifest(model, version)
    init_store(db_url)
    parameters = {
        "model": model,
        "version": version,
        "db": safe_url(db_url),
        "budget": budget,
        "method": method,
        "limit": limit,
    }
    ref = ModelRef(str(registry.root), model, version, manifest.artifact_sha256)
    method = resolve_method(registry.load(model, version).estimator, method)
    parameters["method"] = method
    shared = method == "screen"  # one task sees every recourse, so each retrain serves all
    opened = open_run(db_url, "fragility", None, model, parameters, extra_key=version, force=True)
    run_id = opened["run_id"]
    try:
        with worker.sessions(db_url).begin() as session:
            mv_id = writes.ensure_model_version(session, manifest)
            issued = issued_under(session, mv_id, limit)
        points = _points(issued, manifest.schema.names) if len(issued) else issued
        step = max(len(points), 1) if shared else chunk_rows
        chunks = [
            points.iloc[i : i + step].reset_index(drop=True) for i in range(0, len(points), step)
        ]
        n = len(chunks)
        results = [
            f.result()
            for f in fragility_chunk.map(
                chunks,
                [ref] * n,
                [mv_id] * n,
                [run_id] * n,
                [db_url] * n,
                [budget] * n,
                [method] * n,
                [n_jobs] * n,
            )
        ]
        counts = pd.DataFrame(results).sum().to_dict() if results else {}
        counts = {
            "recourses": int(counts.get("recourses", 0)),
            "flippable": int(counts.get("flippable", 0)),
            "fragile": int(counts.get("fragile", 0)),
            "deletion_sets_retrained": int(counts.get("refits", 0)),
        }
        counts["fragile_share"] = (
            counts["fragile"] / counts["recourses"] if counts["recourses"] else 0.0
        )
        timings = {"wall": time.perf_counter() - t0}
        close_run(db_url, run_id, "succeeded", counts, timings)
        return {"run_id": run_id, "method": method, "counts": counts, "timings": timings}
    except BaseException as exc:
        close_run(
            db_url,
            run_id,
            "failed",
            {},
            {"wall": time.perf_counter() - t0},
            error=error_line(exc),
        )
        raise
