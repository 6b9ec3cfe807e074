"""Adverse-action notices: `govern reasons` (the reviewed statement table), `govern notice`
(issue one) and `govern notices` (issued, or past due)."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from govern_cli import render
from govern_cli.app import AsJson, Db, Home, app, console, emit_json, err, sessions

reasons_app = typer.Typer(
    help="The reviewed reason statements of a model version (the only way to edit them).",
    no_args_is_help=True,
)
app.add_typer(reasons_app, name="reasons", rich_help_panel="Notices")

Model = Annotated[str, typer.Option("--model", help="Model name.")]
Version = Annotated[str, typer.Option("--version", help="Model version.")]


def _version_id(session, name: str, version: str, home: Path | None) -> int:  # noqa: ANN001
    """The ledger id of a model version, recording it from the registry on first use."""
    from govern_cli.app import registry
    from governance.exceptions import UnknownModelVersion
    from governance.store import notices as store
    from governance.store.writes import ensure_model_version

    found = store.model_version_id(session, name, version)
    if found is not None:
        return found
    try:
        manifest = registry(home).manifest(name, version)
    except (UnknownModelVersion, FileNotFoundError) as exc:
        raise UnknownModelVersion(
            f"model {name} {version} is neither in the ledger nor in the registry"
        ) from exc
    return ensure_model_version(session, manifest)


def _features(session, mv_id: int) -> dict[str, dict]:  # noqa: ANN001
    from governance.store.models import ModelVersion

    mv = session.get(ModelVersion, mv_id)
    return {f["name"]: f for f in (mv.manifest or {}).get("features", [])}


@reasons_app.command("set")
def reasons_set(
    model: Model,
    version: Version,
    reviewer: Annotated[str, typer.Option(help="Who reviewed the statement(s).")],
    feature: Annotated[str | None, typer.Option(help="Feature the statement explains.")] = None,
    statement: Annotated[
        str | None, typer.Option(help='The specific reason, e.g. "Income insufficient".')
    ] = None,
    direction: Annotated[
        str,
        typer.Option(
            help="any, high (the value is too high) or low; a notice uses the direction the "
            "action set gives and falls back to any."
        ),
    ] = "any",
    file: Annotated[
        Path | None,
        typer.Option(help="CSV with columns feature, direction, statement: set them all."),
    ] = None,
    home: Home = None,
    db: Db = None,
) -> None:
    """Record reviewed statements (one, or a CSV of them); each supersedes the current
    statement for its feature and direction, which is kept with its reviewer and date."""
    from governance.exceptions import NoticeError
    from governance.notices import DIRECTIONS, lint_reasons
    from governance.store import notices as store

    if file is not None:
        with file.open(newline="") as fh:
            rows = [
                {k: (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(fh)
            ]
    elif feature and statement:
        rows = [{"feature": feature, "direction": direction, "statement": statement}]
    else:
        raise NoticeError("give --feature and --statement, or --file with several")
    if not reviewer.strip():
        raise NoticeError("--reviewer must name who reviewed the statements")
    now = datetime.now(UTC)
    with sessions(db, home).begin() as session:
        mv_id = _version_id(session, model, version, home)
        known = _features(session, mv_id)
        for i, row in enumerate(rows, 1):
            f, d, text = row.get("feature", ""), row.get("direction") or "any", row.get("statement")
            where = f" (row {i} of {file})" if file else ""
            if f not in known:
                raise NoticeError(f"{f!r} is not a feature of {model} {version}{where}")
            if d not in DIRECTIONS:
                raise NoticeError(
                    f"direction {d!r}{where}; expected one of {', '.join(DIRECTIONS)}"
                )
            if not text:
                raise NoticeError(f"empty statement for {f}{where}")
            store.set_statement(session, mv_id, f, d, text, reviewer.strip(), now)
            verdict = lint_reasons([{"rank": 1, "feature": f, "direction": d}], {(f, d): text})
            for problem in verdict.problems:
                err.print(f"warning: the reason linter will refuse notices using this: {problem}")
    console.print(
        f"recorded {len(rows)} statement(s) for {model} {version}, reviewed by {reviewer}"
    )


@reasons_app.command("list")
def reasons_list(
    model: Model,
    version: Version,
    history: Annotated[bool, typer.Option(help="Include superseded statements.")] = False,
    home: Home = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """The version's reviewed statements, and which features have none yet."""
    import pandas as pd

    from governance.store import notices as store

    with sessions(db, home)() as session:
        mv_id = _version_id(session, model, version, home)
        rows = store.statements(session, mv_id, history=history)
        unmapped = sorted(set(_features(session, mv_id)) - {r["feature"] for r in rows})
    if as_json:
        emit_json({"statements": rows, "unmapped": unmapped})
        return
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["reviewed_at"] = frame["reviewed_at"].map(lambda t: f"{t:%Y-%m-%d}")
        cols = ["feature", "direction", "statement", "reviewer", "reviewed_at"]
        if history:
            frame["superseded"] = frame["superseded_at"].map(
                lambda t: "" if t is None or pd.isna(t) else f"{t:%Y-%m-%d}"
            )
            cols.append("superseded")
        frame = frame[cols]
    render.frame_table(console, frame, title=f"Reason statements of {model} {version}")
    if unmapped:
        console.print(f"no statement yet (notices citing these are refused): {', '.join(unmapped)}")


