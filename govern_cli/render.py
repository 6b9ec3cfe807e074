"""Readable terminal output: tables, progress bars and the run summary."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:  # the registry pulls in scikit-learn: imported when a codebook is used
    from governance.registry.codebook import Codebook


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
    if _missing(v):
        return ""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    if isinstance(v, datetime):
        utc = v.astimezone(UTC) if v.tzinfo else v
        return f"{utc:%Y-%m-%d %H:%M:%S}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return _e(v)


def compact_table(title: str = "") -> Table:
    """A table that spends one space between columns and no borders, so that eight or nine
    columns fit an 80-column terminal without cutting their values."""
    return Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 0), show_edge=False)


def frame_table(
    console: Console,
    frame: pd.DataFrame,
    title: str = "",
    columns: list[str] | None = None,
    empty: str = "nothing recorded yet.",
) -> None:
    """A frame as a compact table; ``columns`` picks (and orders) the columns shown."""
    if frame.empty:
        console.print(f"{title}: {empty}" if title else empty)
        return
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    table = compact_table(title)
    for col in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_bool_dtype(
            frame[col]
        )
        table.add_column(_e(col), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*[_fmt(v) for v in row])
    console.print(table)


def records_view(console: Console, frame: pd.DataFrame, title: str, key: str) -> None:
    """Every field of every row, one block per row (field, value; two pairs a line), for
    frames too wide for any table."""
    console.print(f"[bold]{_e(title)}[/]")
    for row in frame.to_dict(orient="records"):
        fields = [(k, v) for k, v in row.items() if k != key and not _missing(v)]
        grid = Table.grid(padding=(0, 1))
        for _ in range(2):
            grid.add_column(style="dim", no_wrap=True)
            grid.add_column(min_width=12)
        for i in range(0, len(fields), 2):
            pair = fields[i : i + 2]
            cells = [x for k, v in pair for x in (_e(k), _fmt(v))]
            grid.add_row(*cells, *[""] * (4 - len(cells)))
        console.print(f"\n[bold]{_e(key)} {_fmt(row[key])}[/]")
        console.print(grid)


def _missing(v: Any) -> bool:
    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


# `govern runs` without --wide: what a reviewer scans for, in 80 columns.
RUN_COLUMNS = {
    "run_id": "id",
    "kind": "kind",
    "night": "night",
    "model": "model",
    "status": "status",
    "decisions": "decided",
    "denied": "denied",
    "quarantined": "quar.",
    "wall_s": "wall s",
}


def runs_table(console: Console, frame: pd.DataFrame, wide: bool = False) -> None:
    """Recent runs: the essential columns, or (``wide``) every field of each run."""
    if frame.empty:
        frame_table(console, frame, title="Recent runs")
        return
    if wide:
        records_view(console, frame, "Recent runs", key="run_id")
        return
    shown = frame[[c for c in RUN_COLUMNS if c in frame.columns]].copy()
    if "wall_s" in shown:
        shown["wall_s"] = [None if pd.isna(v) else round(float(v), 1) for v in shown["wall_s"]]
    shown = shown.rename(columns=RUN_COLUMNS)
    frame_table(console, shown, title="Recent runs")
    console.print("[dim]quar. = rows quarantined; --wide shows every count and timing.[/]")


def deletions_table(console: Console, frame: pd.DataFrame) -> None:
    """Deletion requests in 80 columns: overdue ones first, and said so in their status; ids
    and dates whole, the reason wrapped."""
    if frame.empty:
        console.print("Deletion requests: none recorded.")
        return
    table = compact_table("Deletion requests")
    for name in ("request", "received", "due", "status"):
        table.add_column(name, no_wrap=True)
    table.add_column("left", justify="right", no_wrap=True)
    table.add_column("done", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for r in frame.to_dict(orient="records"):
        table.add_row(
            _e(r["request_id"]),
            _fmt(r["received"]),
            _fmt(r["due"]),
            f"{r['status']}, OVERDUE" if r["overdue"] else _e(r["status"]),
            _fmt(r["days_left"]),
            _fmt(r["completed"]),
            _fmt(r["reason"]),
        )
    console.print(table)
    console.print("[dim]left = days until due (an erasure is due one month after the request)[/]")


def models_table(console: Console, rows: list[dict[str, Any]], root: Path) -> None:
    """Registered versions: deployed yes/no, created, estimator and test metrics."""
    if not rows:
        console.print(f"No models registered in {_e(root)}.")
        return
    table = compact_table(f"Models in {_e(root)}")
    for col, justify in (
        ("model", "left"),
        ("version", "left"),
        ("deployed", "left"),
        ("created", "left"),
        ("estimator", "left"),
        ("AUC", "right"),
        ("approves", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            _e(r["model"]),
            _e(r["version"]),
            "[bold green]yes[/]" if r["deployed"] else "no",
            _e(str(r["created_at"])[:10]),
            _e(r["estimator"]),
            "" if r.get("auc") is None else f"{r['auc']:.3f}",
            "" if r.get("approval_rate") is None else f"{r['approval_rate']:.1%}",
        )
    console.print(table)


_SUMMARY_ROWS = [
    ("decisions", "decisions"),
    ("not reproduced by model", "score_mismatch"),
    ("denied", "denied"),
    ("reasons issued", "reasons_issued"),
    ("quarantined rows", "quarantined"),
    ("  not reproduced", "score_mismatch_quarantined"),
    ("out of range (flagged)", "out_of_range_rows"),
    ("fixed predictions", "fixed"),
    ("recourse issued", "recourse"),
    ("  minimal on grid", "recourse_minimal_on_grid"),
    ("  minimal in action set", "recourse_minimal_in_action_set"),
    ("undetermined", "undetermined"),
]
# Decisions the registered model does not reproduce: shown in red whenever there are any; they
# are counted in none of the other rows.
_ALARMS = {"score_mismatch", "score_mismatch_quarantined"}
_SHARE_ROWS = [
    ("reasons all unresponsive", "share_reasons_all_unresponsive"),
    ("≥1 responsive reason", "share_at_least_one_responsive"),
    ("mean responsive reasons", "mean_responsive_reasons"),
    ("fixed among denied", "share_denied_fixed"),
]
_QUALITY_ROWS = [
    ("mean PGI (reasons)", "mean_pgi", ".3f"),
    ("mean PGI (random)", "mean_pgi_random", ".3f"),
    ("mean PGU", "mean_pgu", ".3f"),
    ("reasons ≤ random PGI", "share_reasons_not_above_random", ".1%"),
    ("mean RIS (sample)", "mean_ris", ".3g"),
    ("mean ROS (sample)", "mean_ros", ".3g"),
]
_TIME_ROWS = [
    ("pull s", "pull"),
    ("validate s", "validate"),
    ("explain s", "explain"),
    ("recourse s", "recourse"),
    ("faithfulness s", "faithfulness"),
    ("stability s", "stability"),
    ("agreement s", "agreement"),
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
            alarm = key in _ALARMS and any(s["counts"].get(key) for s in summaries)
            if key in _ALARMS and key != "score_mismatch" and not alarm:
                continue
            table.add_row(
                label,
                *[_fmt(s["counts"].get(key, 0)) for s in summaries],
                style="bold red" if alarm else None,
            )
    for label, key in _SHARE_ROWS:
        vals = [s["counts"].get("metrics", {}).get(key) for s in summaries]
        if any(v is not None for v in vals):
            table.add_row(
                label,
                *["" if v is None else f"{v:.1%}" if "share" in key else f"{v:.2f}" for v in vals],
            )
    for label, key, fmt in _QUALITY_ROWS:
        vals = [s["counts"].get("metrics", {}).get(key) for s in summaries]
        if any(v is not None for v in vals):
            table.add_row(label, *["" if v is None else format(v, fmt) for v in vals])
    for label, key in _TIME_ROWS:
        if any(key in s["timings"] for s in summaries):
            table.add_row(label, *[f"{s['timings'].get(key, 0):.1f}" for s in summaries])
    console.print(table)
    if any(s["counts"].get("score_mismatch") for s in summaries):
        console.print(
            "[bold red]The registered model does not reproduce some logged decisions[/] (the "
            "log names another model): they are left out of every other count and given no "
            "recourse. Rerun with --score-mismatch quarantine or fail to set them aside."
        )
    console.print(
        "[dim]explain/recourse/store seconds are summed over Dask workers; wall is end to end."
        " PGI/PGU: OpenXAI prediction gaps of the top-4 reasons towards denial.[/]"
    )


Books = Mapping[tuple[str, str], "Codebook"]


def _book(books: Books | None, record: Mapping[str, Any]) -> Codebook:
    from governance.registry.codebook import Codebook

    return (books or {}).get((record["model"], record["model_version"])) or Codebook()


def history(
    console: Console,
    subject: str,
    records: list[dict[str, Any]],
    tombstones: list[dict[str, Any]] | None = None,
    books: Books | None = None,
) -> None:
    """Every decision about a subject, with reasons in the words of each version's codebook."""
    for t in tombstones or []:
        console.print(
            f"[bold]Erased[/] on request {_e(t['request_id'])} "
            f"(received {t['received_at']:%Y-%m-%d}, purged {t['purged_at']:%Y-%m-%d}): "
            f"{t['decisions']} decision(s) and "
            f"{t['ledger_rows']} ledger row(s) removed; only this tombstone remains."
        )
    if not records:
        return
    console.print(f"[bold]Subject {_e(subject)}[/]: {len(records)} decision(s)")
    for r in records:
        console.print(
            f"\n[bold]{_when(r['decided_at'])}[/]  {_e(r['decision_id'])}\n"
            f"model {_e(r['model'])} {_e(r['model_version'])} "
            f"(sha256 {r['model_sha256'][:12]}…)  score {r['score']:.3f}  "
            f"[{'green' if r['decision'] == 'approved' else 'red'}]{r['decision']}[/]"
        )
        if r.get("reproduced") is False:
            _not_reproduced(console, r)
        if r["reasons"]:
            reasons_table(console, r["reasons"], _book(books, r))
        f = r.get("faithfulness")
        if f and f.get("pgi") is not None:
            console.print(
                f"  faithfulness: PGI {f['pgi']:.3f}, PGU {f['pgu']:.3f}, random-control PGI "
                f"{_num(f['pgi_random'])}"
                + ("  [yellow]≤ random![/]" if f.get("reasons_not_above_random") else "")
            )
        if r.get("recourse_status"):
            under = " (under the registered model)" if r.get("reproduced") is False else ""
            console.print(f"  recourse verification{under}: [bold]{r['recourse_status']}[/]")


