"""Benchmark the review app: latency of every page on the demo ledger (SQLite) and on a
1M-decision ledger (PostgreSQL), beside the time the page's own SQL takes, with the query
plans of the queries that grow with the ledger.

    python bench/ui.py --home governance-data                       # after `govern demo`
    python bench/ui.py --pg-url postgresql+psycopg://u:p@host/db --decisions 1000000

Pages are requested through Starlette's TestClient in this process (no network), each a few
times after one warm-up request; the SQL time is summed from the engine's cursor events, so
"page - SQL" is what Python, the templates and the charts cost. The PostgreSQL ledger is
synthetic but shaped like the demo's (30 nights, 30% denied, four reasons per denial, recourse
for nine in ten denials, a redeploy check over all of it, notices for one denial in six); it
is built once, by COPY, and reused while it holds the asked-for number of decisions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
NIGHTS = 30
FIRST_NIGHT = date(2026, 10, 1)


def sql_timer(engine: sa.Engine) -> dict[str, float]:
    """Seconds spent in cursor executions on ``engine`` (reset by the caller)."""
    spent = {"s": 0.0}

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _start(conn, cursor, statement, params, context, many):  # noqa: ANN001
        conn.info["t0"] = time.perf_counter()

    @sa.event.listens_for(engine, "after_cursor_execute")
    def _stop(conn, cursor, statement, params, context, many):  # noqa: ANN001
        spent["s"] += time.perf_counter() - conn.info.pop("t0", time.perf_counter())

    return spent


def measure(url: str, paths: dict[str, str], repeats: int, home: Path | None) -> dict:
    from fastapi.testclient import TestClient

    from govern_cli.web import charts
    from govern_cli.web.app import create_app

    app = create_app(url, home=home)
    charts.warm()
    spent = sql_timer(app.state.ledger.engine)
    client = TestClient(app)
    out = {}
    for name, path in paths.items():
        first = time.perf_counter()
        r = client.get(path, follow_redirects=False)
        first = time.perf_counter() - first
        assert r.status_code in (200, 303), (path, r.status_code)
        pages, sqls = [], []
        for _ in range(repeats):
            spent["s"] = 0.0
            t = time.perf_counter()
            client.get(path, follow_redirects=False)
            pages.append(time.perf_counter() - t)
            sqls.append(spent["s"])
        out[name] = {
            "path": path,
            "first_ms": first * 1e3,
            "median_ms": statistics.median(pages) * 1e3,
            "max_ms": max(pages) * 1e3,
            "sql_ms": statistics.median(sqls) * 1e3,
            "bytes": len(r.content),
        }
    app.state.ledger.engine.dispose()
    return out


def demo_paths(url: str) -> dict[str, str]:
    """The pages to time, with ids picked from the ledger (a denied subject with recourse that
    a redeploy check re-examined, the latest nightly and redeploy runs)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        nightly = conn.execute(
            sa.text("SELECT max(id) FROM runs WHERE kind = 'nightly' AND status = 'succeeded'")
        ).scalar()
        redeploy = conn.execute(sa.text("SELECT max(run_id) FROM deployment_checks")).scalar()
        subject, decision = conn.execute(
            sa.text(
                "SELECT d.subject_id, d.decision_id FROM decisions d "
                "JOIN issued_recourse i ON i.decision_id = d.decision_id "
                "ORDER BY d.decision_id LIMIT 1"
            )
        ).one()
        mv = conn.execute(sa.text("SELECT max(id) FROM model_versions")).scalar()
    engine.dispose()
    paths = {
        "runs": "/runs",
        "run (nightly)": f"/runs/{nightly}",
        "subject": f"/subject?id={quote(subject, safe='')}",
        "decision (redirect)": f"/decision?id={quote(decision, safe='')}",
        "search": f"/search?q={quote(subject[:4], safe='')}",
        "models": "/models",
        "model version": f"/models/{mv}",
        "deletions": "/deletions",
        "re-contact": "/recontact",
        "notices due": "/notices",
    }
    if redeploy:
        paths["run (redeploy)"] = f"/runs/{redeploy}"
        paths["re-contact of a run"] = f"/recontact?run={redeploy}"
        paths["re-contact CSV"] = f"/recontact.csv?run={redeploy}"
    return paths


