"""Deletion requests (GDPR Art. 17): retrain without the subject, check what that breaks for
everyone else, then erase the subject from everything we own, keeping only a tombstone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger

from flows.checks import compare_denied, revalidate_issued, score_issued
from flows.redeploy import RETENTION_MONTHS, months_ago
from flows.runtime import task_runner
from governance import config
from governance.deletion.purge import summarise_files
from governance.hashing import sha256_bytes
from governance.registry.model_registry import ModelRegistry
from governance.store import deletions, deployments, init_store, notices, writes
from governance.store.engine import safe_url
from governance.store.purge import compact_sqlite, purge_subjects
from governance.store.queries import (
    open_recourse,
    open_recourse_keys,
    recent_denied_keys,
    slice_bounds,
)
from tasks import worker
from tasks.deletion import (
    erasure_notices,
    fit_control,
    plan_purge,
    purge_files,
    retrain_candidate,
)
from tasks.ledger import close_run, error_line, open_run
from tasks.worker import ModelRef

CHECK_SLICE_ROWS = 100_000  # open recourse per re-validation task
COMPARE_ROWS = 2_000  # recent denials per comparison task


def current_version(registry: ModelRegistry, name: str, deployed: dict[str, str]) -> str | None:
    """The version a deletion is checked against: the deployed one as the ledger records it
    (``deployed``, from :func:`governance.store.deployments.deployed_versions`), else the
    newest registered one."""
    if name in deployed:
        return deployed[name]
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
    2. Check every training file and decision-log file before anything is changed: a file
       that cannot be read or does not match its manifest fails the request here.
    3. For each model whose training data holds the subjects, retrain the deployed version
       (as the ledger records it) without them into a registered, undeployed candidate, and
       refit a control with them kept (same recipe, seed and data otherwise).
    4. Exact invalidation check: every open issued recourse and every recent denial of other
       applicants under the candidate; with the control, which invalidations the deletion
       causes (valid under the control, not the candidate) and which retraining alone does
       (valid under the deployed version, not the control).
    5. Purge: plan again (recorded on the requests before any file changes, so a retry counts
       what this attempt rewrote), write erasure notices for data we do not own (SQL logs,
       training files outside the data folder not declared owned), rewrite our training files
       and decision logs, then erase every ledger row about the subjects in one transaction,
       leaving a tombstone per request that names every file rewritten.

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
    data_root = str(config.home(home))
    log_root = config.decision_log_dir(home)
    log = str(log_root) if log_root.exists() else None
    init_store(db_url)
    sessions = worker.sessions(db_url)
    with sessions.begin() as session:
        # Notices kept past an erasure for their legal retention go once it ends.
        expired = notices.purge_expired_notices(session, datetime.now(UTC))
    if expired:
        logger.info("purged %d notice(s) of erased applicants whose retention ended", expired)
    with sessions() as session:
        requests = deletions.requests_to_process(session, request_ids)
        deployed = deployments.deployed_versions(session)
        ids = sorted(r.request_id for r in requests)
        earlier = deletions.recorded_checks(session, ids)
    if not requests:
        return {"requests": 0, "notices_purged": expired} if expired else {"requests": 0}
    subjects = sorted({r.subject_id for r in requests})
    batch_key = sha256_bytes(",".join(ids).encode())[:12]
    parameters = {"requests": ids, "db": safe_url(db_url), "purge": purge, "check": check}
    opened = open_run(db_url, "deletion", None, None, parameters, extra_key=batch_key, force=True)
    run_id = opened["run_id"]
    timings: dict[str, float] = {}
    counts: dict[str, Any] = {"requests": len(ids)}
    names = list(registry.names())
    try:
        # Every file is checked before anything is retrained or changed: a file that cannot
        # be read fails the request here, with every row where it was.
        t = time.perf_counter()
        precheck, _ = plan_purge(str(registry.root), log, names, subjects, data_root, [])
        timings["plan"] = time.perf_counter() - t
        holding = {v for f in precheck.files for v in f.versions} | {
            v for f in precheck.foreign for v in f.versions
        }  # (name, version) whose training data holds the subjects
        models = sorted({r.model_name for r in requests if r.model_name} or names)
        checks = []
        for name in models:
            current = current_version(registry, name, deployed)
            if current is None:
                continue
            t = time.perf_counter()
            control = None
            if check and (name, current) in holding:
                control = fit_control.submit(str(registry.root), name, current)
            cand = retrain_candidate(str(registry.root), name, current, subjects, batch_key)
            timings[f"retrain:{name}"] = time.perf_counter() - t
            before = earlier.get(name)
            if (
                cand is None
                and before is not None
                and before["candidate_version"]
                and before["current_version"] == current
            ):
                # An earlier attempt retrained and checked, then its purge was interrupted
                # after the training files were rewritten: its check holds the true counts.
                checks.append(before)
                continue
            row = {
                "model_name": name,
                "current_version": current,
                "candidate_version": None,
                "training_rows_removed": 0,
                "original_rows_removed": None,
                "sha256_before": None,
                "sha256_after": None,
                "recourses_checked": 0,
                "invalidated": 0,
                "reasons_changed": 0,
                "became_fixed": 0,
                "gained_recourse": 0,
                "invalidated_by_deletion": None,
                "invalidated_by_retraining": None,
            }
            if cand is not None:
                row.update(
                    candidate_version=cand["version"],
                    training_rows_removed=cand["rows_removed"],
                    original_rows_removed=cand["original_rows_removed"],
                    sha256_before=cand["sha256_before"],
                    sha256_after=cand["sha256_after"],
                )
                if check:
                    row.update(
                        _check_candidate(
                            registry,
                            name,
                            current,
                            cand,
                            control.result() if control is not None else None,
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
            deletions.record_checks(session, ids, checks, run_id)

        if purge:
            t = time.perf_counter()
            with sessions() as session:
                previous = deletions.purge_plan(session, ids)
            # Planned again now: logs written since the check are covered too.
            plan, carried = plan_purge(
                str(registry.root), log, names, subjects, data_root, previous
            )
            entries = plan.entries(config.home(home))
            planned = {e["path"] for e in entries}
            carried = [c for c in carried if c["path"] not in planned]
            with sessions.begin() as session:
                deletions.record_purge_plan(session, ids, [*carried, *entries])
            owner_notices = erasure_notices(
                [
                    {
                        "request_id": r.request_id,
                        "subject_id": r.subject_id,
                        "subject_hash": r.subject_hash,
                        "received_at": r.received_at,
                    }
                    for r in requests
                ],
                db_url,
                data_root,
                plan,
            )
            counts["notices"] = len(owner_notices)
            erased_at = datetime.now(UTC)
            rewritten = purge_files(
                plan, str(registry.root), subjects, batch_key, erased_at, data_root
            )
            files = {**summarise_files([*carried, *rewritten]), "notices": owner_notices}
            with sessions.begin() as session:
                # One transaction: a reader sees the subjects whole or not at all; writers that
                # read them earlier wait and then see the tombstones (erasure_guard).
                writes.erasure_guard(session, exclusive=True)
                removed = purge_subjects(session, subjects)
                held = notices.hold_for_retention(
                    session, {r.subject_id: r.request_id for r in requests}, erased_at
                )
                deletions.record_tombstones(
                    session,
                    ids,
                    {
                        "ledger_rows": removed,
                        "files": files,
                        "candidates": counts["candidates"],
                        "notices": held,
                    },
                    erased_at,
                )
            compact_sqlite(worker.engine(db_url))
            counts["purged"] = {"ledger_rows": removed, "files": files, "notices": held}
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
        message = error_line(exc)
        with sessions.begin() as session:
            deletions.mark_failed(session, ids, message)
        close_run(db_url, run_id, "failed", {}, timings, error=message)
        raise


def _check_candidate(
    registry: ModelRegistry,
    name: str,
    current: str,
    cand: dict[str, Any],
    control: Any,
    subjects: list[str],
    run_id: int,
    db_url: str,
    window_months: int,
    recent_days: int,
    timings: dict[str, float],
) -> dict[str, int | None]:
    """The exact invalidation check: other applicants' recourse and recent denials under the
    candidate, stored under the candidate's version; and, with the ``control`` refit (subjects
    kept), which invalidations the deletion causes and which retraining alone does."""
    t = time.perf_counter()
    manifest = registry.manifest(name, cand["version"])
    ref = ModelRef(str(registry.root), name, cand["version"], manifest.artifact_sha256)
    cur = registry.manifest(name, current)
    cur_ref = ModelRef(str(registry.root), name, current, cur.artifact_sha256)
    with worker.sessions(db_url).begin() as session:
        cand_id = writes.ensure_model_version(session, manifest)
    with worker.sessions(db_url)() as session:
        theirs = sorted(deletions.decision_ids_of_subjects(session, subjects))
    issued_window = {"model": name, "since": months_ago(window_months), "exclude_decisions": theirs}
    denied_window = {
        "model": name,
        "since": datetime.now(UTC) - timedelta(days=recent_days),
        "exclude_decisions": theirs,
    }
    with worker.sessions(db_url)() as session:
        issued_slices = slice_bounds(
            session,
            open_recourse_keys(name, cand_id, issued_window["since"], theirs),
            CHECK_SLICE_ROWS,
        )
        denied_slices = slice_bounds(
            session,
            recent_denied_keys(name, cand_id, denied_window["since"], theirs),
            COMPARE_ROWS,
        )
    tally, _ = revalidate_issued(issued_slices, issued_window, ref, cand_id, run_id, db_url)
    compared = compare_denied(
        denied_slices,
        denied_window,
        ref,
        cand_id,
        run_id,
        db_url,
        # Explanation quality is measured for deployed versions (nightly, redeploy check), not
        # for a candidate that only answers what a deletion would change.
        options={"recourse": True, "seed": 0, "stability": False, "quality": False},
    )
    effects: dict[str, int | None] = {
        "invalidated_by_deletion": None,
        "invalidated_by_retraining": None,
    }
    if control is not None:
        # Per recourse, under the candidate, the control and the current version: scored
        # again here (the tally above keeps counts only), recording nothing.
        with worker.sessions(db_url)() as session:
            issued = open_recourse(session, name, cand_id, issued_window["since"])
        issued = issued[~issued["decision_id"].isin(set(theirs))]
        under_candidate = score_issued(issued, ref, db_url)
        valid = under_candidate.set_index("recourse_id")["valid"].astype(bool)
        under_control = score_issued(issued, cur_ref, db_url, estimator=control)
        under_current = score_issued(issued, cur_ref, db_url)
        by_control = under_control.set_index("recourse_id")["valid"].astype(bool)
        by_current = under_current.set_index("recourse_id")["valid"].astype(bool)
        by_control = by_control.reindex(valid.index)
        by_current = by_current.reindex(valid.index)
        effects = {
            "invalidated_by_deletion": int((by_control & ~valid).sum()),
            "invalidated_by_retraining": int((by_current & ~by_control).sum()),
        }
    timings[f"check:{name}"] = time.perf_counter() - t
    return {
        "recourses_checked": tally.n,
        "invalidated": tally.invalid,
        "reasons_changed": compared.get("reasons_changed", 0),
        "became_fixed": compared.get("became_fixed", 0),
        "gained_recourse": compared.get("gained_recourse", 0),
        **effects,
    }
