"""`govern deploy` and `govern redeploy-check`: a new version and what it invalidates."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from govern_cli import render
from govern_cli.app import (
    AsJson,
    DaskAddress,
    Db,
    Home,
    Workers,
    app,
    codebook_for,
    console,
    emit_json,
    env,
    err,
    ledger_url,
    registry,
    sessions,
    ui,
)


@app.command(rich_help_panel="Models and deployment")
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
    gate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Largest acceptable invalidation rate.")
    ] = 0.10,
    dask_address: DaskAddress = None,
    workers: Workers = None,
    as_json: AsJson = False,
) -> None:
    """Mark a registered version as deployed and emit governance.model.deployed; the redeploy
    check then re-validates every issued recourse under it."""
    from flows.events import emit_model_deployed

    out = ui(as_json)
    env(home, db)
    reg = registry(home)
    reg.manifest(name, version)  # an unknown version is named before anything changes
    ledger_url(db, home, write=True)
    history = reg.deployments(name)
    previous = history[-1]["version"] if history else None
    manifest = reg.deploy(name, version)
    out.print(
        f"deployed {manifest.name} {manifest.version} at {manifest.deployed_at} "
        f"(previously {previous or 'none'})"
    )
    emitted = emit_model_deployed(name, version, previous)
    if emitted:
        out.print("emitted governance.model.deployed: the redeploy-check deployment runs on it")
    result = {
        "model": name,
        "version": version,
        "deployed_at": manifest.deployed_at,
        "previous": previous,
        "event_emitted": emitted,
        "check": None,
    }
    if check or (check is None and not emitted):
        _redeploy(name, version, gate, dask_address, workers, as_json=as_json, result=result)
    elif as_json:
        emit_json(result)


@app.command("redeploy-check", rich_help_panel="Models and deployment")
def redeploy_check_cmd(
    name: str,
    version: str,
    home: Home = None,
    db: Db = None,
    gate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Largest acceptable invalidation rate.")
    ] = 0.10,
    window_months: Annotated[int, typer.Option(help="Recourse issued this recently is open.")] = 25,
    recent_days: Annotated[int, typer.Option(help="Denials this recent are re-examined.")] = 90,
    variants: Annotated[int, typer.Option(help="Retrained variants for forward validity.")] = 10,
    dask_address: DaskAddress = None,
    workers: Workers = None,
    as_json: AsJson = False,
) -> None:
    """Re-check issued recourse and recent denials under a version, by hand; exits 3 when the
    invalidation rate is above the gate."""
    env(home, db)
    registry(home).manifest(name, version)
    ledger_url(db, home, write=True)
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
    result: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Run the redeploy check and print it (inside ``result`` under "check", when given)."""
    from flows.redeploy import redeploy_check
    from flows.runtime import prefect_api, task_runner

    flow = redeploy_check.with_options(task_runner=task_runner(dask_address, workers))
    with ui(as_json).status(f"Redeploy check of {name} {version}"), prefect_api():
        summary = flow(model=name, version=version, gate=gate, **kwargs)
    from governance.store.queries import recontact

    with sessions(None, None)() as session:
        summary["recontact_sample"] = recontact(session, summary["run_id"], limit=8)
    if as_json:
        emit_json(summary if result is None else {**result, "check": summary})
    else:
        render.redeploy_summary(console, summary, codebook_for(None, name, version))
    if not summary["counts"]["passed"]:
        err.print(
            f"[bold red]gate failed:[/] invalidation rate "
            f"{summary['counts']['invalidation_rate']:.1%} is above {gate:.1%}"
        )
        raise typer.Exit(3)
