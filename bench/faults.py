"""Benchmark: a load of nights with fuzzed decision logs and injected faults, and what the ledger
kept of them.

A small demo lender is built once (``prepare_demo``: models v1 and v2, ``--nights`` consecutive
nights; the demo's own damaged rows are dropped and the first ``--rows`` rows kept). Every night
is then fuzzed with a known set of damaged rows, one of each kind below (``dup-id`` is a pair
of rows sharing an id; ``id-from-yesterday`` only from the second night on), plus five valid
rows under hostile ids (SQL fragments, Unicode, format specifiers) that must be stored
verbatim:

    null-income, null-subject, null-id (nulls in required columns); inf-utilization,
    negative-dti, score-1.5 (out of range); unknown-home (unknown category); decision-flip
    (decision contradicts the score); unknown-version (unregistered model version); next-day
    (decided outside the night); nul-id, nul-subject (NUL in an id); long-id (65 characters);
    dup-id (decision id twice in the night); id-from-yesterday (the decision id of a row stored
    the night before).

For each backend (a fresh SQLite file or a fresh PostgreSQL database) the nights run one after
another through the real nightly flow (``flows.nightly.nightly_governance``, recourse off) on
one Prefect server and one Dask LocalCluster of two single-threaded worker processes, with one
injected fault per night in rotation:

- ``dask-worker-killed``: a worker process running a chunk is SIGKILLed after two chunks
  are committed (its nanny restarts it);
- ``pg-connections-cut``: PostgreSQL backends of the ledger caught mid-write are terminated
  after the first chunk (PostgreSQL only);
- ``pg-copy-cut``: inside a worker, the first bulk COPY to have sent 50 rows has its server
  backend terminated mid-stream (PostgreSQL only);
- ``flow-killed+rerun``: the flow runs in a process group of its own, which is SIGKILLed after
  three chunks; the night is then rerun and must complete only the missing chunks;
- ``none``: a clean run, then a rerun of the succeeded night, which must change nothing.

A night whose flow failed is rerun once; a night that fails again is recorded as failed (its
rows count as lost) and the load goes on. All figures are read back from the ledger,
per night right after it and again for every night at the end (so a later night that damaged
an earlier one is caught):

- inputs fuzzed: damaged rows written into the log;
- faults injected: faults that struck while the night was running (a kill that found no busy
  worker, a cut that caught no write, a flow that finished before the kill count as missed);
- rows expected: rows in the night's log;
- rows stored: the night's decisions plus its quarantined rows (distinct row numbers);
- rows lost: log rows neither stored as a decision nor quarantined;
- duplicates: ledger rows beyond one per log row (a row both stored and quarantined, a
  decision that is no row of the log) plus run records beyond one per night;
- quarantine = fuzzed: the quarantined rows are exactly the fuzzed ones;
- checksum = clean: unless ``--no-reference`` the same nights also run without faults
  into a second ledger, and after each night the checksums over every table
  (``tests.reliability.ledger``: run ids, timestamps and attempt counters aside) must match.

Usage:
    .venv/bin/python bench/faults.py [--nights 5] [--rows 400] [--chunk-rows 20]
        [--backend sqlite|postgresql|both] [--no-reference] [--skip-fuzz KIND ...]
        [--out bench/out]

PostgreSQL is reached as ``$GOVERNANCE_TEST_PG_URL`` (default the CI role
``governance@127.0.0.1:5432``; start it with ``bash .ci/start-postgres``); the benchmark
creates and drops its own databases. Prefect runs on a private, temporary server. Writes
``faults.json`` in ``--out``, prints one line per night and a totals table, and exits 1 when a
night failed, a row was lost or duplicated, an explanation is missing, the quarantine differs
from the fuzzed rows, a rerun after success changed the ledger or a checksum differs from the
clean run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST_NIGHT = date(2026, 11, 2)
PG_ADMIN_URL = os.environ.get(
    "GOVERNANCE_TEST_PG_URL", "postgresql+psycopg://governance:governance@127.0.0.1:5432/postgres"
)
FAULTS = ("dask-worker-killed", "pg-connections-cut", "pg-copy-cut", "flow-killed+rerun", "none")
PG_ONLY = ("pg-connections-cut", "pg-copy-cut")
HOSTILE = (
    "x' OR '1'='1",
    "'; DROP TABLE decisions; --",
    'Robert"); DELETE FROM runs;--',
    "Ünïcødé-ß-漢字-🙂",
    "%s %(x)s ? :id {0}",
)
FUZZ_KINDS = (
    "null-income", "null-subject", "null-id", "inf-utilization", "negative-dti", "unknown-home",
    "score-1.5", "decision-flip", "unknown-version", "next-day", "nul-id", "nul-subject",
    "long-id", "dup-id", "id-from-yesterday",
)
STR_COLUMNS = ("decision_id", "subject_id", "model_name", "model_version", "home_ownership")


def hermetic_env(verbose: bool) -> None:
    """Private, quiet Prefect and Dask settings; must run before anything imports Prefect."""
    os.environ.update(
        {
            "PREFECT_HOME": tempfile.mkdtemp(prefix="bench-faults-prefect-"),
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # the faults make Prefect and Dask log retries and lost workers; the figures say it
            "PREFECT_LOGGING_LEVEL": "WARNING" if verbose else "CRITICAL",
            "PREFECT_LOGGING_TO_API_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            "DASK_LOGGING__DISTRIBUTED": "warning" if verbose else "critical",
            "GX_ANALYTICS_ENABLED": "false",
        }
    )
    for var in ("PREFECT_API_URL", "GOVERNANCE_DB_URL", "GOVERNANCE_HOME",
                "GOVERNANCE_DASK_ADDRESS"):
        os.environ.pop(var, None)


# -- the nights' logs -----------------------------------------------------------------------------
def clean_night(frame, rows: int):
    """The demo night without the rows the demo damages on purpose, its first ``rows`` rows."""
    frame = frame[
        frame["annual_income"].notna()
        & (frame["revolving_utilization"] <= 1.5)
        & (frame["home_ownership"] != "CASTLE")
    ]
    frame = frame.drop_duplicates("decision_id", keep=False)
    if len(frame) < rows:
        raise SystemExit(f"the demo night has {len(frame)} clean rows; expected {rows}")
    return frame.iloc[:rows].reset_index(drop=True)


def fuzz_night(frame, night: date, seed: int, stored_before: list[str], skip: set[str]):
    """Damage one row per kind not in ``skip`` (two for the duplicated id) and give a few valid
    rows hostile ids.

    Returns the log, ``{row: kind}`` of the damaged rows and the rows with hostile ids.
    """
    import numpy as np
    import pandas as pd

    log = frame.copy()
    for col in STR_COLUMNS:
        log[col] = log[col].astype(object)
    rng = np.random.default_rng(seed)

    def flip(row: int) -> str:
        return "approved" if log.at[row, "decision"] == "denied" else "denied"

    def nul(text: str) -> str:
        return text[:4] + "\x00" + text[4:]

    damage = {
        "null-income": ("annual_income", lambda r: np.nan),
        "null-subject": ("subject_id", lambda r: None),
        "null-id": ("decision_id", lambda r: None),
        "inf-utilization": ("revolving_utilization", lambda r: np.inf),
        "negative-dti": ("debt_to_income", lambda r: -1.0),
        "unknown-home": ("home_ownership", lambda r: "CASTLE"),
        "score-1.5": ("score", lambda r: 1.5),
        "decision-flip": ("decision", flip),
        "unknown-version": ("model_version", lambda r: "v42"),
        "next-day": ("decided_at", lambda r: log.at[r, "decided_at"] + pd.Timedelta(days=1)),
        "nul-id": ("decision_id", lambda r: nul(log.at[r, "decision_id"])),
        "nul-subject": ("subject_id", lambda r: nul(log.at[r, "subject_id"])),
        "long-id": ("decision_id", lambda r: "D" * 65),
    }
    damage = {k: v for k, v in damage.items() if k not in skip}
    pair = "dup-id" not in skip
    cross_night = bool(stored_before) and "id-from-yesterday" not in skip
    needed = len(damage) + 2 * pair + cross_night + len(HOSTILE)
    rows = [int(r) for r in rng.choice(len(log), size=needed, replace=False)]
    fuzzed: dict[int, str] = {}
    for (kind, (col, value)), row in zip(damage.items(), rows, strict=False):
        log.at[row, col] = value(row)
        fuzzed[row] = kind
    rest = rows[len(damage):]
    if pair:
        log.at[rest[1], "decision_id"] = log.at[rest[0], "decision_id"]
        fuzzed[rest[0]] = fuzzed[rest[1]] = "dup-id"
        rest = rest[2:]
    if cross_night:
        log.at[rest[0], "decision_id"] = stored_before[int(rng.integers(len(stored_before)))]
        fuzzed[rest[0]] = "id-from-yesterday"
        rest = rest[1:]
    hostile = []
    for row, text in zip(rest, HOSTILE, strict=True):
        log.at[row, "decision_id"] = f"{text} #{night:%Y%m%d}"
        log.at[row, "subject_id"] = text
        hostile.append(row)
    return log, fuzzed, hostile


def build_home(
    work: Path, nights: list[date], rows: int, skip: set[str]
) -> tuple[Path, dict[date, Any]]:
    """The demo registry with ``nights`` fuzzed logs; returns the home and, per night, the log
    as written, its fuzzed rows and its hostile-id rows."""
    from governance.demo import prepare_demo
    from governance.intake.decision_log import ParquetDecisionLog

    home = work / "home"
    prepare_demo(home, rows_per_night=rows + rows // 50 + 20, nights=nights, train_rows=8_000,
                 test_rows=2_000)
    log = ParquetDecisionLog(home / "decision-logs")
    made: dict[date, Any] = {}
    stored_before: list[str] = []
    for i, night in enumerate(nights):
        import pandas as pd

        frame = clean_night(pd.read_parquet(log.files(night)[0]), rows)
        fuzzed_log, fuzzed, hostile = fuzz_night(frame, night, 1_000 + i, stored_before, skip)
        log.write_night(night, fuzzed_log)
        made[night] = {"log": fuzzed_log, "fuzzed": fuzzed, "hostile": hostile}
        stored_before = [
            fuzzed_log.at[r, "decision_id"] for r in range(len(fuzzed_log)) if r not in fuzzed
        ]
    return home, made


# -- ledgers --------------------------------------------------------------------------------------
def make_db(backend: str, work: Path, label: str, made: list[str]) -> str:
    """A fresh, empty ledger: a new SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{work / f'ledger-{label}.db'}"
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"gov_bench_{label}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        where = sa.make_url(PG_ADMIN_URL).render_as_string()
        raise SystemExit(
            f"no PostgreSQL answers at {where} ({str(exc.orig).splitlines()[0]}); "
            "run .ci/start-postgres or pass --backend sqlite"
        ) from None
    finally:
        admin.dispose()
    made.append(name)
    return sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_dbs(names: list[str]) -> None:
    import sqlalchemy as sa

    from tasks import worker

    worker.sessions.cache_clear()
    worker.engine.cache_clear()
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
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
    finally:
        admin.dispose()


