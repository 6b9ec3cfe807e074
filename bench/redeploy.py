"""Benchmark the redeploy check: re-validate N issued recourses against a new model version, and
stability scores per second, with the share of time inside the model's predict.

    python bench/redeploy.py --recourses 1000000 --db sqlite|postgresql|URL [--workers 2]

Measured side by side in one run: the core path in one process (read from the ledger, score,
write one validity event each, in a transaction rolled back at the end) and the redeploy-check
flow on Prefect and Dask, whose workers each read their own recourse_id range of the ledger
and write its validity events. Then, reported separately, the same flow with retrained
variants (forward validity) and the re-examination of a night of recent denials. The last line
is the flow's re-validation time beside the time inside predict (the floor). Goals on 2 cores:
20 s on PostgreSQL, 30 s on SQLite, for 1M.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

import flows  # noqa: F401 - quiet Prefect defaults before it is imported

NIGHT = date(2026, 11, 2)
# The seeded recourses were issued months before the recent night, so that the re-examination
# of recent denials covers that night alone and not the million seeded decisions.
SEEDED = datetime(2026, 5, 4, 12, tzinfo=UTC)
PG_ADMIN_URL = os.environ.get(
    "GOVERNANCE_TEST_PG_URL", "postgresql+psycopg://governance:governance@127.0.0.1:5432/postgres"
)


def make_db(kind: str, home: Path) -> tuple[str, str | None]:
    """The store URL for ``--db``: a SQLite file, a fresh PostgreSQL database (dropped at the
    end; returns its name), or a URL as given."""
    if kind == "sqlite":
        return f"sqlite:///{home / 'ledger.db'}", None
    if kind != "postgresql":
        return kind, None
    import sqlalchemy as sa

    name = f"gov_bench_redeploy_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(False), name


def drop_db(name: str) -> None:
    import sqlalchemy as sa

    from governance.store import bulk
    from tasks import worker

    bulk.forget_connections()
    worker.engine.cache_clear()
    worker.sessions.cache_clear()
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :d AND pid <> pg_backend_pid()"
            ),
            {"d": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def seed_ledger(url: str, home: Path, n: int) -> None:
    """Write n decisions and n recourses issued under v1 straight into the ledger."""
    from governance.chunk import human_values
    from governance.data.synthetic import generate_population
    from governance.registry.model_registry import ModelRegistry
    from governance.store import init_store, session_factory, writes
    from governance.store.models import Base

    reg = ModelRegistry(home / "registry")
    model = reg.load("credit-default", "v1")
    engine = init_store(url)
    sessions = session_factory(engine)
    people = generate_population(n, seed=77, start_id=20_000_000)
    X = model.matrix(people)
    names = model.schema.names
    stamps = SEEDED
    with sessions.begin() as session:
        mv = writes.ensure_model_version(session, reg.manifest("credit-default", "v1"))
        run = writes.start_run(session, "bench:redeploy", "bench").id
        aset = writes.ensure_action_set(session, mv, {"name": "bench"}, "0" * 64)
        cost = writes.ensure_cost_model(session, "bench", {}, "1" * 64)
    ids = [f"B{i:09d}" for i in range(n)]
    tables = Base.metadata.tables
    step = 200_000
    for start in range(0, n, step):
        sl = slice(start, start + step)
        x_after = [human_values(model, row) for row in X[sl]]
        codes = [row.tobytes() for row in np.ascontiguousarray(X[sl], dtype="<f8")]
        with sessions.begin() as session:
            writes.bulk_insert(
                session,
                tables["decisions"],
                pd.DataFrame(
                    {
                        "decision_id": ids[sl],
                        "subject_id": people["subject_id"].to_numpy()[sl],
                        "decided_at": stamps,
                        "decision_date": SEEDED.date(),
                        "model_version_id": mv,
                        "score": 0.4,
                        "decision": "denied",
                        "features": x_after,
                        "score_recomputed": 0.4,
                        "run_id": run,
                    }
                ),
            )
            writes.bulk_insert(
                session,
                tables["issued_recourse"],
                pd.DataFrame(
                    {
                        "recourse_id": [f"{d}@{mv}" for d in ids[sl]],
                        "decision_id": ids[sl],
                        "model_version_id": mv,
                        "action_set_id": aset,
                        "cost_model_id": cost,
                        "issued_at": stamps,
                        "cost": 0.1,
                        "score_before": 0.4,
                        "score_after": 0.6,
                        "complete": True,
                        "changes": [[{"feature": names[1], "from": 0, "to": 1}]] * len(x_after),
                        "x_after": x_after,
                        # the binary copy the check reads (same layout as v2's schema)
                        "x_codes": codes,
                        "layout_sha256": model.schema.layout_sha256,
                        "changed": names[1],
                        "run_id": run,
                        "kind": "minimal",
                    }
                ),
            )


def core_path(url: str, home: Path) -> dict[str, float]:
    """Read, score and record every open recourse under v2 in this process, in one
    transaction that is rolled back at the end (the flow then finds v2 unchecked)."""
    from governance.registry.model_registry import ModelRegistry
    from governance.retraining.revalidation import revalidate
    from governance.store import bulk, init_store, session_factory, writes
    from governance.store.models import Base
    from governance.store.queries import open_recourse_slice
    from tasks.redeploy import promised_points

    reg = ModelRegistry(home / "registry")
    model = reg.load("credit-default", "v2")
    engine = init_store(url)
    sessions = session_factory(engine)
    t = {}
    session = sessions()
    try:
        mv = writes.ensure_model_version(session, reg.manifest("credit-default", "v2"))
        run = writes.start_run(session, "bench:redeploy:core", "bench").id
        t0 = time.perf_counter()
        rows = open_recourse_slice(
            engine, "credit-default", mv, datetime(2000, 1, 1, tzinfo=UTC), None,
            layout=model.schema.layout_sha256,
        )
        t["read"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        X, _ = promised_points(model, rows, url)  # the binary copies, as the flow reads them
        t["decode"] = time.perf_counter() - t1
        model.stats.reset()
        t2 = time.perf_counter()
        checked = revalidate(model, X)
        t["score"] = time.perf_counter() - t2
        t["predict"] = model.stats.seconds
        t3 = time.perf_counter()
        table = Base.metadata.tables["recourse_validity"]
        prepared = bulk.prepare(
            table,
            pd.DataFrame(
                {
                    "recourse_id": rows["recourse_id"].to_numpy(zero_copy_only=False),
                    "model_version_id": mv,
                    "run_id": run,
                    "valid": checked.valid,
                    "score": checked.score,
                    "checked_at": writes.now(),
                }
            ),
            engine.dialect,
        )
        t["bind"] = time.perf_counter() - t3
        t4 = time.perf_counter()
        writes.bulk_insert(session, table, prepared)
        session.flush()
        t["write"] = time.perf_counter() - t4
        t["total"] = time.perf_counter() - t0
    finally:
        session.rollback()
        session.close()
    t["n"] = len(rows)
    t["invalidated"] = int((~checked.valid).sum())
    return t


def flow_path(url: str, home: Path, workers: int, chunk_rows: int, **kwargs) -> dict:
    from flows.redeploy import redeploy_check
    from flows.runtime import task_runner

    flow = redeploy_check.with_options(task_runner=task_runner(None, workers))
    t0 = time.perf_counter()
    summary = flow(
        model="credit-default",
        version="v2",
        home=str(home),
        db=url,
        window_months=1_000,
        gate=1.0,
        chunk_rows=chunk_rows,
        **{"variants": 0, "recent_days": 0, **kwargs},
    )
    outer = time.perf_counter() - t0
    return {
        **summary["timings"],
        "outer": outer,
        "n": summary["counts"]["recourses_checked"],
        "compared": summary["counts"].get("recent_denials", {}).get("compared", 0),
    }


def recent_night(url: str, home: Path, workers: int) -> int:
    """Run the nightly flow on the demo night into the same ledger: recent denials with their
    reasons and verdicts, for the comparison step."""
    from flows.nightly import nightly_governance
    from flows.runtime import task_runner

    flow = nightly_governance.with_options(task_runner=task_runner(None, workers))
    summary = flow(night=NIGHT, home=str(home), db=url, deletions=False)
    return int(summary["counts"].get("denied", 0))


def recent_days() -> int:
    """A window of recent denials that holds the recent night and none of the seeded ones."""
    days = (datetime.now(UTC).date() - NIGHT).days + 2
    if datetime.now(UTC) - timedelta(days=days) <= SEEDED:
        raise SystemExit("the recent night is too far from the seeded recourses: move SEEDED")
    return days


def stability_rate(home: Path, n: int) -> dict[str, float]:
    from governance.registry.model_registry import ModelRegistry
    from governance.retraining.stability_score import feature_scale, stability

    reg = ModelRegistry(home / "registry")
    model = reg.load("credit-default", "v1")
    train = reg.training_frame("credit-default", "v1")
    scale = feature_scale(model.schema, train)
    X = model.matrix(train.head(n))
    model.stats.reset()
    t0 = time.perf_counter()
    stability(model, X, scale, k=1000, sigma=0.05)
    sec = time.perf_counter() - t0
    return {"n": n, "seconds": sec, "per_s": n / sec, "predict_share": model.stats.seconds / sec}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recourses", type=int, default=1_000_000)
    ap.add_argument(
        "--db", default="sqlite", help="sqlite (a file), postgresql (a fresh database) or a URL"
    )
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--chunk-rows", type=int, default=250_000, help="recourses per task")
    ap.add_argument("--variants", type=int, default=2, help="retrained variants (0: skip)")
    ap.add_argument("--recent-rows", type=int, default=2_000, help="decisions in the recent night")
    ap.add_argument("--stability-points", type=int, default=2_000)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from flows.runtime import prefect_api
    from governance.demo import prepare_demo

    home = Path(tempfile.mkdtemp(prefix="bench-redeploy-"))
    url, pg_name = make_db(args.db, home)
    backend = url.split(":")[0].split("+")[0]
    try:
        t = time.perf_counter()
        prepare_demo(home, rows_per_night=max(100, args.recent_rows), nights=[NIGHT])
        seed_ledger(url, home, args.recourses)
        print(
            f"set-up: models v1, v2 and {args.recourses:,} issued recourses "
            f"in {time.perf_counter() - t:.0f} s ({backend}); load average "
            f"{os.getloadavg()[0]:.1f}"
        )
        core = core_path(url, home)
        with prefect_api():
            flow = flow_path(url, home, args.workers, args.chunk_rows)
            extra = None
            if args.variants or args.recent_rows:
                denied = recent_night(url, home, args.workers) if args.recent_rows else 0
                extra = flow_path(
                    url, home, args.workers, args.chunk_rows,
                    variants=args.variants, recent_days=recent_days(),
                )
                extra["recent_denied"] = denied
        st = stability_rate(home, args.stability_points)
    finally:
        if pg_name:
            drop_db(pg_name)
    n = core["n"]
    print(f"\nre-validating {n:,} issued recourses under v2 ({os.cpu_count()} cores, {backend})")
    print(f"{'path':<36}{'seconds':>9}{'recourses/s':>14}")
    print(f"{'core, one process':<36}{core['total']:>9.1f}{n / core['total']:>14,.0f}")
    for k in ("read", "decode", "score", "bind", "write"):
        print(f"  {k:<34}{core[k]:>9.1f}")
    print(
        f"  {'inside predict':<34}{core['predict']:>9.1f}   "
        f"({core['predict'] / core['total']:.0%} of the core path)"
    )
    fl = flow["load"] + flow["revalidate"]
    print(f"{'redeploy-check flow (Prefect+Dask)':<36}{fl:>9.1f}{flow['n'] / fl:>14,.0f}")
    print(f"  {'plan (key ranges)':<34}{flow['load']:>9.1f}")
    print(f"  {'re-validate on workers (wall)':<34}{flow['revalidate']:>9.1f}")
    for k in ("read", "decode", "score", "bind", "write"):
        print(f"    {k + ' (worker-seconds)':<32}{flow.get('revalidate_' + k, 0):>9.1f}")
    print(f"    {'inside predict (worker-seconds)':<32}{flow['revalidate_predict']:>9.1f}")
    print(f"  {'whole flow call':<34}{flow['outer']:>9.1f}")
    print(f"invalidated under v2: {core['invalidated']:,} ({core['invalidated'] / n:.1%})")
    if extra:
        print(
            "\nreported separately (second run over the same ledger, its validity rows replaced):"
        )
        print(f"  {'retrain ' + str(args.variants) + ' variants':<34}{extra['variants']:>9.1f}")
        print(
            f"  {'re-validate + forward validity':<34}{extra['revalidate']:>9.1f}   "
            f"(inside predict {extra['revalidate_predict']:.1f} worker-s)"
        )
        print(
            f"  {'re-examine recent denials':<34}{extra['compare']:>9.1f}   "
            f"({extra['compared']:,} denials)"
        )
    print(
        f"\nstability R (k=1000, sigma=0.05): {st['per_s']:,.0f} points/s "
        f"({st['n']:,} points in {st['seconds']:.1f} s, {st['predict_share']:.0%} in predict)"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"redeploy-{backend}.json").write_text(
        json.dumps({"core": core, "flow": flow, "extra": extra, "stability": st,
                    "load_average": os.getloadavg()}, indent=1, default=str)
    )
    floor = flow["revalidate_predict"] / max(1, args.workers)
    print(
        f"redeploy flow: {flow['n']:,} recourses in {fl:.1f} s ({backend}); "
        f"inside predict {flow['revalidate_predict']:.1f} worker-s = {floor:.1f} s on "
        f"{args.workers} workers (the floor)"
    )


if __name__ == "__main__":
    main()