def _not_reproduced(console: Console, r: dict[str, Any]) -> None:
    """The alarm for a decision the registered model does not reproduce."""
    console.print(
        f"  [bold red]the registered model does not reproduce this decision[/] (logged score "
        f"{r['score']:.3f}, registered model {r['score_recomputed']:.3f}): the log names "
        "another model; what follows is the registered model's view, not the deciding one's"
    )


def _when(value: Any) -> str:
    """A stored time as 'YYYY-MM-DD HH:MM UTC'."""
    text = str(value)
    return f"{text[:10]} {text[11:16]} UTC" if len(text) >= 16 else _e(text)


def reasons_table(
    console: Console, reasons: list[dict[str, Any]], book: Codebook | None = None
) -> None:
    """Reasons with their value and responsiveness (0 said in words)."""
    from governance.registry.codebook import Codebook

    book = book or Codebook()
    table = Table(show_header=True, box=None, padding=(0, 1))
    for c, justify in (
        ("#", "right"),
        ("reason (feature)", "left"),
        ("value", "left"),
        ("SHAP", "right"),
        ("responsive", "right"),
    ):
        table.add_column(c, justify=justify)  # type: ignore[arg-type]
    for reason in reasons:
        feature = reason["feature"]
        table.add_row(
            str(reason["rank"]),
            _e(book.feature(feature)),
            _value(book, feature, reason["value"]),
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


def _value(book: Codebook, feature: str, value: Any) -> str:
    return _e(book.show_value(feature, value)) if book.value_label(feature, value) else _fmt(value)


def recourse(
    console: Console,
    subject: str,
    records: list[dict[str, Any]],
    books: Books | None = None,
) -> None:
    """Each denied decision: reasons with responsiveness, the verdict and the recommended action."""
    from governance.recourse.costs import cost_unit

    units: set[tuple[Any, Any]] = set()
    for r in records:
        book = _book(books, r)
        console.print(
            f"\n[bold]{_when(r['decided_at'])}[/]  {_e(r['decision_id'])}\n"
            f"model {_e(r['model'])} {_e(r['model_version'])}  score {r['score']:.3f}  "
            "[red]denied[/]"
        )
        if r.get("reproduced") is False:
            _not_reproduced(console, r)
        if r["reasons"]:
            console.print("Reasons given (SHAP, strongest first), responsiveness:")
            reasons_table(console, r["reasons"], book)
        v = r.get("verification")
        if v is None:
            console.print("  no recourse check recorded (model without an action set?)")
            continue
        if r.get("reproduced") is False:
            console.print(
                f"Under the registered model only: verification [bold]{v['status']}[/]; no "
                "recourse is issued for a decision the registered model does not reproduce"
            )
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
                f"{_e(book.feature(x['feature']))} ({x['mu']:.2f})"
                for x in r["responsive_ranking"]
            )
            console.print(f"Most responsive features: {ranked}")
        rec = r.get("recourse")
        if rec:
            proven = {
                "action_set": "minimal in the action set",
                "candidate_grid": "minimal on the candidate grid",
            }.get(rec.get("minimal_over"), "valid; not proven minimal")
            console.print(
                f"Recommended action: cost {rec['cost']:.3f}*, score {rec['score_before']:.3f} → "
                f"{rec['score_after']:.3f}\n  ({proven}):"
            )
            units.add((rec.get("cost_kind"), rec.get("category_cost")))
            for ch in rec["changes"]:
                f = ch["feature"]
                console.print(
                    f"  • {_e(book.feature(f))}: {_value(book, f, ch['from'])} → "
                    f"{_value(book, f, ch['to'])}"
                )
    for kind, category_cost in sorted(units, key=str):
        console.print(f"[dim]* cost in {_e(cost_unit(kind, category_cost))}[/]")


