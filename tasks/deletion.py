"""Tasks of the deletion flow: retrain without the subjects, purge what we own, fragility."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from governance import config
from governance.deletion.fragility_search import fragility
from governance.deletion.purge import (
    ErasurePlan,
    carry_over,
    execute_erasure,
    external_log_notice,
    external_training_notice,
    plan_erasure,
    purge_decision_logs,
)
from governance.deletion.retrain import next_candidate_version, refit_control, retrain_without
from governance.exceptions import DecisionLogError
from governance.intake.decision_log import ParquetDecisionLog
from governance.registry.model_registry import ModelRegistry, missing_training_data
from governance.store import deletions, writes
from governance.store.models import Base
from tasks import worker
from tasks.worker import ModelRef


@task(name="retrain-without", cache_policy=NO_CACHE, retries=1)
def retrain_candidate(
    registry: str, name: str, version: str, subject_ids: list[str], tag: str
) -> dict[str, Any] | None:
    """Register ``version`` retrained without the subjects as an undeployed candidate.

    Returns None when the subjects have no training rows (nothing to retrain).
    """
    reg = ModelRegistry(registry)
    candidate = retrain_without(
        reg,
        name,
        version,
        subject_ids,
        candidate_version=next_candidate_version(reg, name, version, tag),
        notes=f"candidate for deletion request(s) {tag}",
    )
    if candidate is None:
        return None
    return {
        "version": candidate.version,
        "rows_removed": candidate.rows_removed,
        "original_rows_removed": candidate.original_rows_removed,
        "sha256_before": candidate.sha256_before,
        "sha256_after": candidate.sha256_after,
        "artifact_sha256": candidate.manifest.artifact_sha256,
    }


def _purge_staged(staging: Path, subject_ids: list[str]) -> None:
    """Erase the subjects from nights staged by running (or killed) nightly flows."""
    for attempt in range(3):
        if not staging.is_dir():
            return
        try:
            purge_decision_logs(ParquetDecisionLog(staging), subject_ids)
            return
        except DecisionLogError:
            if attempt == 2:  # a staged file vanishes when its flow ends: look again
                raise


@task(name="fit-control", cache_policy=NO_CACHE, retries=1)
def fit_control(registry: str, name: str, version: str) -> Any:
    """``version`` refitted by its own recipe on its training data as it is now, subjects
    kept: the control beside a deletion candidate."""
    return refit_control(ModelRegistry(registry), name, version)


@task(name="plan-purge", cache_policy=NO_CACHE, retries=1)
def plan_purge(
    registry: str,
    log_root: str | None,
    model_names: list[str],
    subject_ids: list[str],
    data_root: str,
    previous: list[dict[str, Any]],
) -> tuple[ErasurePlan, list[dict[str, Any]]]:
    """Check every training file and decision-log file and list those that hold the subjects
    (nothing is changed; a problem with any file raises here), with the files in ``previous``
    (an earlier attempt's plan) that attempt already rewrote."""
    plan = plan_erasure(
        ModelRegistry(registry),
        model_names,
        ParquetDecisionLog(log_root) if log_root else None,
        subject_ids,
        data_root=data_root,
    )
    return plan, carry_over(previous, Path(data_root))


@task(name="purge-files", cache_policy=NO_CACHE, retries=1)
def purge_files(
    plan: ErasurePlan,
    registry: str,
    subject_ids: list[str],
    request_id: str,
    erased_at: datetime,
    data_root: str,
) -> list[dict[str, Any]]:
    """Rewrite the planned files without the subjects (all checked unchanged first); returns
    one entry per file rewritten; nights staged by running nightly flows lose the subjects
    too."""
    rewritten = execute_erasure(
        plan,
        ModelRegistry(registry),
        subject_ids,
        request_id=request_id,
        erased_at=erased_at,
        root=Path(data_root),
    )
    _purge_staged(config.staging_dir(Path(registry).parent), subject_ids)
    return rewritten


@task(name="erasure-notices", cache_policy=NO_CACHE, retries=1)
def erasure_notices(
    requests: list[dict[str, Any]], db_url: str, home: str, plan: ErasurePlan | None = None
) -> list[str]:
    """For data we read but do not own, write what its owner must erase, naming the subject
    only by salted hash: the rows of SQL decision logs, and the rows of training files outside
    the data folder not declared owned (``plan.foreign``). Returns the notices' paths,
    relative to ``home``.

    ``requests``: request_id, subject_id, subject_hash and received_at of each request.
    """
    folder = Path(home) / "erasure-notices"
    written: list[str] = []

    def write(request_id: str, kind: str, notice: dict[str, Any]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{request_id}-{kind}-{len(written)}.json"
        path.write_text(json.dumps(notice, indent=1) + "\n")
        written.append(str(path.relative_to(home)))

    with worker.sessions(db_url)() as session:
        for req in requests:
            by_log = deletions.subject_decisions_by_log(session, req["subject_id"])
            received = req["received_at"]
            if received.tzinfo is None:
                received = received.replace(tzinfo=UTC)
            # Parquet logs we own are rewritten instead; SQL tables belong to someone else.
            for log, ids in sorted((k, v) for k, v in by_log.items() if k.startswith("sql:")):
                notice = external_log_notice(
                    log,
                    req["subject_hash"],
                    ids,
                    request_id=req["request_id"],
                    received_at=received,
                )
                write(req["request_id"], "log", notice)
            for foreign in plan.foreign if plan is not None else []:
                notice = external_training_notice(
                    foreign,
                    req["subject_id"],
                    req["subject_hash"],
                    request_id=req["request_id"],
                    received_at=received,
                )
                if notice is not None:
                    write(req["request_id"], "training", notice)
    return written


@task(name="fragility-chunk", cache_policy=NO_CACHE, retries=1)
def fragility_chunk(
    points: pd.DataFrame,
    ref: ModelRef,
    model_version_id: int,
    run_id: int,
    db_url: str,
    budget: int,
    method: str,
    n_jobs: int | None = None,
) -> dict[str, int]:
    """Worst-case deletions that flip each issued recourse in ``points``; one row each.

    With ``method="screen"`` the chunk should hold every open recourse: each deletion set is
    retrained once for all of them (``n_jobs`` retrains at once; default this worker's
    cores)."""
    reg = ModelRegistry(ref.registry)
    manifest = reg.manifest(ref.name, ref.version)
    if manifest.training_data is None:
        raise missing_training_data(manifest, "deletion fragility")
    train = reg.training_frame(ref.name, ref.version)
    model = worker.model(ref)
    y = train[manifest.recipe.label].to_numpy()
    result = fragility(
        model,
        manifest.recipe,
        train[model.schema.names],
        y,
        model.matrix(points),
        K=budget,
        method=method,
        n_jobs=n_jobs or len(os.sched_getaffinity(0)),
    )
    frame = result.to_frame(points["recourse_id"].tolist())
    rows = pd.DataFrame(
        {
            "recourse_id": frame["recourse_id"],
            "model_version_id": model_version_id,
            "k": [None if k < 0 else int(k) for k in result.k],
            "budget": budget,
            "method": result.method,
            "final_score": frame["final_score"],
            "run_id": run_id,
            "computed_at": writes.now(),
        }
    )
    with worker.sessions(db_url).begin() as session:
        rows = writes.replace_recourse_rows(
            session,
            Base.metadata.tables["recourse_fragility"],
            rows,
            model_version_id=model_version_id,
        )
    ks = result.k
    return {
        "recourses": len(rows),
        "fragile": int(((ks >= 1) & (ks <= 2)).sum()),
        "flippable": int((ks >= 1).sum()),
        "refits": int(result.refits),
    }
