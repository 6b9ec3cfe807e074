"""Pull one night of decisions from the configured source."""

from __future__ import annotations

import time
from datetime import date

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from governance.intake.decision_log import ParquetDecisionLog, SqlDecisionLog, read_night


def source_for(log: str, db_url: str) -> ParquetDecisionLog | SqlDecisionLog:
    """``table:<name>`` reads a SQL table from $GOVERNANCE_LOG_URL (default: the store); anything
    else is a folder of date-partitioned Parquet."""
    import os

    if log.startswith("table:"):
        return SqlDecisionLog(os.environ.get("GOVERNANCE_LOG_URL", db_url), log.split(":", 1)[1])
    return ParquetDecisionLog(log)


@task(name="pull", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def pull(log: str, db_url: str, night: date, model: str | None) -> tuple[pd.DataFrame, float]:
    """The night's log rows (only ``model``'s rows when one is named) and the seconds it took."""
    t0 = time.perf_counter()
    frame = read_night(source_for(log, db_url), night)
    if model is not None and len(frame) and "model_name" in frame.columns:
        frame = frame.loc[frame["model_name"].astype(str) == model].reset_index(drop=True)
    return frame, time.perf_counter() - t0