def redeploy_summary(
    console: Console, summary: dict[str, Any], book: Codebook | None = None
) -> None:
    """What the redeploy check found: invalidated promises, by feature and segment (in the
    words of the version's codebook), and changes for recent denials."""
    from governance.registry.codebook import Codebook

    book = book or Codebook()
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
            table.add_row(
                _e(book.feature(f)),
                f"{v['recourses']:,}",
                f"{v['invalidated']:,}",
                f"{v['rate']:.1%}",
            )
        console.print(table)
    if c.get("invalidation_by_segment"):
        segment = c["segment"]
        parts = ", ".join(
            f"{_e(book.value_label(segment, k) or k)} {v['rate']:.1%}"
            for k, v in c["invalidation_by_segment"].items()
        )
        console.print(f"by {_e(book.feature(segment))}: {parts}")
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
    drift = c.get("explanation_drift") or {}
    if drift.get("denied_under_both"):
        ndcg = drift.get("attribution_ndcg")
        console.print(
            f"explanations of {drift['denied_under_both']:,} applicants denied under both: "
            f"top-4 reasons changed for {drift['share_top4_changed']:.1%}, top reason for "
            f"{drift['share_top1_changed']:.1%}; attribution nDCG "
            + ("–" if ndcg is None else f"{ndcg:.3f}")
            + (" [yellow](drift: below 0.9)[/]" if drift.get("attribution_drift_flag") else "")
        )
    if c.get("recontact_subjects"):
        sample = ", ".join(_e(s) for s in summary.get("recontact_sample", [])[:8])
        if summary.get("deployed_version", summary["version"]) == summary["version"]:
            console.print(
                f"[yellow]{c['recontact_subjects']:,} applicants to re-contact[/] "
                f"(e.g. {sample}); all of them: SELECT * FROM v_recontact"
            )
        else:
            console.print(
                f"{c['recontact_subjects']:,} applicants would need re-contacting if "
                f"{_e(summary['version'])} were deployed (e.g. {sample}); it is not, so "
                "v_recontact does not list them"
            )


