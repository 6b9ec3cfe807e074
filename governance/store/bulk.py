"""Bulk ledger I/O: one writer and one reader for any table, on PostgreSQL and SQLite.

Writing runs inside the caller's transaction, so a chunk's rows land together with the record
of the chunk or not at all:

- PostgreSQL: ``COPY ... FROM STDIN (FORMAT BINARY)`` through psycopg 3, each column bound
  column-wise to the binary wire format of its ledger type (about 2.9M rows/s measured on this
  box against 72k rows/s for SQLAlchemy's executemany). Upserts COPY into a temporary table
  and merge with one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE``.
- SQLite: one prepared statement run with ``executemany`` over values bound column by column
  through each column type's own bind processor (the stored form the ORM would write). Binding
  is done before the transaction when the caller prepares the rows
  (:func:`prepare`), so the single writer lock is held only for the inserts.

Reading large result sets goes through ADBC on PostgreSQL (Arrow in, Arrow out: about 3M rows/s
here, 3x psycopg's ``fetchall``), on a connection of its own per process and URL, so a bulk
read sees committed data, not the caller's open transaction. SQLite is read through Python's
own ``sqlite3``, column by column into Arrow: ADBC's SQLite driver links a second copy of the
SQLite library, and two copies in one process do not see each other's POSIX locks, so closing
one copy's file drops the other's write lock (SQLite's "How To Corrupt" section 2.2.1; here it
surfaced as ``locking protocol`` errors under load, and a second process could take the write
lock while this one held it). Bound parameters only: the statement is compiled by SQLAlchemy
and its parameters are passed to the driver.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session

# PostgreSQL's binary timestamps count microseconds from 2000-01-01 UTC, dates count days.
_PG_EPOCH_US = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
_PG_EPOCH_DAYS = date(2000, 1, 1).toordinal() - date(1970, 1, 1).toordinal()


# -- binding columns ---------------------------------------------------------------------------

def _base_type(t: sa.types.TypeEngine) -> sa.types.TypeEngine:
    """The type a TypeDecorator (the ledger's UTC timestamps, say) stores as; others as is."""
    return t.impl_instance if isinstance(t, sa.types.TypeDecorator) else t

def _plain(v: Any) -> Any:
    """A value as the driver takes it: numpy scalars to Python, NaN/NaT/NA to None."""
    if v is None or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    return v


def _json_safe(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None, dates as ISO text."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    return obj


def _numbers(series: pd.Series, kind: str) -> list[Any]:
    """Ints, floats or bools as Python values, missing ones as None."""
    arr = series.to_numpy()
    if arr.dtype.kind in "iub":
        return arr.tolist()
    if arr.dtype.kind == "f":
        out = arr.astype(object)
        out[np.isnan(arr)] = None
        if kind == "i":
            return [None if v is None else int(v) for v in out.tolist()]
        if kind == "b":
            return [None if v is None else bool(v) for v in out.tolist()]
        return out.tolist()
    return [_plain(v) for v in arr.tolist()]


def _texts(series: pd.Series) -> list[str | None] | None:
    """The column as Python strings (missing ones None) when it holds only strings, else
    None; checked in one pass in C, not per value in Python."""
    if pd.api.types.infer_dtype(series, skipna=True) not in ("string", "empty"):
        return None
    values = series.tolist()
    missing = series.isna().to_numpy()
    if missing.any():
        values = [None if m else v for v, m in zip(values, missing.tolist(), strict=True)]
    return values


def _utc_stamps(series: pd.Series) -> pd.Series | None:
    """The column as datetime64 in UTC (naive values are read as UTC), or None if it holds
    something else."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC")
    try:
        return pd.to_datetime(series, utc=True)
    except (TypeError, ValueError):
        return None


def _micros(stamps: pd.Series) -> np.ndarray:
    return stamps.to_numpy(dtype="datetime64[us]").view(np.int64)


def _constant(series: pd.Series) -> bool:
    if len(series) < 2 or series.dtype.kind not in "OSU":
        return False
    first = series.iloc[0]
    try:
        return bool((series == first).all()) if first is not None else series.isna().all()
    except (TypeError, ValueError):
        return False


# -- PostgreSQL: binary COPY --------------------------------------------------------------------
def _pg_binary_column(column: sa.Column, series: pd.Series) -> tuple[str, list[Any]] | None:
    """(wire type, values) of a column for a binary COPY, or None where this module does not
    know the binary form of the column's type (the caller then uses text COPY)."""
    t = _base_type(column.type)
    if isinstance(t, sa.Boolean):
        return "bool", _numbers(series, "b")
    if isinstance(t, sa.SmallInteger):
        return "int2", _numbers(series, "i")
    if isinstance(t, sa.BigInteger):
        return "int8", _numbers(series, "i")
    if isinstance(t, sa.Integer):
        return "int4", _numbers(series, "i")
    if isinstance(t, sa.Float):
        if t.precision is not None and t.precision <= 24:
            return None  # real: left to text COPY
        return "float8", _numbers(series, "f")
    if isinstance(t, sa.String):  # String, Text, Unicode (JSON is not a String)
        values = _texts(series)
        return None if values is None else ("text", values)
    if isinstance(t, sa.LargeBinary):
        values = [_plain(v) for v in series.tolist()]
        return "bytea", [None if v is None else bytes(v) for v in values]
    if isinstance(t, sa.DateTime | sa.Date):
        # Sent as the integers PostgreSQL's binary format holds, without a Python object per
        # value: int8 microseconds (timestamp[tz]) or int4 days (date) since 2000-01-01.
        stamps = _utc_stamps(series)
        if stamps is None:
            return None
        missing = stamps.isna().to_numpy()
        if isinstance(t, sa.DateTime):
            if not t.timezone and any(
                getattr(v, "tzinfo", None) is not None for v in series.head(1).tolist()
            ):
                return None
            ints = _micros(stamps) - _PG_EPOCH_US
            typ = "int8"
        else:
            ints = stamps.to_numpy(dtype="datetime64[D]").view(np.int64) - _PG_EPOCH_DAYS
            typ = "int4"
        values = ints.astype(object)
        values[missing] = None
        return typ, values.tolist()
    if isinstance(t, sa.JSON):
        from sqlalchemy.dialects.postgresql import JSONB

        typ = "jsonb" if isinstance(t.dialect_impl(_PG), JSONB) else "json"
        return typ, [None if v is None else _json_safe(v) for v in series.tolist()]
    return None


def _pg_dialect() -> sa.Dialect:
    from sqlalchemy.dialects import postgresql

    return postgresql.psycopg.dialect()


_PG = _pg_dialect()


def _copy_in(raw: Any, table: str, cols: list[str], frame: pd.DataFrame, columns: dict) -> None:
    """COPY ``frame`` into ``table`` on the psycopg connection ``raw``, binary where every
    column's binary form is known, text otherwise."""
    bound = [_pg_binary_column(columns[c], frame[c]) for c in cols]
    quoted = ", ".join(f'"{c}"' for c in cols)
    with raw.cursor() as cur:
        if all(b is not None for b in bound):
            sql = f'COPY "{table}" ({quoted}) FROM STDIN (FORMAT BINARY)'
            with cur.copy(sql) as copy:
                copy.set_types([b[0] for b in bound])
                for row in zip(*(b[1] for b in bound), strict=True):
                    copy.write_row(row)
            return
        json_cols = {c for c in cols if isinstance(columns[c].type, sa.JSON)}
        with cur.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy:
            for values in frame[cols].itertuples(index=False, name=None):
                copy.write_row(
                    tuple(
                        json.dumps(_json_safe(v)) if c in json_cols else _plain(v)
                        for c, v in zip(cols, values, strict=True)
                    )
                )


# -- SQLite and others: executemany ---------------------------------------------------------------
def _bound_column(column: sa.Column, series: pd.Series, dialect: sa.Dialect) -> list[Any]:
    """A column's values as the driver takes them, through the column type's bind processor
    (the stored form the ORM would write); NaN and NaT become NULL."""
    proc = column.type.dialect_impl(dialect).bind_processor(dialect)
    kind = series.dtype.kind
    if proc is None and kind in "iubf":
        return _numbers(series, kind)
    if (
        dialect.name == "sqlite"
        and isinstance(_base_type(column.type), sa.DateTime | sa.Date)
        and isinstance(series.dtype, pd.DatetimeTZDtype | np.dtypes.DateTime64DType)
        and (getattr(series.dtype, "tz", None) is None or str(series.dtype.tz) == "UTC")
    ):
        # SQLAlchemy's SQLite storage format, vectorised: 'YYYY-MM-DD HH:MM:SS.ffffff'.
        arr = series.to_numpy(dtype="datetime64[us]")
        if len(arr) > 1 and not np.isnat(arr).any() and (arr == arr[0]).all():
            arr = arr[:1]  # one time for every row (checked_at, say): format it once
            one = _bound_column(column, pd.Series(arr), dialect)
            return one * len(series)
        unit = "us" if isinstance(_base_type(column.type), sa.DateTime) else "D"
        text = np.datetime_as_string(arr, unit=unit).astype(object)
        text[np.isnat(arr)] = None
        if unit == "us":
            return [None if v is None else v.replace("T", " ") for v in text.tolist()]
        return text.tolist()
    if isinstance(_base_type(column.type), sa.JSON):
        # NaN and infinities are not JSON: stored as null, as on PostgreSQL.
        return [None if v is None else proc(_json_safe(v)) for v in series.tolist()]
    if _constant(series):
        first = _plain(series.iloc[0])
        value = first if proc is None or first is None else proc(first)
        return [value] * len(series)
    texts = _texts(series) if proc is None else None
    if texts is not None:
        return texts
    values = [_plain(v) for v in series.tolist()]
    if proc is None:
        return values
    return [None if v is None else proc(v) for v in values]


@dataclass
class Rows:
    """Rows of one table bound for one backend, ready to write (see :func:`prepare`)."""

    table: sa.Table
    frame: pd.DataFrame
    columns: list[str]
    dialect: str
    values: list[tuple] | None = None  # bound rows (SQLite and other executemany backends)

    def __len__(self) -> int:
        return len(self.frame)


def prepare(table: sa.Table, frame: pd.DataFrame, dialect: sa.Dialect) -> Rows:
    """Bind ``frame``'s rows for ``table`` on ``dialect`` ahead of the write transaction.

    Columns of ``frame`` that ``table`` lacks are ignored; missing ones are left to their
    defaults.
    """
    cols = [c.name for c in table.columns if c.name in frame.columns]
    rows = Rows(table, frame, cols, dialect.name)
    if dialect.name != "postgresql" and len(frame):
        bound = [_bound_column(table.c[c], frame[c], dialect) for c in cols]
        rows.values = list(zip(*bound, strict=True))
    return rows


def _driver(session: Session | sa.Connection) -> tuple[sa.Connection, Any]:
    conn = session.connection() if isinstance(session, Session) else session
    return conn, conn.connection.driver_connection


def insert(session: Session | sa.Connection, rows: Rows) -> int:
    """Insert prepared rows in the session's transaction; returns the rows written."""
    if not len(rows):
        return 0
    conn, raw = _driver(session)
    table, cols = rows.table, rows.columns
    if conn.dialect.name == "postgresql":
        _copy_in(raw, table.name, cols, rows.frame, {c.name: c for c in table.columns})
        return len(rows)
    if rows.dialect != conn.dialect.name or rows.values is None:
        rows = prepare(table, rows.frame, conn.dialect)
    quoted = ", ".join(f'"{c}"' for c in cols)
    marks = ", ".join("?" if conn.dialect.paramstyle == "qmark" else "%s" for _ in cols)
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks})', rows.values)
    return len(rows)


