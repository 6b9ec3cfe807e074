"""Deletion requests (GDPR Art. 17): retrain without the subject, check what that breaks for
everyone else, then erase the subject from everything we own, keeping only a tombstone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from prefect import flow, get_run_logger

from flows.checks import compare_denied, revalidate_issued
from flows.redeploy import RETENTION_MONTHS, _months_ago
from flows.runtime import task_runner
from governance import config
from governance.exceptions import UnknownModelVersion
from governance.hashing import sha256_bytes
from governance.registry import ModelRegistry
from governance.store import init_store, writes
from governance.store.engine import safe_url
from governance.store.models import DeletionCheck, DeletionRequest, Tombstone
from governance.store.purge import compact_sqlite, purge_subjects
from governance.store.queries import open_recourse, recent_denied
from tasks import worker
from tasks.deletion import purge_files, retrain_candidate
from tasks.ledger import close_run, open_run
from tasks.worker import ModelRef


def _current_version(registry: ModelRegistry, name: str) -> str | None:
    try:
        return registry.deployed_version(name)
    except UnknownModelVersion:
        versions = registry.versions(name)
        return versions[-1] if versions else None


@flow(name="deletion-requests", task_runner=task_runner(), log_prints=True)
def process_deletions(
    request_ids: list[str] | None = None,
    home: str | None = None,
    db: str | None = None,
    purge: bool = True,
    check: bool = True,
    window_months: int = RETENTION_MONTHS,
    recent_days: int = 90,
) -> dict[str, Any]:
    """Carry out deletion requests, one batch at a time.

    1. Take the requests (the given ids, else every open one); subject ids never leave the
       ledger as flow parameters.
    2. For each model whose training data holds the subjects, retrain the current version
       without them into a registered, undeployed candidate.
    3. Exact invalidation check: every open issued recourse and every recent denial of other
       applicants, under the current version against the candidate.
    4. Purge: training files and owned decision logs first (idempotent), then every ledger
       row about the subjects in one transaction, leaving a tombstone per request.

    Parameters
    ----------
    request_ids : list of str, optional
        Requests to process; default all with status "received" or "failed".
    purge : bool, default=True
        Erase after the check (False stops after the check, for a dry run).
    check : bool, default=True
        Run the invalidation check against the candidates.
    """
    t0 = time.perf_counter()
    logger = get_run_logger()
    db_url = config.db_url(db, home)
    registry = ModelRegistry(config.registry_dir(home))
    init_store(db_url)
    sessions = worker.sessions(db_url)
    with sessions() as session:
        stmt = sa.select(DeletionRequest)
        if request_ids:
            stmt = stmt.where(DeletionRequest.request_id.in_(request_ids))
        else:
            stmt = stmt.where(DeletionRequest.status.in_(("received", "failed")))
        requests = [
            r
            for r in session.scalars(stmt.order_by(DeletionRequest.received_at))
            if r.subject_id is not None
        ]
    if not requests:
        return {"requests": 0}
    ids = sorted(r.request_id for r in requests)
    subjects = sorted({r.subject_id for r in requests})
    batch_key = sha256_bytes(",".join(ids).encode())[:12]
    parameters = {"requests": ids, "db": safe_url(db_url), "purge": purge, "check": check}
    opened = open_run(db_url, "deletion", None, None, parameters, extra_key=batch_key, force=True)
    run_id = opened["run_id"]
    timings: dict[str, float] = {}
    counts: dict[str, Any] = {"requests": len(ids)}
    try:
        models = sorted({r.model_name for r in requests if r.model_name} or registry.names())
        checks = []
        for name in models:
            current = _current_version(registry, name)
            if current is None:
                continue
            t = time.perf_counter()
            cand = retrain_candidate(str(registry.root), name, current, subjects, batch_key)
            timings[f"retrain:{name}"] = time.perf_counter() - t
            row = {
                "model_name": name,
                "current_version": current,
                "candidate_version": None,
                "training_rows_removed": 0,
                "sha256_before": None,
                "sha256_after": None,
                "recourses_checked": 0,
                "invalidated": 0,
                "reasons_changed": 0,
                "became_fixed": 0,
                "gained_recourse": 0,
            }
            if cand is not None:
                row.update(
                    candidate_version=cand["version"],
                    training_rows_removed=cand["rows_removed"],
                    sha256_before=cand["sha256_before"],
                    sha256_after=cand["sha256_after"],
                )
                if check:
                    row.update(
                        _check_candidate(
                            registry,
                            name,
                            cand,
                            subjects,
                            run_id,
                            db_url,
                            window_months,
                            recent_days,
                            timings,
                        )
                    )
            checks.append(row)
        counts["candidates"] = [c["candidate_version"] for c in checks if c["candidate_version"]]
        counts["invalidated"] = sum(c["invalidated"] for c in checks)
        counts["recourses_checked"] = sum(c["recourses_checked"] for c in checks)
        with sessions.begin() as session:
            for request_id in ids:
                session.execute(
                    sa.delete(DeletionCheck).where(DeletionCheck.request_id == request_id)
                )
                for c in checks:
                    session.add(DeletionCheck(request_id=request_id, run_id=run_id, **c))
                req = session.get(DeletionRequest, request_id)
                req.status, req.run_id = "checked", run_id
                req.counts = writes._plain({"checks": checks})

        if purge:
            t = time.perf_counter()
            counts["notices"] = _external_notices(requests, db_url, home)
            log_root = config.decision_log_dir(home)
            erased_at = datetime.now(UTC)
            files = purge_files(
                str(registry.root),
                str(log_root) if log_root.exists() else None,
                list(registry.names()),
                subjects,
                batch_key,
                erased_at,
            )
            with sessions.begin() as session:
                # One transaction: a reader sees the subjects whole or not at all; writers that
                # read them earlier wait and then see the tombstones (erasure_guard).
                writes.erasure_guard(session, exclusive=True)
                removed = purge_subjects(session, subjects)
                for request_id in ids:
                    req = session.get(DeletionRequest, request_id)
                    session.execute(sa.delete(Tombstone).where(Tombstone.request_id == request_id))
                    session.add(
                        Tombstone(
                            request_id=request_id,
                            subject_hash=req.subject_hash,
                            received_at=req.received_at,
                            purged_at=erased_at,
                            counts=writes._plain(
                                {
                                    "ledger_rows": removed,
                                    "files": files,
                                    "candidates": counts["candidates"],
                                }
                            ),
                        )
                    )
                    req.status, req.completed_at, req.subject_id = "purged", erased_at, None
            compact_sqlite(worker.engine(db_url))
            counts["purged"] = {"ledger_rows": removed, "files": files}
            timings["purge"] = time.perf_counter() - t
        timings["wall"] = time.perf_counter() - t0
        logger.info(
            "deletion batch %s: %d request(s), candidates %s, %d recourses invalidated",
            batch_key,
            len(ids),
            counts["candidates"],
            counts["invalidated"],
        )
        close_run(db_url, run_id, "succeeded", counts, timings)
        return {
            "run_id": run_id,
            "requests": ids,
            "counts": counts,
            "checks": checks,
            "timings": timings,
        }
    except BaseException as exc:
        timings["wall"] = time.perf_counter() - t0
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        with sessions.begin() as session:
            for request_id in ids:
                req = session.get(DeletionRequest, request_id)
                if req.status != "purged":
                    req.status, req.error = "failed", message
        close_run(db_url, run_id, "failed", {}, timings, error=message)
        raise


def _check_candidate(
    registry: ModelRegistry,
    name: str,
    cand: dict[str, Any],
    subjects: list[str],
    run_id: int,
    db_url: str,
    window_months: int,
    recent_days: int,
    timings: dict[str, float],
) -> dict[str, int]:
    """The exact invalidation check: other applicants' recourse and recent denials under the
    candidate, stored under the candidate's version."""
    t = time.perf_counter()
    manifest = registry.manifest(name, cand["version"])
    ref = ModelRef(str(registry.root), name, cand["version"], manifest.artifact_sha256)
    with worker.sessions(db_url).begin() as session:
        cand_id = writes.ensure_model_version(session, manifest)
        issued = open_recourse(session, name, cand_id, _months_ago(window_months))
        denied = recent_denied(
            session, name, cand_id, datetime.now(UTC) - timedelta(days=recent_days)
        )
    issued = issued[~issued["subject_id"].isin(subjects)]
    denied = denied[~denied["decision_id"].isin(_subject_decisions(db_url, subjects))]
    names = manifest.schema.names
    checked = revalidate_issued(issued, ref, cand_id, run_id, db_url)
    compared = compare_denied(
        denied,
        ref,
        cand_id,
        run_id,
        db_url,
        names,
        options={"recourse": True, "seed": 0, "stability": False},
    )
    timings[f"check:{name}"] = time.perf_counter() - t
    return {
        "recourses_checked": len(checked),
        "invalidated": int((~checked["valid"].astype(bool)).sum()) if len(checked) else 0,
        "reasons_changed": compared.get("reasons_changed", 0),
        "became_fixed": compared.get("became_fixed", 0),
        "gained_recourse": compared.get("gained_recourse", 0),
    }


