"""The run report's charts: Altair specifications rendered to SVG by vl-convert (no browser, no
script in the output). Every chart gets pre-aggregated rows (bins, counts), never raw decisions:
the SVG stays small and Altair's 5,000-row limit is never near.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

WIDTH, HEIGHT = 320, 180
TOP_FEATURES = 12


def svg(chart: Any) -> Markup:
    """An Altair chart as inline SVG markup (vl-convert escapes the text it draws)."""
    import vl_convert as vlc

    return Markup(vlc.vegalite_to_svg(chart.to_json()))


def warm() -> None:
    """Render one tiny chart: the first rendering in a process costs about a second."""
    import altair as alt
    import pandas as pd

    svg(alt.Chart(pd.DataFrame({"a": [1]})).mark_bar().encode(x="a:Q"))


def bars(rows: list[dict[str, Any]], x: str, y: str, title: str, *, horizontal: bool = False):
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame(rows)
    if horizontal:
        enc = {"y": alt.Y(f"{x}:N", sort="-x", title=None), "x": alt.X(f"{y}:Q", title=y)}
    else:
        enc = {"x": alt.X(f"{x}:N", sort=None, title=None), "y": alt.Y(f"{y}:Q", title=y)}
    return (
        alt.Chart(frame, title=title)
        .mark_bar(color="#0b5cad")
        .encode(**enc)
        .properties(width=WIDTH, height=HEIGHT if not horizontal else max(60, 18 * len(frame)))
    )


def binned(rows: list[dict[str, Any]], title: str, x_title: str):
    import altair as alt
    import pandas as pd

    return (
        alt.Chart(pd.DataFrame(rows), title=title)
        .mark_bar(color="#0b5cad")
        .encode(
            x=alt.X("lo:Q", bin="binned", title=x_title),
            x2="hi",
            y=alt.Y("n:Q", title="count"),
        )
        .properties(width=WIDTH, height=HEIGHT)
    )


def reasons_chart(rows: list[dict[str, Any]]):
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame(rows)
    top = frame.groupby("feature")["n"].sum().nlargest(TOP_FEATURES).index
    frame = frame[frame["feature"].isin(top)].assign(rank=lambda f: "rank " + f["rank"].astype(str))
    return (
        alt.Chart(frame, title="Reasons given, by feature and rank")
        .mark_bar()
        .encode(
            y=alt.Y("feature:N", sort="-x", title=None),
            x=alt.X("sum(n):Q", title="reasons given"),
            color=alt.Color("rank:N", title=None),
        )
        .properties(width=WIDTH, height=max(60, 18 * len(top)))
    )


def calibration_chart(bins: list[dict[str, Any]]):
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame(bins).dropna(subset=["mean_stability", "realised_validity"])
    base = alt.Chart(frame, title="Calibration: validity after redeploy by stability at issue")
    points = base.mark_point(filled=True, color="#0b5cad").encode(
        x=alt.X("mean_stability:Q", title="mean stability R", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("realised_validity:Q", title="realised validity", scale=alt.Scale(domain=[0, 1])),
    )
    whiskers = base.mark_rule(color="#0b5cad").encode(
        x="mean_stability:Q", y="ci_low:Q", y2="ci_high:Q"
    )
    diagonal = (
        alt.Chart(pd.DataFrame({"a": [0.0, 1.0], "b": [0.0, 1.0]}))
        .mark_line(color="#999", strokeDash=[4, 4])
        .encode(x="a:Q", y="b:Q")
    )
    return (diagonal + whiskers + points).properties(width=WIDTH, height=HEIGHT)


def run_charts(report: dict[str, Any]) -> list[tuple[str, Markup]]:
    """(title, SVG) for each chart the run's data supports, in reading order."""
    out: list[tuple[str, Markup]] = []
    d = report["decisions"]
    if d["total"]:
        rows = [
            {"outcome": "approved", "decisions": d["approved"]},
            {"outcome": "denied", "decisions": d["denied"]},
            {"outcome": "quarantined", "decisions": report["run"]["scalars"].get("quarantined", 0)},
        ]
        out.append(("Decisions", svg(bars(rows, "outcome", "decisions", "Decisions"))))
    if report["reasons"]:
        out.append(("Reasons by feature", svg(reasons_chart(report["reasons"]))))
    if report["mu"]["hist"]:
        title = "Responsiveness of the reasons given"
        out.append((title, svg(binned(report["mu"]["hist"], title, "responsiveness"))))
    if report["verdicts"]:
        title = "Verification verdicts of denials"
        rows = [{"status": v["status"], "denials": v["n"]} for v in report["verdicts"]]
        out.append((title, svg(bars(rows, "status", "denials", title))))
    rec = report["recourse"]
    if rec["cost_hist"]:
        title = "Cost of the issued recourse"
        out.append((title, svg(binned(rec["cost_hist"], title, "cost"))))
    if rec["stability_hist"]:
        title = "Stability R of the issued recourse"
        out.append((title, svg(binned(rec["stability_hist"], title, "stability R"))))
    if report["quarantine"]:
        rows = [
            {
                "check": f"{q['check']} ({q['column']})" if q["column"] else q["check"],
                "rows": q["rows"],
            }
            for q in report["quarantine"]
        ]
        out.append(
            (
                "Quarantine by check",
                svg(bars(rows, "check", "rows", "Quarantine by check", horizontal=True)),
            )
        )
    redeploy = report.get("redeploy")
    if redeploy and redeploy["calibration"]:
        out.append(("Calibration", svg(calibration_chart(redeploy["calibration"]))))
    return out
