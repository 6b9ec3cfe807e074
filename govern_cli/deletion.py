"""Deletion requests (`govern forget`, `govern deletions`) and deletion fragility."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console

from govern_cli import render
from govern_cli.app import (
    EXIT_NOT_FOUND,
    AsJson,
    DaskAddress,
    Db,
    Home,
    Workers,
    app,
    check_model_option,
    console,
    deployed_version_or_exit,
    emit_json,
    env,
    fail,
    ledger_url,
    registry,
    sessions,
    ui,
)


class Method(StrEnum):
    """How the fragility search looks for deletions that break issued recourse."""

    auto = "auto"
    approximate = "approximate"
    exact = "exact"
    screen = "screen"


@app.command(rich_help_panel="Deletion requests")
def forget(
    subject: Annotated[str, typer.Option("--subject", help="Subject (applicant) id to erase.")],
    reason: Annotated[
        str | None, typer.Option(help="Why (e.g. 'Art. 17 request by email'); no personal data.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Only this model's training data.")] = None,
    defer: Annotated[
        bool,
        typer.Option(
            help="Only record the request (and tell a configured Prefect server, whose deletion "
            "deployment then runs it); otherwise the next nightly run or `govern deletions "
            "--process` carries it out."
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Retrain and check, but do not purge.")] = False,
    home: Home = None,
    db: Db = None,
    dask_address: DaskAddress = None,
    workers: Workers = None,
    as_json: AsJson = False,
) -> None:
    """Record a right-to-be-forgotten request (due in one month) and carry it out: retrain
    without the subject, check what that invalidates for others, purge, keep a tombstone."""
    from datetime import UTC, datetime

    from flows.events import emit_deletion_requested
    from governance import config
    from governance.deletion.requests import due_date, load_or_create_salt, subject_hash
    from governance.store import deletions

    out = ui(as_json)
    env(home, db)
    check_model_option(model)
    if model is not None and not registry(home).versions(model):
        fail(f"model {model!r} is not in the registry", EXIT_NOT_FOUND)
    salt = load_or_create_salt(config.salt_path(home))
    received = datetime.now(UTC)
    with sessions(db, home, write=True).begin() as session:
        request_id, new = deletions.record_deletion_request(
            session,
            subject,
            subject_hash(subject, salt),
            received_at=received,
            due_at=due_date(received),
            reason=reason,
            model_name=model,
        )
    due = due_date(received)
    out.print(
        f"deletion request {request_id} {'recorded' if new else 'already open'}; due {due:%Y-%m-%d}"
    )
    request = {"request_id": request_id, "new": new, "received_at": received, "due_at": due}
    if defer:
        # Processing now is the default: the person at the terminal sees the purge happen. A
        # deferred request is announced so a served deletion deployment picks it up at once.
        emitted = bool(new and emit_deletion_requested(request_id, model))
        if emitted:
            out.print("emitted governance.deletion.requested: the deletion deployment runs it")
        if as_json:
            emit_json({"request": request, "event_emitted": emitted, "summary": None})
        return
    summary = _run_deletions([request_id], dask_address, workers, purge=not dry_run, out=out)
    if as_json:
        emit_json({"request": request, "summary": summary})
    else:
        render.deletion_summary(console, summary)


@app.command(rich_help_panel="Deletion requests")
def deletions(
    process: Annotated[
        bool, typer.Option("--process", help="Carry out every open request now.")
    ] = False,
    home: Home = None,
    db: Db = None,
    dask_address: DaskAddress = None,
    workers: Workers = None,
    as_json: AsJson = False,
) -> None:
    """Deletion requests with their due dates and status (overdue ones first); --process
    carries out the open ones first."""
    from governance.store.queries import deletion_requests

    env(home, db)
    sessions(db, home, write=process)  # a read-only listing never creates a ledger
    summary = None
    if process:
        summary = _run_deletions(None, dask_address, workers, purge=True, out=ui(as_json))
        if not as_json:
            render.deletion_summary(console, summary)
    with sessions(db, home)() as session:
        frame = deletion_requests(session)
    if as_json:
        emit_json(frame if summary is None else {"processed": summary, "requests": frame})
        return
    render.deletions_table(console, frame)
    if len(frame):
        console.print(render.DELETION_COLUMNS_NOTE)


@app.command(rich_help_panel="Deletion requests")
def fragility(
    model: Annotated[str, typer.Option(help="Model name.")],
    version: Annotated[str | None, typer.Option(help="Version (default: deployed).")] = None,
    budget: Annotated[int, typer.Option("--k", min=1, help="Deletion budget K.")] = 5,
    method: Annotated[
        Method,
        typer.Option(
            help="screen: shared deletion sets, each retrained once for every recourse "
            "(proves breaks, not survival); approximate / exact: greedy per recourse "
            "(influence-ranked for logistic regression, about K retrains per recourse "
            "otherwise); auto: approximate for logistic regression, else screen."
        ),
    ] = Method.auto,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many recourses (the first by id).")
    ] = None,
    home: Home = None,
    db: Db = None,
    dask_address: DaskAddress = None,
    workers: Workers = None,
    as_json: AsJson = False,
) -> None:
    """Worst-case fragility of issued recourse: how few training deletions would invalidate
    each one (k <= K), ahead of any request. Every k found is an upper bound on the fewest
    (a deletion set whose retrain breaks the recourse); the screen's "not broken" means only
    that no deletion set among those tried breaks it."""
    from flows.fragility import fragility_scan
    from flows.runtime import prefect_api, task_runner

    out = ui(as_json)
    env(home, db)
    check_model_option(model)
    ledger_url(db, home)
    version = version or deployed_version_or_exit(model, db, home)
    registry(home).manifest(model, version)
    flow = fragility_scan.with_options(task_runner=task_runner(dask_address, workers))
    with out.status(f"Fragility of recourse issued under {model} {version}"), prefect_api():
        summary = flow(
            model=model, version=version, budget=budget, method=method.value, limit=limit
        )
    claim = render.fragility_line(model, version, budget, summary)
    if as_json:
        emit_json({"model": model, "version": version, "budget": budget, **summary,
                   "claim": claim})
        return
    c = summary["counts"]
    if not c["recourses"]:
        console.print(
            f"No recourse was issued under {model} {version}: nothing to check "
            "(--version names another version)."
        )
        return
    console.print(claim)


def _run_deletions(
    request_ids: list[str] | None,
    dask_address: str | None,
    workers: int | None,
    purge: bool,
    out: Console,
) -> dict[str, Any]:
    from flows.deletion import process_deletions
    from flows.runtime import prefect_api, task_runner

    flow = process_deletions.with_options(task_runner=task_runner(dask_address, workers))
    with out.status("Carrying out deletion requests"), prefect_api():
        return flow(request_ids=request_ids, purge=purge)
