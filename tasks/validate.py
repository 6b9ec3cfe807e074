"""Validate the night against each referenced model version and store the quarantine."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from governance.intake.decision_log import SUBJECT
from governance.intake.validation import (
    ModelContract,
    ValidationResult,
    contracts_for,
    validate_night,
)
from governance.registry.model_registry import ModelRegistry
from governance.store import writes
from governance.store.queries import decision_ids_recorded_elsewhere
from tasks import worker
from tasks.worker import ModelRef


@task(name="validate", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def validate(
    frame: pd.DataFrame,
    night: date,
    registry: str,
    db_url: str,
    run_id: int,
) -> dict[str, Any]:
    """Validate, write quarantine records, and return valid rows with the versions they need.

    Returns a dict with ``valid`` (frame), ``refs`` ((name, version) -> (ModelRef, ledger id)),
    ``checks`` (per-check failure counts), ``quarantined_rows`` and ``seconds``.
    """
    t0 = time.perf_counter()
    # Versions that are not registered are left out: their rows go to quarantine.
    manifests = contracts_for(frame, ModelRegistry(registry))
    contracts = {k: ModelContract(m.schema, m.threshold) for k, m in manifests.items()}
    sessions = worker.sessions(db_url)
    erased_rows = 0
    with sessions() as session:
        # Erased subjects whose rows are still in a log we read (one we do not own, or a
        # backup restored) are never ingested again, not even into quarantine.
        if len(frame) and SUBJECT in frame.columns:
            erased = writes.erased_subjects(
                session,
                frame[SUBJECT].dropna().astype(str).unique().tolist(),
                worker.salt_for(registry),
            )
            if erased:
                keep = ~frame[SUBJECT].astype(str).isin(erased)
                erased_rows = int((~keep).sum())
                frame = frame.loc[keep].reset_index(drop=True)
        result: ValidationResult = validate_night(
            frame,
            night,
            contracts,
            seen_elsewhere=lambda ids: decision_ids_recorded_elsewhere(session, ids, night),
        )
    refs = {}
    with sessions.begin() as session:
        writes.replace_quarantine(session, run_id, result.quarantine)
        for key, manifest in manifests.items():
            ref = ModelRef(registry, manifest.name, manifest.version, manifest.artifact_sha256)
            refs[key] = (ref, writes.ensure_model_version(session, manifest))
    return {
        "valid": result.valid,
        "refs": refs,
        "checks": result.checks,
        "quarantined_rows": result.n_quarantined_rows,
        "erased_rows_skipped": erased_rows,
        "seconds": time.perf_counter() - t0,
    }
