"""The redeploy check: does recourse issued under earlier versions still hold under the new one?"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger

from flows.checks import compare_denied, revalidate_issued
from flows.runtime import task_runner
from governance import config
from governance.registry.model_registry import ModelRegistry
from governance.retraining.calibration import calibration_table
from governance.store import init_store, writes
from governance.store.checks import record_deployment_check
from governance.store.engine import safe_url
from governance.store.queries import (
    open_recourse_keys,
    recent_denied_keys,
    recontact_count,
    slice_bounds,
)
from tasks import worker
from tasks.ledger import close_run, error_line, open_run
from tasks.redeploy import fit_variant_task
from tasks.worker import ModelRef

RETENTION_MONTHS = 25  # Reg B keeps adverse-action records 25 months
DEFAULT_GATE = 0.10


def months_ago(months: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=round(months * 30.4375))


@flow(name="redeploy-check", task_runner=task_runner(), log_prints=True)
def redeploy_check(
    model: str,
    version: str,
    home: str | None = None,
    db: str | None = None,
    window_months: int = RETENTION_MONTHS,
    recent_days: int = 90,
    gate: float = DEFAULT_GATE,
    variants: int = 10,
    chunk_rows: int = 200_000,
    compare_rows: int = 2_000,
    segment: str | None = None,
    recourse: bool = True,
) -> dict[str, Any]:
    """Check a newly deployed version against what earlier versions told applicants.

    1. Open the run for this deployment (a rerun reopens it).
    2. Retrain ``variants`` copies of the new version from its recipe (seeds, bootstraps).
    3. Re-validate every recourse issued within ``window_months`` under the new version and
       the variants; store one validity event per recourse.
    4. For denials of the last ``recent_days``: reasons, responsiveness and verification under
       the new version, and what changed.
    5. Calibrate stability at issue time against realised validity.
    6. Summarise (by feature, segment, kind; who to re-contact) and apply the gate.

    Parameters
    ----------
    model, version : str
        The version just deployed.
    gate : float, default=0.10
        Largest acceptable invalidation rate; above it the check fails.
    variants : int, default=10
        Retrained variants for the forward validity estimate (0 to skip).
    segment : str, optional
        Feature to break invalidation down by; default the schema's first category feature.
    """
    t0 = time.perf_counter()
    logger = get_run_logger()
    db_url = config.db_url(db, home)
    registry = ModelRegistry(config.registry_dir(home))
    manifest = registry.manifest(model, version)
    init_store(db_url)
    segment = segment or next(iter(manifest.schema.categorical), None)
    parameters = {
        "model": model,
        "version": version,
        "db": safe_url(db_url),
        "window_months": window_months,
        "recent_days": recent_days,
        "gate": gate,
        "variants": variants,
        "segment": segment,
    }
    opened = open_run(db_url, "redeploy", None, model, parameters, extra_key=version, force=True)
    run_id = opened["run_id"]
    ref = ModelRef(str(registry.root), model, version, manifest.artifact_sha256)
    timings: dict[str, float] = {}
    try:
        with worker.sessions(db_url).begin() as session:
            new_id = writes.ensure_model_version(session, manifest)
        issued_window = {"model": model, "since": months_ago(window_months)}
        denied_window = {
            "model": model,
            "since": datetime.now(UTC) - timedelta(days=recent_days),
        }
        with worker.sessions(db_url)() as session:
            # Key ranges only: each task reads its own range of the ledger.
            issued_slices = slice_bounds(
                session, open_recourse_keys(model, new_id, issued_window["since"]), chunk_rows
            )
            denied_slices = slice_bounds(
                session, recent_denied_keys(model, new_id, denied_window["since"]), compare_rows
            )
        timings["load"] = time.perf_counter() - t0

        t = time.perf_counter()
        fitted = [f.result() for f in fit_variant_task.map([ref] * variants, range(variants))]
        timings["variants"] = time.perf_counter() - t

        t = time.perf_counter()
        tally, seconds = revalidate_issued(
            issued_slices,
            issued_window,
            ref,
            new_id,
            run_id,
            db_url,
            variants=fitted,
            segment=segment,
        )
        timings["revalidate"] = time.perf_counter() - t
        timings.update({f"revalidate_{k}": v for k, v in seconds.items()})

        t = time.perf_counter()
        comparison = compare_denied(
            denied_slices,
            denied_window,
            ref,
            new_id,
            run_id,
            db_url,
            options={"recourse": recourse, "seed": 0, "stability": False},
        )
        timings["compare"] = time.perf_counter() - t

        summary = tally.summary(segment)
        if tally.n:
            with worker.sessions(db_url)() as session:
                summary["recontact_subjects"] = recontact_count(session, run_id)
        summary["recent_denials"] = comparison

        table = (
            calibration_table(tally.stability, tally.stability_valid)
            if len(tally.stability)
            else pd.DataFrame()
        )
        rate = summary["invalidation_rate"]
        passed = rate is None or rate <= gate
        with worker.sessions(db_url).begin() as session:
            record_deployment_check(
                session,
                run_id,
                {
                    "model_name": model,
                    "new_version": version,
                    "recourses_checked": summary["recourses_checked"],
                    "invalidated": summary["invalidated"],
                    "invalidation_rate": rate,
                    "gate": gate,
                    "passed": passed,
                    "checked_at": writes.now(),
                },
                table,
            )
        summary.update(
            gate=gate, passed=passed, calibration=table.to_dict("records") if len(table) else []
        )
        timings["wall"] = time.perf_counter() - t0
        logger.info(
            "redeploy check %s %s: %s of %s recourses invalidated; gate %s",
            model,
            version,
            summary["invalidated"],
            summary["recourses_checked"],
            "passed" if passed else "FAILED",
        )
        close_run(db_url, run_id, "succeeded", summary, timings)
        return {
            "run_id": run_id,
            "model": model,
            "version": version,
            "counts": summary,
            "timings": timings,
        }
    except BaseException as exc:
        timings["wall"] = time.perf_counter() - t0
        close_run(
            db_url,
            run_id,
            "failed",
            {},
            timings,
            error=error_line(exc),
        )
        raise
