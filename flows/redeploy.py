"""The redeploy check: does recourse issued under earlier versions still hold under the new one?"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger

from flows.checks import compare_denied, revalidate_issued
from flows.events import emit_model_deployed
from flows.runtime import task_runner
from governance import config
from governance.exceptions import GateFailed
from governance.registry.model_registry import ModelRegistry
from governance.retraining.calibration import calibration_table
from governance.store import deployments, init_store, writes
from governance.store.checks import record_deployment_check
from governance.store.engine import safe_url
from governance.store.quality import explainer_choices, explanation_drift
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
    deploy: bool = False,
    actor: str | None = None,
    via: str | None = None,
    quality: bool = True,
) -> dict[str, Any]:
    """Check a version proposed for deployment against what earlier versions told applicants,
    and, with ``deploy``, deploy it only if the gate passes.

    1. Open the run for this version (a rerun reopens it).
    2. Retrain ``variants`` copies of the new version from its recipe (seeds, bootstraps).
    3. Re-validate every recourse issued within ``window_months`` under the new version and
       the variants; store one validity event per recourse.
    4. For denials of the last ``recent_days``: reasons, responsiveness and verification under
       the new version, and what changed; with ``quality``, the faithfulness of the new reasons,
       each applicant's explanation agreement across the versions, and the run's drift (share
       of top-4 and top-1 reasons changed, Clarify's nDCG of mean |attribution|).
    5. Calibrate stability at issue time against realised validity.
    6. Summarise (by feature, segment, kind; who would need re-contacting) and apply the gate.
    7. Record the verdict as the version's ``checked`` state in the ledger, in the transaction
       that stores the check, and with ``deploy`` and a passed gate its ``deployed`` state;
       then emit ``governance.model.deployed``.
    8. A failed gate raises :class:`GateFailed` after everything is recorded, so the flow run
       ends Failed (and Prefect's notifications fire); nothing is deployed.

    Parameters
    ----------
    model, version : str
        The version to check.
    gate : float, default=0.10
        Largest acceptable invalidation rate; above it the check fails.
    variants : int, default=10
        Retrained variants for the forward validity estimate (0 to skip).
    segment : str, optional
        Feature to break invalidation down by; default the schema's first category feature.
    deploy : bool, default=False
        Deploy the version when the gate passes (the event-triggered deployment sets it).
    actor : str, optional
        Who asked (recorded with the states); default :func:`governance.config.actor`.
    via : str, optional
        The command that asked; default this flow run.

    Raises
    ------
    GateFailed
        If the invalidation rate is above ``gate``; its ``summary`` is the return value a
        passed check would have had.
    quality : bool, default=True
        Explanation quality of the re-examined denials (see step 4).
    """
    t0 = time.perf_counter()
    logger = get_run_logger()
    actor = config.actor(actor)
    if via is None:
        from prefect.runtime import flow_run

        via = f"redeploy-check flow run {flow_run.get_id() or ''}".strip()
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
        "quality": quality,
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
            kind = explainer_choices(session, [new_id]).get(new_id)
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
            options={
                "recourse": recourse,
                "seed": 0,
                "stability": False,
                "explainer_kind": kind,
                "quality": quality,
            },
        )
        timings["compare"] = time.perf_counter() - t

        summary = tally.summary(segment)
        if tally.n:
            with worker.sessions(db_url)() as session:
                summary["recontact_subjects"] = recontact_count(session, run_id)
        summary["recent_denials"] = comparison
        if quality:
            with worker.sessions(db_url)() as session:
                summary["explanation_drift"] = explanation_drift(session, run_id)

        table = (
            calibration_table(tally.stability, tally.stability_valid)
            if len(tally.stability)
            else pd.DataFrame()
        )
        rate = summary["invalidation_rate"]
        passed = rate is None or rate <= gate
        deployed = False
        with worker.sessions(db_url).begin() as session:
            previous = deployments.deployed_version(session, model)
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
            deployments.record_check(
                session,
                model,
                version,
                run_id=run_id,
                passed=passed,
                invalidation_rate=rate,
                gate=gate,
                actor=actor,
                via=via,
            )
            if deploy and passed and previous != version:
                deployments.record_deployment(session, model, version, actor=actor, via=via)
                deployed = True
        summary.update(
            gate=gate, passed=passed, calibration=table.to_dict("records") if len(table) else []
        )
        timings["wall"] = time.perf_counter() - t0
        logger.info(
            "redeploy check %s %s: %s of %s recourses invalidated; gate %s%s",
            model,
            version,
            summary["invalidated"],
            summary["recourses_checked"],
            "passed" if passed else "FAILED",
            "; deployed" if deployed else "",
        )
        gate_line = None
        if not passed:
            gate_line = (
                f"gate failed: {summary['invalidated']} of {summary['recourses_checked']} "
                f"recourses invalidated ({rate:.1%}), above the gate {gate:.1%}; "
                f"{model} {version} not deployed"
            )
        close_run(db_url, run_id, "failed" if gate_line else "succeeded", summary, timings,
                  error=gate_line)
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
    result = {
        "run_id": run_id,
        "model": model,
        "version": version,
        "counts": summary,
        "timings": timings,
        "deployed": deployed,
        "previous_version": previous,
        "deployed_version": version if deployed else previous,
    }
    if gate_line:
        raise GateFailed(gate_line, result)
    if deployed:
        result["event_emitted"] = emit_model_deployed(model, version, previous, actor=actor)
    return result