# -- a 1M-decision ledger ---------------------------------------------------------------------
def build_large(url: str, n: int, seed: int = 0) -> None:
    """A synthetic ledger of ``n`` decisions over 30 nights, written by COPY."""
    from governance.data.synthetic import SYNTHETIC_SCHEMA
    from governance.store import init_store, session_factory, writes
    from governance.store.models import Base, ModelVersion

    rng = np.random.default_rng(seed)
    engine = init_store(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    engine = init_store(url)
    sessions = session_factory(engine)
    tables = Base.metadata.tables
    t0 = datetime.combine(FIRST_NIGHT, datetime.min.time(), tzinfo=UTC)
    manifest = {"features": SYNTHETIC_SCHEMA.to_list(), "threshold": 0.5, "favourable_class": 1}
    with sessions.begin() as s:
        versions = []
        for k, v in enumerate(("v1", "v2")):
            mv = ModelVersion(
                name="credit-default",
                version=v,
                artifact_sha256=f"{k}" * 64,
                created_at=t0 - timedelta(days=40 - 40 * k),
                manifest=manifest,
            )
            s.add(mv)
            s.flush()
            versions.append(mv.id)
        runs = []
        for i in range(NIGHTS):
            night = FIRST_NIGHT + timedelta(days=i)
            run = writes.start_run(s, f"nightly:{night}:*", "nightly", night=night)
            run.status, run.finished_at = "succeeded", run.started_at + timedelta(minutes=2)
            run.counts = {"decisions": n // NIGHTS}
            runs.append(run.id)
        redeploy = writes.start_run(s, "redeploy:credit-default:v2", "redeploy")
        redeploy.status = "succeeded"
        aset = writes.ensure_action_set(s, versions[0], {"name": "bench", "features": []}, "a" * 64)
        cost = writes.ensure_cost_model(s, "bench", {}, "c" * 64)
    nightly_of = np.repeat(np.arange(NIGHTS), int(np.ceil(n / NIGHTS)))[:n]
    ids = np.array([f"D{i:09d}" for i in range(n)], dtype=object)
    subjects = np.array([f"S{i:09d}" for i in rng.integers(0, int(n * 0.8), n)], dtype=object)
    stamps = pd.Timestamp(t0) + pd.to_timedelta(
        nightly_of * 86_400 + rng.integers(0, 86_400, n), unit="s"
    )
    denied = rng.random(n) < 0.3
    score = np.where(denied, rng.uniform(0.05, 0.5, n), rng.uniform(0.5, 0.99, n))
    feats = [
        {"annual_income": float(a), "debt_to_income": float(b), "savings": float(c)}
        for a, b, c in zip(
            rng.integers(10_000, 200_000, n),
            rng.uniform(0, 1, n).round(3),
            rng.integers(0, 50_000, n),
            strict=True,
        )
    ]
    run_ids = np.asarray(runs)[nightly_of]
    step = 200_000
    names = [f.name for f in SYNTHETIC_SCHEMA]
    for a in range(0, n, step):
        sl = slice(a, a + step)
        d_ids, d_denied = ids[sl], denied[sl]
        with sessions.begin() as s:
            writes.bulk_insert(
                s,
                tables["decisions"],
                pd.DataFrame(
                    {
                        "decision_id": d_ids,
                        "subject_id": subjects[sl],
                        "decided_at": stamps[sl],
                        "decision_date": stamps[sl].date,
                        "model_version_id": versions[0],
                        "score": score[sl],
                        "decision": np.where(d_denied, "denied", "approved"),
                        "features": feats[sl],
                        "score_recomputed": score[sl],
                        "run_id": run_ids[sl],
                    }
                ),
            )
            den = d_ids[d_denied]
            k = len(den)
            writes.bulk_insert(
                s,
                tables["reasons"],
                pd.DataFrame(
                    {
                        "decision_id": np.repeat(den, 4),
                        "model_version_id": versions[0],
                        "rank": np.tile(np.arange(1, 5), k),
                        "feature": rng.choice(names, 4 * k),
                        "attribution": -rng.random(4 * k),
                        "mu": np.where(rng.random(4 * k) < 0.6, 0.0, rng.random(4 * k)),
                    }
                ).drop_duplicates(["decision_id", "rank"]),
            )
            status = rng.choice(["recourse", "fixed", "undetermined"], k, p=[0.9, 0.07, 0.03])
            writes.bulk_insert(
                s,
                tables["recourse_checks"],
                pd.DataFrame(
                    {
                        "decision_id": den,
                        "model_version_id": versions[0],
                        "action_set_id": aset,
                        "status": status,
                        "complete": True,
                        "n_points": 100,
                        "reasons_given": 4,
                        "responsive_reasons": 1,
                        "all_reasons_unresponsive": False,
                        "fixed_with_reasons": status == "fixed",
                        "run_id": run_ids[sl][d_denied],
                    }
                ),
            )
            rec = den[status == "recourse"]
            m = len(rec)
            issued = pd.DataFrame(
                {
                    "recourse_id": [f"{d}@1" for d in rec],
                    "decision_id": rec,
                    "model_version_id": versions[0],
                    "action_set_id": aset,
                    "cost_model_id": cost,
                    "issued_at": stamps[sl][d_denied][status == "recourse"],
                    "cost": rng.gamma(2.0, 0.05, m),
                    "score_before": 0.3,
                    "score_after": 0.55,
                    "complete": rng.random(m) < 0.5,
                    "changes": [[{"feature": "savings", "from": 1000.0, "to": 3000.0}]] * m,
                    "x_after": [{"savings": 3000.0}] * m,
                    "run_id": run_ids[sl][d_denied][status == "recourse"],
                    "kind": "minimal",
                    "stability": rng.random(m),
                }
            )
            writes.bulk_insert(s, tables["issued_recourse"], issued)
            writes.bulk_insert(
                s,
                tables["recourse_validity"],
                pd.DataFrame(
                    {
                        "recourse_id": issued["recourse_id"],
                        "model_version_id": versions[1],
                        "run_id": redeploy.id,
                        "valid": rng.random(m) > 0.1,
                        "score": rng.random(m),
                        "checked_at": t0 + timedelta(days=NIGHTS + 1),
                    }
                ),
            )
            noticed = den[rng.random(k) < 1 / 6]
            writes.bulk_insert(
                s,
                tables["notices"],
                pd.DataFrame(
                    {
                        "notice_id": [f"N-{d}" for d in noticed],
                        "decision_id": noticed,
                        "subject_id": None,
                        "model_version_id": versions[0],
                        "kind": "credit",
                        "text": "notice",
                        "html": "<p>notice</p>",
                        "sha256": "0" * 64,
                        "reasons": [[]] * len(noticed),
                        "flags": [[]] * len(noticed),
                        "issued_at": t0 + timedelta(days=NIGHTS),
                        "due_at": t0 + timedelta(days=NIGHTS),
                        "retain_until": t0 + timedelta(days=800),
                    }
                ),
            )
        print(f"  wrote decisions {a:,}-{min(a + step, n):,}", flush=True)
    with sessions.begin() as s:
        writes.bulk_insert(
            s,
            tables["deployment_checks"],
            pd.DataFrame(
                [
                    {
                        "run_id": redeploy.id,
                        "model_name": "credit-default",
                        "new_version": "v2",
                        "recourses_checked": 1,
                        "invalidated": 0,
                        "invalidation_rate": 0.1,
                        "gate": 0.1,
                        "passed": True,
                        "checked_at": t0 + timedelta(days=NIGHTS + 1),
                    }
                ]
            ),
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()


def large_ready(url: str, n: int) -> bool:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT count(*) FROM decisions")).scalar()
    except sa.exc.DBAPIError:
        return False
    finally:
        engine.dispose()
    return found == n


# -- query plans ------------------------------------------------------------------------------
def plans(url: str, paths: dict[str, str]) -> dict[str, str]:
    """EXPLAIN ANALYZE of the statements that grow with the ledger, as the pages send them."""
    from sqlalchemy.dialects import postgresql

    from governance.store import review, subjects
    from governance.store.engine import readonly_engine, session_factory
    from governance.store.models import Decision

    engine = readonly_engine(url)
    captured: list[tuple[str, object]] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _keep(conn, cursor, statement, params, context, many):  # noqa: ANN001
        captured.append((statement, params))

    want = {}
    with session_factory(engine)() as s:
        from urllib.parse import parse_qs, urlsplit

        subject = parse_qs(urlsplit(paths["subject"]).query)["id"][0]
        run_id = int(paths["run (nightly)"].rsplit("/", 1)[1])
        for name, call in (
            ("subject: decisions", lambda: subjects.subject(s, subject)),
            ("run report", lambda: review.run_report(s, run_id)),
            ("re-contact page", lambda: review.recontact_page(s, None, 1, 50)),
            ("models: decisions per version", lambda: review.model_versions(s)),
        ):
            captured.clear()
            call()
            want[name] = list(captured)
        from governance.store.notices import overdue

        captured.clear()
        overdue(s, datetime.now(UTC), 30)
        want["notices due"] = list(captured)
        del Decision, postgresql
    out = {}
    with engine.connect() as conn:
        for name, statements in want.items():
            # the slowest statement of the page, by its own EXPLAIN ANALYZE
            best = ("", -1.0)
            for statement, params in statements:
                rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                text = "\n".join(r[0] for r in rows)
                ms = float(text.rsplit("Execution Time: ", 1)[1].split(" ms")[0])
                if ms > best[1]:
                    best = (text, ms)
            out[name] = best[0]
    engine.dispose()
    return out


def table(results: dict[str, dict]) -> str:
    names = list(next(iter(results.values())).keys())
    cols = list(results)
    lines = ["| page | " + " | ".join(f"{c}: page ms (SQL ms)" for c in cols) + " |"]
    lines.append("|---|" + "---|" * len(cols))
    for n in names:
        cells = []
        for c in cols:
            r = results[c].get(n)
            cells.append("—" if r is None else f"{r['median_ms']:.0f} ({r['sql_ms']:.0f})")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--home", type=Path, help="data folder of `govern demo` (SQLite ledger)")
    ap.add_argument("--pg-url", help="PostgreSQL database for the large ledger (it is replaced)")
    ap.add_argument("--decisions", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    results, plan_text = {}, {}
    if args.home:
        url = f"sqlite:///{args.home.resolve() / 'governance.db'}"
        results["demo (SQLite)"] = measure(url, demo_paths(url), args.repeats, args.home)
    if args.pg_url:
        if args.rebuild or not large_ready(args.pg_url, args.decisions):
            t = time.perf_counter()
            print(f"building a {args.decisions:,}-decision ledger in PostgreSQL", flush=True)
            build_large(args.pg_url, args.decisions)
            print(f"  built in {time.perf_counter() - t:.0f} s", flush=True)
        paths = demo_paths(args.pg_url)
        results[f"{args.decisions:,} decisions (PostgreSQL)"] = measure(
            args.pg_url, paths, args.repeats, None
        )
        plan_text = plans(args.pg_url, paths)
    if not results:
        ap.error("give --home, --pg-url or both")
    print(table(results))
    for name, text in plan_text.items():
        print(f"\n-- {name}\n{text}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "ui.json").write_text(
        json.dumps(
            {"measured_at": datetime.now(UTC).isoformat(), "pages": results, "plans": plan_text},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
