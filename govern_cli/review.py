"""Reading the ledger: a subject's history and recourse, and recent runs."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from govern_cli import render
from govern_cli.app import (
    AsJson,
    Db,
    Home,
    app,
    console,
    sessions,
)


@app.command(rich_help_panel="Review")
def history(
    subject: Annotated[str, typer.Option("--subject", help="Subject (applicant) id.")],
    diff: Annotated[
        bool,
        typer.Option(
            "--diff",
            help="For each pair of consecutive decisions, and each decision re-explained by a "
            "later model version: reasons that appeared, disappeared or changed rank, with "
            "their faithfulness, stability and agreement beside them.",
        ),
    ] = False,
    home: Home = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Every decision about one subject, with its model version and the reasons given."""
    from governance import config
    from governance.deletion.requests import load_or_create_salt, subject_hash
    from governance.store.queries import subject_history, tombstones_for

    if diff:
        _history_diff(subject, home, db, as_json)
        return
    with sessions(db, home)() as session:
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


def _history_diff(subject: str, home: Home, db: Db, as_json: bool) -> None:
    from governance.explain.compare import reason_changes, timeline_pairs
    from governance.store.quality import reason_timeline

    with sessions(db, home)() as session:
        states = reason_timeline(session, subject)
    pairs = [
        {
            "kind": kind,
            "from": old,
            "to": new,
            "changes": reason_changes(
                [r["feature"] for r in old["reasons"]], [r["feature"] for r in new["reasons"]]
            ),
        }
        for old, new, kind in timeline_pairs(states)
    ]
    if as_json:
        console.print_json(
            json.dumps({"subject_id": subject, "explanations": len(states), "pairs": pairs},
                       default=str)
        )  # fmt: skip
        return
    render.history_diff(console, subject, len(states), pairs)


@app.command(rich_help_panel="Review")
def recourse(
    subject: Annotated[str, typer.Option("--subject", help="Subject (applicant) id.")],
    home: Home = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """A denied subject's reasons with their responsiveness, whether any action can change the
    decision, and the recommended (minimal-cost) action."""
    from governance.store.queries import subject_recourse

    with sessions(db, home)() as session:
        records = subject_recourse(session, subject)
    if as_json:
        console.print_json(json.dumps({"subject_id": subject, "decisions": records}, default=str))
        return
    render.recourse(console, subject, records)


@app.command(rich_help_panel="Review")
def runs(
    limit: Annotated[int, typer.Option(help="How many runs to list.")] = 20,
    kind: Annotated[str | None, typer.Option(help="Only runs of this kind.")] = None,
    home: Home = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Recent runs with their status and counts."""
    from governance.store.queries import recent_runs

    with sessions(db, home)() as session:
        frame = recent_runs(session, limit, kind)
    if as_json:
        console.print_json(frame.to_json(orient="records", date_format="iso"))
        return
    render.frame_table(console, frame, title="Recent runs")