DELETION_COLUMNS_NOTE = (
    "rows_removed: training rows this request removed from the files as earlier erasures "
    "left them (its own rows); rows_vs_registered: rows its candidate lacks against the "
    "deployed version's training data as registered (every erasure so far). "
    "invalid_by_deletion: others' recourse the candidate breaks that a control refit with "
    "the subject kept still approves (the deletion's effect); invalid_by_retraining: "
    "recourse the deployed version approves and the control does not (retraining alone)."
)


def deletion_summary(console: Console, summary: dict[str, Any]) -> None:
    """What a deletion batch did: candidates, what the deletion itself and retraining alone
    invalidate, what was purged and which files were rewritten."""
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
        original = c.get("original_rows_removed")
        since = (
            f" ({original} against its training data as registered)"
            if original is not None and original != c["training_rows_removed"]
            else ""
        )
        console.print(
            f"  {_e(c['model_name'])} {_e(c['current_version'])} → candidate "
            f"{_e(c['candidate_version'])} (not deployed): {c['training_rows_removed']} training "
            f"row(s) removed by this request{since}"
        )
        if c.get("invalidated_by_deletion") is not None:
            console.print(
                f"    of {c['recourses_checked']:,} recourses issued to others, the deletion "
                f"invalidates {c['invalidated_by_deletion']:,} (candidate vs a control refit "
                f"with the subject kept); retraining alone invalidates "
                f"{c['invalidated_by_retraining']:,} (control vs {_e(c['current_version'])}); "
                f"{c['invalidated']:,} in all"
            )
        else:
            console.print(
                f"    {c['invalidated']:,} of {c['recourses_checked']:,} recourses issued to "
                "others would be invalidated (retraining and deletion together)"
            )
        console.print(
            f"    recent denials: reasons change for {c['reasons_changed']:,}, "
            f"{c['became_fixed']:,} become fixed, {c['gained_recourse']:,} gain recourse "
            "(candidate vs what they were told)"
        )
    purged = summary["counts"].get("purged")
    if purged:
        rows = sum(purged["ledger_rows"].values())
        f = purged["files"]
        console.print(
            f"  purged {rows:,} ledger rows ({purged['ledger_rows'].get('decisions', 0)} "
            f"decisions), {f['training_rows']} training rows in {f['training_files']} file(s), "
            f"{f['log_rows']} decision-log rows in {f.get('log_files', 0)} file(s); "
            "tombstone kept"
        )
        for entry in f.get("rewritten", []):
            console.print(f"    rewrote {_e(entry['path'])}: {entry['rows']} row(s)")
        for notice in f.get("notices", []):
            console.print(f"    erasure notice for data we do not own: {_e(notice)}")