_temp_counter = iter(range(1 << 62))
_temp_lock = threading.Lock()


def upsert(session: Session | sa.Connection, rows: Rows) -> int:
    """Insert prepared rows, updating every other column of rows whose primary key exists."""
    if not len(rows):
        return 0
    conn, raw = _driver(session)
    table, cols = rows.table, rows.columns
    keys = [c.name for c in table.primary_key.columns]
    update = [c for c in cols if c not in keys]
    quoted = ", ".join(f'"{c}"' for c in cols)
    conflict = ", ".join(f'"{k}"' for k in keys)
    action = (
        "DO UPDATE SET " + ", ".join(f'"{c}" = excluded."{c}"' for c in update)
        if update
        else "DO NOTHING"
    )
    if conn.dialect.name == "postgresql":
        with _temp_lock:
            temp = f"_bulk_{table.name}_{next(_temp_counter)}"
        conn.exec_driver_sql(
            f'CREATE TEMP TABLE "{temp}" (LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP'
        )
        _copy_in(raw, temp, cols, rows.frame, {c.name: c for c in table.columns})
        conn.exec_driver_sql(
            f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM "{temp}" '
            f"ON CONFLICT ({conflict}) {action}"
        )
        conn.exec_driver_sql(f'DROP TABLE "{temp}"')
        return len(rows)
    if rows.dialect != conn.dialect.name or rows.values is None:
        rows = prepare(table, rows.frame, conn.dialect)
    marks = ", ".join("?" for _ in cols)
    conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks}) ON CONFLICT ({conflict}) {action}',
        rows.values,
    )
    return len(rows)


