"""Reading the ledger: a subject's history and recourse, and recent runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from govern_cli import render
from govern_cli.app import (
    EXIT_NOT_FOUND,
    AsJson,
    Db,
    Home,
    app,
    codebook_for,
    console,
    emit_json,
    fail,
    sessions,
)


def codebooks(home: Path | None, records: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """The codebook of each model version the records name."""
    keys = {(r["model"], r["model_version"]) for r in records}
    return {k: codebook_for(home, *k) for k in keys}


def labelled(records: list[dict[str, Any]], books: dict[tuple[str, str], Any]) -> list[dict]:
    """Records with display names and category labels beside the raw names and codes, for
    --json readers (``feature_label``, ``value_label``, ``from_label``, ``to_label``)."""
    out = []
    for r in records:
        book = books.get((r["model"], r["model_version"]))
        if not book:
            out.append(r)
            continue
        r = dict(r)
        r["reasons"] = [
            {
                **x,
                "feature_label": book.feature(x["feature"]),
                "value_label": book.value_label(x["feature"], x["value"]),
            }
            for x in r.get("reasons") or []
        ]
        if r.get("responsive_ranking"):
            r["responsive_ranking"] = [
                {**x, "feature_label": book.feature(x["feature"])} for x in r["responsive_ranking"]
            ]
        if r.get("recourse"):
            r["recourse"] = {
                **r["recourse"],
                "changes": [
                    {
                        **ch,
                        "feature_label": book.feature(ch["feature"]),
                        "from_label": book.value_label(ch["feature"], ch["from"]),
                        "to_label": book.value_label(ch["feature"], ch["to"]),
                    }
                    for ch in r["recourse"]["changes"]
                ],
            }
        out.append(r)
    return out


def _cost_units(records: list[dict[str, Any]]) -> None:
    """Each issued recourse's cost with its unit spelled out (JSON readers get the words)."""
    from governance.recourse.costs import cost_unit

    for r in records:
        rec = r.get("recourse")
        if rec:
            rec["cost_unit"] = cost_unit(rec.get("cost_kind"), rec.get("category_cost"))


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
    """Every decision about one subject, with its model version and the reasons given; exits 1
    when the ledger holds neither a decision nor a tombstone for the subject."""
    from governance import config
    from governance.deletion.requests import load_or_create_salt, subject_hash
    from governance.store.queries import subject_history, tombstones_for

    if diff:
        _history_diff(subject, home, db, as_json)
        return
    salt = config.salt_path(home)
    with sessions(db, home)() as session:
        records = subject_history(session, subject)
        # Without a salt nobody was ever erased here, and a read must not create one.
        graves = (
            tombstones_for(session, subject_hash(subject, load_or_create_salt(salt)))
            if salt.exists()
            else []
        )
    if not records and not graves:
        fail(f"no decisions recorded for subject {subject!r}", EXIT_NOT_FOUND)
    books = codebooks(home, records)
    if as_json:
        emit_json(
            {"subject_id": subject, "decisions": labelled(records, books), "tombstones": graves}
        )
        return
    render.history(console, subject, records, graves, books)


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
        emit_json({"subject_id": subject, "explanations": len(states), "pairs": pairs})
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
    decision, and the recommended (minimal-cost) action; exits 1 for a subject the ledger
    holds no decision about."""
    from governance.store.queries import subject_history, subject_recourse

    with sessions(db, home)() as session:
        records = subject_recourse(session, subject)
        decided = len(subject_history(session, subject))
    if not decided:
        fail(f"no decisions recorded for subject {subject!r}", EXIT_NOT_FOUND)
    _cost_units(records)
    books = codebooks(home, records)
    if as_json:
        emit_json({"subject_id": subject, "decisions": labelled(records, books)})
        return
    if not records:
        console.print(
            f"Subject {escape(subject)}: {decided} decision(s), none denied; "
            "nothing to explain."
        )
        return
    render.recourse(console, subject, records, books)


@app.command(rich_help_panel="Review")
def runs(
    limit: Annotated[int, typer.Option(min=1, help="How many runs to list.")] = 20,
    kind: Annotated[
        str | None,
        typer.Option(help="Only runs of this kind: nightly, redeploy, deletion or fragility."),
    ] = None,
    wide: Annotated[
        bool, typer.Option("--wide", help="Every count and timing, not only the essentials.")
    ] = False,
    home: Home = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Recent runs: id, kind, night, model, status, decisions, denials, quarantined rows and
    wall time (--wide for every count)."""
    from governance.store.queries import recent_runs, run_kinds
    from governance.store.writes import RUN_KINDS

    with sessions(db, home)() as session:
        if kind is not None:
            known = sorted(set(RUN_KINDS) | set(run_kinds(session)))
            if kind not in known:
                fail(f"--kind {kind!r} is not a run kind; expected one of {', '.join(known)}")
        frame = recent_runs(session, limit, kind)
    if as_json:
        emit_json(frame)
        return
    render.runs_table(console, frame, wide=wide)
