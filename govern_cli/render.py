"""Readable terminal output: tables, progress bars and the run summary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table


def safe_db(db: str | None, home: Path | None) -> str:
    from governance import config
    from governance.store.engine import safe_url

    return safe_url(config.db_url(db, home))


@contextmanager
def steps(console: Console, title: str) -> Iterator[Any]:
    """A spinner whose text follows the steps of a long call."""
    with console.status(title) as status:

        def say(message: str) -> None:
            status.update(f"{title}: {message}")
            console.log(message)

        yield say


@contextmanager
def progress(console: Console) -> Iterator[Progress]:
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        yield bar


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def frame_table(console: Console, frame: pd.DataFrame, title: str = "") -> None:
    if frame.empty:
        console.print(f"{title}: nothing recorded yet.")
        return
    table = Table(title=title, show_lines=False)
    for col in frame.columns:
        table.add_column(
            str(col), justify="right" if pd.api.types.is_numeric_dtype(frame[col]) else "left"
        )
    for row in frame.itertuples(index=False):
        table.add_row(*[_fmt(v) for v in row])
    console.print(table)


def nightly_summary(console: Console, summaries: list[dict[str, Any]]) -> None:
    """One row per night: decisions, denials, reasons, quarantine and seconds per stage."""
    table = Table(title="Nightly governance runs")
    cols = [
        "night",
        "decisions",
        "denied",
        "reasons issued",
        "quarantined",
        "pull s",
        "validate s",
        "explain s",
        "store s",
        "wall s",
    ]
    for c in cols:
        table.add_column(c, justify="left" if c == "night" else "right")
    for s in summaries:
        c, t = s["counts"], s["timings"]
        table.add_row(
            s["night"],
            _fmt(c.get("decisions", 0)),
            _fmt(c.get("denied", 0)),
            _fmt(c.get("reasons_issued", 0)),
            _fmt(c.get("quarantined", 0)),
            *[f"{t.get(k, 0):.1f}" for k in ("pull", "validate", "explain", "store", "wall")],
        )
    console.print(table)
    console.print("[dim]explain/store seconds are summed over Dask workers; wall is end to end.[/]")


def history(console: Console, subject: str, records: list[dict[str, Any]]) -> None:
    if not records:
        console.print(f"No decisions recorded for subject {subject!r}.")
        return
    console.print(f"[bold]Subject {subject}[/]: {len(records)} decision(s)")
    for r in records:
        console.print(
            f"\n[bold]{r['decided_at']}[/]  {r['decision_id']}  model {r['model']} "
            f"{r['model_version']} (sha256 {r['model_sha256'][:12]}…)  score {r['score']:.3f}  "
            f"[{'green' if r['decision'] == 'approved' else 'red'}]{r['decision']}[/]"
        )
        if r["reasons"]:
            table = Table(show_header=True, box=None, padding=(0, 2))
            for c in ("rank", "reason (feature)", "value", "attribution"):
                table.add_column(c)
            for reason in r["reasons"]:
                table.add_row(
                    str(reason["rank"]),
                    reason["feature"],
                    _fmt(reason["value"]),
                    f"{reason['attribution']:+.3f}",
                )
            console.print(table)
