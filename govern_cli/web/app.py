"""The read-only review app: server-rendered pages over the ledger (FastAPI + Jinja2).

No page needs JavaScript and none is served: the Content-Security-Policy allows no script at
all, and every asset (one stylesheet, one icon) comes from the app itself. The ledger is opened
read-only (see :func:`governance.store.engine.readonly_engine`) and the app has no route that
writes: any method but GET and HEAD is refused before routing. Bound beyond the loopback
interface, every page needs the token (``GOVERNANCE_UI_TOKEN``), sent as a bearer token, a
cookie, or once as ``?token=`` (which sets the cookie and redirects to the same page without it).
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Query, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from govern_cli.web import charts as run_charts
from govern_cli.web.documents import STATIC, environment
from govern_cli.web.notices import blocked_reasons, settings_or_none

ENV_TOKEN = "GOVERNANCE_UI_TOKEN"
COOKIE = "governance_ui_token"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
READ_METHODS = ("GET", "HEAD")
PUBLIC = ("/static/", "/favicon.ico")  # no ledger data: served without the token
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
REPORTS_KEPT = 64  # run reports (with their SVG charts) kept in memory
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def needs_token(host: str) -> bool:
    """Bound beyond the loopback interface, the app wants a token."""
    return host not in LOOPBACK


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text: a string starting like a formula gets a
    leading apostrophe (ids are stored verbatim and may start with '=')."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class Ledger:
    """Read-only sessions on the ledger, and which optional tables it has."""

    def __init__(self, url: str) -> None:
        from governance.store.engine import readonly_engine, safe_url
        from governance.store.engine import session_factory as factory

        self.url = safe_url(url)
        self.engine = readonly_engine(url)
        self.sessions = factory(self.engine)
        with self.engine.connect() as conn:
            self.tables = set(sa.inspect(conn).get_table_names())
        from governance.exceptions import StoreError
        from governance.store.engine import current_revision, head_revision

        if "decisions" not in self.tables:
            raise StoreError(f"{self.url} holds no ledger: run `govern demo` or a nightly run")
        found, head = current_revision(self.engine), head_revision()
        if found != head:
            raise StoreError(
                f"the ledger at {self.url} is at schema revision {found}, this code needs {head}: "
                "`govern serve` upgrades it before serving (any other govern command does too)"
            )


def create_app(
    db_url: str,
    *,
    token: str | None = None,
    home: Path | None = None,
    per_page: int = 50,
) -> FastAPI:
    """The review app over the ledger at ``db_url``.

    Parameters
    ----------
    token : str, optional
        Required on every request when given (``govern serve`` passes $GOVERNANCE_UI_TOKEN when
        bound beyond 127.0.0.1).
    home : Path, optional
        Data folder: the registry's deployment history, the tombstone salt (to find an erased
        subject's tombstone by id) and the notice settings are read from it, never written.
    """
    from governance.store import review, subjects
    from governance.store.aliases import alias_history

    ledger = Ledger(db_url)
    if home is not None:
        # the registry (read for deployment history) imports scikit-learn: pay that at start
        import governance.registry.model_registry  # noqa: F401
    app = FastAPI(title="governance review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ledger = ledger  # the benchmark times the SQL of each page on its engine
    templates = Jinja2Templates(env=environment())
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    report_cache: dict[tuple, tuple] = {}

    @app.middleware("http")
    async def guard(request: Request, call_next):  # noqa: ANN001, ANN202 - Starlette's types
        if request.method not in READ_METHODS:
            response: Response = PlainTextResponse(
                "This review app is read-only: it has no route that writes.",
                status_code=405,
                headers={"Allow": ", ".join(READ_METHODS)},
            )
        elif (
            token is not None
            and not request.url.path.startswith(PUBLIC)
            and not authorised(request, token)
        ):
            given = request.query_params.get("token")
            if given is not None and secrets.compare_digest(given.encode(), token.encode()):
                clean = request.url.remove_query_params("token")
                response = RedirectResponse(
                    str(clean.path) + (f"?{clean.query}" if clean.query else ""), 303
                )
                response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            else:
                response = HTMLResponse(
                    templates.get_template("error.html").render(
                        status=401,
                        title="token required",
                        message="This app is served beyond 127.0.0.1: open it with "
                        "?token=<GOVERNANCE_UI_TOKEN>, or send the token as a bearer token.",
                        request=request,
                    ),
                    status_code=401,
                )
        else:
            response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    def page(request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(
            request, name, {"q": request.query_params.get("q"), **context}, status_code=code
        )

    def not_found(request: Request, title: str, message: str) -> HTMLResponse:
        return page(request, "error.html", 404, status=404, title=title, message=message)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/runs", 303)

    @app.get("/runs", response_class=HTMLResponse)
    def runs(request: Request, page_no: int = Query(1, alias="page", ge=1)) -> HTMLResponse:
        with ledger.sessions() as s:
            rows, total = review.runs_page(s, page_no, per_page)
        return page(request, "runs.html", rows=rows, total=total, page=page_no, per=per_page)

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run(
        request: Request, run_id: int, page_no: int = Query(1, alias="page", ge=1)
    ) -> HTMLResponse:
        with ledger.sessions() as s:
            info = review.run(s, run_id)
            if info is None:
                return not_found(request, "no such run", f"The ledger has no run #{run_id}.")
            # A finished run's report changes only when the run is redone or an erasure
            # removes some of its rows: key the cached report (and its charts) on both.
            key = (run_id, info["status"], info["finished_at"], info["attempts"])
            key += (review.erasures(s),)
            if info["status"] == "running" or key not in report_cache:
                report = review.run_report(s, run_id)
                while len(report_cache) >= REPORTS_KEPT:
                    report_cache.pop(next(iter(report_cache)))  # the oldest
                report_cache[key] = (report, run_charts.run_charts(report))
            qrows, qtotal = review.quarantine_page(s, run_id, page_no, per_page)
            drows, dtotal = review.run_decisions_page(s, run_id, page_no, per_page)
        report, charts = report_cache[key]
        return page(
            request,
            "run.html",
            report=report,
            charts=charts,
            links=True,
            qrows=qrows,
            qtotal=qtotal,
            drows=drows,
            dtotal=dtotal,
            page=page_no,
            per=per_page,
        )

    @app.get("/subject", response_class=HTMLResponse)
    def subject(request: Request, id: str = Query(..., max_length=200)) -> HTMLResponse:  # noqa: A002
        now = datetime.now(UTC)
        settings, _ = settings_or_none(home)
        with ledger.sessions() as s:
            decisions = subjects.subject(s, id)
            graves = subjects.tombstones(s, hashed(id)) if salt() else []
            retained = subjects.retained_notices(s, id) if "notices" in ledger.tables else []
        return page(
            request,
            "subject.html",
            subject_id=id,
            decisions=decisions,
            tombstones=graves,
            retained=retained,
            now=now,
            due_days=settings.due_days if settings else 30,
        )

    @app.get("/decision")
    def decision(request: Request, id: str = Query(..., max_length=200)) -> Response:  # noqa: A002
        from govern_cli.web.documents import anchor, url_part

        with ledger.sessions() as s:
            subject_id = subjects.subject_of_decision(s, id)
        if subject_id is None:
            return not_found(
                request, "no such decision", "The ledger holds no decision with that id."
            )
        return RedirectResponse(f"/subject?id={url_part(subject_id)}#{anchor(id)}", 303)

    @app.get("/search", response_class=HTMLResponse)
    def search(
        request: Request,
        q: str = Query("", max_length=200),
        page_no: int = Query(1, alias="page", ge=1),
    ) -> Response:
        from govern_cli.web.documents import url_part

        found = {"subjects": [], "decisions": [], "more": False}
        if q:
            with ledger.sessions() as s:
                found = subjects.search(s, q, page_no, per_page)
            exact_s = q in found["subjects"]
            exact_d = q in found["decisions"]
            if page_no == 1 and exact_s and not exact_d:
                return RedirectResponse(f"/subject?id={url_part(q)}", 303)
            if page_no == 1 and exact_d and not exact_s:
                return RedirectResponse(f"/decision?id={url_part(q)}", 303)
        return page(request, "search.html", found=found, page=page_no)

    @app.get("/models", response_class=HTMLResponse)
    def models(request: Request, page_no: int = Query(1, alias="page", ge=1)) -> HTMLResponse:
        with ledger.sessions() as s:
            rows = review.model_versions(s)
        start = (page_no - 1) * per_page
        return page(
            request,
            "models.html",
            rows=rows[start : start + per_page],
            total=len(rows),
            page=page_no,
            per=per_page,
        )

    @app.get("/models/{mv_id}", response_class=HTMLResponse)
    def model(request: Request, mv_id: int) -> HTMLResponse:
        with ledger.sessions() as s:
            m = review.model_version(s, mv_id)
            # MLflow alias moves of the governed model (a ledger from before they were
            # recorded has no such table)
            aliases = (
                [a for a in alias_history(s) if m and a["model_name"] == m["name"]]
                if "mlflow_alias_events" in ledger.tables
                else []
            )
        if m is None:
            return not_found(request, "no such model version", f"No model version #{mv_id}.")
        # the registry's history only where the ledger records no deployment states
        history = registry_deployments(m["name"]) if m["states"] is None else None
        return page(request, "model.html", m=m, deployments=history, aliases=aliases)

    @app.get("/deletions", response_class=HTMLResponse)
    def deletions(request: Request, page_no: int = Query(1, alias="page", ge=1)) -> HTMLResponse:
        with ledger.sessions() as s:
            rows, total = review.deletions_page(s, datetime.now(UTC), page_no, per_page)
        return page(request, "deletions.html", rows=rows, total=total, page=page_no, per=per_page)

    @app.get("/recontact", response_class=HTMLResponse)
    def recontact(
        request: Request,
        run_id: int | None = Query(None, alias="run"),
        page_no: int = Query(1, alias="page", ge=1),
    ) -> HTMLResponse:
        with ledger.sessions() as s:
            rows, total = review.recontact_page(s, run_id, page_no, per_page)
            runs_found = review.recontact_runs(s)
        return page(
            request,
            "recontact.html",
            rows=rows,
            total=total,
            runs=runs_found,
            run_id=run_id,
            page=page_no,
            per=per_page,
        )

    @app.get("/recontact.csv")
    def recontact_csv(run_id: int | None = Query(None, alias="run")) -> StreamingResponse:
        def rows() -> Iterator[str]:
            buf = io.StringIO()
            out = csv.writer(buf)
            out.writerow(review.RECONTACT_COLUMNS)
            with ledger.sessions() as s:
                for row in review.recontact_rows(s, run_id):
                    out.writerow([csv_cell(v) for v in row])
                    if buf.tell() > 64_000:
                        yield buf.getvalue()
                        buf.seek(0)
                        buf.truncate()
            yield buf.getvalue()

        name = f"recontact-run-{run_id}.csv" if run_id is not None else "recontact.csv"
        return StreamingResponse(
            rows(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.get("/notices", response_class=HTMLResponse)
    def notices(request: Request, page_no: int = Query(1, alias="page", ge=1)) -> HTMLResponse:
        settings, note = settings_or_none(home)
        due_days = settings.due_days if settings else 30
        rows, total = [], 0
        if "notices" in ledger.tables:
            with ledger.sessions() as s:
                from governance.store.notices import overdue

                rows, total = overdue(
                    s, datetime.now(UTC), due_days, limit=per_page, offset=(page_no - 1) * per_page
                )
                cache: dict = {}
                for r in rows:
                    r["problems"] = blocked_reasons(s, r["decision_id"], settings, cache)
        return page(
            request,
            "notices.html",
            rows=rows,
            total=total,
            due_days=due_days,
            settings_note=note,
            page=page_no,
            per=per_page,
        )

    def salt() -> bytes | None:
        if home is None:
            return None
        from governance import config
        from governance.deletion.requests import read_salt

        try:
            return read_salt(config.salt_path(home))
        except Exception:  # noqa: BLE001 - an unreadable salt only hides tombstones
            return None

    def hashed(subject_id: str) -> str:
        from governance.deletion.requests import subject_hash

        return subject_hash(subject_id, salt())

    def registry_deployments(name: str) -> list[dict[str, str]] | None:
        if home is None:
            return None
        from governance import config
        from governance.registry.model_registry import ModelRegistry

        try:
            return ModelRegistry(config.registry_dir(home)).deployments(name)
        except Exception:  # noqa: BLE001 - the registry is optional context here
            return None

    return app


def authorised(request: Request, token: str) -> bool:
    """Whether the request carries the token (bearer header or cookie)."""
    want = token.encode()
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and secrets.compare_digest(
        header[7:].strip().encode(), want
    ):
        return True
    cookie = request.cookies.get(COOKIE)
    return cookie is not None and secrets.compare_digest(cookie.encode(), want)
