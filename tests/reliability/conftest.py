"""Reliability fixtures: a Prefect test server, a LocalCluster whose workers the tests may kill,
two small nights cut from the demo, fresh SQLite and PostgreSQL ledgers, and the checksum of a
clean run of each night to compare faulty runs with."""

from __future__ import annotations

import shutil
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from governance.intake.decision_log import ParquetDecisionLog
from tests.conftest import DEMO_NIGHT, reset_pg
from tests.reliability.ledger import ledger_rows

NIGHT = DEMO_NIGHT
NIGHT2 = DEMO_NIGHT + timedelta(days=1)
NIGHT_ROWS = 240
CHUNK_ROWS = 20  # 12 chunks a night: enough to strike while some are done and some are not
MODEL = "credit-default"


@pytest.fixture(scope="session", autouse=True)
def prefect_backend(prefect_server):
    """The session's Prefect test server (tests/conftest.py), shared with the other tests."""
    return prefect_server


@pytest.fixture(scope="session")
def rel_cluster():
    """A LocalCluster of two single-threaded worker processes under nannies (a killed worker
    comes back), owned by these tests alone."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    yield cluster
    cluster.close()


def _clean_night(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """The demo night without the rows the demo damages on purpose, first ``rows`` of them."""
    frame = frame[
        frame["annual_income"].notna()
        & (frame["revolving_utilization"] <= 1.5)
        & (frame["home_ownership"] != "CASTLE")
    ]
    frame = frame.drop_duplicates("decision_id", keep=False)
    return frame.iloc[:rows].reset_index(drop=True)


@pytest.fixture(scope="session")
def small_home(demo_home, tmp_path_factory) -> Path:
    """The demo registry (v1 deployed, v2 registered) with two clean nights of 240 decisions:
    NIGHT, and NIGHT2 a day later under new decision ids, where the applicants of NIGHT's
    second half come back and those of its first half are replaced by new ones."""
    home = tmp_path_factory.mktemp("reliability") / "home"
    shutil.copytree(demo_home, home)
    log = ParquetDecisionLog(home / "decision-logs")
    first = _clean_night(pd.read_parquet(log.files(NIGHT)[0]), NIGHT_ROWS)
    half = NIGHT_ROWS // 2
    second = first.assign(
        decision_id=first["decision_id"].str.replace(f"D{NIGHT:%Y%m%d}-", f"D{NIGHT2:%Y%m%d}-"),
        decided_at=first["decided_at"] + pd.Timedelta(days=1),
        subject_id=[f"R{s}" if i < half else s for i, s in enumerate(first["subject_id"])],
    )
    log.write_night(NIGHT, first)
    log.write_night(NIGHT2, second)
    return home


def copy_home(home: Path, dest: Path) -> Path:
    """A private copy of a data folder, for tests that damage it."""
    shutil.copytree(home, dest)
    return dest


@pytest.fixture
def make_db(request, tmp_path):
    """``make_db(kind)``: an empty ledger URL, SQLite (a new file) or PostgreSQL (the session
    database, emptied)."""

    made = []

    def make(kind: str) -> str:
        made.append(kind)
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'ledger-{len(made)}.db'}"
        url = request.getfixturevalue("pg_url")
        reset_pg(url)
        return url

    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    """Each test that takes it runs against SQLite and against PostgreSQL."""
    return request.param


@pytest.fixture
def db_url(backend, make_db) -> str:
    return make_db(backend)


@pytest.fixture
def nightly(rel_cluster):
    """Run the real nightly flow on the reliability cluster (recourse off unless asked)."""
    from prefect_dask import DaskTaskRunner

    from flows.nightly import nightly_governance

    def run(night, home, db, **kwargs):
        kwargs.setdefault("recourse", False)
        kwargs.setdefault("chunk_rows", CHUNK_ROWS)
        flow = nightly_governance.with_options(
            task_runner=DaskTaskRunner(address=rel_cluster.scheduler_address)
        )
        return flow(night=night, home=str(home), db=db, **kwargs)

    return run


_CLEAN: dict[tuple[str, str], dict[str, list[str]]] = {}


@pytest.fixture
def clean_ledger(nightly, small_home, make_db):
    """``clean_ledger(kind, night)``: the ledger rows of a clean run of ``night`` on that
    backend, computed once per session. Call it before creating the test's own ledger: on
    PostgreSQL it reuses (and empties) the session database."""

    def get(kind: str, night=NIGHT) -> dict[str, list[str]]:
        key = (kind, night.isoformat())
        if key not in _CLEAN:
            url = make_db(kind)
            nightly(night, small_home, url)
            _CLEAN[key] = ledger_rows(url)
        return _CLEAN[key]

    return get


def run_govern(args: list[str], capfd) -> tuple[int, str, str]:
    """Run `govern` in this process (as its console script does) and return the exit code,
    stdout and stderr captured at the file-descriptor level."""
    from govern_cli.main import main

    old = sys.argv
    sys.argv = ["govern", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    out, err = capfd.readouterr()
    return code, out, err
