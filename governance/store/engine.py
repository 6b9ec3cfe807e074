"""Engines for SQLite (the embedded default) and PostgreSQL, and schema migration to head."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from governance.exceptions import StoreError

MIGRATIONS = Path(__file__).resolve().parents[2] / "sql" / "migrations"
_LOCK_ID = 7_402_611  # pg advisory lock held while migrating, so concurrent starts queue


def safe_url(url: str | sa.URL) -> str:
    """The URL with its password masked, for logs and the ledger."""
    return sa.make_url(url).render_as_string(hide_password=True)


def make_engine(url: str) -> sa.Engine:
    """Create an engine tuned for the ledger.

    SQLite runs in WAL mode with a busy timeout and foreign keys on, so several processes can
    write one night's chunks; PostgreSQL connections are checked before use, so a restarted
    server costs one reconnect instead of a failed chunk.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001 - DBAPI objects
            # pysqlite opens transactions lazily; take control so BEGIN IMMEDIATE is possible.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA secure_delete=ON")  # erased subjects leave no bytes in free pages
            cur.close()

        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


def readonly_engine(url: str) -> sa.Engine:
    """An engine that cannot write: SQLite opened through a ``mode=ro`` URI (plus
    ``query_only``), PostgreSQL with every transaction read-only.

    Raises
    ------
    StoreError
        If a SQLite ledger file does not exist (read-only mode never creates one).
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:" or not Path(path).exists():
            raise StoreError(f"no ledger at {safe_url(url)}: run `govern demo` or a nightly run")
        ro = f"file:{Path(path).resolve().as_posix()}?mode=ro"
        engine = sa.create_engine(
            "sqlite://", creator=lambda: sqlite3.connect(ro, uri=True, check_same_thread=False)
        )

        @event.listens_for(engine, "connect")
        def _readonly_pragmas(dbapi_conn, _record):  # noqa: ANN001 - DBAPI objects
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA query_only=ON")
            cur.close()

        return engine
    return sa.create_engine(
        parsed,
        pool_pre_ping=True,
        connect_args={"options": "-c default_transaction_read_only=on"},
    )


def session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    """Sessions that keep objects readable after commit (results are read back by the CLI)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: sa.Engine):  # noqa: ANN202 - alembic's Config
    """Alembic's configuration for migrating ``engine`` (for alembic.command calls)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    cfg = alembic_config(None)  # type: ignore[arg-type]
    return ScriptDirectory.from_config(cfg).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def init_store(url_or_engine: str | sa.Engine) -> sa.Engine:
    """Bring the store's schema to the newest migration and return its engine.

    Raises
    ------
    StoreError
        If the database cannot be reached.
    """
    from alembic import command

    engine = url_or_engine if isinstance(url_or_engine, sa.Engine) else make_engine(url_or_engine)
    try:
        if current_revision(engine) == head_revision():
            return engine
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_ID})
                try:
                    command.upgrade(alembic_config(engine), "head")
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_ID})
                    conn.commit()
        else:
            command.upgrade(alembic_config(engine), "head")
    except sa.exc.OperationalError as exc:
        raise StoreError(f"cannot reach the store at {safe_url(engine.url)}: {exc.orig}") from exc
    return engine
