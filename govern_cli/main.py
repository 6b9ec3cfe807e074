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
err = Console(stderr=True)

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
    dask_address: str | None,
    workers: int | None,
    chunk_rows: int,
    force: bool,
    log: str | None,
) -> dict[str, Any]:
    from flows.nightly import nightly_governance
    from flows.runtime import prefect_api, task_runner

    flow = nightly_governance.with_options(task_runner=task_runner(dask_address, workers))
    with prefect_api():
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
    summaries = []
    with render.progress(console) as bar:
        job = bar.add_task("Nightly governance runs", total=len(setup.nights))
        for night in setup.nights:
            bar.update(job, description=f"Nightly run for {night}")
            summaries.append(
                _run_nightly(night, setup.model_name, dask_address, workers, 5_000, False, None)
            )
            bar.advance(job)
    render.nightly_summary(console, summaries)
    subject = _example_subject(db, home)
    console.print(
        f"\nLedger: [bold]{render.safe_db(db, home)}[/]\nTry:  govern runs    "
        f"govern history --subject {subject}    govern models show {setup.model_name}"
    )


def _example_subject(db: str | None, home: Path | None) -> str:
    import sqlalchemy as sa

    from governance.store.models import Decision

    with _sessions(db, home)() as session:
        found = session.scalar(
            sa.select(Decision.subject_id)
            .where(Decision.decision == "denied")
            .order_by(Decision.decision_id)
            .limit(1)
        )
    return found or "S10000000"


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
    with console.status(f"Nightly governance run for {day}"):
        summary = _run_nightly(day, model, dask_address, workers, chunk_rows, force, log)
    render.nightly_summary(console, [summary])


@app.command()
def history(
    subject: Annotated[str, typer.Option("--subject", help="Subject (applicant) id.")],
    home: Home = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Every decision about one subject, with its model version and the reasons given."""
    from governance.store.queries import subject_history

    with _sessions(db, home)() as session:
        records = subject_history(session, subject)
    if as_json:
        console.print_json(json.dumps({"subject_id": subject, "decisions": records}, default=str))
        return
    render.history(console, subject, records)


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
def deploy(name: str, version: str, home: Home = None) -> None:
    """Mark a registered version as deployed."""
    manifest = _registry(home).deploy(name, version)
    console.print(f"deployed {manifest.name} {manifest.version} at {manifest.deployed_at}")


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not a date; expected YYYY-MM-DD") from exc


def main() -> None:
    """Entry point: run the app, turning expected failures into one-line errors."""
    from governance.exceptions import GovernanceError

    try:
        app(standalone_mode=False)
    except GovernanceError as exc:
        err.print(f"[bold red]error:[/] {exc}")
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
                f"[bold red]error:[/] the store could not be reached: "
                f"{str(exc.orig).splitlines()[0]}"
            )
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
