"""Benchmark the redeploy check: re-validate N issued recourses against a new model version, and
stability scores per second, with the share of time inside the model's predict.

    python bench/redeploy.py --recourses 1000000 [--db URL] [--workers 2]

Two measurements of the same re-validation, side by side: the core path in one process (read
from the ledger, score, write one validity event each) and the redeploy-check flow on Prefect
and Dask. The goal is about pure predict time (30 s or less for 1M on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

import flows  # noqa: F401 - quiet Prefect defaults before it is imported

NIGHT = date(2026, 11, 2)


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
    x_after = [human_values(model, row) for row in X]
    codes = [row.tobytes() for row in np.ascontiguousarray(X, dtype="<f8")]
    stamps = datetime(2026, 11, 2, 12, tzinfo=UTC)
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
        with sessions.begin() as session:
            writes.bulk_insert(
                session,
                tables["decisions"],
                pd.DataFrame(
                    {
                        "decision_id": ids[sl],
                        "subject_id": people["subject_id"].to_numpy()[sl],
                        "decided_at": stamps,
                        "decision_date": NIGHT,
                        "model_version_id": mv,
                        "score": 0.4,
                        "decision": "denied",
                        "features": x_after[sl],
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
                        "changes": [[{"feature": names[1], "from": 0, "to": 1}]] * len(ids[sl]),
                        "x_after": x_after[sl],
                        # the binary copy the check reads (same layout as v2's schema)
                        "x_codes": codes[sl],
                        "layout_sha256": model.schema.layout_sha256,
                        "run_id": run,
                        "kind": "minimal",
                    }
                ),
            )


def core_path(url: str, home: Path) -> dict[str, float]:
    """Read, score and record every open recourse under v2 in this process."""
    from governance.registry.model_registry import ModelRegistry
    from governance.retraining.revalidation import revalidate
    from governance.store import init_store, session_factory, writes
    from governance.store.models import Base
    from governance.store.queries import open_recourse
    from tasks.redeploy import promised_points

    reg = ModelRegistry(home / "registry")
    model = reg.load("credit-default", "v2")
    sessions = session_factory(init_store(url))
    t = {}
    t0 = time.perf_counter()
    with sessions.begin() as session:
        mv = writes.ensure_model_version(session, reg.manifest("credit-default", "v2"))
        run = writes.start_run(session, "bench:redeploy:core", "bench").id
        issued = open_recourse(session, "credit-default", mv, datetime(2000, 1, 1, tzinfo=UTC))
    t["read"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    X, _ = promised_points(model, issued, url)  # the binary copies, as the flow reads them
    t["decode"] = time.perf_counter() - t1
    model.stats.reset()
    t2 = time.perf_counter()
    checked = revalidate(model, X)
    t["score"] = time.perf_counter() - t2
    t["predict"] = model.stats.seconds
    t3 = time.perf_counter()
    rows = pd.DataFrame(
        {
            "recourse_id": issued["recourse_id"].to_numpy(),
            "model_version_id": mv,
            "run_id": run,
            "valid": checked.valid,
            "score": checked.score,
            "checked_at": writes.now(),
        }
    )
    with sessions.begin() as session:
        writes.replace_keyed(
            session,
            Base.metadata.tables["recourse_validity"],
            rows,
            key="recourse_id",
            values=rows["recourse_id"].tolist(),
            model_version_id=mv,
        )
    t["write"] = time.perf_counter() - t3
    t["total"] = time.perf_counter() - t0
    t["n"] = len(issued)
    t["invalidated"] = int((~checked.valid).sum())
    return t


def flow_path(url: str, home: Path, workers: int) -> dict[str, float]:
    from flows.redeploy import redeploy_check
    from flows.runtime import prefect_api, task_runner

    flow = redeploy_check.with_options(task_runner=task_runner(None, workers))
    with prefect_api():
        t0 = time.perf_counter()
        summary = flow(
            model="credit-default",
            version="v2",
            home=str(home),
            db=url,
            variants=0,
            recent_days=0,
            window_months=1_000,
            gate=1.0,
            chunk_rows=250_000,
        )
        outer = time.perf_counter() - t0
    return {**summary["timings"], "outer": outer, "n": summary["counts"]["recourses_checked"]}


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
    ap.add_argument("--db", default=None, help="store URL (default SQLite in a temp folder)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--stability-points", type=int, default=2_000)
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from governance.demo import prepare_demo

    home = Path(tempfile.mkdtemp(prefix="bench-redeploy-"))
    url = args.db or f"sqlite:///{home / 'ledger.db'}"
    t = time.perf_counter()
    prepare_demo(home, rows_per_night=100, nights=[NIGHT])
    seed_ledger(url, home, args.recourses)
    print(
        f"set-up: models v1, v2 and {args.recourses:,} issued recourses "
        f"in {time.perf_counter() - t:.0f} s ({url.split(':')[0]})"
    )

    core = core_path(url, home)
    flow = flow_path(url, home, args.workers)
    n = core["n"]
    print(f"\nre-validating {n:,} issued recourses under v2 ({os.cpu_count()} cores)")
    print(f"{'path':<34}{'seconds':>9}{'recourses/s':>14}")
    print(f"{'core, one process':<34}{core['total']:>9.1f}{n / core['total']:>14,.0f}")
    for k in ("read", "decode", "score", "write"):
        print(f"  {k:<32}{core[k]:>9.1f}")
    print(
        f"  {'inside predict':<32}{core['predict']:>9.1f}   "
        f"({core['predict'] / core['total']:.0%} of the core path)"
    )
    fl = flow["revalidate"] + flow["load"]
    print(f"{'redeploy-check flow (Prefect+Dask)':<34}{fl:>9.1f}{n / fl:>14,.0f}")
    print(f"  {'load from ledger':<32}{flow['load']:>9.1f}")
    print(f"  {'score + write on workers':<32}{flow['revalidate']:>9.1f}")
    print(f"  {'whole flow call':<32}{flow['outer']:>9.1f}")
    print(f"invalidated under v2: {core['invalidated']:,} ({core['invalidated'] / n:.1%})")
    st = stability_rate(home, args.stability_points)
    print(
        f"\nstability R (k=1000, sigma=0.05): {st['per_s']:,.0f} points/s "
        f"({st['n']:,} points in {st['seconds']:.1f} s, {st['predict_share']:.0%} in predict)"
    )


if __name__ == "__main__":
    main()
