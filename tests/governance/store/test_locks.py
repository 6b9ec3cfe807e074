"""One run at a time: the run lock between real processes, on SQLite and PostgreSQL; a dead
holder's lock lapses (PostgreSQL at once, SQLite by its lease or its dead pid)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from governance.exceptions import RunInProgress
from governance.store import init_store
from governance.store.locks import RunLock, holder_of, run_lock_key
from governance.store.models import RunLockRow
from tests.conftest import reset_pg

KEY = "nightly:2026-11-02"

HOLD = """
import sys, time
from governance.store import init_store
from governance.store.locks import RunLock
lock = RunLock(init_store(sys.argv[1]), sys.argv[2], "run 7 (nightly:2026-11-02:*)")
lock.acquire(wait_seconds=float(sys.argv[4]))
print("held", flush=True)
time.sleep(float(sys.argv[3]))
lock.release()
print("released", flush=True)
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        u = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        u = request.getfixturevalue("pg_url")
        reset_pg(u)
    init_store(u).dispose()
    return u


def _holder(url: str, seconds: float, wait: float = 0.0) -> subprocess.Popen:
    """Another process holding the lock for ``seconds``; returns once it holds it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, url, KEY, str(seconds), str(wait)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.strip() == "held", proc.stderr.read()
    return proc


def test_a_second_process_is_refused_with_a_line_naming_the_holder(url):
    proc = _holder(url, 60)
    engine = init_store(url)
    try:
        with pytest.raises(RunInProgress) as info:
            RunLock(engine, KEY, "mine").acquire()
        line = str(info.value)
        assert "\n" not in line
        assert f"run 7 (nightly:2026-11-02:*) is already running (held by pid {proc.pid}" in line
        assert holder_of(engine, KEY).description == "run 7 (nightly:2026-11-02:*)"
    finally:
        proc.kill()
        proc.wait()
        engine.dispose()


def test_a_waiting_process_gets_the_lock_when_the_holder_finishes(url):
    proc = _holder(url, 2)
    engine = init_store(url)
    try:
        t0 = time.monotonic()
        lock = RunLock(engine, KEY, "mine").acquire(wait_seconds=60, poll_seconds=0.2)
        assert proc.wait(30) == 0 and time.monotonic() - t0 < 30
        assert holder_of(engine, KEY) is None or holder_of(engine, KEY).description == "mine"
        lock.release()
        assert holder_of(engine, KEY) is None
    finally:
        engine.dispose()


def test_the_lock_of_a_killed_holder_lapses(url):
    proc = _holder(url, 600)
    engine = init_store(url)
    try:
        with pytest.raises(RunInProgress):
            RunLock(engine, KEY).acquire()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # PostgreSQL ends the advisory lock with the session; SQLite sees the pid is gone.
        lock = RunLock(engine, KEY).acquire(wait_seconds=10, poll_seconds=0.2)
        lock.release()
    finally:
        engine.dispose()


def test_a_sqlite_lease_of_another_machine_holds_until_it_expires(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = init_store(url)
    now = datetime.now(UTC)
    row = {
        "lock_key": KEY,
        "holder": "pid 12 on elsewhere #0badc0de",
        "description": "run 3 (nightly:2026-11-02:*)",
        "acquired_at": now - timedelta(minutes=5),
        "heartbeat_at": now,
        "expires_at": now + timedelta(minutes=1),
    }
    with engine.begin() as conn:
        conn.execute(sa.insert(RunLockRow).values(**row))
    with pytest.raises(RunInProgress, match=r"run 3 .*held by pid 12 on elsewhere since"):
        RunLock(engine, KEY).acquire()
    with engine.begin() as conn:  # its heartbeat stopped a while ago: the lease lapsed
        conn.execute(sa.update(RunLockRow).values(expires_at=now - timedelta(seconds=1)))
    assert holder_of(engine, KEY) is None
    lock = RunLock(engine, KEY, "mine").acquire()
    assert holder_of(engine, KEY).description == "mine"
    lock.release()
    engine.dispose()


def test_the_sqlite_heartbeat_keeps_a_long_run_s_lease(tmp_path):
    engine = init_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    lock = RunLock(engine, KEY, lease_seconds=1.5).acquire()
    time.sleep(3)  # twice the lease: only the heartbeat keeps it
    with pytest.raises(RunInProgress):
        RunLock(engine, KEY).acquire()
    lock.release()
    RunLock(engine, KEY).acquire().release()
    engine.dispose()


def test_nightly_runs_lock_the_night_whatever_the_model():
    night = datetime(2026, 11, 2).date()
    assert run_lock_key("nightly", night, "m") == run_lock_key("nightly", night, None) == KEY + ":*"
    assert run_lock_key("redeploy", None, "m", "v2") == "redeploy:-:m:v2"