def delete_keys(
    session: Session | sa.Connection, table: sa.Table, keys: pd.DataFrame
) -> int:
    """Delete the rows of ``table`` whose values in ``keys``' columns equal one row of
    ``keys`` (a composite key as a frame, one column per key column)."""
    if keys.empty:
        return 0
    cols = list(keys.columns)
    if missing := [c for c in cols if c not in table.c]:
        raise ValueError(f"{table.name} has no column {missing[0]!r}")
    conn, _raw = _driver(session)
    if conn.dialect.name == "postgresql":
        # One statement: the key tuples as arrays, unnested and joined.
        arrays = [_numbers(keys[c], keys[c].dtype.kind) if keys[c].dtype.kind in "iufb"
                  else [_plain(v) for v in keys[c].tolist()] for c in cols]
        types = [table.c[c].type.compile(_PG) for c in cols]
        unnest = ", ".join(f"CAST(%s AS {t.split('(')[0]}[])" for t in types)
        names = ", ".join(f'"k{i}"' for i in range(len(cols)))
        match = " AND ".join(f't."{c}" = k."k{i}"' for i, c in enumerate(cols))
        cur = conn.connection.driver_connection.cursor()
        try:
            cur.execute(
                f'DELETE FROM "{table.name}" AS t USING unnest({unnest}) AS k({names}) '
                f"WHERE {match}",
                arrays,
            )
            return cur.rowcount
        finally:
            cur.close()
    bound = prepare(table, keys, conn.dialect)
    match = " AND ".join(f'"{c}" = ?' for c in bound.columns)
    result = conn.exec_driver_sql(f'DELETE FROM "{table.name}" WHERE {match}', bound.values)
    return result.rowcount


