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
from governance.explain.quality import night_samples
from governance.intake.decision_log import ID, MODEL_NAME, MODEL_VERSION, PARTITION
from governance.provenance import code_identity, provenance_sha256, result_settings
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
    done: dict[int, tuple[str, str | None]],
    settings: dict[tuple[str, str], dict[str, Any]] | None = None,
    model: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Split valid rows into fixed chunks per model version, in decision-id order.

    The split depends only on the night's valid rows, whichever model the run is limited to,
    so chunk numbers mean the same in every attempt. A chunk is skipped when the ledger holds
    its results for the same rows (content hash) under the same provenance (its version's
    settings, from ``settings``, and this code: see governance.provenance); otherwise it is
    to do, unless ``model`` names another model.

    Returns the chunks to do (with their rows under ``chunk`` and their settings under
    ``options``) and the tallies ``chunks`` (all of the night), ``skipped`` and
    ``not_selected``.
    """
    code = code_identity()
    todo: list[dict[str, Any]] = []
    tallies = {"chunks": 0, "skipped": 0, "not_selected": 0}
    if valid.empty:
        return todo, tallies
    ordered = valid.sort_values([MODEL_NAME, MODEL_VERSION, ID], kind="stable")
    for (name, version), rows in ordered.groupby([MODEL_NAME, MODEL_VERSION], sort=True):
        key = (str(name), str(version))
        ref, model_version_id = refs[key]
        options = (settings or {}).get(key) or result_settings()
        provenance = provenance_sha256(options, code)
        for start in range(0, len(rows), chunk_rows):
            chunk = rows.iloc[start : start + chunk_rows].reset_index(drop=True)
            chunk_no = tallies["chunks"]
            tallies["chunks"] += 1
            sha = chunk_sha256(chunk)
            if model is not None and key[0] != model:
                tallies["not_selected"] += 1
            elif done.get(chunk_no) == (sha, provenance):
                tallies["skipped"] += 1
            else:
                todo.append(
                    {
                        "chunk": chunk,
                        "chunk_no": chunk_no,
                        "sha": sha,
                        "ref": ref,
                        "model_version_id": model_version_id,
                        "options": options,
                    }
                )
    return todo, tallies


def chosen_explainers(db_url: str, model_version_ids: list[int]) -> dict[int, str]:
    """The explainer chosen per model version with ``govern explainers compare``, if any."""
    from governance.store.quality import explainer_choices
    from tasks import worker

    with worker.sessions(db_url)() as session:
        return explainer_choices(session, sorted(set(model_version_ids)))


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
    done: dict[int, tuple[str, str | None]],
    staging: str,
    options: dict[str, Any],
    columns: dict[str, str] | None = None,
    stability_sample: int | None = None,
    agreement_sample: int = 0,
) -> dict[str, Any]:
    """Pull and validate the whole night (quarantine written), settle each version's settings,
    plan its chunks and stage the rows of those still to do; returns counts and the plan,
    without rows.

    ``options``: the run's options (:func:`governance.provenance.result_settings`); the
    night's quality samples and each version's chosen explainer join them here, since they
    depend on the night's rows. ``model`` limits the chunks to do, never what is validated.

    Keys: ``pulled``, ``pull_seconds``, ``validate_seconds``, ``valid``, ``quarantined_rows``,
    ``score_mismatch_quarantined``, ``erased_rows_skipped``, ``checks``, ``out_of_range_rows``,
    ``flags``, ``todo`` (chunk_no, sha, ref, model_version_id, options, staged) and ``tally``
    (chunks, skipped, not_selected).
    """
    from tasks.pull import pull
    from tasks.validate import validate

    frame, pull_seconds = pull.fn(log, db_url, night, None, columns)
    checked = validate.fn(
        frame, night, registry, db_url, run_id, options.get("score_mismatch") or "flag"
    )
    # The quality samples are drawn from the whole night, so they do not depend on how the
    # command was spelled; they join each version's settings (another sample is another result).
    samples = night_samples(checked["valid"], stability_sample, agreement_sample)
    kinds = chosen_explainers(db_url, [mv for _, mv in checked["refs"].values()])
    settings = {
        key: result_settings(
            {**options, **samples, "explainer_kind": kinds.get(mv)}, checked["inputs"][key]
        )
        for key, (_, mv) in checked["refs"].items()
    }
    todo, tally = plan_chunks(
        checked["valid"], checked["refs"], chunk_rows, done, settings, model
    )
    plan = stage_chunks(todo, staged_file(staging, night, run_id))
    return {
        "pulled": len(frame),
        "pull_seconds": pull_seconds,
        "validate_seconds": checked["seconds"],
        "valid": len(checked["valid"]),
        "quarantined_rows": checked["quarantined_rows"],
        "score_mismatch_quarantined": checked["score_mismatch_quarantined"],
        "erased_rows_skipped": checked.get("erased_rows_skipped", 0),
        "checks": checked["checks"],
        "out_of_range_rows": checked.get("out_of_range_rows", 0),
        "flags": checked.get("flags", []),
        "todo": plan,
        "tally": tally,
    }
