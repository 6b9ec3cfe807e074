"""Build a small, fully pinned ledger through the real flows, to compare two code versions with
``bench/ledger_diff.py``: nights of the demo lender (every stage on), the redeploy check of v2
(retrained variants, recent denials re-examined) and a deletion request carried out.

    python bench/small_ledger.py --home DIR --db URL [--rows 1000] [--nights 2]
    python bench/ledger_diff.py URL_BEFORE URL_AFTER --ignore request_id

The data folder is built once (``--home``; reuse it for both runs so both read the same logs,
models and training files, copied fresh per run with ``--copy-from``). Dates and windows are
pinned; only the deletion request's random id differs between runs, so pass
``--ignore request_id`` (and the run keys and candidate versions derived from it compare by
count, not name).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import flows  # noqa: F401 - quiet Prefect defaults before it is imported

FIRST_NIGHT = date(2026, 11, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True, help="data folder for this run")
    ap.add_argument("--copy-from", type=Path, default=None, help="copy this data folder first")
    ap.add_argument("--db", required=True, help="store URL (an empty database)")
    ap.add_argument("--rows", type=int, default=1_000)
    ap.add_argument("--nights", type=int, default=2)
    ap.add_argument("--chunk-rows", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-deletion", dest="deletion", action="store_false")
    args = ap.parse_args()

    from unittest import mock

    from prefect_dask import DaskTaskRunner

    from flows.deletion import process_deletions
    from flows.nightly import nightly_governance
    from flows.redeploy import redeploy_check
    from flows.runtime import cluster, prefect_api
    from governance import config
    from governance.deletion.requests import due_date, load_or_create_salt, subject_hash
    from governance.demo import prepare_demo
    from governance.store import deletions as store_deletions
    from governance.store import init_store, session_factory
    from governance.store.queries import example_past_borrower

    nights = [FIRST_NIGHT + timedelta(days=i) for i in range(args.nights)]
    if args.copy_from:
        shutil.rmtree(args.home, ignore_errors=True)
        shutil.copytree(args.copy_from, args.home)
    prepare_demo(args.home, rows_per_night=args.rows, nights=nights, train_rows=8_000,
                 test_rows=2_000)
    home, db = str(args.home), args.db
    out: dict = {}
    t0 = time.perf_counter()
    with prefect_api(), cluster(None, args.workers) as address:
        runner = DaskTaskRunner(address=address)
        for night in nights:
            s = nightly_governance.with_options(task_runner=runner)(
                night=night, home=home, db=db, chunk_rows=args.chunk_rows, deletions=False
            )
            out[f"nightly {night}"] = {k: s["counts"].get(k) for k in ("decisions", "denied",
                                                                          "recourse_issued")}
        s = redeploy_check.with_options(task_runner=runner)(
            model="credit-default", version="v2", home=home, db=db, window_months=1_000,
            recent_days=100_000, gate=1.0, variants=2, chunk_rows=max(1, args.rows // 3),
            compare_rows=max(1, args.rows // 4),
        )
        out["redeploy"] = {k: v for k, v in s["counts"].items() if k != "calibration"}
        if args.deletion:
            sessions = session_factory(init_store(db))
            with sessions() as session:
                subject = example_past_borrower(session)
            salt = load_or_create_salt(config.salt_path(Path(home)))
            received = FIRST_NIGHT + timedelta(days=args.nights)
            stamp = datetime(received.year, received.month, received.day, tzinfo=UTC)
            with mock.patch("secrets.token_hex", return_value="0" * 12), sessions.begin() as s2:
                store_deletions.record_deletion_request(
                    s2, subject, subject_hash(subject, salt), received_at=stamp,
                    due_at=due_date(stamp), reason="parity", model_name=None,
                )
            d = process_deletions.with_options(task_runner=runner)(
                home=home, db=db, window_months=1_000, recent_days=100_000
            )
            out["deletion"] = d.get("counts")
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