# -- reading: ADBC -------------------------------------------------------------------------------
_adbc: dict[tuple[str, int], Any] = {}
_adbc_lock = threading.Lock()


def _adbc_connection(url: sa.URL) -> Any | None:
    """This process's ADBC connection for ``url`` (opened on first use), or None where ADBC
    does not serve it: every backend but PostgreSQL. Never SQLite: ADBC's driver carries its
    own copy of the SQLite library, whose file handles would release the locks that the
    writers' ``sqlite3`` holds in the same process (see the module docstring)."""
    if url.get_backend_name() != "postgresql":
        return None
    key = url.set(drivername="postgresql").render_as_string(hide_password=False)
    slot = (key, threading.get_ident())  # a DBAPI connection serves one thread at a time
    with _adbc_lock:
        conn = _adbc.get(slot)
    if conn is None:
        # Autocommit: no transaction is left open between reads, so no lock is held that a
        # schema change or a purge would wait on.
        import adbc_driver_postgresql.dbapi as driver

        conn = driver.connect(key, autocommit=True)
        with _adbc_lock:
            _adbc[slot] = conn
    return conn


def _forget(url: sa.URL) -> None:
    """Close this thread's bulk-read connection to ``url``, if any."""
    key = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with _adbc_lock:
        conn = _adbc.pop((key, threading.get_ident()), None)
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.close()


def forget_connections() -> None:
    """Close this process's bulk-read connections (after a database was dropped, say)."""
    with _adbc_lock:
        for conn in _adbc.values():
            with contextlib.suppress(Exception):  # a dead connection is what is forgotten
                conn.close()
        _adbc.clear()


atexit.register(forget_connections)  # closed before the interpreter tears the driver down


