"""`govern`: the command line over the governance flows and the ledger.

Each command parses its options, calls one flow or library function and prints a table; errors
the core raises on purpose are printed as one line with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from govern_cli import render

app = typer.Typer(
    name="govern",
    help="Model governance for automated credit decisions: reasons, recourse, robustness and "
    "deletion checks, recorded in an auditable SQL ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(
    help="The model registry: register, list, show and deploy versions.", no_args_is_help=True
)
app.add_typer(models_app, name="models")

console = Console()
# Errors are one line however long (no wrapping at the terminal's width) and never markup.
err = Console(stderr=True, soft_wrap=True)

Home = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Data folder (registry, logs, SQLite store). "
        "Default: $GOVERNANCE_HOME or ./governance-data.",
    ),
]
Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy URL of the store. Default: $GOVERNANCE_DB_URL or "
        "SQLite in the data folder.",
    ),
]
DaskAddress = Annotated[
    str | None,
    typer.Option(
        "--dask-address",
        help="Existing Dask scheduler, e.g. tcp://10.0.0.5:8786. "
        "Default: $GOVERNANCE_DASK_ADDRESS or a local cluster.",
    ),
]
Workers = Annotated[int | None, typer.Option("--workers", help="Local cluster worker processes.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _env(home: Path | None, db: str | None) -> None:
    """Pass --home/--db on through the environment, so Dask workers see them without the URL
    ever becoming a flow parameter (Prefect records those)."""
    if home is not None:
        os.environ["GOVERNANCE_HOME"] = str(home.resolve())
    if db is not None:
        os.environ["GOVERNANCE_DB_URL"] = db


def _sessions(db: str | None, home: Path | None):  # noqa: ANN202
    from governance import config
    from governance.store import init_store, session_factory

    return session_factory(init_store(config.db_url(db, home)))


def _run_nightly(
    night: date,
    model: str | None,
    address: str,
    chunk_rows: int,
    force: bool,
    log: str | None,
) -> dict[str, Any]:
    """One nightly run on the cluster at ``address``; the caller holds the Prefect API."""
    from prefect_dask import DaskTaskRunner

    from flows.nightly import nightly_governance

    flow = nightly_governance.with_options(task_runner=DaskTaskRunner(address=address))
    return flow(night=night, model=model, log=log, chunk_rows=chunk_rows, force=force)


@app.command()
def demo(
    home: Home = None,
    db: Db = None,
    days: Annotated[int, typer.Option(help="Nights of decision logs to write and run.")] = 3,
    rows: Annotated[int, typer.Option(help="Decisions per night.")] = 20_000,
    dask_address: DaskAddress = None,
    workers: Workers = None,
) -> None:
    """Generate a synthetic lender, train and deploy model v1, and run the nightly flow on
    the last few nights."""
    from governance.demo import prepare_demo

    _env(home, db)
    with render.steps(console, "Preparing the demo lender") as say:
        setup = prepare_demo(home, days=days, rows_per_night=rows, progress=say)
    from flows.runtime import cluster, prefect_api

    summaries = []
    # One Prefect API and one Dask cluster for all nights: workers keep their loaded models.
    with render.progress(console) as bar, prefect_api(), cluster(dask_address, workers) as address:
        job = bar.add_task("Nightly governance runs", total=len(setup.nights))
        for night in setup.nights:
            bar.update(job, description=f"Nightly run for {night}")
            summaries.append(_run_nightly(night, setup.model_name, address, 5_000, False, None))
            bar.advance(job)
    render.nightly_summary(console, summaries)
    subject = _example_subject(db, home)
    console.print(
        f"\nLedger: [bold]{render.safe_db(db, home)}[/]\nTry:\n"
        f"  govern runs\n"
        f"  govern history --subject {subject}\n"
        f"  govern recourse --subject {subject}\n"
        f"  govern deploy {setup.model_name} v2      # deploy the retrained model: "
        f"runs the redeploy check\n"
        f"  govern forget --subject {_example_borrower(db, home)}   # a past borrower asks to be "
        f"erased\n"
        f"  govern deletions"
    )


def _example_subject(db: str | None, home: Path | None) -> str:
    """A denied applicant who was issued recourse, to show in the hints."""
    import sqlalchemy as sa

    from governance.store.models import Decision, IssuedRecourse

    with _sessions(db, home)() as session:
        found = session.scalar(
            sa.select(Decision.subject_id)
            .join(IssuedRecourse, IssuedRecourse.decision_id == Decision.decision_id)
            .order_by(Decision.decision_id)
            .limit(1)
        ) or session.scalar(
            sa.select(Decision.subject_id)
            .where(Decision.decision == "denied")
            .order_by(Decision.decision_id)
            .limit(1)
        )
    return found or "S10000000"


def _example_borrower(db: str | None, home: Path | None) -> str:
    """An applicant whose earlier loan is in the training data (ids below the demo's
    applicant range), so erasing them retrains the model."""
    import sqlalchemy as sa

    from governance.store.models import Decision

    with _sessions(db, home)() as session:
        found = session.scalar(
            sa.select(Decision.subject_id)
            .where(Decision.subject_id < "S1")
            .order_by(Decision.subject_id)
            .limit(1)
        )
    return found or "S00000000"


@app.command()
def nightly(
    night: Annotated[str, typer.Option("--date", help="UTC decision date, YYYY-MM-DD.")],
    model: Annotated[str | None, typer.Option(help="Only this model's decisions.")] = None,
    home: Home = None,
    db: Db = None,
    log: Annotated[
        str | None,
        typer.Option(
            help="Decision-log folder, or table:<name> for a SQL table ($GOVERNANCE_LOG_URL)."
        ),
    ] = None,
    dask_address: DaskAddress = None,
    workers: Workers = None,
    chunk_rows: Annotated[int, typer.Option(help="Decisions per chunk task.")] = 5_000,
    force: Annotated[bool, typer.Option(help="Recompute chunks already committed.")] = False,
) -> None:
    """Run the nightly governance flow for one night."""
    _env(home, db)
    day = _parse_date(night)
    _model_option(model)
    with console.status(f"Nightly governance run for {day}"):
        from flows.runtime import cluster, prefect_api

        with prefect_api(), cluster(dask_address, workers) as address:
            summary = _run_nightly(day, model, address, chunk_rows, force, log)
    render.nightly_summary(console, [summary])


@app.command()
def history(
    subject: Annotated[str, typer.Option("--subject", help="Subject (applicant) id.")],
    home: Home = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Every decision about one subject, with its model version and the reasons given."""
    from governance import config
    from governance.deletion import load_or_create_salt, subject_hash
    from governance.store.queries import subject_history, tombstones_for

    with _sessions(db, home)() as session:
        records = subject_history(session, subject)
        graves = tombstones_for(
            session, subject_hash(subject, load_or_create_salt(config.salt_path(home)))
        )
    if as_json:
        console.print_json(
            json.dumps(
                {"subject_id": subject, "decisions": records, "tombstones": graves}, default=str
            )
        )
        return
    render.history(console, subject, records, graves)