def _subject_decisions(db_url: str, subjects: list[str]) -> set[str]:
    from governance.store.models import Decision
    from governance.store.purge import _select_in

    with worker.sessions(db_url)() as session:
        return set(_select_in(session, Decision.decision_id, Decision.subject_id, subjects))


def _external_notices(requests: list[DeletionRequest], db_url: str, home: str | None) -> int:
    """For decision logs we read but do not own (SQL tables), write the list of rows their
    owner must erase, naming the subject only by salted hash. Returns notices written."""
    import json

    from governance.deletion import external_log_notice
    from governance.store.models import Decision, Run

    folder = config.home(home) / "erasure-notices"
    written = 0
    with worker.sessions(db_url)() as session:
        for req in requests:
            rows = session.execute(
                sa.select(Decision.decision_id, Run.parameters)
                .join(Run, Run.id == Decision.run_id)
                .where(Decision.subject_id == req.subject_id)
            ).all()
            by_log: dict[str, list[str]] = {}
            for decision_id, params in rows:
                log = str((params or {}).get("log", ""))
                if log.startswith("sql:"):  # Parquet logs we own are rewritten instead
                    by_log.setdefault(log, []).append(decision_id)
            for log, ids in sorted(by_log.items()):
                notice = external_log_notice(
                    log,
                    req.subject_hash,
                    ids,
                    request_id=req.request_id,
                    received_at=req.received_at
                    if req.received_at.tzinfo
                    else req.received_at.replace(tzinfo=UTC),
                )
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"{req.request_id}-{written}.json"
                path.write_text(json.dumps(notice, indent=1) + "\n")
                written += 1
    return written