def _compiled(stmt: sa.Select, dialect: sa.Dialect) -> tuple[str, list[Any]]:
    """SQL text and positional parameters of ``stmt``, parameters bound by the dialect's
    own processors (SQLite's stored date format, for one)."""
    if dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        dialect = postgresql.psycopg.dialect(paramstyle="numeric_dollar")
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    out = []
    for name in compiled.positiontup or []:
        value = params[name]
        # an IN list expanded into one parameter per value is named <key>_<n>
        bind = compiled.binds[name if name in compiled.binds else name.rsplit("_", 1)[0]]
        proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
        out.append(value if proc is None or value is None else proc(value))
    return compiled.string, out


def read_arrow(bind: sa.Engine | str, stmt: sa.Select) -> pa.Table:
    """The result of ``stmt`` as an Arrow table, through ADBC where it serves the URL.

    Falls back to the DBAPI cursor (rows into Arrow) where it does not. Columns are named as
    ``stmt`` labels them.
    """
    engine = bind if isinstance(bind, sa.Engine) else sa.create_engine(bind)
    names = [c.key for c in stmt.selected_columns]
    sql, params = _compiled(stmt, engine.dialect)
    conn = _adbc_connection(engine.url)
    if conn is not None:
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params or None)
                table = cur.fetch_arrow_table()
        except Exception:  # noqa: BLE001 - a connection cut under us: reconnect once
            _forget(engine.url)
            conn = _adbc_connection(engine.url)
            with conn.cursor() as cur:
                cur.execute(sql, params or None)
                table = cur.fetch_arrow_table()
        return table.rename_columns(names)
    with engine.connect() as c:
        rows = c.exec_driver_sql(sql, tuple(params)).all()
    if not rows:
        return pa.table({n: pa.array([], pa.null()) for n in names})
    # column-wise: one Python list per column, not a dict per row
    columns = zip(*rows, strict=True)
    return pa.table({n: pa.array(col) for n, col in zip(names, columns, strict=True)})


def to_frame(table: pa.Table, stmt: sa.Select) -> pd.DataFrame:
    """An Arrow result as pandas, each column as the ledger's type reads back: booleans as
    bool (SQLite stores 0/1), JSON parsed, timestamps in UTC, dates as ``date``."""
    frame = table.to_pandas()
    for col in stmt.selected_columns:
        name, t = col.key, _base_type(col.type)
        if name not in frame or not len(frame):
            continue
        s = frame[name]
        if isinstance(t, sa.Boolean):
            if s.isna().any():
                frame[name] = [None if pd.isna(v) else bool(v) for v in s]
            else:
                frame[name] = s.astype(bool)
        elif isinstance(t, sa.JSON):
            frame[name] = [
                None if v is None else (json.loads(v) if isinstance(v, str | bytes) else v)
                for v in s
            ]
        elif isinstance(t, sa.DateTime) and s.dtype.kind in "OU":
            frame[name] = pd.to_datetime(s, utc=True)
        elif isinstance(t, sa.Date) and not isinstance(t, sa.DateTime) and s.dtype.kind in "OU":
            frame[name] = [None if v is None else date.fromisoformat(v) for v in s]
    return frame


def read_frame(bind: sa.Engine | str, stmt: sa.Select) -> pd.DataFrame:
    """The result of ``stmt`` as a DataFrame (see :func:`read_arrow` and :func:`to_frame`)."""
    return to_frame(read_arrow(bind, stmt), stmt)


def binary_matrix(column: pa.ChunkedArray | pa.Array, width: int) -> np.ndarray:
    """Fixed-width binary values (float64 rows of ``width``) as an (n, width) matrix, without
    a Python object per value; rows that are NULL or of another length come back as NaN."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_large_binary(arr.type):
        arr = arr.cast(pa.binary())
    n = len(arr)
    out = np.full((n, width), np.nan)
    if n == 0:
        return out
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    data = arr.buffers()[2]
    lengths = np.diff(offsets)
    ok = lengths == 8 * width
    if arr.null_count:
        ok &= arr.is_valid().to_numpy(zero_copy_only=False)
    if not ok.any():
        return out
    flat = np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, np.uint8)
    if ok.all() and offsets[0] == 0 and len(flat) >= 8 * width * n:
        return flat[: 8 * width * n].view("<f8").reshape(n, width).copy()
    starts = offsets[:-1][ok]
    idx = starts[:, None] + np.arange(8 * width)[None, :]
    out[ok] = flat[idx].view("<f8").reshape(-1, width)
    return out
