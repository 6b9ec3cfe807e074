"""Pull one night of decisions from the configured source."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from governance.exceptions import DecisionLogError
from governance.intake.decision_log import (
    FORMATS,
    FileDecisionLog,
    SqlDecisionLog,
    format_of,
    parse_columns,
    read_night,
)


def source_for(
    log: str, db_url: str, columns: Mapping[str, str] | str | None = None
) -> FileDecisionLog | SqlDecisionLog:
    """The decision-log source a ``--log`` value names.

    ``table:<name>`` reads a SQL table from $GOVERNANCE_LOG_URL (default: the store);
    ``parquet:<path>`` and ``csv:<path>`` declare the format of a file or a date-partitioned
    folder; a bare path is a Parquet folder, or a file whose name ends in .parquet or .csv.
    ``columns`` maps our column names to the log's (``decision_id=app_id,...``).
    """
    mapping = parse_columns(columns)
    kind, sep, rest = log.partition(":")
    if sep and kind == "table":
        return SqlDecisionLog(os.environ.get("GOVERNANCE_LOG_URL", db_url), rest, columns=mapping)
    if sep and kind in FORMATS:
        return FileDecisionLog(rest, kind, mapping)
    path = Path(log)
    if path.is_file():
        fmt = format_of(path)
        if fmt is None:
            raise DecisionLogError(
                f"cannot tell the format of decision log file {path}; name it .parquet or "
                f".csv, or write parquet:{path} or csv:{path}"
            )
        return FileDecisionLog(path, fmt, mapping)
    return FileDecisionLog(path, "parquet", mapping)


@task(name="pull", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def pull(
    log: str,
    db_url: str,
    night: date,
    model: str | None,
    columns: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, float]:
    """The night's log rows (only ``model``'s rows when one is named) and the seconds it took."""
    t0 = time.perf_counter()
    frame = read_night(source_for(log, db_url, columns), night)
    if model is not None and len(frame) and "model_name" in frame.columns:
        frame = frame.loc[frame["model_name"].astype(str) == model].reset_index(drop=True)
    return frame, time.perf_counter() - t0