@app.command()
def recourse(
    subject: Annotated[str, typer.Option("--subject", help="Subject (applicant) id.")],
    home: Home = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """A denied subject's reasons with their responsiveness, whether any action can change the
    decision, and the recommended (minimal-cost) action."""
    from governance.store.queries import subject_recourse

    with _sessions(db, home)() as session:
        records = subject_recourse(session, subject)
    if as_json:
        console.print_json(json.dumps({"subject_id": subject, "decisions": records}, default=str))
        return
    render.recourse(console, subject, records)


@app.command()
def runs(
    limit: Annotated[int, typer.Option(help="How many runs to list.")] = 20,
    kind: Annotated[str | None, typer.Option(help="Only runs of this kind.")] = None,
    home: Home = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Recent runs with their status and counts."""
    from governance.store.queries import recent_runs

    with _sessions(db, home)() as session:
        frame = recent_runs(session, limit, kind)
    if as_json:
        console.print_json(frame.to_json(orient="records", date_format="iso"))
        return
    render.frame_table(console, frame, title="Recent runs")


# -- registry ---------------------------------------------------------------------------------
def _registry(home: Path | None):  # noqa: ANN202
    from governance import config
    from governance.registry import ModelRegistry

    return ModelRegistry(config.registry_dir(home))


@models_app.command("list")
def models_list(home: Home = None, as_json: AsJson = False) -> None:
    """Registered models and versions, with deployment state and test metrics."""
    reg = _registry(home)
    rows = []
    for name in reg.names():
        deployed = reg.deployments(name)
        current = deployed[-1]["version"] if deployed else None
        for version in reg.versions(name):
            m = reg.manifest(name, version)
            rows.append(
                {
                    "model": name,
                    "version": version,
                    "deployed": version == current,
                    "created_at": m.created_at.isoformat(),
                    "estimator": m.recipe.estimator,
                    "sha256": m.artifact_sha256[:12],
                    **m.metrics,
                }
            )
    if as_json:
        console.print_json(json.dumps(rows))
        return
    import pandas as pd

    render.frame_table(console, pd.DataFrame(rows), title=f"Models in {reg.root}")


@models_app.command("show")
def models_show(
    name: str, version: Annotated[str | None, typer.Argument()] = None, home: Home = None
) -> None:
    """A version's manifest (default: the deployed version)."""
    reg = _registry(home)
    version = version or reg.deployed_version(name)
    console.print_json(json.dumps(reg.manifest(name, version).to_dict(), default=str))


@models_app.command("register")
def models_register(
    name: str,
    version: str,
    data: Annotated[Path, typer.Option(help="Training data (Parquet) with features and label.")],
    label: Annotated[str, typer.Option(help="Label column.")],
    estimator: Annotated[str, typer.Option(help="Estimator short name or sklearn class path.")],
    params: Annotated[str, typer.Option(help="Estimator parameters as JSON.")] = "{}",
    seed: Annotated[int, typer.Option(help="Random seed of the recipe.")] = 0,
    favourable: Annotated[str, typer.Option(help="Favourable label value.")] = "1",
    threshold: Annotated[float, typer.Option(help="Approve when P(favourable) >= this.")] = 0.5,
    features: Annotated[
        str | None,
        typer.Option(help="Comma-separated feature columns (default: all but label and ids)."),
    ] = None,
    action_set: Annotated[Path | None, typer.Option(help="Action set JSON to attach.")] = None,
    home: Home = None,
) -> None:
    """Train a version from a recipe on a Parquet file and register it (not deployed)."""
    from governance.registration import register_from_data

    manifest = register_from_data(
        _registry(home),
        name,
        version,
        data,
        label=label,
        estimator=estimator,
        params=json.loads(params),
        seed=seed,
        favourable=favourable,
        threshold=threshold,
        features=features.split(",") if features else None,
        action_set=action_set,
    )
    console.print(
        f"registered {manifest.name} {manifest.version} "
        f"(sha256 {manifest.artifact_sha256[:12]}…) metrics {manifest.metrics}"
    )


@app.command()
def deploy(
    name: str,
    version: str,
    home: Home = None,
    db: Db = None,
    check: Annotated[
        bool | None,
        typer.Option(
            "--check/--no-check",
            help="Run the redeploy check now. Default: only when no Prefect server "
            "($PREFECT_API_URL) is there to run it on the deployment event.",
        ),
    ] = None,
    gate: Annotated[float, typer.Option(help="Largest acceptable invalidation rate.")] = 0.10,
    dask_address: DaskAddress = None,
    workers: Workers = None,
) -> None:
    """Mark a registered version as deployed and emit governance.model.deployed; the redeploy
    check then re-validates every issued recourse under it."""
    from flows.events import emit_model_deployed

    _env(home, db)
    reg = _registry(home)
    history = reg.deployments(name)
    previous = history[-1]["version"] if history else None
    manifest = reg.deploy(name, version)
    console.print(
        f"deployed {manifest.name} {manifest.version} at {manifest.deployed_at} "
        f"(previously {previous or 'none'})"
    )
    emitted = emit_model_deployed(name, version, previous)
    if emitted:
        console.print("emitted governance.model.deployed: the redeploy-check deployment runs on it")
    if check or (check is None and not emitted):
        _redeploy(name, version, gate, dask_address, workers)


@app.command("redeploy-check")
def redeploy_check_cmd(
    name: str,
    version: str,
    home: Home = None,
    db: Db = None,
    gate: Annotated[float, typer.Option(help="Largest acceptable invalidation rate.")] = 0.10,
    window_months: Annotated[int, typer.Option(help="Recourse issued this recently is open.")] = 25,
    recent_days: Annotated[int, typer.Option(help="Denials this recent are re-examined.")] = 90,
    variants: Annotated[int, typer.Option(help="Retrained variants for forward validity.")] = 10,
    dask_address: DaskAddress = None,
    workers: Workers = None,
    as_json: AsJson = False,
) -> None:
    """Re-check issued recourse and recent denials under a version, by hand; exits 3 when the
    invalidation rate is above the gate."""
    _env(home, db)
    _redeploy(
        name,
        version,
        gate,
        dask_address,
        workers,
        window_months=window_months,
        recent_days=recent_days,
        variants=variants,
        as_json=as_json,
    )


def _redeploy(
    name: str,
    version: str,
    gate: float,
    dask_address: str | None,
    workers: int | None,
    as_json: bool = False,
    **kwargs: Any,
) -> None:
    from flows.redeploy import redeploy_check
    from flows.runtime import prefect_api, task_runner

    flow = redeploy_check.with_options(task_runner=task_runner(dask_address, workers))
    with console.status(f"Redeploy check of {name} {version}"), prefect_api():
        summary = flow(model=name, version=version, gate=gate, **kwargs)
    from governance.store.queries import recontact

    with _sessions(None, None)() as session:
        summary["recontact_sample"] = recontact(session, summary["run_id"], limit=8)
    if as_json:
        console.print_json(json.dumps(summary, default=str))
    else:
        render.redeploy_summary(console, summary)
    if not summary["counts"]["passed"]:
        err.print(
            f"[bold red]gate failed:[/] invalidation rate "
            f"{summary['counts']['invalidation_rate']:.1%} is above {gate:.1%}"
        )
        raise typer.Exit(3)


@app.command()
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
    from governance.deletion import due_date, load_or_create_salt, subject_hash
    from governance.store import writes

    _env(home, db)
    _model_option(model)
    salt = load_or_create_salt(config.salt_path(home))
    received = datetime.now(UTC)
    with _sessions(db, home).begin() as session:
        request_id, new = writes.record_deletion_request(
            session,
            subject,
            subject_hash(subject, salt),
            received_at=received,
            due_at=due_date(received),
            reason=reason,
            model_name=model,
        )
    console.print(
        f"deletion request {request_id} "
        f"{'recorded' if new else 'already open'}; due {due_date(received):%Y-%m-%d}"
    )
    if defer:
        # Processing now is the default: the person at the terminal sees the purge happen. A
        # deferred request is announced so a served deletion deployment picks it up at once.
        if new and emit_deletion_requested(request_id, model):
            console.print("emitted governance.deletion.requested: the deletion deployment runs it")
        return
    summary = _run_deletions([request_id], dask_address, workers, purge=not dry_run)
    if as_json:
        console.print_json(json.dumps(summary, default=str))
    else:
        render.deletion_summary(console, summary)


@app.command()
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
    """Deletion requests with their due dates and status (overdue ones first)."""
    from governance.store.queries import deletion_requests

    _env(home, db)
    if process:
        summary = _run_deletions(None, dask_address, workers, purge=True)
        render.deletion_summary(console, summary)
    with _sessions(db, home)() as session:
        frame = deletion_requests(session)
    if as_json:
        console.print_json(frame.to_json(orient="records", date_format="iso"))
        return
    render.frame_table(console, frame, title="Deletion requests")


@app.command()
def fragility(
    model: Annotated[str, typer.Option(help="Model name.")],
    version: Annotated[str | None, typer.Option(help="Version (default: deployed).")] = None,
    budget: Annotated[int, typer.Option("--k", help="Deletion budget K.")] = 5,
    method: Annotated[str, typer.Option(help="approximate or exact.")] = "approximate",
    limit: Annotated[int | None, typer.Option(help="At most this many recourses.")] = None,
    home: Home = None,
    db: Db = None,
    dask_address: DaskAddress = None,
    workers: Workers = None,
) -> None:
    """Worst-case fragility of issued recourse: the fewest training deletions that would
    invalidate each one (k <= K), ahead of any request."""
    from flows.fragility import fragility_scan
    from flows.runtime import prefect_api, task_runner

    _env(home, db)
    reg = _registry(home)
    version = version or reg.deployed_version(model)
    flow = fragility_scan.with_options(task_runner=task_runner(dask_address, workers))
    with console.status(f"Fragility of recourse issued under {model} {version}"), prefect_api():
        summary = flow(model=model, version=version, budget=budget, method=method, limit=limit)
    c = summary["counts"]
    console.print(
        f"{c['recourses']:,} recourses under {model} {version}: {c['flippable']:,} can be "
        f"invalidated by at most {budget} deletions, {c['fragile']:,} "
        f"({c['fragile_share']:.1%}) by 1 or 2 ({method})."
    )


def _run_deletions(
    request_ids: list[str] | None, dask_address: str | None, workers: int | None, purge: bool
) -> dict[str, Any]:
    from flows.deletion import process_deletions
    from flows.runtime import prefect_api, task_runner

    flow = process_deletions.with_options(task_runner=task_runner(dask_address, workers))
    with console.status("Carrying out deletion requests"), prefect_api():
        return flow(request_ids=request_ids, purge=purge)


def _model_option(model: str | None) -> None:
    """Refuse a --model that no registry could hold, before it becomes a run key or a query."""
    if model is not None:
        from governance.registry import check_name

        check_name(model)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not a date; expected YYYY-MM-DD") from exc


def main() -> None:
    """Entry point: run the app, turning expected failures into one-line errors."""
    from rich.markup import escape

    from governance.exceptions import GovernanceError

    # A failed flow reaches the user once, as the line below (or, for an unexpected error, as
    # its traceback); Prefect's console copies, each with a traceback, would bury it. Set in
    # the environment so local Dask workers inherit it; Prefect's API handler still records
    # every log, and an operator's own setting wins.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    try:
        # Without standalone mode click returns, rather than raises, a typer.Exit's code.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except GovernanceError as exc:
        err.print(f"[bold red]error:[/] {escape(_one_line(exc))}")
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.BadParameter as exc:  # usage errors: click's own message, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - last line of defence for a clean message
        import sqlalchemy as sa

        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # other click usage errors
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, sa.exc.OperationalError):
            err.print(
                f"[bold red]error:[/] the store could not be reached: {escape(_one_line(exc.orig))}"
            )
            sys.exit(2)
        if os.environ.get("GOVERNANCE_DEBUG"):
            raise
        # A bug, not bad input: one line for the user, the traceback on request.
        err.print(
            f"[bold red]internal error:[/] {escape(type(exc).__name__)}: {escape(_one_line(exc))}"
            " (set GOVERNANCE_DEBUG=1 for the traceback)"
        )
        sys.exit(1)


def _one_line(exc: BaseException | None) -> str:
    """An error's text on one line: its first line, which names the problem."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


if __name__ == "__main__":
    main()
