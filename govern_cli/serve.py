"""`govern serve` (the read-only review app) and `govern report` (a run as one document)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from govern_cli.app import Db, Home, app, console


def _ledger_url(db: str | None, home: Path | None) -> str:
    """The store URL of an existing ledger, its schema brought to head first if it is behind
    (the pages read; they never create a ledger)."""
    import sqlalchemy as sa

    from governance import config
    from governance.exceptions import StoreError
    from governance.store import init_store
    from governance.store.engine import (
        current_revision,
        head_revision,
        readonly_engine,
        safe_url,
    )

    url = config.db_url(db, home)
    engine = readonly_engine(url)
    try:
        with engine.connect() as conn:
            exists = sa.inspect(conn).has_table("decisions")
        behind = exists and current_revision(engine) != head_revision()
    finally:
        engine.dispose()
    if not exists:
        raise StoreError(f"no ledger at {safe_url(url)}: run `govern demo` or a nightly run first")
    if behind:
        init_store(url).dispose()
    return url


@app.command(rich_help_panel="Review")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    home: Home = None,
    db: Db = None,
) -> None:
    """Serve the read-only review pages: runs, subjects, model versions, deletion requests,
    the re-contact list and notices due. Beyond 127.0.0.1 every request needs
    $GOVERNANCE_UI_TOKEN."""
    import uvicorn

    from govern_cli.web import charts
    from govern_cli.web.app import ENV_TOKEN, create_app, needs_token
    from governance.exceptions import GovernanceError

    token = None
    if needs_token(host):
        token = os.environ.get(ENV_TOKEN) or None
        if token is None or len(token) < 16:
            raise GovernanceError(
                f"bound to {host}, the review app needs a token: set {ENV_TOKEN} to a secret "
                "of 16 characters or more (or bind to 127.0.0.1)"
            )
    web = create_app(_ledger_url(db, home), token=token, home=home)
    charts.warm()
    where = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    console.print(
        f"review app on [bold]{where}[/] (read-only"
        + (f"; token required: {ENV_TOKEN}" if token else "")
        + "); Ctrl-C stops it"
    )
    uvicorn.run(web, host=host, port=port, log_level="warning", server_header=False)


@app.command(rich_help_panel="Review")
def report(
    run: Annotated[int, typer.Option("--run", help="Run id (see `govern runs`).")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
    pdf: Annotated[
        bool, typer.Option("--pdf", help="Also write a PDF beside it (same name, .pdf).")
    ] = False,
    home: Home = None,
    db: Db = None,
) -> None:
    """Write a run's report as one self-contained HTML file (inline SVG charts, no script):
    counts and rates, reasons and their responsiveness, verdicts, recourse cost and stability,
    quarantine by check, and for a redeploy check its invalidation rate and calibration."""
    from govern_cli.web.charts import run_charts
    from govern_cli.web.documents import pdf_bytes, run_report_html
    from governance.exceptions import GovernanceError
    from governance.fileio import atomic_write_bytes, atomic_write_text
    from governance.store.engine import readonly_engine, safe_url, session_factory
    from governance.store.review import run_report

    url = _ledger_url(db, home)
    engine = readonly_engine(url)
    with session_factory(engine)() as session:
        data = run_report(session, run)
    engine.dispose()
    if data is None:
        raise GovernanceError(f"no run #{run} in the ledger; `govern runs` lists them")
    html = run_report_html(data, run_charts(data), safe_url(url))
    atomic_write_text(out, html)
    console.print(f"wrote {out} ({len(html.encode()) / 1024:,.0f} KiB)")
    if pdf:
        target = out.with_suffix(".pdf")
        atomic_write_bytes(target, pdf_bytes(html))
        console.print(f"wrote {target} ({target.stat().st_size / 1024:,.0f} KiB)")
