"""Steps shared by the redeploy and deletion checks: re-validate issued recourse under a new
version, and re-examine recent denials under it. Plain functions called inside a flow; the
work itself runs as tasks on the flow's Dask cluster."""

from __future__ import annotations

from typing import Any

import pandas as pd

from tasks.redeploy import compare_chunk, revalidate_chunk, score_points_chunk
from tasks.worker import ModelRef

CHECKED_COLUMNS = ["recourse_id", "valid", "score", "forward_validity", "alternative_valid"]


def expand_json(frame: pd.DataFrame, column: str, names: list[str]) -> pd.DataFrame:
    """Feature columns from a JSON column of dicts, keyed by recourse_id."""
    values = pd.DataFrame(list(frame[column]), index=frame.index)
    return pd.concat([frame[["recourse_id"]], values.reindex(columns=names)], axis=1)


def revalidate_issued(
    issued: pd.DataFrame,
    ref: ModelRef,
    model_version_id: int,
    run_id: int,
    db_url: str,
    *,
    variants: list[Any] | None = None,
    segment: str | None = None,
    chunk_rows: int = 100_000,
) -> pd.DataFrame:
    """One validity event per issued recourse under ``ref``; returns the checked rows."""
    cols = ["recourse_id", "x_codes", "layout_sha256", "has_alternative"]
    parts = [
        issued.iloc[i : i + chunk_rows][cols].reset_index(drop=True)
        for i in range(0, len(issued), chunk_rows)
    ]
    n = len(parts)
    futures = revalidate_chunk.map(
        parts,
        [ref] * n,
        [model_version_id] * n,
        [run_id] * n,
        [db_url] * n,
        [variants] * n,
        [segment] * n,
    )
    results = [f.result() for f in futures]
    if not results:
        return pd.DataFrame(columns=CHECKED_COLUMNS)
    return pd.concat(results, ignore_index=True)


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
    denied: pd.DataFrame,
    ref: ModelRef,
    model_version_id: int,
    run_id: int,
    db_url: str,
    names: list[str],
    *,
    options: dict[str, Any],
    chunk_rows: int = 2_000,
) -> dict[str, int]:
    """What ``ref`` would tell recently denied applicants; returns summed change counts."""
    chunks = []
    if len(denied):
        feats = pd.DataFrame(list(denied["features"]))
        frame = pd.concat(
            [denied.drop(columns="features").reset_index(drop=True), feats.reindex(columns=names)],
            axis=1,
        )
        chunks = [
            frame.iloc[i : i + chunk_rows].reset_index(drop=True)
            for i in range(0, len(frame), chunk_rows)
        ]
    n = len(chunks)
    futures = compare_chunk.map(
        chunks, [ref] * n, [model_version_id] * n, [run_id] * n, [db_url] * n, [options] * n
    )
    totals: dict[str, int] = {}
    for f in futures:
        for k, v in f.result()["counts"].items():
            totals[k] = totals.get(k, 0) + v
    return totals