def import_report(console: Console, r: dict[str, Any]) -> None:
    """What `govern models import` registered and checked, in lines that fit 80 columns."""
    src = r["source"]
    console.print(
        f"imported {_e(r['name'])} {_e(r['version'])} from {_e(src.get('file', '?'))} "
        f"({_e(src.get('format', '?'))}, sha256 {_e(str(src.get('sha256', ''))[:12])}…); "
        "not deployed"
    )
    console.print(
        f"  scored the reference sample: {r['scored_rows']:,} rows, "
        f"{r['approved_share']:.1%} approved"
    )
    paths = r["exact_paths"]
    console.print(
        f"  {_e(paths['family'])}: verification {_e(paths['verification'])}, stability "
        f"replay {_e(paths['stability_replay'])}"
    )
    if paths.get("reason"):
        console.print(f"    {_e(paths['reason'])}")
    check = r["recipe_check"]
    line = f"  retrain recipe (clone and refit): {_e(check['status'])}"
    if "max_abs_score_difference" in check:
        line += (f", max score difference {check['max_abs_score_difference']:.3g}, "
                 f"{check['decisions_changed']} decisions changed")
    elif check.get("detail"):
        line += f" ({_e(check['detail'])})"
    console.print(line)
    if r["schema_review"]:
        console.print(
            f"  review the proposed ranges/categories of: {_e(', '.join(r['schema_review']))}"
            " (govern models show; --schema FILE sets them)"
        )
    for item in r["unavailable"]:
        console.print(f"  unavailable without training data: {_e(item)}")
    for note in r["notes"]:
        console.print(f"  note: {_e(note)}")