def night_figures(url: str, night: date, made: dict[str, Any]) -> dict[str, Any]:
    """What the ledger holds of one night, against the log that was written for it."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from governance.store.models import Decision, Explanation, Quarantine, Run

    log, fuzzed = made["log"], made["fuzzed"]
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            runs = conn.execute(
                sa.select(Run.id, Run.status, Run.attempts).where(
                    Run.kind == "nightly", Run.night == night
                )
            ).all()
            run_ids = [r.id for r in runs]
            stored_ids = list(
                conn.execute(
                    sa.select(Decision.decision_id).where(Decision.run_id.in_(run_ids))
                ).scalars()
            )
            quarantined = set(
                conn.execute(
                    sa.select(Quarantine.row_number).where(Quarantine.run_id.in_(run_ids)).distinct()
                ).scalars()
            )
            explained = conn.execute(
                sa.select(sa.func.count(sa.distinct(Explanation.decision_id)))
                .join(Decision, Decision.decision_id == Explanation.decision_id)
                .where(Decision.run_id.in_(run_ids))
            ).scalar()
    finally:
        engine.dispose()
    ids = set(stored_ids)
    log_ids = [None if v is None or v != v else str(v) for v in log["decision_id"]]
    expected = len(log)
    lost = sum(1 for r, i in enumerate(log_ids) if r not in quarantined and i not in ids)
    stored = len(stored_ids) + len(quarantined)
    duplicates = stored - (expected - lost) + max(0, len(runs) - 1)
    hostile_ids = {log_ids[r] for r in made["hostile"]}
    return {
        "night": night.isoformat(),
        "runs": len(runs),
        "status": [r.status for r in runs],
        "attempts": [r.attempts for r in runs],
        "inputs_fuzzed": len(fuzzed),
        "rows_expected": expected,
        "decisions": len(stored_ids),
        "quarantined": len(quarantined),
        "rows_stored": stored,
        "rows_lost": lost,
        "duplicates": duplicates,
        "quarantine_is_fuzzed": quarantined == set(fuzzed),
        "quarantined_not_fuzzed": len(quarantined - set(fuzzed)),
        "fuzzed_not_quarantined": len(set(fuzzed) - quarantined),
        "hostile_ids_stored_verbatim": len(hostile_ids & ids),
        "hostile_ids": len(hostile_ids),
        "explanations_missing": len(ids) - int(explained or 0),
    }


# -- faults ---------------------------------------------------------------------------------------
def run_night(fault: str, night: date, ctx: dict[str, Any], url: str) -> dict[str, Any]:
    """Run ``night`` into ``url`` with ``fault`` injected; rerun it if the fault made it fail."""
    from tests.reliability.faults import (
        CopyCut,
        Striker,
        chunks_done,
        cut_writers,
        kill_busy_worker,
        kill_group,
        start_flow_process,
    )
    from tests.reliability.ledger import digest, ledger_rows

    nightly, home, address = ctx["nightly"], ctx["home"], ctx["address"]
    base = chunks_done(url)  # chunks of earlier nights in the same ledger
    out: dict[str, Any] = {"fault": fault, "struck": False, "detail": None, "reruns": 0,
                           "failed": False, "errors": []}

    def once() -> bool:
        try:
            nightly(night, home, url)
            return True
        except Exception as exc:  # noqa: BLE001 - recorded; the figures show what it cost
            out["errors"].append(one_line(exc))
            return False

    def attempt() -> None:
        if not once():  # the fault's doing, or not: rerun the night once
            out["reruns"] += 1
            out["failed"] = not once()

    if fault == "dask-worker-killed":
        with Striker(url, base + 2, lambda: kill_busy_worker(address)) as strike:
            attempt()
        out["struck"] = strike.struck and bool(strike.result and strike.result["busy"])
        out["detail"] = (
            f"killed pid {strike.result['pid']}{'' if out['struck'] else ' (idle)'}"
            if strike.struck
            else strike.error
        )
    elif fault == "pg-connections-cut":
        with Striker(url, base + 1, lambda: cut_writers(url)) as strike:
            attempt()
        out["struck"] = strike.struck and bool(strike.result)
        out["detail"] = f"{len(strike.result or [])} writes cut" if strike.struck else strike.error
    elif fault == "pg-copy-cut":
        marker = Path(tempfile.mkdtemp(prefix="bench-faults-cut-")) / "struck"
        with CopyCut(address, url, marker) as cut:
            attempt()
        out["struck"] = cut.struck
        out["detail"] = f"backend {cut.detail.split()[0]} cut mid-COPY" if cut.struck else None
        shutil.rmtree(marker.parent, ignore_errors=True)
    elif fault == "flow-killed+rerun":
        proc = start_flow_process(night, home, url, ctx["chunk_rows"], ctx["api"])
        with Striker(url, base + 3, lambda: kill_group(proc), poll=0.02) as strike:
            try:
                proc.wait(timeout=600)
            finally:
                kill_group(proc)
        out["struck"] = strike.struck
        done = chunks_done(url) - base
        out["detail"] = (
            f"killed after {done} chunks"
            if strike.struck
            else f"flow exited ({proc.returncode}) after {done} chunks, before the kill"
        )
        if proc.returncode != 0:  # killed, or failed: the rerun completes the night
            out["reruns"] += 1
            out["failed"] = not once()
    else:
        attempt()
        if not out["failed"]:
            before = digest(ledger_rows(url))
            once()  # a rerun after success must change nothing
            out["rerun_unchanged"] = digest(ledger_rows(url)) == before
            out["detail"] = "rerun unchanged" if out["rerun_unchanged"] else "RERUN CHANGED IT"
    if out["detail"] is not None and not isinstance(out["detail"], str):
        out["detail"] = repr(out["detail"])
    return out


def one_line(exc: BaseException) -> str:
    """The error on one line, without SQLAlchemy's statement and parameters."""
    text = f"{type(exc).__name__}: {exc}".split("[SQL:")[0]
    return " ".join(text.split())[:300]


