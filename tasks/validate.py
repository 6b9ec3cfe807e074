"""Validate the night against each referenced model version and store the quarantine."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from governance.exceptions import GovernanceError, ScoreMismatch
from governance.intake.decision_log import MODEL_NAME, MODEL_VERSION, SUBJECT
from governance.intake.validation import (
    CHECK_REPRODUCED,
    OUT_OF_RANGE,
    ModelContract,
    ValidationResult,
    contracts_for,
    validate_night,
)
from governance.provenance import model_inputs
from governance.registry.model_registry import ModelRegistry
from governance.store import writes
from governance.store.queries import decision_ids_recorded_elsewhere
from tasks import worker
from tasks.worker import ModelRef


def retry_unless_bad_input(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a failure that may pass (a lost connection), not one that will not (bad input)."""
    return not isinstance(state.result(raise_on_failure=False), GovernanceError)


@task(
    name="validate",
    cache_policy=NO_CACHE,
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=retry_unless_bad_input,
)
def validate(
    frame: pd.DataFrame,
    night: date,
    registry: str,
    db_url: str,
    run_id: int,
    score_mismatch: str = "flag",
) -> dict[str, Any]:
    """Validate, write quarantine records, and return valid rows with the versions they need.

    ``score_mismatch``: what to do with rows whose logged score the registered model does not
    reproduce. ``"flag"`` leaves them to the chunks, which keep them apart; ``"quarantine"``
    quarantines them (check ``score_reproduced_by_registered_model``); ``"fail"`` raises
    ScoreMismatch before anything is written.

    Returns a dict with ``valid`` (frame), ``refs`` ((name, version) -> (ModelRef, ledger id)),
    ``inputs`` ((name, version) -> the version's registered inputs, for provenance),
    ``checks`` (per-check failure counts), ``quarantined_rows``, ``score_mismatch_quarantined``
    and ``seconds``.
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
        reproduce = None
        if score_mismatch != "flag":
            reproduce = {
                key: worker.model(_ref(registry, manifest)).score
                for key, manifest in manifests.items()
            }
        result: ValidationResult = validate_night(
            frame,
            night,
            contracts,
            seen_elsewhere=lambda ids: decision_ids_recorded_elsewhere(session, ids, night),
            reproduce=reproduce,
        )
    mismatched = result.quarantine.loc[result.quarantine["check"] == CHECK_REPRODUCED]
    if score_mismatch == "fail" and len(mismatched):
        pairs = zip(mismatched[MODEL_NAME], mismatched[MODEL_VERSION], strict=True)
        versions = ", ".join(sorted({f"{n} {v}" for n, v in pairs}))
        raise ScoreMismatch(
            f"{len(mismatched)} logged decision(s) of {night} are not reproduced by the "
            f"registered model ({versions}); the log names another model. Rerun with "
            "score_mismatch='quarantine' to set them aside, or correct the log"
        )
    refs = {}
    with sessions.begin() as session:
        writes.replace_quarantine(session, run_id, result.quarantine)
        for key, manifest in manifests.items():
            refs[key] = (_ref(registry, manifest), writes.ensure_model_version(session, manifest))
    return {
        "valid": result.valid,
        "refs": refs,
        "inputs": {key: model_inputs(manifest) for key, manifest in manifests.items()},
        "checks": result.checks,
        "flags": result.flags,
        "out_of_range_rows": int(result.valid[OUT_OF_RANGE].notna().sum())
        if OUT_OF_RANGE in result.valid.columns
        else 0,
        "quarantined_rows": result.n_quarantined_rows,
        "score_mismatch_quarantined": int(mismatched["row_number"].nunique()),
        "erased_rows_skipped": erased_rows,
        "seconds": time.perf_counter() - t0,
    }


def _ref(registry: str, manifest: Any) -> ModelRef:
    return ModelRef(registry, manifest.name, manifest.version, manifest.artifact_sha256)
