"""Engines for SQLite (the embedded default) and PostgreSQL, and schema migration to head."""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from governance.config import normalise_db_url
from governance.exceptions import NotFound, StoreError

MIGRATIONS = Path(__file__).resolve().parents[2] / "sql" / "migrations"
_LOCK_ID = 7_402_611  # pg advisory lock held while migrating, so concurrent starts queue


def safe_url(url: str | sa.URL) -> str:
    """The URL with its password masked, for logs and the ledger."""
    return parse_url(url).render_as_string(hide_password=True)


_EXAMPLES = "e.g. sqlite:///governance-data/governance.db or postgresql://user@host:5432/ledger"


def parse_url(url: str | sa.URL) -> sa.URL:
    """Parse a ledger URL (``postgres://`` understood as PostgreSQL through psycopg 3).

    Raises
    ------
    StoreError
        If ``url`` is not a URL, or names a database SQLAlchemy has no driver for; the message
        is one line and never shows the password.
    """
    if isinstance(url, sa.URL):
        return url
    text = normalise_db_url(str(url).strip())
    try:
        parsed = sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        shown = text.split("@")[-1] if "@" in text else text  # user:password@ stays out
        raise StoreError(f"{shown!r} is not a database URL; expected {_EXAMPLES}") from None
    try:
        parsed.get_dialect().import_dbapi()
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise StoreError(
            f"no database driver for {parsed.drivername!r} ({type(exc).__name__}); "
            f"expected {_EXAMPLES}"
        ) from None
    if parsed.get_backend_name() == "sqlite" and not parsed.database:
        raise StoreError(f"{text!r} names no SQLite file; expected {_EXAMPLES}")
    return parsed


def sqlite_path(url: str | sa.URL) -> Path | None:
    """The file of a file-based SQLite URL, else None (PostgreSQL, in-memory SQLite)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.database.startswith("file:"):
        return None  # a URI filename: its options decide
    return Path(parsed.database)


def open_ledger(url: str, *, create: bool, make_folder: bool = False) -> sa.Engine:
    """The engine of an existing ledger, brought to the newest schema; or a new one.

    Parameters
    ----------
    url : str
        The ledger's URL.
    create : bool
        Commands that write create a ledger that is not there; commands that only read never
        do, so a mistyped URL is named instead of answered from a new, empty ledger.
    make_folder : bool
        Also create a missing parent folder of a new SQLite file (the data folder's own
        ledger); a named file in a folder that does not exist is refused.

    Raises
    ------
    NotFound
        If ``create`` is false and the URL holds no ledger (no file, or no ledger tables).
    StoreError
        If the URL is malformed, the folder is missing, or the database cannot be reached or
        is not a ledger.
    """
    parsed = parse_url(url)
    path = sqlite_path(parsed)
    if path is not None and not path.exists():
        if not create:
            raise NotFound(
                f"no ledger at {path.resolve()}: commands that only read never create one; "
                "check --db and "
                "--home, or run `govern demo` or `govern nightly` first"
            )
        if not path.parent.is_dir() and not make_folder:
            raise StoreError(f"folder {path.parent} does not exist; create it, or check --db")
    engine = make_engine(parsed)
    if not create:
        try:
            with engine.connect() as conn:
                held = sa.inspect(conn).has_table("alembic_version")
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            raise _store_error(engine.url, exc) from exc
        if not held:
            engine.dispose()
            raise NotFound(
                f"{safe_url(parsed)} holds no ledger: commands that only read never create "
                "one; check --db, or run `govern nightly` first"
            )
    return init_store(engine)


def _store_error(url: sa.URL, exc: sa.exc.DBAPIError) -> StoreError:
    if isinstance(exc, sa.exc.OperationalError):
        return StoreError(f"cannot reach the store at {safe_url(url)}: {exc.orig}")
    return StoreError(f"{safe_url(url)} is not a ledger: {exc.orig}")


def make_engine(url: str | sa.URL) -> sa.Engine:
    """Create an engine tuned for the ledger.

    SQLite runs in WAL mode with a busy timeout and foreign keys on, so several processes can
    write one night's chunks; PostgreSQL connections are checked before use, so a restarted
    server costs one reconnect instead of a failed chunk.
    """
    parsed = parse_url(url)
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
            with warnings.catch_warnings():
                # Batch migrations on SQLite reflect the tables that new ones point to;
                # SQLAlchemy cannot reflect the expression index on decisions (and need not:
                # decisions itself is never copied), and would say so on stderr.
                warnings.filterwarnings(
                    "ignore", message="Skipped unsupported reflection of expression-based index"
                )
                command.upgrade(alembic_config(engine), "head")
    except sa.exc.DBAPIError as exc:  # unreachable, wrong password, or not a database at all
        raise _store_error(engine.url, exc) from exc
    return engine
