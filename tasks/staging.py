"""A night's validated rows staged once as Parquet beside the registry, so each chunk task reads
its own decision-id range from shared storage and the flow hands out ranges, not rows.

The file is written by the task that validates the night (one row group per chunk, rows in
chunk order), read by the chunk tasks with a filter on model and decision id, and deleted
when the flow ends. Purges erase subjects from staged files as from the decision logs we own.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import task
from prefect.cache_policies import NO_CACHE

from governance.chunk import chunk_sha256
from governance.intake.decision_log import ID, MODEL_NAME, MODEL_VERSION, PARTITION
from tasks.worker import ModelRef


@dataclass(frozen=True)
class StagedChunk:
    """Where a chunk's rows are: a staged file and a decision-id range of one model version."""

    path: str
    model_name: str
    model_version: str
    first_id: str
    last_id: str
    rows: int


def staged_file(staging: str | Path, night: date, run_id: int) -> Path:
    """The staged file of a run's night: ``<staging>/night=<date>/run-<id>.parquet`` (the
    decision logs' layout, so the purge of owned logs covers it)."""
    return Path(staging) / f"{PARTITION}={night.isoformat()}" / f"run-{run_id}.parquet"


def plan_chunks(
    valid: pd.DataFrame,
    refs: dict[tuple[str, str], tuple[ModelRef, int]],
    chunk_rows: int,
    done: dict[int, str],
) -> tuple[list[dict[str, Any]], int]:
    """Split valid rows into fixed chunks per model version, in decision-id order.

    The split depends only on the rows, so a rerun produces the same chunks and skips those
    whose results are already committed (same number and same content hash).
    Returns the chunks still to do and the number skipped.
    """
    todo, skipped, chunk_no = [], 0, 0
    if valid.empty:
        return todo, skipped
    ordered = valid.sort_values([MODEL_NAME, MODEL_VERSION, ID], kind="stable")
    for (name, version), rows in ordered.groupby([MODEL_NAME, MODEL_VERSION], sort=True):
        ref, model_version_id = refs[(str(name), str(version))]
        for start in range(0, len(rows), chunk_rows):
            chunk = rows.iloc[start : start + chunk_rows].reset_index(drop=True)
            sha = chunk_sha256(chunk)
            if done.get(chunk_no) == sha:
                skipped += 1
            else:
                todo.append(
                    {
                        "chunk": chunk,
                        "chunk_no": chunk_no,
                        "sha": sha,
                        "ref": ref,
                        "model_version_id": model_version_id,
                    }
                )
            chunk_no += 1
    return todo, skipped


def stage_chunks(todo: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """Write the chunks' rows to ``path`` (atomically, one row group per chunk) and return the
    plan with each chunk's frame replaced by its :class:`StagedChunk`."""
    if not todo:
        return []
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(
        pd.concat([c["chunk"] for c in todo], ignore_index=True), preserve_index=False
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    os.close(fd)
    try:
        with pq.ParquetWriter(tmp, table.schema) as writer:
            offset = 0
            for c in todo:
                writer.write_table(table.slice(offset, len(c["chunk"])))
                offset += len(c["chunk"])
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    plan = []
    for c in todo:
        chunk = c["chunk"]
        staged = StagedChunk(
            str(path),
            str(chunk[MODEL_NAME].iloc[0]),
            str(chunk[MODEL_VERSION].iloc[0]),
            str(chunk[ID].iloc[0]),
            str(chunk[ID].iloc[-1]),
            len(chunk),
        )
        plan.append({k: v for k, v in c.items() if k != "chunk"} | {"staged": staged})
    return plan


def read_chunk(staged: StagedChunk) -> pd.DataFrame:
    """The chunk's rows from its staged file, in the order they were planned (rows of subjects
    erased since are no longer there)."""
    table = pq.read_table(
        staged.path,
        filters=[
            (MODEL_NAME, "==", staged.model_name),
            (MODEL_VERSION, "==", staged.model_version),
            (ID, ">=", staged.first_id),
            (ID, "<=", staged.last_id),
        ],
    )
    return table.to_pandas().reset_index(drop=True)


@task(name="stage-night", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def stage_night(
    log: str,
    db_url: str,
    night: date,
    model: str | None,
    registry: str,
    run_id: int,
    chunk_rows: int,
    done: dict[int, str],
    staging: str,
) -> dict[str, Any]:
    """Pull and validate the night (quarantine written), plan its chunks and stage the rows of
    those still to do; returns counts and the plan, without rows.

    Keys: ``pulled``, ``pull_seconds``, ``validate_seconds``, ``valid``, ``quarantined_rows``,
    ``erased_rows_skipped``, ``checks``, ``todo`` (chunk_no, sha, ref, model_version_id,
    staged) and ``skipped``.
    """
    from tasks.pull import pull
    from tasks.validate import validate

    frame, pull_seconds = pull.fn(log, db_url, night, model)
    checked = validate.fn(frame, night, registry, db_url, run_id)
    todo, skipped = plan_chunks(checked["valid"], checked["refs"], chunk_rows, done)
    plan = stage_chunks(todo, staged_file(staging, night, run_id))
    return {
        "pulled": len(frame),
        "pull_seconds": pull_seconds,
        "validate_seconds": checked["seconds"],
        "valid": len(checked["valid"]),
        "quarantined_rows": checked["quarantined_rows"],
        "erased_rows_skipped": checked.get("erased_rows_skipped", 0),
        "checks": checked["checks"],
        "todo": plan,
        "skipped": skipped,
    }
