"""Benchmark scale-out: the nightly flow on PostgreSQL against a real `dask scheduler` with 1 and
then 2 `dask worker` processes, and the strong-scaling efficiency from one to two.

    python bench/scale.py [--rows 20000] [--workers 1 2] [--chunk-rows 2000]

For each worker count: a fresh scheduler and that many single-threaded worker processes (as a
Kubernetes Dask cluster runs them, each its own process reporting to the same Prefect API), a
warm-up night (workers load the model, explainer and action set once), then the measured night
into a fresh PostgreSQL database, every stage on. Efficiency from 1 to n workers is
``T1 / (n * Tn)`` on the flow's fan-out wall (the part that runs on workers) and on the whole
flow; the flow's own steps (open the run, close it) and the intake task run once whatever the
worker count. The figures also give the measured inputs of docs/scaling.md: decisions per
worker-second per stage, rows written per second to PostgreSQL, Prefect tasks per night.

PostgreSQL is reached as ``$GOVERNANCE_TEST_PG_URL`` (default the CI role on 127.0.0.1); the
benchmark creates and drops its own databases. Writes ``scale.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import flows  # noqa: F401 - quiet Prefect defaults before it is imported

ROOT = Path(__file__).resolve().parent.parent
NIGHT = date(2026, 11, 2)
WARM_NIGHT = NIGHT - timedelta(days=1)
PG_ADMIN_URL = os.environ.get(
    "GOVERNANCE_TEST_PG_URL", "postgresql+psycopg://governance:governance@127.0.0.1:5432/postgres"
)


def create_db(made: list[str]) -> str:
    import sqlalchemy as sa

    name = f"gov_bench_scale_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    made.append(name)
    return sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_dbs(names: list[str]) -> None:
    import sqlalchemy as sa

    from governance.store import bulk
    from tasks import worker

    bulk.forget_connections()
    worker.engine.cache_clear()
    worker.sessions.cache_clear()
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@contextmanager
def dask_cluster(n_workers: int, folder: Path):
    """A `dask scheduler` and ``n_workers`` `dask worker` processes (one thread each) on
    127.0.0.1, started with this environment (so they report to the same Prefect API)."""
    from distributed import Client

    sched_file = folder / f"scheduler-{n_workers}.json"
    bindir = os.path.dirname(sys.executable)
    env = {**os.environ, "DASK_LOGGING__DISTRIBUTED": "error", "PYTHONPATH": str(ROOT)}
    quiet = {"env": env, "cwd": ROOT, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [
        subprocess.Popen(
            [f"{bindir}/dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(sched_file)],
            **quiet,
        )
    ]
    try:
        deadline = time.time() + 120
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        procs.append(
            subprocess.Popen(
                [f"{bindir}/dask", "worker", "--scheduler-file", str(sched_file),
                 "--nworkers", str(n_workers), "--nthreads", "1", "--no-dashboard"],
                **quiet,
            )
        )
        with Client(scheduler_file=str(sched_file), timeout=120) as client:
            client.wait_for_workers(n_workers, timeout=300)
            yield client.scheduler.address
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_night(address: str, home: Path, url: str, night: date, chunk_rows: int) -> dict:
    from prefect_dask import DaskTaskRunner

    from flows.nightly import nightly_governance

    flow = nightly_governance.with_options(task_runner=DaskTaskRunner(address=address))
    t0 = time.perf_counter()
    summary = flow(night=night, home=str(home), db=url, chunk_rows=chunk_rows, deletions=False)
    summary["outer"] = time.perf_counter() - t0
    return summary


def _max_rss_kib() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_rss_mib(address: str) -> float:
    """The largest peak resident memory among the cluster's worker processes, MiB."""
    from distributed import Client

    with Client(address, timeout=60) as client:
        return max(client.run(_max_rss_kib).values()) / 1024


