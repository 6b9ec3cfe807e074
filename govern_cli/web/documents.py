"""One Jinja2 environment for the review pages, run reports and notices, and PDF output.

HTML templates autoescape every value (ids, features and statements are stored verbatim and may
hold markup); the only markup passed through unescaped is the SVG vl-convert renders, whose
text it escapes itself. Text templates (``.txt``) are not escaped: they are plain text.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

WEB = Path(__file__).resolve().parent
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"


def fmt_dt(value: Any) -> str:
    """A time as ``YYYY-MM-DD HH:MM UTC``, a date as ``YYYY-MM-DD``, nothing as a dash."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def fmt_num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:,.{digits}f}" if abs(value) < 1_000 else f"{value:,.0f}"
    return str(value)


def fmt_pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):.1%}"


def fmt_signed(value: Any) -> str:
    return "—" if value is None else f"{float(value):+.4f}"


def url_part(value: Any) -> str:
    """A value as one query-string component: every reserved character escaped."""
    return quote(str(value), safe="")


def anchor(value: Any) -> str:
    """A fragment id for a stored id (which may hold anything): a short hash of it."""
    return "d-" + hashlib.sha256(str(value).encode()).hexdigest()[:12]


def css_class(value: Any) -> str:
    return "".join(ch for ch in str(value).lower() if ch.isalnum() or ch == "-")[:24]


def mu_words(reason: dict[str, Any]) -> str:
    """What a reason's responsiveness means, in words."""
    if reason.get("no_feasible_action"):
        return "no feasible action: the action set allows no change to this feature"
    mu = reason.get("mu")
    if mu is None:
        return "not scored (no action set for this model)"
    if mu == 0:
        return (
            "no change to this feature alone, among those the action set allows, leads to approval"
        )
    return f"{mu:.0%} of the changes the action set allows to this feature alone lead to approval"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str, ensure_ascii=False)


def pretty_inline(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def by_feature(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reason counts (feature, rank, n) folded into one row per feature, most given first."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        f = out.setdefault(r["feature"], {"feature": r["feature"], "ranks": {}, "total": 0})
        f["ranks"][r["rank"]] = f["ranks"].get(r["rank"], 0) + r["n"]
        f["total"] += r["n"]
    return sorted(out.values(), key=lambda x: (-x["total"], x["feature"]))


def notice_due(record: dict[str, Any], days: int = 30) -> datetime:
    start = record.get("completed_at") or record["decided_at"]
    return start + timedelta(days=days)


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default_for_string=True, default=False),
        trim_blocks=False,
        lstrip_blocks=False,
    )
    env.filters.update(
        dt=fmt_dt,
        num=fmt_num,
        pct=fmt_pct,
        signed=fmt_signed,
        q=url_part,
        anchor=anchor,
        css=css_class,
        mu_words=mu_words,
        pretty=pretty,
        pretty_inline=pretty_inline,
        by_feature=by_feature,
        notice_due=notice_due,
    )
    return env


def stylesheet() -> str:
    return (STATIC / "style.css").read_text()


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def run_report_html(report: dict[str, Any], charts: list[tuple[str, Markup]], ledger: str) -> str:
    """The night's report as one self-contained HTML file: inline CSS and SVG, no script."""
    return render(
        "report.html",
        report=report,
        charts=charts,
        css=Markup(stylesheet()),
        ledger=ledger,
        generated=datetime.now(UTC),
        links=False,
    )


def notice_documents(content: Any) -> tuple[str, str]:
    """The notice as (HTML, plain text)."""
    name = f"notice_{content.kind}"
    html = render(f"{name}.html", n=content, css=Markup(stylesheet()))
    text = render(f"{name}.txt", n=content)
    return html, "\n".join(line.rstrip() for line in text.splitlines()).strip() + "\n"


def pdf_bytes(html: str) -> bytes:
    """Render HTML (already self-contained) to PDF with WeasyPrint; nothing is fetched."""
    import weasyprint

    def no_fetch(url: str, *args: Any, **kwargs: Any) -> dict:
        raise ValueError(f"documents are self-contained; refusing to fetch {url}")

    return weasyprint.HTML(string=html, url_fetcher=no_fetch).write_pdf()
