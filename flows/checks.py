"""Steps shared by the redeploy and deletion checks: re-validate issued recourse under a new
version, and re-examine recent denials under it. Plain functions called inside a flow; the
work itself runs as tasks on the flow's Dask cluster, each task reading its own key range of
the ledger (only the ranges travel through the scheduler, never rows)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from governance.retraining.revalidation import ValidityTally
from tasks.redeploy import compare_slice, revalidate_slice, score_points_chunk
from tasks.worker import ModelRef

Slices = list[tuple[Any, Any]]


def revalidate_issued(
    slices: Slices,
    window: dict[str, Any],
    ref: ModelRef,
    model_version_id: int,
    run_id: int,
    db_url: str,
    *,
    variants: list[Any] | None = None,
    segment: str | None = None,
) -> tuple[ValidityTally, dict[str, float]]:
    """One validity event per open recourse in ``slices`` (recourse_id ranges of the recourse
    ``window`` selects: ``model``, ``since``, optionally ``exclude_decisions``) under ``ref``.

    Returns the tally over every slice, in recourse_id order, and the worker-seconds of each
    step summed over the slices.
    """
    n = len(slices)
    futures = revalidate_slice.map(
        slices,
        [window] * n,
        [ref] * n,
        [model_version_id] * n,
        [run_id] * n,
        [db_url] * n,
        [variants] * n,
        [segment] * n,
    )
    tally, seconds = ValidityTally(), {}
    for f in futures:  # slices come back in key order
        part = f.result()
        tally = tally + part["tally"]
        for k, v in part["seconds"].items():
            seconds[k] = seconds.get(k, 0.0) + v
    return tally, seconds


def score_issued(
    issued: pd.DataFrame,
    ref: ModelRef,
    db_url: str,
    *,
    estimator: Any = None,
    chunk_rows: int = 100_000,
) -> pd.DataFrame:
    """Whether ``ref`` (or ``estimator`` on its schema) approves each issued recourse point,
    recording nothing; recourse_id, score and valid, in ``issued``'s order."""
    cols = ["recourse_id", "x_codes", "layout_sha256"]
    parts = [
        issued.iloc[i : i + chunk_rows][cols].reset_index(drop=True)
        for i in range(0, len(issued), chunk_rows)
    ]
    n = len(parts)
    futures = score_points_chunk.map(parts, [ref] * n, [db_url] * n, [estimator] * n)
    results = [f.result() for f in futures]
    if not results:
        return pd.DataFrame(columns=["recourse_id", "score", "valid"])
    return pd.concat(results, ignore_index=True)


def compare_denied(
    slices: Slices,
    window: dict[str, Any],
    ref: ModelRef,
    model_version_id: int,
    run_id: int,
    db_url: str,
    *,
    options: dict[str, Any],
) -> dict[str, int]:
    """What ``ref`` would tell the recently denied applicants in ``slices`` (decision-id ranges
    of the denials ``window`` selects); returns summed change counts."""
    n = len(slices)
    futures = compare_slice.map(
        slices, [window] * n, [ref] * n, [model_version_id] * n, [run_id] * n, [db_url] * n,
        [options] * n,
    )
    totals: dict[str, int] = {}
    for f in futures:
        for k, v in f.result()["counts"].items():
            totals[k] = totals.get(k, 0) + v
    return totals
