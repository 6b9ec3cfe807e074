"""`govern deploy` and `govern redeploy-check`: a new version and what it invalidates."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from govern_cli import render
from govern_cli.app import (
    EXIT_CHECK_FAILED,
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
    fail,
    ledger_url,
    registry,
    sessions,
    ui,
)

DEPLOY_VIA = "govern deploy"
CHECK_VIA = "govern redeploy-check"


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
            help="--check: run the redeploy check in this process (the default when no Prefect "
            "server is configured). --no-check: only propose the version; the redeploy-check "
            "deployment on the Prefect server ($PREFECT_API_URL) checks it and deploys it if "
            "the gate passes.",
        ),
    ] = None,
    gate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Largest acceptable invalidation rate.")
    ] = 0.10,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Deploy even though the check failed (or, if it never ran, whatever it "
            "finds); needs --reason, and the ledger records who and why.",
        ),
    ] = False,
    reason: Annotated[
        str | None, typer.Option(help="Why; recorded with the deployment (needed with --force).")
    ] = None,
    dask_address: DaskAddress = None,
    workers: Workers = None,
    as_json: AsJson = False,
) -> None:
    """Check a registered version against the recourse already issued and deploy it only if
    the gate passes; exits 3, deploying nothing, when it fails."""
    from governance import config
    from governance.store import deployments

    if force and not (reason or "").strip():
        fail("--force needs --reason TEXT: the ledger records why")
    served = bool(os.environ.get("PREFECT_API_URL"))
    if check is False and not served and not force:
        fail(
            "--no-check leaves the check to a Prefect server's redeploy-check deployment, but "
            "$PREFECT_API_URL is not set; use --check"
        )
    out = ui(as_json)
    env(home, db)
    registry(home).manifest(name, version)  # a version the registry does not hold stops here
    ledger_url(db, home, write=True)
    who = config.actor()
    with sessions(db, home, write=True).begin() as session:
        current = deployments.deployed_version(session, name)
        if current == version:
            out.print(f"{name} {version} is already the deployed version; nothing to do")
            if as_json:
                emit_json({"model": name, "version": version, "deployed": True, "changed": False})
            return
        deployments.propose_candidate(
            session, name, version, actor=who, via=DEPLOY_VIA, reason=reason
        )
    if force:
        _force(name, version, current, who, reason or "", gate, dask_address, workers, as_json)
        return
    if check is False or (check is None and served):
        from flows.events import emit_model_proposed

        emitted = emit_model_proposed(name, version, current, gate, who)
        out.print(
            f"proposed {name} {version} (deployed now: {current or 'none'}); emitted "
            "governance.model.proposed: the redeploy-check deployment checks it and deploys it "
            "only if the gate passes"
        )
        if as_json:
            emit_json(
                {"model": name, "version": version, "proposed": True, "deployed": False,
                 "previous_version": current, "event_emitted": emitted}
            )  # fmt: skip
        return
    summary = _redeploy(
        name, version, gate, dask_address, workers, as_json=as_json, deploy=True, actor=who,
        via=DEPLOY_VIA,
    )
    if summary.get("deployed"):
        out.print(
            f"[bold]deployed {name} {version}[/] (previously {current or 'none'}), by {who}"
            + ("; emitted governance.model.deployed" if served else "")
        )


def _force(
    name: str,
    version: str,
    current: str | None,
    who: str,
    reason: str,
    gate: float,
    dask_address: str | None,
    workers: int | None,
    as_json: bool,
) -> None:
    """Deploy over the gate: the newest check of the version is what is overridden (run now
    if it never ran, so the ledger holds what the deployment breaks)."""
    from flows.events import emit_model_deployed
    from governance.store import deployments

    with sessions(None, None)() as session:
        last = deployments.latest_check(session, name, version)
    check = None
    if last is None:
        check = _redeploy(
            name, version, gate, dask_address, workers, as_json=as_json, actor=who,
            via=DEPLOY_VIA, exit_on_failure=False, emit=False,
        )
    with sessions(None, None).begin() as session:
        last = deployments.latest_check(session, name, version)
        forced = not last.passed
        event = deployments.record_deployment(
            session, name, version, actor=who, via=DEPLOY_VIA, forced=forced, reason=reason
        )
        record = {
            "model": name,
            "version": version,
            "previous_version": current,
            "forced": forced,
            "actor": who,
            "reason": reason,
            "check_run_id": event.check_run_id,
            "invalidation_rate": last.invalidation_rate,
            "gate": last.gate,
            "at": event.at.isoformat(),
        }
    record["event_emitted"] = emit_model_deployed(name, version, current, forced=forced, actor=who)
    if as_json:
        emit_json({**record, "check": check})
        return
    rate = last.invalidation_rate
    verdict = (
        f"over the failed check of run {last.check_run_id} "
        f"({rate:.1%} invalidated, gate {last.gate:.1%})"
        if forced and rate is not None
        else f"after the passed check of run {last.check_run_id}"
    )
    console.print(
        f"[bold]deployed {name} {version}[/] {verdict}, by {who}: {reason} "
        f"(previously {current or 'none'}); applicants to re-contact: SELECT * FROM v_recontact"
    )


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
    """Re-check issued recourse and recent denials under a version, by hand, without deploying
    it; exits 3 when the invalidation rate is above the gate."""
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
        via=CHECK_VIA,
    )


def _redeploy(
    name: str,
    version: str,
    gate: float,
    dask_address: str | None,
    workers: int | None,
    as_json: bool = False,
    exit_on_failure: bool = True,
    emit: bool = True,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run the redeploy check flow and print its summary (with ``as_json``, as JSON on stdout
    unless ``emit`` is off: the caller then includes it in its own); a failed gate exits 3
    unless ``exit_on_failure`` is off."""
    from flows.redeploy import redeploy_check
    from flows.runtime import prefect_api, task_runner
    from governance.exceptions import GateFailed

    flow = redeploy_check.with_options(task_runner=task_runner(dask_address, workers))
    with ui(as_json).status(f"Redeploy check of {name} {version}"), prefect_api():
        try:
            summary = flow(model=name, version=version, gate=gate, **kwargs)
        except GateFailed as exc:
            summary = exc.summary
    from governance.store.queries import recontact

    with sessions(None, None)() as session:
        summary["recontact_sample"] = recontact(session, summary["run_id"], limit=8)
    if as_json:
        if emit:
            emit_json(summary)
    else:
        render.redeploy_summary(console, summary, codebook_for(None, name, version))
    if not summary["counts"]["passed"]:
        line = (
            f"[bold red]gate failed:[/] invalidation rate "
            f"{summary['counts']['invalidation_rate']:.1%} is above {gate:.1%}"
        )
        if kwargs.get("deploy"):
            line += (
                f"; {name} {version} is not deployed (deploy it anyway: govern deploy {name} "
                f"{version} --force --reason TEXT)"
            )
        err.print(line)
        if exit_on_failure:
            raise typer.Exit(EXIT_CHECK_FAILED)
    return summary
