"""One run at a time: a lock per piece of work (kind and night), held for the whole run.

Two processes asked to do the same work (two `govern nightly` for one night, a schedule firing
while an operator reruns by hand) would both do all of it. The first to start holds the lock;
the second is refused with a line naming the holder, or waits for it.

On PostgreSQL the lock is a session advisory lock on a connection kept open for the run, so
it ends with its holder, however that dies. SQLite has no such lock: a lease row in
``run_locks`` carries an expiry that the holder's heartbeat keeps pushing forward, so the lock
of a holder that died lapses after at most ``lease_seconds``. PostgreSQL writes the same row,
only to say who holds the lock.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from governance.exceptions import RunInProgress
from governance.store.models import RunLockRow

LEASE_SECONDS = 120.0
HEARTBEAT_SECONDS = 20.0


def _now() -> datetime:
    return datetime.now(UTC)


def run_lock_key(kind: str, night: date | None, model: str | None, extra: str = "") -> str:
    """What a run locks: its run key, except that nightly runs lock the whole night, since a
    run for one model and one for all models would write the same decisions."""
    from governance.store.writes import run_key

    if kind == "nightly":
        return run_key(kind, night)
    return run_key(kind, night, model, extra)


def advisory_key(key: str) -> int:
    """A signed 64-bit advisory-lock id for ``key``, stable across processes."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as the lease row says."""

    key: str
    holder: str
    description: str
    acquired_at: datetime
    expires_at: datetime

    def line(self) -> str:
        what = self.description or self.key
        who = self.holder.split(" #")[0]
        return (
            f"{what} is already running (held by {who} since "
            f"{self.acquired_at:%Y-%m-%d %H:%M:%S} UTC)"
        )


