"""What PostgreSQL's foreign-key checks cost a bulk COPY of validity rows: the floor under the
redeploy check's write step (bench/redeploy.py).

    python bench/pg_constraints.py [--rows 300000]

Writes ``--rows`` rows shaped like ``recourse_validity`` (recourse_id, model_version_id, run_id,
valid, score, checked_at, three nullable columns; primary key on recourse_id and version, an
index on run_id) by binary COPY through psycopg 3, the ledger's own write path, into four
tables that differ only in their foreign keys: all three the ledger has (to issued recourse,
model version and run), none, only the one to issued recourse, only the two to model version
and run. PostgreSQL checks a foreign key row by row (an internal query per row and key), so the
difference between "none" and "all" is what the checks cost. A fresh database is created and
dropped at ``$GOVERNANCE_TEST_PG_URL`` (default the CI role on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime

import numpy as np
import psycopg

ADMIN = os.environ.get(
    "GOVERNANCE_TEST_PG_URL", "postgresql+psycopg://governance:governance@127.0.0.1:5432/postgres"
).replace("postgresql+psycopg://", "postgresql://")
TYPES = ["text", "int4", "int4", "bool", "float8", "int8", "float8", "int4", "bool"]
VARIANTS = {  # name: (recourse key, version and run keys)
    "all three (the ledger)": (True, True),
    "none": (False, False),
    "issued recourse only": (True, False),
    "model version and run only": (False, True),
}


def table_ddl(name: str, recourse_fk: bool, version_run_fk: bool) -> str:
    rec = "REFERENCES issued_recourse ON DELETE CASCADE" if recourse_fk else ""
    mv = "REFERENCES model_versions" if version_run_fk else ""
    run = "REFERENCES runs" if version_run_fk else ""
    return (
        f'CREATE TABLE "{name}" (recourse_id varchar {rec}, model_version_id int {mv}, '
        f"run_id int {run}, valid bool, score float8, checked_at timestamptz, "
        "forward_validity float8, n_variants int, alternative_valid bool, "
        f'PRIMARY KEY (recourse_id, model_version_id)); CREATE INDEX ON "{name}" (run_id)'
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=300_000)
    n = ap.parse_args().rows
    name = f"gov_bench_fk_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(ADMIN.rsplit("/", 1)[0] + "/" + name) as conn:
            conn.execute(
                "CREATE TABLE model_versions (id int PRIMARY KEY);"
                "CREATE TABLE runs (id int PRIMARY KEY);"
                "CREATE TABLE issued_recourse (recourse_id varchar PRIMARY KEY);"
                "INSERT INTO model_versions VALUES (1), (2); INSERT INTO runs VALUES (1)"
            )
            ids = [f"B{i:09d}@1" for i in range(n)]
            with conn.cursor().copy("COPY issued_recourse (recourse_id) FROM STDIN") as cp:
                for i in ids:
                    cp.write_row((i,))
            tables = {}
            for k, (label, keys) in enumerate(VARIANTS.items()):
                tables[label] = f"validity_{k}"
                conn.execute(table_ddl(tables[label], *keys))
            conn.commit()
            rng = np.random.default_rng(0)
            valid = (rng.random(n) > 0.2).tolist()
            score = rng.random(n).tolist()
            epoch = datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL's, in microseconds
            stamp = int((datetime.now(UTC) - epoch).total_seconds() * 1e6)
            print(f"binary COPY of {n:,} validity rows, one connection, PostgreSQL "
                  f"{conn.info.server_version // 10000} ({os.cpu_count()} cores)")
            print(f"{'foreign keys':<28}{'seconds':>9}{'rows/s':>11}{'us/row':>8}{'x none':>8}")
            seconds = {}
            for label, table in tables.items():
                t = time.perf_counter()
                with conn.cursor() as cur, cur.copy(
                    f'COPY "{table}" FROM STDIN (FORMAT BINARY)'
                ) as cp:
                    cp.set_types(TYPES)
                    for row in zip(ids, [2] * n, [1] * n, valid, score, [stamp] * n,
                                   [None] * n, [None] * n, [None] * n, strict=True):
                        cp.write_row(row)
                conn.commit()
                seconds[label] = time.perf_counter() - t
            for label, s in seconds.items():
                print(f"{label:<28}{s:>9.2f}{n / s:>11,.0f}{1e6 * s / n:>8.1f}"
                      f"{s / seconds['none']:>7.1f}x")
            per_row = (seconds["all three (the ledger)"] - seconds["none"]) / n
            print(f"foreign-key checks: {1e6 * per_row:.1f} us per row, "
                  f"{per_row * 1e6:.1f} s per million rows in one backend")
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


if __name__ == "__main__":
    main()
