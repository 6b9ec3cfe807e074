"""Readable terminal output: tables, progress bars and the run summary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
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


def _e(v: Any) -> str:
    """Data as literal text: an id holding "[/]" must print, not be read as Rich markup."""
    return escape(str(v))


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return _e(v)


def frame_table(console: Console, frame: pd.DataFrame, title: str = "") -> None:
    if frame.empty:
        console.print(f"{title}: nothing recorded yet.")
        return
    table = Table(title=title, show_lines=False)
    for col in frame.columns:
        table.add_column(
            _e(col), justify="right" if pd.api.types.is_numeric_dtype(frame[col]) else "left"
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
    ("  minimal on grid", "recourse_minimal_on_grid"),
    ("  minimal in action set", "recourse_minimal_in_action_set"),
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


def history(
    console: Console,
    subject: str,
    records: list[dict[str, Any]],
    tombstones: list[dict[str, Any]] | None = None,
) -> None:
    for t in tombstones or []:
        console.print(
            f"[bold]Erased[/] on request {_e(t['request_id'])} "
            f"(received {t['received_at']:%Y-%m-%d}, purged {t['purged_at']:%Y-%m-%d}): "
            f"{t['decisions']} decision(s) and "
            f"{t['ledger_rows']} ledger row(s) removed; only this tombstone remains."
        )
    if not records:
        if not tombstones:
            console.print(f"No decisions recorded for subject {_e(repr(subject))}.")
        return
    console.print(f"[bold]Subject {_e(subject)}[/]: {len(records)} decision(s)")
    for r in records:
        console.print(
            f"\n[bold]{r['decided_at']}[/]  {_e(r['decision_id'])}  model {_e(r['model'])} "
            f"{_e(r['model_version'])} (sha256 {r['model_sha256'][:12]}…)  score {r['score']:.3f}  "
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
        table.add_row(
            str(reason["rank"]),
            _e(reason["feature"]),
            _fmt(reason["value"]),
            f"{reason['attribution']:+.3f}",
            _mu_note(reason.get("mu"), reason.get("mu_state")),
        )
    console.print(table)
    if any(r.get("mu") == 0 for r in reasons):
        console.print("  [dim]0: changing this feature alone cannot lead to approval[/]")


def _mu_note(mu: float | None, state: str | None) -> str:
    """A reason's responsiveness as people read it: a score, or no feasible change at all."""
    if state == "no_action":
        return "none (cannot change)"
    return "" if mu is None else f"{mu:.2f}"


def recourse(console: Console, subject: str, records: list[dict[str, Any]]) -> None:
    """Each denied decision: reasons with responsiveness, the verdict and the recommended action."""
    if not records:
        console.print(f"No denied decisions recorded for subject {_e(repr(subject))}.")
        return
    for r in records:
        console.print(
            f"\n[bold]{r['decided_at']}[/]  {_e(r['decision_id'])}  model {_e(r['model'])} "
            f"{_e(r['model_version'])}  score {r['score']:.3f}  [red]denied[/]"
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
            f"Verification under action set {_e(aset['name'])} v{_e(aset['version'])} "
            f"({aset['sha256'][:12]}…): [bold]{v['status']}[/]{verdict}"
        )
        if v["all_reasons_unresponsive"]:
            console.print("  [yellow]none of the reasons given can lead to approval[/]")
        if r["responsive_ranking"]:
            ranked = ", ".join(
                f"{_e(x['feature'])} ({x['mu']:.2f})" for x in r["responsive_ranking"]
            )
            console.print(f"Most responsive features: {ranked}")
        rec = r.get("recourse")
        if rec:
            proven = {
                "action_set": "minimal in the action set",
                "candidate_grid": "minimal on the candidate grid",
            }.get(rec.get("minimal_over"), "valid; not proven minimal")
            console.print(
                f"Recommended action (cost {rec['cost']:.3f}, score {rec['score_before']:.3f} → "
                f"{rec['score_after']:.3f}, {proven}):"
            )
            for ch in rec["changes"]:
                console.print(f"  • {_e(ch['feature'])}: {_fmt(ch['from'])} → {_fmt(ch['to'])}")