def rows_written(url: str) -> int:
    """Rows the ledger holds in its result tables (what the night wrote)."""
    import sqlalchemy as sa

    from governance.store.models import Base

    engine = sa.create_engine(url)
    skip = {"alembic_version"}
    with engine.connect() as conn:
        total = sum(
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            for t in Base.metadata.sorted_tables
            if t.name not in skip
        )
    engine.dispose()
    return int(total)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000, help="decisions in the measured night")
    ap.add_argument("--warm-rows", type=int, default=600, help="decisions in the warm-up night")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--chunk-rows", type=int, default=2_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)

    from flows.runtime import prefect_api
    from governance.demo import prepare_demo
    from governance.intake.decision_log import ParquetDecisionLog

    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    home = work / "home"
    t = time.perf_counter()
    prepare_demo(home, rows_per_night=args.rows, nights=[WARM_NIGHT, NIGHT])
    log = ParquetDecisionLog(home / "decision-logs")
    import pandas as pd

    warm = pd.read_parquet(log.files(WARM_NIGHT)[0]).head(args.warm_rows)
    log.write_night(WARM_NIGHT, warm)
    took = time.perf_counter() - t
    print(f"set-up: demo lender, night of {args.rows:,} decisions ({took:.0f} s)")

    made: list[str] = []
    results = []
    try:
        with prefect_api():
            for n in args.workers:
                with dask_cluster(n, work) as address:
                    run_night(address, home, create_db(made), WARM_NIGHT, args.chunk_rows)
                    url = create_db(made)
                    load = os.getloadavg()[0]
                    s = run_night(address, home, url, NIGHT, args.chunk_rows)
                    peak = peak_rss_mib(address)
                results.append(
                    {"workers": n, "load_average": load, "timings": s["timings"],
                     "peak_rss_mib": peak,
                     "counts": {k: v for k, v in s["counts"].items()
                                if isinstance(v, int | float)},
                     "outer": s["outer"], "rows_written": rows_written(url)}
                )
                r = results[-1]
                print(
                    f"{n} worker(s): fan-out {r['timings']['fanout_wall']:.1f} s, flow "
                    f"{r['timings']['wall']:.1f} s, {r['counts']['chunks']} chunks "
                    f"(load average {load:.1f})"
                )
    finally:
        drop_dbs(made)

    base = results[0]
    print(f"\nnightly flow on PostgreSQL, {args.rows:,} decisions, chunks of {args.chunk_rows:,}, "
          f"every stage on ({os.cpu_count()} cores)")
    print(f"{'workers':>7}  {'fan-out s':>9}  {'flow s':>7}  {'decisions/s':>11}  "
          f"{'eff. fan-out':>12}  {'eff. flow':>9}  {'load':>5}")
    for r in results:
        n, s = r["workers"], r["timings"]
        e_fan = base["timings"]["fanout_wall"] / (n / base["workers"] * s["fanout_wall"])
        e_flow = base["timings"]["wall"] / (n / base["workers"] * s["wall"])
        r["efficiency"] = {"fanout": e_fan, "flow": e_flow}
        print(f"{n:>7}  {s['fanout_wall']:>9.1f}  {s['wall']:>7.1f}  "
              f"{r['counts']['decisions'] / s['wall']:>11,.0f}  {e_fan:>12.0%}  {e_flow:>9.0%}  "
              f"{r['load_average']:>5.1f}")
    # Measured inputs of the capacity model (docs/scaling.md), from the one-worker run.
    s, c = base["timings"], base["counts"]
    grows = ("explain", "recourse", "faithfulness", "store", "load")
    worker_s = {k: s.get(k, 0.0) for k in grows}
    print("\ninputs for docs/scaling.md (one worker):")
    for k, v in worker_s.items():
        print(f"  {k:<12} {v:8.1f} worker-s  {c['decisions'] / v if v else float('nan'):>10,.0f}"
              " decisions per worker-second")
    print(f"  fixed-size samples: stability {s.get('stability', 0.0):.1f} worker-s for "
          f"{c.get('stability_sampled', 0):,} denials, agreement {s.get('agreement', 0.0):.1f} "
          f"worker-s for {c.get('explainer_agreement_sampled', 0):,}")
    print(f"  rows written {base['rows_written']:,} in {s['store']:.1f} worker-s of store: "
          f"{base['rows_written'] / s['store']:,.0f} rows/s per writer")
    print(f"  Prefect tasks: {c['chunks'] + 3} (open, stage, close + one per chunk)")
    print(f"  peak worker memory {base['peak_rss_mib']:,.0f} MiB at chunks of "
          f"{args.chunk_rows:,} decisions")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(results, indent=1, default=str))
    last = results[-1]
    print(
        f"scale-out: {base['workers']} -> {last['workers']} workers, strong-scaling efficiency "
        f"{last['efficiency']['fanout']:.0%} (fan-out) / {last['efficiency']['flow']:.0%} (flow)"
    )


if __name__ == "__main__":
    main()
