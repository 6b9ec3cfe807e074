"""Decision logs: who was scored, on what features, with which model version, and the outcome.

Two sources share one interface. The default is a Parquet dataset partitioned by decision date::

    <root>/decision_date=2026-11-24/part-0.parquet

the second is any SQL table reachable through a SQLAlchemy URL. Both read one night at a time, in
chunks, and return plain frames; checking them is the validation step's job.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from governance.exceptions import DecisionLogError

# Columns every decision log carries besides the model's features.
ID = "decision_id"
SUBJECT = "subject_id"
DECIDED_AT = "decided_at"
MODEL_NAME = "model_name"
MODEL_VERSION = "model_version"
SCORE = "score"
DECISION = "decision"
META_COLUMNS = (ID, SUBJECT, DECIDED_AT, MODEL_NAME, MODEL_VERSION, SCORE, DECISION)
APPROVED, DENIED = "approved", "denied"
PARTITION = "decision_date"


def night_bounds(night: date) -> tuple[datetime, datetime]:
    """UTC start (inclusive) and end (exclusive) of a decision date."""
    start = datetime.combine(night, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


class DecisionSource(Protocol):
    """Anything that can hand over one night of decisions in chunks."""

    def describe(self) -> str: ...

    def iter_night(self, night: date, chunk_rows: int = 50_000) -> Iterator[pd.DataFrame]: ...


def read_night(source: DecisionSource, night: date, chunk_rows: int = 50_000) -> pd.DataFrame:
    """Read a whole night from ``source`` (chunk by chunk) into one frame, index 0..n-1."""
    chunks = list(source.iter_night(night, chunk_rows))
    if not chunks:
        return pd.DataFrame()
    return pd.concat(chunks, ignore_index=True)


@dataclass(frozen=True)
class ParquetDecisionLog:
    """Decision log stored as Parquet files partitioned by decision date.

    Parameters
    ----------
    root : str or Path
        Folder holding ``decision_date=YYYY-MM-DD`` partitions.
    """

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    def describe(self) -> str:
        return f"parquet:{self.root}"

    def partition(self, night: date) -> Path:
        return self.root / f"{PARTITION}={night.isoformat()}"

    def nights(self) -> list[date]:
        """Decision dates that have a partition, oldest first."""
        if not self.root.exists():
            return []
        found = []
        for p in self.root.iterdir():
            if p.is_dir() and p.name.startswith(f"{PARTITION}="):
                try:
                    found.append(date.fromisoformat(p.name.split("=", 1)[1]))
                except ValueError:
                    continue
        return sorted(found)

    def files(self, night: date) -> list[Path]:
        folder = self.partition(night)
        if not folder.is_dir():
            raise DecisionLogError(f"no decision log for {night} at {folder}")
        return sorted(folder.glob("*.parquet"))

    def iter_night(self, night: date, chunk_rows: int = 50_000) -> Iterator[pd.DataFrame]:
        """Yield the night's rows as frames of at most ``chunk_rows`` rows.

        Raises
        ------
        DecisionLogError
            If the partition is missing or a file is not readable Parquet.
        """
        for path in self.files(night):
            try:
                pf = pq.ParquetFile(path)
                for batch in pf.iter_batches(batch_size=chunk_rows):
                    yield batch.to_pandas()
            # A damaged footer or pandas metadata surfaces as any of these, not only Arrow's own.
            except (pa.ArrowException, OSError, ValueError, KeyError, TypeError, IndexError) as exc:
                raise DecisionLogError(
                    f"decision log file {path} is unreadable: {_one_line(exc)}"
                ) from exc

    def write_night(self, night: date, frame: pd.DataFrame, part: str = "part-0") -> Path:
        """Replace the night's partition with ``frame`` atomically and return the file written."""
        folder = self.partition(night)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{part}.parquet"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
        os.close(fd)
        try:
            frame.reset_index(drop=True).to_parquet(tmp, index=False)
            for old in folder.glob("*.parquet"):
                if old != final:
                    old.unlink()
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return final

    def write(self, frame: pd.DataFrame) -> list[Path]:
        """Write a frame spanning any number of nights, one partition per UTC decision date."""
        stamps = pd.to_datetime(frame[DECIDED_AT], utc=True)
        written = []
        for night, part in frame.groupby(stamps.dt.date, sort=True):
            written.append(self.write_night(night, part))
        return written