def redeploy_summary(console: Console, summary: dict[str, Any]) -> None:
    """What the redeploy check found: invalidated promises, by feature and segment, and changes
    for recent denials."""
    c = summary["counts"]
    rate = c.get("invalidation_rate")
    console.print(
        f"\n[bold]Redeploy check {_e(summary['model'])} {_e(summary['version'])}[/]: "
        f"{c['invalidated']:,} of {c['recourses_checked']:,} issued recourses invalidated"
        + (f" ({rate:.1%})" if rate is not None else "")
        + f"; gate {c['gate']:.0%}: "
        + ("[green]passed[/]" if c["passed"] else "[bold red]FAILED[/]")
    )
    if c.get("invalidation_by_feature"):
        table = Table(title="Invalidation by feature the recourse asked to change")
        for col in ("feature", "recourses", "invalidated", "rate"):
            table.add_column(col, justify="left" if col == "feature" else "right")
        for f, v in list(c["invalidation_by_feature"].items())[:10]:
            table.add_row(_e(f), f"{v['recourses']:,}", f"{v['invalidated']:,}", f"{v['rate']:.1%}")
        console.print(table)
    if c.get("invalidation_by_segment"):
        parts = ", ".join(
            f"{_e(k)} {v['rate']:.1%}" for k, v in c["invalidation_by_segment"].items()
        )
        console.print(f"by {_e(c['segment'])}: {parts}")
    if c.get("mean_forward_validity") is not None:
        console.print(
            f"forward validity (share of retrained variants approving), mean: "
            f"{c['mean_forward_validity']:.1%}"
        )
    alt = c.get("alternative_validity")
    if alt:
        console.print(
            f"validity: issued {alt['issued']:.1%} vs {alt['alternative_kind']} "
            f"alternative {alt['alternative']:.1%}"
        )
    r = c.get("recent_denials") or {}
    if r:
        console.print(
            f"recent denials re-examined: {r.get('compared', 0):,}; reasons changed for "
            f"{r.get('reasons_changed', 0):,}, became fixed {r.get('became_fixed', 0):,}, "
            f"gained recourse {r.get('gained_recourse', 0):,}, now approved "
            f"{r.get('now_approved', 0):,}"
        )
    if c.get("recontact_subjects"):
        sample = ", ".join(_e(s) for s in summary.get("recontact_sample", [])[:8])
        console.print(
            f"[yellow]{c['recontact_subjects']:,} applicants to re-contact[/] "
            f"(e.g. {sample}); all of them: SELECT * FROM v_recontact"
        )


def deletion_summary(console: Console, summary: dict[str, Any]) -> None:
    """What a deletion batch did: candidates, what they invalidate, what was purged."""
    if not summary.get("requests"):
        console.print("No open deletion requests.")
        return
    console.print(f"[bold]Deletion requests[/] {_e(', '.join(summary['requests']))}")
    for c in summary.get("checks", []):
        if c["candidate_version"] is None:
            console.print(
                f"  {_e(c['model_name'])} {_e(c['current_version'])}: the subject is not in "
                "its training data; no retraining needed"
            )
            continue
        console.print(
            f"  {_e(c['model_name'])} {_e(c['current_version'])} → candidate "
            f"{_e(c['candidate_version'])} (not deployed): {c['training_rows_removed']} training "
            f"row(s) removed; {c['invalidated']:,} of {c['recourses_checked']:,} recourses issued "
            f"to others would be invalidated; reasons change for {c['reasons_changed']:,} recent "
            f"denials, {c['became_fixed']:,} become fixed, {c['gained_recourse']:,} gain recourse"
        )
    purged = summary["counts"].get("purged")
    if purged:
        rows = sum(purged["ledger_rows"].values())
        f = purged["files"]
        console.print(
            f"  purged {rows:,} ledger rows ({purged['ledger_rows'].get('decisions', 0)} "
            f"decisions), {f['training_rows']} training rows in {f['training_files']} file(s), "
            f"{f['log_rows']} decision-log rows; tombstone kept"
        )
