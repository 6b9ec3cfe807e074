"""Shared fixtures: hermetic Prefect settings, a PostgreSQL database per session, a small demo."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from datetime import date
from pathlib import Path

# Hermetic, quiet settings; must be set before anything imports prefect.
os.environ.update(
    {
        "PREFECT_HOME": tempfile.mkdtemp(prefix="prefect-home-"),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "DASK_LOGGING__DISTRIBUTED": "error",
        "GX_ANALYTICS_ENABLED": "false",
        # Small explanation-quality samples for every flow the suite runs (the nightly
        # defaults, 1,000 and 100, would add minutes per run); the tests of those samples
        # pass their sizes explicitly.
        "GOVERNANCE_STABILITY_SAMPLE": "10",
        "GOVERNANCE_AGREEMENT_SAMPLE": "0",
    }
)
for _var in ("PREFECT_API_URL", "GOVERNANCE_DB_URL", "GOVERNANCE_HOME", "GOVERNANCE_DASK_ADDRESS"):
    os.environ.pop(_var, None)

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "GOVERNANCE_TEST_PG_URL", "postgresql+psycopg://governance:governance@127.0.0.1:5432/postgres"
)
DEMO_NIGHT = date(2026, 11, 2)
DEMO_ROWS = 1_200


def reset_pg(url: str) -> None:
    """Empty a test's PostgreSQL database (drop every table the previous test left), give back
    the run locks a test left open, and forget the engines the workers cached for it."""
    from governance.store.locks import release_all_kept

    release_all_kept()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    from tasks import worker

    worker.engine.cache_clear()
    worker.sessions.cache_clear()


@pytest.fixture(scope="session")
def prefect_server() -> str:
    """One Prefect test server for the whole session; its API URL.

    Flows run in this process report to it, and `govern` subprocesses given the URL use it
    instead of starting their own (which costs 15-25 s each here).
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A fresh PostgreSQL database for this test session, dropped at the end.

    Skips (with the reason) only when no PostgreSQL answers at $GOVERNANCE_TEST_PG_URL.
    """
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"gov_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(
            f"no PostgreSQL answers at {sa.make_url(PG_ADMIN_URL).render_as_string()} "
            f"({str(exc.orig).splitlines()[0]}); run .ci/start-postgres"
        )
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    from tasks import worker

    for cached in (worker.engine, worker.sessions):
        cached.cache_clear()
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


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """A small demo lender: registered, deployed model v1 and one night of decisions."""
    from governance.demo import prepare_demo

    home = tmp_path_factory.mktemp("demo-home")
    prepare_demo(home, rows_per_night=DEMO_ROWS, nights=[DEMO_NIGHT], train_rows=8_000,
                 test_rows=2_000)
    return home


def skip_reasons(reports) -> list[dict[str, str]]:  # noqa: ANN001
    """Node id and reason of every skipped test report (pytest's "Skipped: " prefix dropped)."""
    out = []
    for rep in reports:
        longrepr = getattr(rep, "longrepr", None)
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(
            longrepr
        )
        out.append({"nodeid": rep.nodeid, "reason": reason.removeprefix("Skipped: ")})
    return out


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ANN001
    """Write counts and skip reasons to $PYTEST_SUMMARY_FILE, so CI can fail when no test
    actually ran, or when one skipped for a reason not on the allow-list (.ci/check_skips.py)."""
    path = os.environ.get("PYTEST_SUMMARY_FILE")
    if not path:
        return
    stats = {k: len(v) for k, v in terminalreporter.stats.items() if k}
    skips = skip_reasons(terminalreporter.stats.get("skipped", []))
    Path(path).write_text(json.dumps({"exitstatus": int(exitstatus), **stats, "skips": skips}))
