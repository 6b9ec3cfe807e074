"""Pull one night of decisions from the configured source."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import date

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from governance.intake.decision_log import read_model_night, source_for

__all__ = ["pull", "source_for"]


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
    frame = read_model_night(source_for(log, db_url, columns), night, model)
    return frame, time.perf_counter() - t0