def wait_for_workers(address: str, n: int) -> None:
    """A killed worker's nanny restarts it; start each night with the full cluster."""
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(n, timeout=120)


def run_backend(backend: str, nights: list[date], made: dict[date, Any], ctx: dict[str, Any],
                reference: bool, work: Path, pg_dbs: list[str]) -> dict[str, Any]:
    from tests.reliability.ledger import digest, ledger_rows

    url = make_db(backend, work, f"{backend[:2]}_faults", pg_dbs)
    ref_url = make_db(backend, work, f"{backend[:2]}_clean", pg_dbs) if reference else None
    plan = [f for f in FAULTS if backend == "postgresql" or f not in PG_ONLY]
    records = []
    for i, night in enumerate(nights):
        wait_for_workers(ctx["address"], ctx["workers"])
        ref_error, t_clean = None, time.perf_counter()
        if ref_url:
            try:
                ctx["nightly"](night, ctx["home"], ref_url)
            except Exception as exc:  # noqa: BLE001 - the same night fails clean too: say so
                ref_error = one_line(exc)
        t0 = time.perf_counter()
        clean_seconds = round(t0 - t_clean, 1)
        fault = run_night(plan[i % len(plan)], night, ctx, url)
        fault["seconds"] = round(time.perf_counter() - t0, 1)
        figures = night_figures(url, night, made[night])
        if ref_url:
            ours_rows, clean_rows = ledger_rows(url), ledger_rows(ref_url)
            ours, clean = digest(ours_rows), digest(clean_rows)
            figures["checksum_is_clean"] = ours == clean
            figures["tables_differing"] = sorted(t for t in ours if ours[t] != clean.get(t))
            # a few rows each side, to say what differs (in the JSON under bench/out)
            figures["rows_differing"] = {
                t: {
                    "faulted_only": sorted(set(ours_rows[t]) - set(clean_rows.get(t, [])))[:3],
                    "clean_only": sorted(set(clean_rows.get(t, [])) - set(ours_rows[t]))[:3],
                }
                for t in figures["tables_differing"]
            }
        record = {"backend": backend, **figures, **fault, "clean_run_error": ref_error,
                  "clean_run_seconds": clean_seconds if ref_url else None}
        records.append(record)
        print(night_line(record), flush=True)
    final = [night_figures(url, night, made[night]) for night in nights]
    return {"backend": backend, "nights": records, "final": final}


