"""Faults during a night: each test ends with the ledger of a clean run of the same night,
checksum over every table (run ids, timestamps and attempt counters aside), exactly."""

from __future__ import annotations

import os

import pytest

from tests.reliability.conftest import CHUNK_ROWS, NIGHT, NIGHT_ROWS
from tests.reliability.faults import (
    CopyCut,
    Striker,
    chunks_done,
    cut_writers,
    kill_busy_worker,
    kill_group,
    restart_postgres,
    start_flow_process,
)
from tests.reliability.ledger import assert_same_ledger, ledger_rows, scalar

CHUNKS = -(-NIGHT_ROWS // CHUNK_ROWS)
# A real server restart disturbs every other user of the server, so it is opt-in; by default
# the connections are cut, which is what a restart does to the clients.
PG_RESTART = os.environ.get("GOVERNANCE_TEST_PG_RESTART")  # e.g. "pg_ctlcluster 15 main restart"


def test_a_dask_worker_killed_mid_run_loses_and_duplicates_nothing(
    nightly, small_home, backend, make_db, clean_ledger, rel_cluster
):
    expected = clean_ledger(backend)
    url = make_db(backend)
    with Striker(url, 2, lambda: kill_busy_worker(rel_cluster.scheduler_address)) as strike:
        summary = nightly(NIGHT, small_home, url)
    assert strike.struck, strike.error
    assert strike.result["busy"], "no worker was running a chunk when the kill came"
    assert strike.done_at_strike < CHUNKS, "the run finished before the worker was killed"
    assert summary["counts"]["chunks"] == CHUNKS
    assert_same_ledger(ledger_rows(url), expected)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgres_connections_cut_while_chunks_are_written(
    nightly, small_home, backend, make_db, clean_ledger
):
    expected = clean_ledger(backend)
    url = make_db(backend)
    action = (lambda: restart_postgres(PG_RESTART)) if PG_RESTART else (lambda: cut_writers(url))
    with Striker(url, 1, action) as strike:
        summary = nightly(NIGHT, small_home, url)
    assert strike.struck, strike.error
    if not PG_RESTART:
        assert strike.result, "no write was caught in flight"
    assert summary["counts"]["chunks"] == CHUNKS
    assert_same_ledger(ledger_rows(url), expected)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_connection_cut_in_the_middle_of_a_copy_loses_and_duplicates_nothing(
    nightly, small_home, backend, make_db, clean_ledger, rel_cluster, tmp_path
):
    expected = clean_ledger(backend)
    url = make_db(backend)
    with CopyCut(rel_cluster.scheduler_address, url, tmp_path / "copy-cut") as cut:
        summary = nightly(NIGHT, small_home, url)
    assert cut.struck, "no COPY reached the row at which to cut its connection"
    assert summary["counts"]["chunks"] == CHUNKS
    assert_same_ledger(ledger_rows(url), expected)


def test_a_killed_flow_rerun_completes_only_the_missing_chunks(
    nightly, small_home, backend, make_db, clean_ledger, prefect_backend
):
    expected = clean_ledger(backend)
    url = make_db(backend)
    proc = start_flow_process(NIGHT, small_home, url, CHUNK_ROWS, prefect_backend)
    with Striker(url, 3, lambda: kill_group(proc), poll=0.02) as strike:
        try:
            proc.wait(timeout=600)
        finally:
            kill_group(proc)
    assert strike.struck, (strike.error, proc.stderr.read().decode()[-2000:])
    done = chunks_done(url)
    assert 3 <= done < CHUNKS, f"{done} of {CHUNKS} chunks done when the flow was killed"
    assert scalar(url, "SELECT status FROM runs") == "running"  # died without closing

    resumed = nightly(NIGHT, small_home, url)
    counts = resumed["counts"]
    assert counts["chunks_skipped"] == done
    assert resumed["this_attempt"]["decisions"] == NIGHT_ROWS - done * CHUNK_ROWS
    assert counts["decisions"] == NIGHT_ROWS  # every chunk's counts, earlier attempt's too
    rows = ledger_rows(url)
    assert_same_ledger(rows, expected)

    again = nightly(NIGHT, small_home, url)  # a rerun after success changes nothing
    assert again["counts"]["chunks_skipped"] == CHUNKS
    assert again["this_attempt"] == {}
    assert_same_ledger(ledger_rows(url), rows)
    assert scalar(url, "SELECT attempts FROM runs") == 3
