"""`govern demo` and `govern nightly`: the nightly governance flow, on the demo lender or a
night of your own."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from govern_cli import render
from govern_cli.app import (
    EXIT_BUSY,
    AsJson,
    DaskAddress,
    Db,
    Home,
    Workers,
    app,
    check_model_option,
    console,
    emit_json,
    env,
    fail,
    ledger_url,
    parse_date,
    run_nightly,
    sessions,
    ui,
)


@app.command(rich_help_panel="Nightly runs")
def demo(
    home: Home = None,
    db: Db = None,
    days: Annotated[
        int, typer.Option(min=1, max=31, help="Nights of decision logs to write and run.")
    ] = 3,
    rows: Annotated[int, typer.Option(min=50, help="Decisions per night.")] = 20_000,
    start_date: Annotated[
        str | None,
        typer.Option(
            "--start-date",
            help="First night, YYYY-MM-DD (default: the nights ending yesterday, UTC). Pinned "
            "nights make two demo ledgers comparable.",
        ),
    ] = None,
    dask_address: DaskAddress = None,
    workers: Workers = None,
    as_json: AsJson = False,
) -> None:
    """Generate a synthetic lender, train and deploy model v1, and run the nightly flow on
    the last few nights; writes the tour's nights and applicants to tour.env in the data
    folder."""
    from datetime import timedelta

    from governance.demo import prepare_demo, write_tour

    out = ui(as_json)
    env(home, db)
    first = parse_date(start_date) if start_date else None
    nights = [first + timedelta(days=i) for i in range(days)] if first else None
    ledger_url(db, home, write=True)
    with render.steps(out, "Preparing the demo lender") as say:
        setup = prepare_demo(home, days=days, rows_per_night=rows, nights=nights, progress=say)
    from flows.runtime import cluster, prefect_api

    summaries = []
    # One Prefect API and one Dask cluster for all nights: workers keep their loaded models.
    with render.progress(out) as bar, prefect_api(), cluster(dask_address, workers) as address:
        job = bar.add_task("Nightly governance runs", total=len(setup.nights))
        for night in setup.nights:
            bar.update(job, description=f"Nightly run for {night}")
            summaries.append(run_nightly(night, setup.model_name, address, 5_000, False, None))
            bar.advance(job)
    subject, borrower = _example_subject(db, home), _example_borrower(db, home)
    tour = write_tour(home, setup.nights, subject, borrower)
    if as_json:
        emit_json(
            {
                "ledger": render.safe_db(db, home),
                "home": setup.home,
                "tour_file": tour,
                "nights": summaries,
                "denied_subject": subject,
                "past_borrower": borrower,
            }
        )
        return
    render.nightly_summary(console, summaries)
    shown = os.path.relpath(tour) if tour.is_relative_to(Path.cwd()) else str(tour)
    console.print(f"\nLedger: [bold]{render.safe_db(db, home)}[/]")
    console.print(f"The README's tour reads its nights and applicants from {shown}; try:")
    console.print(
        f"  govern runs\n"
        f"  govern history --subject {subject}\n"
        f"  govern recourse --subject {subject}\n"
        f"  govern deploy {setup.model_name} v2   # exits 3: the redeploy check fails\n"
        f"  govern forget --subject {borrower}   # a past borrower asks to be erased"
    )


def _example_subject(db: str | None, home: Path | None) -> str:
    """A denied applicant who was issued recourse, to show in the hints."""
    from governance.store.queries import example_denied_subject

    with sessions(db, home)() as session:
        return example_denied_subject(session) or "S10000000"


def _example_borrower(db: str | None, home: Path | None) -> str:
    """An applicant whose earlier loan is in the training data, so erasing them retrains."""
    from governance.store.queries import example_past_borrower

    with sessions(db, home)() as session:
        return example_past_borrower(session) or "S00000000"


@app.command(rich_help_panel="Nightly runs")
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
    chunk_rows: Annotated[int, typer.Option(min=1, help="Decisions per chunk task.")] = 5_000,
    force: Annotated[bool, typer.Option(help="Recompute chunks already committed.")] = False,
    wait: Annotated[
        int,
        typer.Option(
            min=0,
            help="Seconds to wait for another run of the same night to finish (default: "
            "refuse at once, exit 4, naming it).",
        ),
    ] = 0,
    as_json: AsJson = False,
) -> None:
    """Run the nightly governance flow for one night. The ledger, the night's log and the
    model are checked first, so bad input is refused in seconds and leaves the ledger as it
    was."""
    from governance.preflight import check_nightly

    out = ui(as_json)
    env(home, db)
    day = parse_date(night)
    check_model_option(model)
    ledger_url(db, home, write=True)
    from governance.exceptions import RunInProgress

    try:
        checked = check_nightly(day, model, _text(home), db, log, wait=wait)
    except RunInProgress as exc:
        fail(f"{exc}; --wait SECONDS waits for it", EXIT_BUSY)
    with out.status(f"Nightly governance run for {day} ({checked['rows']:,} decisions)"):
        from flows.runtime import cluster, prefect_api

        with prefect_api(), cluster(dask_address, workers) as address:
            summary = run_nightly(day, model, address, chunk_rows, force, log, wait)
    if as_json:
        emit_json(summary)
        return
    render.nightly_summary(console, [summary])


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)
