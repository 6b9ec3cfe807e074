"""`govern demo` and `govern nightly`: the nightly governance flow, on the demo lender or a
night of your own."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from govern_cli import render
from govern_cli.app import (
    DaskAddress,
    Db,
    Home,
    Workers,
    app,
    check_model_option,
    console,
    env,
    parse_date,
    registry,
    run_nightly,
    sessions,
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
    days: Annotated[int, typer.Option(help="Nights of decision logs to write and run.")] = 3,
    rows: Annotated[int, typer.Option(help="Decisions per night.")] = 20_000,
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
) -> None:
    """Generate a synthetic lender, train and deploy model v1, and run the nightly flow on
    the last few nights."""
    from datetime import timedelta

    from governance.demo import prepare_demo

    env(home, db)
    first = parse_date(start_date) if start_date else None
    nights = [first + timedelta(days=i) for i in range(days)] if first else None
    with render.steps(console, "Preparing the demo lender") as say:
        setup = prepare_demo(
            home, days=days, rows_per_night=rows, nights=nights, progress=say, db=db
        )
    from flows.runtime import cluster, prefect_api

    summaries = []
    # One Prefect API and one Dask cluster for all nights: workers keep their loaded models.
    with render.progress(console) as bar, prefect_api(), cluster(dask_address, workers) as address:
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
    render.nightly_summary(console, summaries)
    _demo_notices(db, home, setup.model_name)
    subject = _example_subject(db, home)
    console.print(
        f"\nLedger: [bold]{render.safe_db(db, home)}[/]\nTry:\n"
        f"  govern runs\n"
        f"  govern history --subject {subject}\n"
        f"  govern recourse --subject {subject}\n"
        f"  govern explainers quality            # how faithful and stable the reasons are\n"
        f"  govern deploy {setup.model_name} v2      # the redeploy check gates the "
        f"retrained model\n"
        f"  govern forget --subject {_example_borrower(db, home)}   # a past borrower asks to be "
        f"erased\n"
        f"  govern deletions\n"
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
    chunk_rows: Annotated[int, typer.Option(help="Decisions per chunk task.")] = 5_000,
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
) -> None:
    """Run the nightly governance flow for one night (one run per night: --model limits the
    work, not the run)."""
    from governance import config
    from governance.intake.decision_log import parse_columns

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
    with console.status(f"Nightly governance run for {day}"):
        from flows.runtime import cluster, prefect_api

        with prefect_api(), cluster(dask_address, workers) as address:
            summary = run_nightly(
                day, model, address, chunk_rows, force, log, score_mismatch.value, mapping,
                **quality,
            )
    render.nightly_summary(console, [summary])
    if summary.get("status") == "empty":
        console.print(f"{day}: the decision log holds no rows for this night (run status empty)")