def _num(v: Any, fmt: str = ".3f") -> str:
    return "–" if v is None or (isinstance(v, float) and pd.isna(v)) else format(v, fmt)


def _quality_line(state: dict[str, Any]) -> str:
    q = state.get("quality") or {}
    f = (q.get("faithfulness") or {}).get("openxai_normal")
    b = (q.get("faithfulness") or {}).get("background_replacement")
    s = q.get("stability")
    parts = []
    if f:
        parts.append(f"PGI {_num(f['pgi'])} PGU {_num(f['pgu'])} rnd {_num(f['pgi_random'])}")
    if b:
        parts.append(f"bg PGI {_num(b['pgi'])} PGU {_num(b['pgu'])}")
    if s:
        parts.append(f"RIS {_num(s['ris'], '.3g')} ROS {_num(s['ros'], '.3g')}")
    return "; ".join(parts) if parts else "no quality figures recorded"


def _flagged(state: dict[str, Any]) -> bool:
    f = ((state.get("quality") or {}).get("faithfulness") or {}).get("openxai_normal") or {}
    return bool(f.get("reasons_not_above_random"))


def history_diff(
    console: Console, subject: str, n_states: int, pairs: list[dict[str, Any]]
) -> None:
    """How a subject's reasons changed between consecutive decisions and model versions."""
    if not n_states:
        console.print(f"No explanations recorded for subject {_e(repr(subject))}.")
        return
    console.print(
        f"[bold]Subject {_e(subject)}[/]: {n_states} explanation(s), {len(pairs)} pair(s) "
        "to compare"
    )
    if not pairs:
        console.print("Only one explanation: nothing to compare yet.")
    for p in pairs:
        old, new = p["from"], p["to"]
        if p["kind"] == "re-explained":
            head = (
                f"{_e(old['decision_id'])} ({old['decided_at'][:10]}): "
                f"{_e(old['model_version'])} → {_e(new['model_version'])}"
            )
        else:
            head = (
                f"{_e(old['decision_id'])} ({_e(old['model_version'])}) → "
                f"{_e(new['decision_id'])} ({_e(new['model_version'])}, "
                f"{new['decided_at'][:10]})"
            )
        console.print(f"\n[bold]{head}[/]  {old['decision']} → {new['decision']}")
        ch = p["changes"]
        if ch["appeared"]:
            console.print(
                "  appeared:    " + ", ".join(f"{_e(f)} (#{r})" for f, r in ch["appeared"])
            )
        if ch["disappeared"]:
            console.print(
                "  disappeared: "
                + ", ".join(f"{_e(f)} (was #{r})" for f, r in ch["disappeared"])
            )
        if ch["moved"]:
            console.print(
                "  rank moved:  " + ", ".join(f"{_e(f)} #{a} → #{b}" for f, a, b in ch["moved"])
            )
        if not any(ch.values()):
            console.print("  reasons unchanged")
        for label, state in (("before", old), ("after", new)):
            flag = "  [yellow]≤ random![/]" if _flagged(state) else ""
            console.print(f"  {label + ':':8}{_quality_line(state)}{flag}")
        agree = ((new.get("quality") or {}).get("agreement") or {}).get("version_vs_previous")
        if p["kind"] == "re-explained" and agree:
            console.print(
                f"  agreement: top-4 set {agree['reasons_feature_agreement']:.2f}, ranks "
                f"{agree['reasons_rank_agreement']:.2f}, top reason "
                f"{'same' if agree['top1_same'] else 'changed'}, rank corr. "
                f"{_num(agree['rank_correlation'], '.2f')}"
            )
    console.print(
        "[dim]PGI/PGU: OpenXAI prediction gaps of the reasons (rnd: as many random features;"
        " bg: background replacement; ≤ random!: reasons' PGI not above rnd); RIS/ROS: "
        "relative stability (lower is steadier).[/]"
    )


