"""The `govern` application object, its shared options, and helpers every command uses."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

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
app.add_typer(models_app, name="models", rich_help_panel="Models and deployment")
explainers_app = typer.Typer(
    help="Explanation quality: compare and choose a version's explainer, and read the "
    "faithfulness, stability and agreement of the reasons given.",
    no_args_is_help=True,
)
app.add_typer(explainers_app, name="explainers", rich_help_panel="Review")

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


def env(home: Path | None, db: str | None) -> None:
    """Pass --home/--db on through the environment, so Dask workers see them without the URL
    ever becoming a flow parameter (Prefect records those)."""
    if home is not None:
        os.environ["GOVERNANCE_HOME"] = str(home.resolve())
    if db is not None:
        os.environ["GOVERNANCE_DB_URL"] = db


def sessions(db: str | None, home: Path | None):  # noqa: ANN202
    from governance import config
    from governance.store import init_store, session_factory

    return session_factory(init_store(config.db_url(db, home)))


def run_nightly(
    night: date,
    model: str | None,
    address: str,
    chunk_rows: int,
    force: bool,
    log: str | None,
    score_mismatch: str = "flag",
    columns: dict[str, str] | None = None,
    **quality: Any,
) -> dict[str, Any]:
    """One nightly run on the cluster at ``address``; the caller holds the Prefect API.
    ``quality``: the flow's ``faithfulness``, ``stability_sample`` and ``agreement_sample``."""
    from prefect_dask import DaskTaskRunner

    from flows.nightly import nightly_governance

    flow = nightly_governance.with_options(task_runner=DaskTaskRunner(address=address))
    return flow(
        night=night,
        model=model,
        log=log,
        chunk_rows=chunk_rows,
        force=force,
        score_mismatch=score_mismatch,
        columns=columns,
        **quality,
    )


def registry(home: Path | None):  # noqa: ANN202
    from governance import config
    from governance.registry.model_registry import ModelRegistry

    return ModelRegistry(config.registry_dir(home))


def deployed_version_or_exit(name: str, db: str | None, home: Path | None) -> str:
    """The deployed version of ``name`` as the ledger records it; exit 1 with one line when
    none is."""
    from governance.store import deployments

    with sessions(db, home)() as session:
        version = deployments.deployed_version(session, name)
    if version is None:
        err.print(f"model {name!r} has no deployed version in the ledger; name a version")
        raise typer.Exit(1)
    return version


def check_model_option(model: str | None) -> None:
    """Refuse a --model that no registry could hold, before it becomes a run key or a query."""
    if model is not None:
        from governance.registry.model_registry import check_name

        check_name(model)


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not a date; expected YYYY-MM-DD") from exc
