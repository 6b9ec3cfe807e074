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


_SUMMARY_ROWS = [
    ("decisions", "decisions"),
    ("denied", "denied"),
    ("reasons issued", "reasons_issued"),
    ("quarantined rows", "quarantined"),
    ("fixed predictions", "fixed"),
    ("recourse issued", "recourse"),
    ("  proven cheapest", "recourse_proven_cheapest"),
    ("undetermined", "undetermined"),
]
_SHARE_ROWS = [
    ("reasons all unresponsive", "share_reasons_all_unresponsive"),
    ("≥1 responsive reason", "share_at_least_one_responsive"),
    ("mean responsive reasons", "mean_responsive_reasons"),
    ("fixed among denied", "share_denied_fixed"),
]
_TIME_ROWS = [
    ("pull s", "pull"),
    ("validate s", "validate"),
    ("explain s", "explain"),
    ("recourse s", "recourse"),
    ("store s", "store"),
    ("wall s", "wall"),
]


def nightly_summary(console: Console, summaries: list[dict[str, Any]]) -> None:
    """One column per night: counts, the responsiveness shares and seconds per stage."""
    table = Table(title="Nightly governance runs")
    table.add_column("")
    for s in summaries:
        table.add_column(s["night"], justify="right")
    for label, key in _SUMMARY_ROWS:
        if any(key in s["counts"] for s in summaries):
            table.add_row(label, *[_fmt(s["counts"].get(key, 0)) for s in summaries])
    for label, key in _SHARE_ROWS:
        vals = [s["counts"].get("metrics", {}).get(key) for s in summaries]
        if any(v is not None for v in vals):
            table.add_row(
                label,
                *["" if v is None else f"{v:.1%}" if "share" in key else f"{v:.2f}" for v in vals],
            )
    for label, key in _TIME_ROWS:
        if any(key in s["timings"] for s in summaries):
            table.add_row(label, *[f"{s['timings'].get(key, 0):.1f}" for s in summaries])
    console.print(table)
    console.print(
        "[dim]explain/recourse/store seconds are summed over Dask workers; wall is end to end.[/]"
    )


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
            reasons_table(console, r["reasons"])
        if r.get("recourse_status"):
            console.print(f"  recourse verification: [bold]{r['recourse_status']}[/]")


def reasons_table(console: Console, reasons: list[dict[str, Any]]) -> None:
    table = Table(show_header=True, box=None, padding=(0, 2))
    for c in ("rank", "reason (feature)", "value", "attribution", "responsiveness"):
        table.add_column(c)
    for reason in reasons:
        mu = reason.get("mu")
        note = "" if mu is None else f"{mu:.2f}" + ("  (cannot help)" if mu == 0 else "")
        table.add_row(
            str(reason["rank"]),
            reason["feature"],
            _fmt(reason["value"]),
            f"{reason['attribution']:+.3f}",
            note,
        )
    console.print(table)


def recourse(console: Console, subject: str, records: list[dict[str, Any]]) -> None:
    """Each denied decision: reasons with responsiveness, the verdict and the recommended action."""
    if not records:
        console.print(f"No denied decisions recorded for subject {subject!r}.")
        return
    for r in records:
        console.print(
            f"\n[bold]{r['decided_at']}[/]  {r['decision_id']}  model {r['model']} "
            f"{r['model_version']}  score {r['score']:.3f}  [red]denied[/]"
        )
        if r["reasons"]:
            console.print("Reasons given (SHAP, strongest first) and their responsiveness:")
            reasons_table(console, r["reasons"])
        v = r.get("verification")
        if v is None:
            console.print("  no recourse check recorded (model without an action set?)")
            continue
        aset = r["action_set"]
        verdict = {
            "fixed": " — no action the applicant can take changes this decision",
            "undetermined": " — the search was cut short before finding an action",
        }.get(v["status"], "")
        console.print(
            f"Verification under action set {aset['name']} v{aset['version']} "
            f"({aset['sha256'][:12]}…): [bold]{v['status']}[/]{verdict}"
        )
        if v["all_reasons_unresponsive"]:
            console.print("  [yellow]none of the reasons given can lead to approval[/]")
        if r["responsive_ranking"]:
            ranked = ", ".join(f"{x['feature']} ({x['mu']:.2f})" for x in r["responsive_ranking"])
            console.print(f"Most responsive features: {ranked}")
        rec = r.get("recourse")
        if rec:
            proven = "proven cheapest" if rec["proven_cheapest"] else "valid; cheapest not proven"
            console.print(
                f"Recommended action (cost {rec['cost']:.3f}, score {rec['score_before']:.3f} → "
                f"{rec['score_after']:.3f}, {proven}):"
            )
            for ch in rec["changes"]:
                console.print(f"  • {ch['feature']}: {_fmt(ch['from'])} → {_fmt(ch['to'])}")