# -- output ---------------------------------------------------------------------------------------
def night_line(r: dict[str, Any]) -> str:
    struck = "struck" if r["struck"] else ("-" if r["fault"] == "none" else "MISSED")
    checksum = {True: "= clean", False: "DIFFERS", None: "n/a"}[r.get("checksum_is_clean")]
    quarantine = "= fuzzed" if r["quarantine_is_fuzzed"] else "DIFFERS"
    return (
        f"{r['backend']:<10} {r['night']}  {r['fault']:<19} {struck:<6} reruns {r['reruns']}  "
        f"fuzzed {r['inputs_fuzzed']:>3}  expected {r['rows_expected']:>5}  "
        f"stored {r['rows_stored']:>5} ({r['decisions']} + {r['quarantined']} quarantined "
        f"{quarantine})  lost {r['rows_lost']}  dup {r['duplicates']}  "
        f"checksum {checksum}  {r['seconds']:.0f} s"
        + (f"  [{r['detail']}]" if r["detail"] else "")
        + (f"\n    FAILED after {r['reruns']} rerun(s): {r['errors'][-1]}" if r["failed"] else "")
    )


COLUMNS = (
    ("backend", "backend", "<"),
    ("nights", "nights", ">"),
    ("inputs_fuzzed", "inputs fuzzed", ">"),
    ("faults_injected", "faults injected", ">"),
    ("rows_expected", "rows expected", ">"),
    ("rows_stored", "rows stored", ">"),
    ("rows_lost", "rows lost", ">"),
    ("duplicates", "duplicates", ">"),
    ("checksum", "checksum = clean", ">"),
)