@dataclass(frozen=True)
class SqlDecisionLog:
    """Decision log in a SQL table, read with bound parameters through SQLAlchemy.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the database holding the table.
    table : str
        Table name, optionally ``schema.table``.
    timezone : str, default="UTC"
        Zone of timestamps stored without one (``TIMESTAMP WITHOUT TIME ZONE``, SQLite text):
        SQL tables commonly keep UTC that way. Time-zone aware values are converted to UTC.
    """

    url: str
    table: str
    timezone: str = "UTC"

    def describe(self) -> str:
        return f"sql:{sa.make_url(self.url).render_as_string(hide_password=True)}/{self.table}"

    def _stamped(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """``decided_at`` as UTC timestamps; values that do not parse are left for validation."""
        raw = chunk[DECIDED_AT]
        parsed = pd.to_datetime(raw, errors="coerce", format="mixed")
        if parsed.dt.tz is None:
            parsed = parsed.dt.tz_localize(self.timezone)
        parsed = parsed.dt.tz_convert("UTC")
        bad = parsed.isna() & raw.notna()
        out = chunk.copy()
        out[DECIDED_AT] = parsed.astype(object).where(~bad, raw) if bad.any() else parsed
        return out

    def _table(self, engine: sa.Engine) -> sa.Table:
        schema, _, name = self.table.rpartition(".")
        try:
            return sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=engine)
        except sa.exc.NoSuchTableError as exc:
            raise DecisionLogError(f"decision log table {self.table!r} not found") from exc

    def iter_night(self, night: date, chunk_rows: int = 50_000) -> Iterator[pd.DataFrame]:
        start, end = night_bounds(night)
        engine = sa.create_engine(self.url)
        try:
            table = self._table(engine)
            if DECIDED_AT not in table.c:
                raise DecisionLogError(f"decision log table {self.table!r} has no {DECIDED_AT!r}")
            col = table.c[DECIDED_AT]
            # SQLite stores naive text timestamps; compare in UTC without the offset there.
            lo, hi = (
                (start, end)
                if engine.dialect.name != "sqlite"
                else (start.replace(tzinfo=None), end.replace(tzinfo=None))
            )
            stmt = sa.select(table).where(col >= lo, col < hi).order_by(table.c[ID])
            with engine.connect() as conn:
                for chunk in pd.read_sql(stmt, conn, chunksize=chunk_rows):
                    yield self._stamped(chunk)
        except sa.exc.OperationalError as exc:
            raise DecisionLogError(f"cannot read {self.describe()}: {_one_line(exc.orig)}") from exc
        finally:
            engine.dispose()


def read_model_night(source: DecisionSource, night: date, model: str | None) -> pd.DataFrame:
    """The night's rows, only ``model``'s when one is named."""
    frame = read_night(source, night)
    if model is not None and len(frame) and MODEL_NAME in frame.columns:
        frame = frame.loc[frame[MODEL_NAME].astype(str) == model].reset_index(drop=True)
    return frame


def source_for(log: str, db_url: str) -> ParquetDecisionLog | SqlDecisionLog:
    """``table:<name>`` reads a SQL table from $GOVERNANCE_LOG_URL (default: the store); anything
    else is a folder of date-partitioned Parquet."""
    if log.startswith("table:"):
        return SqlDecisionLog(os.environ.get("GOVERNANCE_LOG_URL", db_url), log.split(":", 1)[1])
    return ParquetDecisionLog(log)


def _one_line(exc: BaseException | None) -> str:
    """An error's text on one line, for messages an operator reads in a log."""
    return " ".join(str(exc).split()) or type(exc).__name__


def make_decisions(
    population: pd.DataFrame,
    scores: Sequence[float],
    threshold: float,
    *,
    model_name: str,
    model_version: str,
    decided_at: Sequence[datetime] | pd.Series,
    features: Sequence[str],
    id_prefix: str = "D",
    start_id: int = 0,
) -> pd.DataFrame:
    """Build decision-log rows from scored applicants (used by the demo and tests)."""
    n = len(population)
    out = pd.DataFrame(
        {
            ID: [f"{id_prefix}{start_id + i:09d}" for i in range(n)],
            SUBJECT: population[SUBJECT].to_numpy(),
            DECIDED_AT: pd.to_datetime(pd.Series(decided_at), utc=True).to_numpy(),
            MODEL_NAME: model_name,
            MODEL_VERSION: model_version,
        }
    )
    out[DECIDED_AT] = pd.to_datetime(out[DECIDED_AT], utc=True)
    for name in features:
        out[name] = population[name].to_numpy()
    out[SCORE] = list(scores)
    out[DECISION] = [APPROVED if s >= threshold else DENIED for s in scores]
    return out