@app.command(rich_help_panel="Notices")
def notice(
    decision: Annotated[str, typer.Option("--decision", help="Decision id of a denial.")],
    fmt: Annotated[str, typer.Option("--format", help="html, pdf or txt.")] = "txt",
    kind: Annotated[
        str,
        typer.Option(
            help="credit (Regulation B adverse-action notice) or gdpr (Art. 22 / 15(1)(h) letter)."
        ),
    ] = "credit",
    out: Annotated[Path | None, typer.Option(help="File to write (default: print).")] = None,
    home: Home = None,
    db: Db = None,
) -> None:
    """Issue the notice for a denial and record it (text, hash, due date); asking again shows
    the notice as issued. Refused when a reason has no reviewed statement, names a protected
    attribute or is generic."""
    from govern_cli.web.documents import pdf_bytes
    from govern_cli.web.notices import issue
    from governance import config
    from governance.exceptions import NoticeError
    from governance.fileio import atomic_write_bytes, atomic_write_text
    from governance.notices import load_settings, settings_path

    if fmt not in ("html", "pdf", "txt"):
        raise NoticeError(f"--format {fmt!r}; expected html, pdf or txt")
    if kind not in ("credit", "gdpr"):
        raise NoticeError(f"--kind {kind!r}; expected credit or gdpr")
    if fmt == "pdf" and out is None:
        raise NoticeError("--format pdf needs --out FILE")
    settings = load_settings(settings_path(config.home(home)))
    with sessions(db, home).begin() as session:
        record, new = issue(session, decision, settings, kind=kind, now=datetime.now(UTC))
    for flag in record["flags"]:
        err.print(f"flag: {flag}")
    body = {"txt": record["text"], "html": record["html"]}.get(fmt)
    if out is None:
        sys.stdout.write(body)
    elif fmt == "pdf":
        atomic_write_bytes(out, pdf_bytes(record["html"]))
    else:
        atomic_write_text(out, body)
    state = "issued" if new else f"already issued on {record['issued_at']:%Y-%m-%d}; as sent"
    err.print(
        f"notice {record['notice_id']} {state} (sha256 {record['sha256'][:12]}…, due "
        f"{record['due_at']:%Y-%m-%d})" + (f"; wrote {out}" if out else "")
    )


@app.command(rich_help_panel="Notices")
def notices(
    overdue: Annotated[
        bool,
        typer.Option(
            "--overdue",
            help="Denials past due without a notice, with why (the linter's refusal, if any).",
        ),
    ] = False,
    limit: Annotated[int, typer.Option(help="How many to list.")] = 50,
    home: Home = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Notices issued (newest first), or with --overdue the denials still owed one."""
    import pandas as pd

    from govern_cli.web.notices import blocked_reasons, settings_or_none
    from governance.store import notices as store

    now = datetime.now(UTC)
    settings, note = settings_or_none(home)
    with sessions(db, home)() as session:
        if overdue:
            rows, total = store.overdue(
                session, now, settings.due_days if settings else 30, limit=limit
            )
            cache: dict = {}
            for r in rows:
                problems = blocked_reasons(session, r["decision_id"], settings, cache)
                r["why"] = "blocked: " + "; ".join(problems) if problems else "not issued"
        else:
            rows, total = store.issued(session, limit=limit)
    if as_json:
        emit_json({"total": total, "rows": rows})
        return
    if overdue:
        if settings is None:
            err.print(f"note: {note}; due dates assume 30 days")
        frame = pd.DataFrame(
            [
                {
                    "decision": r["decision_id"],
                    "due": f"{r['due']:%Y-%m-%d}",
                    "days late": r["days_overdue"],
                    "why": r["why"],
                }
                for r in rows
            ]
        )
        render.frame_table(console, frame, title=f"Notices past due ({total:,} in all)")
    else:
        frame = pd.DataFrame(
            [
                {
                    "notice": r["notice_id"],
                    "decision": r["decision_id"],
                    "kind": r["kind"],
                    "issued": f"{r['issued_at']:%Y-%m-%d}",
                    "due": f"{r['due_at']:%Y-%m-%d}",
                }
                for r in rows
            ]
        )
        render.frame_table(console, frame, title=f"Notices issued ({total:,} in all)")