def totals(result: dict[str, Any]) -> dict[str, Any]:
    """Totals of one backend, from the end-of-load recount of every night."""
    final, records = result["final"], result["nights"]
    keys = ("inputs_fuzzed", "rows_expected", "rows_stored", "rows_lost", "duplicates",
            "decisions", "quarantined", "explanations_missing", "hostile_ids",
            "hostile_ids_stored_verbatim")
    out: dict[str, Any] = {k: sum(f[k] for f in final) for k in keys}
    checks = [r["checksum_is_clean"] for r in records if "checksum_is_clean" in r]
    out.update(
        backend=result["backend"],
        nights=len(final),
        faults_planned=sum(r["fault"] != "none" for r in records),
        faults_injected=sum(r["fault"] != "none" and r["struck"] for r in records),
        reruns=sum(r["reruns"] for r in records),
        nights_failed=sum(r["failed"] for r in records),
        quarantine_is_fuzzed=all(f["quarantine_is_fuzzed"] for f in final),
        reruns_after_success_unchanged=all(r.get("rerun_unchanged", True) for r in records),
        checksum=f"{sum(checks)}/{len(checks)}" if checks else "n/a",
        checksum_ok=all(checks),
    )
    return out


def table(rows: list[dict[str, Any]]) -> str:
    cells = [[str(r[k]) for k, _, _ in COLUMNS] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (_, h, _) in enumerate(COLUMNS)]
    fmt = lambda vals: "  ".join(  # noqa: E731
        f"{v:{a}{w}}" for v, (_, _, a), w in zip(vals, COLUMNS, widths, strict=True)
    )
    lines = [fmt([h for _, h, _ in COLUMNS]), "  ".join("-" * w for w in widths)]
    return "\n".join(lines + [fmt(c) for c in cells])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nights", type=int, default=5)
    ap.add_argument("--rows", type=int, default=400, help="decisions per night")
    ap.add_argument("--chunk-rows", type=int, default=20)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    ap.add_argument("--no-reference", dest="reference", action="store_false",
                    help="skip the clean reference ledger and its checksum comparison")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--skip-fuzz", action="append", default=[], choices=FUZZ_KINDS,
                    metavar="KIND", help=f"leave out a kind of damage: {', '.join(FUZZ_KINDS)}")
    ap.add_argument("--verbose", action="store_true", help="show Prefect and Dask warnings")
    args = ap.parse_args()
    if args.nights < 1 or args.rows < 60 or args.chunk_rows < 1:
        ap.error("expected --nights >= 1, --rows >= 60 and --chunk-rows >= 1")

    hermetic_env(args.verbose)
    t_start = time.perf_counter()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    nights = [FIRST_NIGHT + timedelta(days=i) for i in range(args.nights)]
    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    pg_dbs: list[str] = []
    results = []
    try:
        t = time.perf_counter()
        home, made = build_home(work, nights, args.rows, set(args.skip_fuzz))
        print(
            f"set-up: demo lender, {args.nights} nights of {args.rows} decisions "
            f"({time.perf_counter() - t:.0f} s); chunks of {args.chunk_rows}, "
            f"{args.workers} Dask worker processes, {os.cpu_count()} cores",
            flush=True,
        )
        from distributed import LocalCluster
        from prefect_dask import DaskTaskRunner

        from flows.nightly import nightly_governance
        from flows.runtime import prefect_api

        with (
            prefect_api() as api,
            LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                         dashboard_address=":0") as cluster,
        ):
            def nightly(night: date, home: Path, db: str) -> dict[str, Any]:
                flow = nightly_governance.with_options(
                    task_runner=DaskTaskRunner(address=cluster.scheduler_address)
                )
                return flow(night=night, home=str(home), db=db, chunk_rows=args.chunk_rows,
                            recourse=False)

            ctx = {"nightly": nightly, "home": home, "address": cluster.scheduler_address,
                   "api": api, "chunk_rows": args.chunk_rows, "workers": args.workers}
            for backend in backends:
                results.append(
                    run_backend(backend, nights, made, ctx, args.reference, work, pg_dbs)
                )
    finally:
        if pg_dbs:
            drop_dbs(pg_dbs)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(os.environ["PREFECT_HOME"], ignore_errors=True)

    sums = [totals(r) for r in results]
    if len(sums) > 1:
        both = {k: sum(s[k] for s in sums) for k in sums[0] if isinstance(sums[0][k], int)
                and not isinstance(sums[0][k], bool)}
        checks = [int(x) for s in sums if s["checksum"] != "n/a" for x in s["checksum"].split("/")]
        both.update(backend="total", checksum=(
            f"{sum(checks[0::2])}/{sum(checks[1::2])}" if checks else "n/a"))
        rows = [*sums, both]
    else:
        rows = sums
    print("\nrecount of every night at the end of the load:")
    print(table(rows))
    failures = [
        f"{s['backend']}: {what}"
        for s in sums
        for what, bad in (
            (f"{s['nights_failed']} nights failed", s["nights_failed"]),
            (f"{s['rows_lost']} rows lost", s["rows_lost"]),
            (f"{s['duplicates']} duplicates", s["duplicates"]),
            (f"{s['explanations_missing']} explanations missing", s["explanations_missing"]),
            ("quarantine differs from the fuzzed rows", not s["quarantine_is_fuzzed"]),
            ("a rerun after success changed the ledger",
             not s["reruns_after_success_unchanged"]),
            ("checksum differs from the clean run", not s["checksum_ok"]),
        )
        if bad
    ]
    missed = sum(s["faults_planned"] - s["faults_injected"] for s in sums)
    exact = all(s["quarantine_is_fuzzed"] for s in sums)
    print(
        f"\nquarantine = fuzzed rows: {'yes' if exact else 'NO'}; "
        f"hostile ids stored verbatim: {sum(s['hostile_ids_stored_verbatim'] for s in sums)}"
        f"/{sum(s['hostile_ids'] for s in sums)}; explanations missing: "
        f"{sum(s['explanations_missing'] for s in sums)}; night reruns: "
        f"{sum(s['reruns'] for s in sums)}; faults that missed: {missed}; "
        f"wall {time.perf_counter() - t_start:.0f} s"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "config": {
            "nights": args.nights, "rows": args.rows, "chunk_rows": args.chunk_rows,
            "backends": backends, "workers": args.workers, "reference": args.reference,
            "cores": os.cpu_count(), "python": platform.python_version(),
        },
        "totals": sums,
        "backends": results,
        "failures": failures,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    (args.out / "faults.json").write_text(json.dumps(report, indent=2, default=str))
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
