"""Fault injection for the reliability tests and bench/faults.py: strike once some chunks of a
run are committed, by killing a Dask worker, cutting PostgreSQL connections mid-write,
restarting PostgreSQL, or killing the flow's whole process group; or cut a connection in the
middle of a bulk COPY, from inside the worker that is sending it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[2]


def chunks_done(url: str) -> int:
    """Chunks committed in the ledger, 0 while it has no schema yet."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT COUNT(*) FROM run_chunks")).scalar())
    except sa.exc.DBAPIError:
        return 0
    finally:
        engine.dispose()


class Striker(threading.Thread):
    """Watch ``run_chunks`` and call ``action`` once at least ``after`` chunks are committed.

    ``done_at_strike`` holds the chunks committed just before the strike, ``result`` what the
    action returned, ``error`` any exception it raised.
    """

    def __init__(self, url: str, after: int, action: Callable[[], object], poll: float = 0.05):
        super().__init__(daemon=True)
        self.url, self.after, self.action, self.poll = url, after, action, poll
        self.stop = threading.Event()
        self.done_at_strike: int | None = None
        self.result: object = None
        self.error: BaseException | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            done = chunks_done(self.url)
            if done >= self.after:
                self.done_at_strike = done
                try:
                    self.result = self.action()
                except BaseException as exc:  # noqa: BLE001 - reported to the test
                    self.error = exc
                return
            time.sleep(self.poll)

    def __enter__(self) -> Striker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(timeout=60)

    @property
    def struck(self) -> bool:
        return self.done_at_strike is not None and self.error is None


def kill_busy_worker(scheduler_address: str) -> dict[str, int]:
    """SIGKILL the process of a Dask worker that is running a task (its nanny restarts it);
    return the killed worker's address, pid and whether it had a task."""
    from distributed import Client

    with Client(scheduler_address, timeout=30) as client:
        pids = client.run(os.getpid)
        busy = [w for w, tasks in client.processing().items() if tasks]
        victim = (busy or list(pids))[0]
        os.kill(pids[victim], signal.SIGKILL)
        return {"worker": victim, "pid": pids[victim], "busy": bool(busy)}


def cut_writers(url: str, cuts: int = 2, within: float = 30.0) -> list[str]:
    """Terminate PostgreSQL backends of the ledger's database caught in the middle of a write
    (a COPY, INSERT, UPDATE or DELETE running, or a transaction open), ``cuts`` times; return
    the statements that were cut."""
    engine = sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    cut: list[str] = []
    deadline = time.monotonic() + within
    try:
        with engine.connect() as conn:
            while len(cut) < cuts and time.monotonic() < deadline:
                rows = conn.execute(
                    sa.text(
                        "SELECT pid, left(query, 60) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "AND (state = 'idle in transaction' OR (state = 'active' AND "
                        "(query ILIKE 'COPY%' OR query ILIKE 'INSERT%' OR query ILIKE 'DELETE%' "
                        "OR query ILIKE 'UPDATE%')))"
                    )
                ).all()
                for pid, query in rows:
                    kill = sa.text("SELECT pg_terminate_backend(:p)")
                    if conn.execute(kill, {"p": pid}).scalar():
                        cut.append(query)
                if not rows:
                    time.sleep(0.005)
    finally:
        engine.dispose()
    return cut


def _cut_copy_patch(url: str, after_rows: int, marker: str) -> bool:
    """In this (worker) process: the first COPY FROM STDIN to send ``after_rows`` rows has its
    server backend terminated from a second connection, once across all processes that share
    ``marker``; the COPY then fails as a dropped connection does. Returns True when installed."""
    import psycopg

    if getattr(psycopg.Copy, "_fault_original", None) is not None:
        return True
    original = psycopg.Copy.write_row
    conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(False)

    def write_row(self, row):  # noqa: ANN001, ANN202 - psycopg's own signature
        n = getattr(self, "_fault_rows", 0) + 1
        self._fault_rows = n
        if n == after_rows:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                fd = None
            if fd is not None:
                pid = self.connection.info.backend_pid
                os.write(fd, f"{pid} {os.getpid()}".encode())
                os.close(fd)
                with psycopg.connect(conninfo, autocommit=True) as killer:
                    killer.execute("SELECT pg_terminate_backend(%s)", [pid])
        return original(self, row)

    psycopg.Copy._fault_original = original
    psycopg.Copy.write_row = write_row
    return True


def _uncut_copy_patch() -> bool:
    import psycopg

    original = getattr(psycopg.Copy, "_fault_original", None)
    if original is not None:
        psycopg.Copy.write_row = original
        psycopg.Copy._fault_original = None
    return True


class CopyCut:
    """Cut the PostgreSQL connection of the first bulk COPY (in any worker of the cluster at
    ``scheduler_address``) that has sent ``after_rows`` rows. ``struck`` says whether it did;
    ``detail`` holds the killed backend's pid and the worker's."""

    def __init__(self, scheduler_address: str, url: str, marker: Path, after_rows: int = 50):
        self.address, self.url, self.marker, self.after = scheduler_address, url, marker, after_rows

    def __enter__(self) -> CopyCut:
        from distributed import Client

        self.marker.unlink(missing_ok=True)
        with Client(self.address, timeout=30) as client:
            client.run(_cut_copy_patch, self.url, self.after, str(self.marker))
        return self

    def __exit__(self, *exc: object) -> None:
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.run(_uncut_copy_patch)

    @property
    def struck(self) -> bool:
        return self.marker.exists()

    @property
    def detail(self) -> str | None:
        return self.marker.read_text() if self.marker.exists() else None


def restart_postgres(command: str) -> str:
    """Restart the PostgreSQL server with ``command`` (e.g. ``pg_ctlcluster 15 main restart``)
    and wait until it answers again."""
    subprocess.run(command.split(), check=True, timeout=120, capture_output=True)
    for _ in range(120):
        if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"]).returncode == 0:
            break
        time.sleep(0.5)
    return command


FLOW_SCRIPT = """
import sys
from datetime import date
import flows
from prefect_dask import DaskTaskRunner
from flows.nightly import nightly_governance
night, home, db, chunk_rows = sys.argv[1:5]
runner = DaskTaskRunner(cluster_kwargs={"n_workers": 1, "processes": False,
                                        "threads_per_worker": 2, "dashboard_address": ":0"})
nightly_governance.with_options(task_runner=runner)(
    night=date.fromisoformat(night), home=home, db=db, chunk_rows=int(chunk_rows),
    recourse=False)
"""


def start_flow_process(night, home, db: str, chunk_rows: int, api_url: str) -> subprocess.Popen:
    """The nightly flow in a process group of its own (its Dask workers are threads inside
    it), reporting to ``api_url``."""
    env = {**os.environ, "PREFECT_API_URL": api_url}
    return subprocess.Popen(
        [sys.executable, "-c", FLOW_SCRIPT, night.isoformat(), str(home), db, str(chunk_rows)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process and everything in its group, as a crashed machine would end it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
