"""`govern demo` and `govern nightly`: the nightly governance flow, on the demo lender or a
night of your own."""

from __future__ import annotations

import os
from enum import StrEnum
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
    registry,
    run_nightly,
    sessions,
    ui,
)

# The demo measures stability on its last night only, on a sample small enough to take a few
# seconds (the nightly default is 1,000). It skips the agreement with the permutation
# explainer (nightly default 100): shap compiles that explainer on first use in each worker,
# which alone takes longer than a demo night.
DEMO_STABILITY_SAMPLE = 50
DEMO_AGREEMENT_SAMPLE = 0


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
        setup = prepare_demo(
            home, days=days, rows_per_night=rows, nights=nights, progress=say, db=db
        )
    from flows.runtime import cluster, prefect_api

    summaries = []
    # One Prefect API and one Dask cluster for all nights: workers keep their loaded models.
    with render.progress(out) as bar, prefect_api(), cluster(dask_address, workers) as address:
        job = bar.add_task("Nightly governance runs", total=len(setup.nights))
        for night in setup.nights:
            bar.update(job, description=f"Nightly run for {night}")
            last = night == setup.nights[-1]
            summaries.append(
                run_nightly(
                    night,
                    setup.model_name,
                    address,
                    5_000,
                    False,
                    None,
                    stability_sample=DEMO_STABILITY_SAMPLE if last else 0,
                    agreement_sample=DEMO_AGREEMENT_SAMPLE if last else 0,
                )
            )
            bar.advance(job)
    _demo_notices(db, home, setup.model_name)
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
        f"  govern explainers quality            # how faithful and stable the reasons are\n"
        f"  govern deploy {setup.model_name} v2   # exits 3: the redeploy check fails\n"
        f"  govern forget --subject {borrower}   # a past borrower asks to be erased\n"
        f"  govern serve                 # the review pages in a browser\n"
        f"  govern notices --overdue     # denials owed an adverse-action notice"
    )


def _demo_notices(db: str | None, home: Path | None, model: str) -> None:
    """Notice settings and reviewed reason statements of the demo lender (every version)."""
    from datetime import UTC, datetime

    from governance.demo import DEMO_REVIEWER, DEMO_STATEMENTS, write_notice_settings
    from governance.store import notices
    from governance.store.writes import ensure_model_version

    write_notice_settings(home)
    reg = registry(home)
    now = datetime.now(UTC)
    with sessions(db, home).begin() as session:
        for version in reg.versions(model):
            mv_id = ensure_model_version(session, reg.manifest(model, version))
            if notices.statements(session, mv_id):
                continue
            for (feature, direction), text in DEMO_STATEMENTS.items():
                notices.set_statement(session, mv_id, feature, direction, text, DEMO_REVIEWER, now)


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


class ScoreMismatch(StrEnum):
    """What a nightly run does with decisions the registered model does not reproduce."""

    flag = "flag"
    quarantine = "quarantine"
    fail = "fail"


@app.command(rich_help_panel="Nightly runs")
def nightly(
    night: Annotated[str, typer.Option("--date", help="UTC decision date, YYYY-MM-DD.")],
    model: Annotated[str | None, typer.Option(help="Only this model's decisions.")] = None,
    home: Home = None,
    db: Db = None,
    log: Annotated[
        str | None,
        typer.Option(
            help="Decision log: a folder of date partitions or one file, csv:PATH or "
            "parquet:PATH to declare its format, or table:<name> for a SQL table "
            "($GOVERNANCE_LOG_URL)."
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(help="Map the log's column names: decision_id=app_id,subject_id=cust."),
    ] = None,
    dask_address: DaskAddress = None,
    workers: Workers = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Decisions per chunk task.")] = 5_000,
    force: Annotated[bool, typer.Option(help="Recompute chunks already committed.")] = False,
    score_mismatch: Annotated[
        ScoreMismatch,
        typer.Option(
            "--score-mismatch",
            help="Logged decisions the registered model does not reproduce: flag (explain "
            "them, count them apart, issue no recourse), quarantine, or fail the run.",
        ),
    ] = ScoreMismatch.flag,
    faithfulness: Annotated[
        bool,
        typer.Option(
            "--faithfulness/--no-faithfulness",
            help="PGI and PGU of every denial's reasons, with a random control.",
        ),
    ] = True,
    stability_sample: Annotated[
        str | None,
        typer.Option(
            help="Denials whose explanations get RIS and ROS: a number, or 'all'. Default: "
            "$GOVERNANCE_STABILITY_SAMPLE or 1000.",
        ),
    ] = None,
    agreement_sample: Annotated[
        int | None,
        typer.Option(
            help="Denials explained again by the permutation explainer. Default: "
            "$GOVERNANCE_AGREEMENT_SAMPLE or 100.",
        ),
    ] = None,
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
    """Run the nightly governance flow for one night (one run per night: --model limits the
    work, not the run). The ledger, the night's log and the model are checked first, so bad
    input is refused in seconds and leaves the ledger as it was."""
    from governance import config
    from governance.exceptions import RunInProgress
    from governance.intake.decision_log import parse_columns
    from governance.preflight import check_nightly

    out = ui(as_json)
    env(home, db)
    day = parse_date(night)
    check_model_option(model)
    mapping = parse_columns(columns) or None
    quality = {
        "faithfulness": faithfulness,
        # Checked here, so a bad value is one line before any work starts.
        "stability_sample": "all"
        if config.stability_sample(stability_sample) is None
        else config.stability_sample(stability_sample),
        "agreement_sample": config.agreement_sample(agreement_sample),
    }
    ledger_url(db, home, write=True)
    try:
        checked = check_nightly(day, model, _text(home), db, log, mapping, wait=wait)
    except RunInProgress as exc:
        fail(f"{exc}; --wait SECONDS waits for it", EXIT_BUSY)
    with out.status(f"Nightly governance run for {day} ({checked['rows']:,} decisions)"):
        from flows.runtime import cluster, prefect_api

        with prefect_api(), cluster(dask_address, workers) as address:
            summary = run_nightly(
                day, model, address, chunk_rows, force, log, score_mismatch.value, mapping,
                wait=wait, **quality,
            )
    if as_json:
        emit_json(summary)
        return
    render.nightly_summary(console, [summary])
    if summary.get("status") == "empty":
        console.print(f"{day}: the decision log holds no rows for this night (run status empty)")


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)
