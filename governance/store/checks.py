"""Results of a redeploy check in the ledger: the gate's verdict and the calibration table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from governance.store.models import Base
from governance.store.writes import bulk_insert


def record_deployment_check(
    session: Session, run_id: int, check: Mapping[str, Any], calibration: pd.DataFrame
) -> None:
    """Replace the run's deployment-check row and calibration bins.

    ``calibration`` is :func:`governance.retraining.calibration.calibration_table`'s frame
    (empty when no issued recourse carried a stability score).
    """
    tables = Base.metadata.tables
    bins, checks = tables["calibration_bins"], tables["deployment_checks"]
    session.execute(bins.delete().where(bins.c.run_id == run_id))
    session.execute(checks.delete().where(checks.c.run_id == run_id))
    if len(calibration):
        bulk_insert(
            session,
            bins,
            pd.DataFrame(
                {
                    "run_id": run_id,
                    "bin": np.arange(len(calibration)),
                    "lower": calibration["lo"],
                    "upper": calibration["hi"],
                    "n": calibration["n"],
                    "mean_stability": calibration["mean_R"],
                    "realised_validity": calibration["validity"],
                    "ci_low": calibration["ci_low"],
                    "ci_high": calibration["ci_high"],
                }
            ),
        )
    bulk_insert(session, checks, pd.DataFrame([{"run_id": run_id, **check}]))
