"""Pull one night of decisions from the configured source."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import date

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from governance.intake.decision_log import (
    FileDecisionLog,
    SqlDecisionLog,
    open_source,
    read_night,
)


def source_for(
    log: str, db_url: str, columns: Mapping[str, str] | str | None = None
) -> FileDecisionLog | SqlDecisionLog:
    """The decision-log source a ``--log`` value names (:func:`open_source`); a SQL table is
    read from $GOVERNANCE_LOG_URL, default the store."""
    return open_source(log, os.environ.get("GOVERNANCE_LOG_URL", db_url), columns)


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