def _lease(conn: sa.Connection, key: str) -> Holder | None:
    row = conn.execute(sa.select(RunLockRow).where(RunLockRow.lock_key == key)).first()
    if row is None:
        return None
    r = row._mapping
    return Holder(
        key,
        r["holder"],
        r["description"] or "",
        _utc(r["acquired_at"]),
        _utc(r["expires_at"]),
    )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def holder_of(engine: sa.Engine, key: str) -> Holder | None:
    """The live holder of ``key``'s lock, or None when nobody holds it; takes nothing."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            k = advisory_key(key)
            free = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": k}).scalar()
            if free:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": k})
                conn.commit()
                return None
            lease = _lease(conn, key)
            conn.commit()
            return lease or Holder(key, "another session", "", _now(), _now())
        lease = _lease(conn, key)
    return lease if lease is not None and lease.expires_at > _now() else None


_HOLDER = re.compile(r"^pid (\d+) on (.+) #[0-9a-f]+$")


def _dead_here(holder: str) -> bool:
    """Whether ``holder`` names a process on this machine that no longer exists."""
    m = _HOLDER.match(holder)
    if m is None or m.group(2) != socket.gethostname()[:160]:
        return False
    try:
        os.kill(int(m.group(1)), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, owned by another user
    return False


class RunLock:
    """The lock of one piece of work, held from :meth:`acquire` to :meth:`release`.

    Parameters
    ----------
    engine : Engine
        The ledger.
    key : str
        What is locked, e.g. ``"nightly:2026-11-02"``.
    description : str
        How a refused second process names the holder (e.g. ``"run 12 (nightly 2026-11-02)"``).
    lease_seconds : float
        SQLite only: how long after its last heartbeat a holder's lock lapses.
    """

    def __init__(
        self,
        engine: sa.Engine,
        key: str,
        description: str = "",
        *,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.engine = engine
        self.key = key
        self.description = description[:200]
        self.lease_seconds = float(lease_seconds)
        self.holder = f"pid {os.getpid()} on {socket.gethostname()}"[:160]
        self._token = f"{self.holder} #{uuid.uuid4().hex[:8]}"
        self._conn: sa.Connection | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.held = False

    @property
    def _pg(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def acquire(self, wait_seconds: float = 0.0, poll_seconds: float = 1.0) -> RunLock:
        """Take the lock, waiting up to ``wait_seconds`` for a holder to finish.

        Raises
        ------
        RunInProgress
            If another process still holds it after ``wait_seconds``; the message names it.
        """
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            if self._try() or self._take_from_dead():
                self.held = True
                if not self._pg:
                    self._beat = threading.Thread(
                        target=self._heartbeat, name=f"lease {self.key}", daemon=True
                    )
                    self._beat.start()
                return self
            if time.monotonic() >= deadline:
                holder = holder_of(self.engine, self.key)
                line = holder.line() if holder else f"{self.key} is already running"
                raise RunInProgress(line)
            time.sleep(poll_seconds)

    def _try(self) -> bool:
        if self._pg:
            conn = self.engine.connect()
            got = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": advisory_key(self.key)}
            ).scalar()
            conn.commit()
            if not got:
                conn.close()
                return False
            self._conn = conn
            with self.engine.begin() as other:
                self._write_lease(other, force=True)
            return True
        with self.engine.begin() as conn:
            return self._write_lease(conn, force=False)

    def _take_from_dead(self) -> bool:
        """Take over a SQLite lease whose holder was a process on this machine that has died,
        without waiting for the lease to lapse."""
        if self._pg:
            return False
        with self.engine.begin() as conn:
            lease = _lease(conn, self.key)
            if lease is None or not _dead_here(lease.holder):
                return False
            now = _now()
            taken = conn.execute(
                sa.update(RunLockRow)
                .where(RunLockRow.lock_key == self.key, RunLockRow.holder == lease.holder)
                .values(
                    holder=self._token,
                    description=self.description,
                    acquired_at=now,
                    heartbeat_at=now,
                    expires_at=now + timedelta(seconds=self.lease_seconds),
                )
            ).rowcount
        return taken == 1

    def describe(self, description: str) -> None:
        """Say what the held lock is for (e.g. the run id, known once the run is opened)."""
        self.description = description[:200]
        if self.held:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(RunLockRow)
                    .where(RunLockRow.lock_key == self.key, RunLockRow.holder == self._token)
                    .values(description=self.description)
                )

    def _write_lease(self, conn: sa.Connection, force: bool) -> bool:
        """Insert or take over the lease row; without ``force`` only an expired one.

        One statement, so two processes racing for a lapsed lease cannot both win.
        """
        now = _now()
        values = {
            "lock_key": self.key,
            "holder": self._token,
            "description": self.description,
            "acquired_at": now,
            "heartbeat_at": now,
            "expires_at": now + timedelta(seconds=self.lease_seconds),
        }
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(RunLockRow).values(**values)
        update = {k: stmt.excluded[k] for k in values if k != "lock_key"}
        lapsed = (RunLockRow.expires_at < now) | (RunLockRow.holder == self._token)
        where = None if force else lapsed
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["lock_key"], set_=update, where=where)
        )
        return conn.execute(
            sa.select(RunLockRow.holder).where(RunLockRow.lock_key == self.key)
        ).scalar() == self._token

    def _heartbeat(self) -> None:
        interval = min(HEARTBEAT_SECONDS, self.lease_seconds / 3)
        while not self._stop.wait(interval):
            try:
                now = _now()
                with self.engine.begin() as conn:
                    conn.execute(
                        sa.update(RunLockRow)
                        .where(RunLockRow.lock_key == self.key, RunLockRow.holder == self._token)
                        .values(
                            heartbeat_at=now, expires_at=now + timedelta(seconds=self.lease_seconds)
                        )
                    )
            except sa.exc.SQLAlchemyError:
                continue  # a busy or briefly unreachable ledger: try again at the next beat

    def release(self) -> None:
        """Give the lock back (a no-op when not held)."""
        if not self.held:
            return
        self.held = False
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.delete(RunLockRow).where(
                        RunLockRow.lock_key == self.key, RunLockRow.holder == self._token
                    )
                )
        finally:
            if self._conn is not None:
                try:
                    self._conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:k)"), {"k": advisory_key(self.key)}
                    )
                    self._conn.commit()
                finally:
                    self._conn.close()
                    self._conn = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# Locks held by this process for open runs, by run id: the run's opener keeps its lock here and
# its closer gives it back. (Kept here, not in the Prefect tasks' module: a task's globals are
# pickled with the flow, and a lock holds a connection and a thread.)
_KEPT: dict[int, RunLock] = {}


def keep(run_id: int, lock: RunLock) -> None:
    """Keep ``lock`` until :func:`release_kept` is called for ``run_id``."""
    _KEPT[run_id] = lock


def release_kept(run_id: int) -> None:
    """Give back the lock kept for ``run_id``, if this process holds one."""
    lock = _KEPT.pop(run_id, None)
    if lock is not None:
        lock.release()


def release_all_kept() -> None:
    """Give back every lock this process keeps (a test resetting its database between runs)."""
    for run_id in list(_KEPT):
        release_kept(run_id)