_COMPARE_ROWS = [
    ("additive rows", "additive_share", ".0%"),
    ("PGI (OpenXAI noise)", "pgi", ".4f"),
    ("PGU (OpenXAI noise)", "pgu", ".4f"),
    ("PGI - PGU", "gap", ".4f"),
    ("  standard error", "gap_se", ".4f"),
    ("PGI (background)", "pgi_background", ".4f"),
    ("PGU (background)", "pgu_background", ".4f"),
    ("reasons ≤ random PGI", "share_not_above_random", ".1%"),
    ("RIS mean / rows", "ris_mean", ".3g"),
    ("ROS mean", "ros_mean", ".3g"),
    ("FA vs permutation", "vs_permutation_feature_agreement", ".2f"),
    ("RA vs permutation", "vs_permutation_rank_agreement", ".2f"),
    ("SA vs permutation", "vs_permutation_sign_agreement", ".2f"),
    ("RC vs permutation", "vs_permutation_rank_correlation", ".2f"),
    ("explain ms/decision", "explain_s_per_decision", "ms"),
    ("PGI+PGU ms/decision", "faithfulness_s_per_decision", "ms"),
    ("RIS+ROS ms/decision", "stability_s_per_decision", "ms"),
]


def _cell(v: Any, fmt: str) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "–"
    if fmt == "ms":
        return f"{v * 1000:,.1f}"
    return format(v, fmt)


def explainer_comparison(
    console: Console, name: str, version: str, result: Any, *, stored: bool
) -> None:
    """Candidates side by side (one column each, so it fits 80 columns) and the choice."""
    t = result.table.set_index("kind")
    table = Table(title=f"Explainers of {_e(name)} {_e(version)}", show_lines=False)
    table.add_column("")
    for kind in t.index:
        table.add_column(_e(kind.replace("tree_interventional", "tree_interv.")), justify="right")
    for label, key, fmt in _COMPARE_ROWS:
        cells = [_cell(t.loc[k, key], fmt) for k in t.index]
        if key == "ris_mean":
            cells = [f"{c} / {int(t.loc[k, 'stability_rows'])}" for c, k in zip(
                cells, t.index, strict=True)]  # fmt: skip
        table.add_row(label, *cells)
    console.print(table)
    sample = result.settings["sample"]
    console.print(
        f"{sample['rows']} denials ({_e(sample['source'])}, seed {sample['seed']}); "
        f"background {result.settings['background']['rows']} rows "
        f"({(result.settings['background']['sha256'] or '')[:12]}…)."
    )
    console.print(f"Rule: {_e(result.rule)}.")
    console.print(
        f"Recommended: [bold]{_e(result.recommended)}[/]"
        + (" — stored with the version; the nightly run uses it." if stored else " (not stored)")
    )


