"""The `govern` application object, its shared options, and helpers every command uses.

Shared machinery for command modules (use these, so every command behaves alike):

- ``console`` / ``err`` / ``ui(as_json)``: where output goes; ``AsJson`` and ``emit_json`` for
  ``--json``; ``fail(message, code)`` and the ``EXIT_*`` codes (govern_cli/output.py);
- ``sessions(db, home, write=...)`` / ``ledger_url``: the ledger, refused by name when a
  read-only command is pointed at one that does not exist;
- ``registry(home, must_exist=...)``: the model registry;
- ``codebook_for(home, name, version)``: display names and category labels of a version.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from govern_cli.output import (  # noqa: F401 - re-exported for the command modules
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    EXIT_CHECK_FAILED,
    EXIT_NOT_FOUND,
    CliError,
    console,
    emit_json,
    err,
    fail,
    ui,
)

app = typer.Typer(
    name="govern",
    help="Model governance for automated credit decisions: reasons, recourse, robustness and "
    "deletion checks, recorded in an auditable SQL ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(
    help="The model registry: register, list and show versions (`govern deploy` deploys one).",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models", rich_help_panel="Models and deployment")
explainers_app = typer.Typer(
    help="Explanation quality: compare and choose a version's explainer, and read the "
    "faithfulness, stability and agreement of the reasons given.",
    no_args_is_help=True,
)
app.add_typer(explainers_app, name="explainers", rich_help_panel="Review")

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
AsJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON document on stdout instead of a table; messages go to stderr.",
    ),
]


def env(home: Path | None, db: str | None) -> None:
    """Pass --home/--db on through the environment, so Dask workers see them without the URL
    ever becoming a flow parameter (Prefect records those)."""
    from governance.config import normalise_db_url

    if home is not None:
        os.environ["GOVERNANCE_HOME"] = str(home.resolve())
    if db is not None:
        os.environ["GOVERNANCE_DB_URL"] = normalise_db_url(db)


def ledger_url(db: str | None, home: Path | None, *, write: bool = False) -> str:
    """The ledger's URL after checking it: a read-only command refuses a ledger that is not
    there (exit 1, naming the path); a writing command creates it, and the data folder's
    default ledger its folder too. A malformed URL, a missing folder or an unreachable or
    foreign database is one line and exit 2."""
    from governance import config
    from governance.store.engine import open_ledger

    url = config.db_url(db, home)
    open_ledger(url, create=write, make_folder=not config.db_url_given(db)).dispose()
    return url


def sessions(db: str | None, home: Path | None, *, write: bool = False):  # noqa: ANN202
    """Sessions on the checked ledger (see :func:`ledger_url`)."""
    from governance import config
    from governance.store import session_factory
    from governance.store.engine import open_ledger

    url = config.db_url(db, home)
    return session_factory(
        open_ledger(url, create=write, make_folder=not config.db_url_given(db))
    )


def run_nightly(
    night: date,
    model: str | None,
    address: str,
    chunk_rows: int,
    force: bool,
    log: str | None,
    score_mismatch: str = "flag",
    columns: dict[str, str] | None = None,
    wait: float = 0.0,
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
        wait=wait,
        **quality,
    )


def registry(home: Path | None, *, must_exist: bool = True):  # noqa: ANN202
    """The data folder's model registry; one that is not there is named (exit 1), unless the
    command is about to create it."""
    from governance import config
    from governance.registry.model_registry import ModelRegistry

    root = config.registry_dir(home)
    if must_exist and not root.is_dir():
        fail(
            f"no model registry at {root}: check --home (or $GOVERNANCE_HOME), or run "
            "`govern demo` or `govern models register` first",
            EXIT_NOT_FOUND,
        )
    return ModelRegistry(root)


def codebook_for(home: Path | None, name: str, version: str):  # noqa: ANN201
    """The codebook of a model version (empty when it has none or is not in the registry)."""
    from governance import config
    from governance.registry.codebook import Codebook, load_codebook

    try:
        return load_codebook(config.registry_dir(home), name, version)
    except FileNotFoundError:
        return Codebook()


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