def explainer_choice(
    console: Console, name: str, version: str, choice: dict[str, Any] | None
) -> None:
    if choice is None:
        console.print(
            f"No explainer chosen for {_e(name)} {_e(version)}: the nightly run uses the "
            "default by model family (govern explainers compare chooses one)."
        )
        return
    console.print(
        f"{_e(name)} {_e(version)}: [bold]{_e(choice['kind'])}[/], chosen "
        f"{choice['chosen_at']:%Y-%m-%d %H:%M} on {choice['sample_rows']} denials "
        f"(seed {choice['seed']})\nRule: {_e(choice['rule'])}"
    )
    rows = pd.DataFrame(choice["evidence"].get("candidates", []))
    if len(rows):
        keep = ["kind", "additive_share", "gap", "gap_se", "explain_s_per_decision"]
        frame_table(console, rows[[c for c in keep if c in rows]], title="Evidence")


def quality_by_version(console: Console, table: pd.DataFrame) -> None:
    """Per model version: denials measured and the mean (and quartiles) of each metric."""
    if table.empty:
        console.print("No explanation-quality figures recorded yet.")
        return
    out = Table(title="Explanation quality by model version")
    out.add_column("")
    for r in table.itertuples(index=False):
        out.add_column(
            f"{_e(r.model_name)} {_e(r.model_version)}"
            + ("" if r.own_version else " (re-explained)"),
            justify="right",
        )
    rows = [
        ("denials measured", "denials", ",d"),
        ("with reasons", "with_reasons", ",d"),
        ("PGI mean", "mean_pgi", ".4f"),
        ("PGI quartiles", ("pgi_q25", "pgi_q50", "pgi_q75"), ".3f"),
        ("PGI random mean", "mean_pgi_random", ".4f"),
        ("PGU mean", "mean_pgu", ".4f"),
        ("reasons ≤ random PGI", "share_not_above_random", ".1%"),
        ("PGI background mean", "mean_pgi_background", ".4f"),
        ("PGU background mean", "mean_pgu_background", ".4f"),
        ("stability sampled", "stability_sampled", ",d"),
        ("RIS mean / max", ("mean_ris", "max_ris"), ".3g"),
        ("ROS mean / max", ("mean_ros", "max_ros"), ".3g"),
        ("agrees w/ responsiveness", "mean_responsiveness_agreement", ".2f"),
        ("agrees w/ permutation", "mean_permutation_agreement", ".2f"),
        ("agrees w/ prev. version", "mean_previous_version_agreement", ".2f"),
    ]
    for label, key, fmt in rows:
        keys = key if isinstance(key, tuple) else (key,)
        if not any(k in table for k in keys):
            continue
        cells = []
        for r in table.to_dict("records"):
            vals = [r.get(k) for k in keys]
            cells.append(" / ".join(_cell(None if v is None else v, fmt) for v in vals))
        out.add_row(label, *cells)
    console.print(out)
    console.print(
        "[dim]All rows: SELECT * FROM v_explanation_quality; per version: "
        "v_explanation_quality_by_version.[/]"
    )


def fragility_line(model: str, version: str, budget: int, summary: dict[str, Any]) -> str:
    """What a fragility run proved, in words that claim no more than that."""
    c, method = summary["counts"], summary.get("method", "")
    head = f"{c['recourses']:,} recourses under {model} {version}"
    fragile = f"{c['fragile']:,} ({c['fragile_share']:.1%}) by 1 or 2 rows"
    if method == "screen":
        rest = c["recourses"] - c["flippable"]
        return (
            f"{head} (screen, {c.get('deletion_sets_retrained', 0):,} deletion sets of at most "
            f"{budget} rows, each retrained exactly): {c['flippable']:,} are broken by a tried "
            f"set, {fragile}; no tried set breaks the other {rest:,}, which does not prove they "
            f"survive {budget} deletions."
        )
    return (
        f"{head}: {c['flippable']:,} can be invalidated by at most {budget} deletions, "
        f"{fragile} ({method} greedy: an upper bound on the fewest deletions)."
    )
