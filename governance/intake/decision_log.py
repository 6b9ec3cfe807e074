"""Decision logs: who was scored, on what features, with which model version, and the outcome.

Two kinds of source share one interface. Files of one declared format (Parquet or CSV), either
a folder partitioned by decision date::

    <root>/decision_date=2026-11-24/part-0.parquet

or a single file holding many nights; and any SQL table reachable through a SQLAlchemy URL. Both
read one night at a time, in chunks, map the log's own column names to ours, and return plain
frames; checking them is the validation step's job. The contract (columns, types, time zones,
ids) is written out in the README's "Decision-log contract".
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np
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
# Optional: when the application was complete (an adverse-action notice is due 30 days later).
COMPLETED_AT = "application_completed_at"
APPROVED, DENIED = "approved", "denied"
PARTITION = "decision_date"
# Logged score against the registered model's score of the same row: a larger gap means the
# registered model does not reproduce the decision (the log names the wrong model or version).
SCORE_TOLERANCE = 1e-6


def score_reproduced(logged: np.ndarray, recomputed: np.ndarray) -> np.ndarray:
    """Per row: does the registered model reproduce the logged score (within the tolerance)?"""
    logged = np.asarray(logged, dtype=float)
    recomputed = np.asarray(recomputed, dtype=float)
    return np.abs(recomputed - logged) <= SCORE_TOLERANCE
# The end of a text timestamp that names its zone: 'Z', an offset, or ' UTC'.
ZONE_PATTERN = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?|\s*UTC)$"


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


FORMATS = ("parquet", "csv")
_SUFFIXES = {"parquet": (".parquet", ".pq"), "csv": (".csv", ".csv.gz")}


def format_of(path: str | Path) -> str | None:
    """The log format a file name says (``parquet`` or ``csv``), or None."""
    name = Path(path).name.lower()
    for fmt, suffixes in _SUFFIXES.items():
        if name.endswith(suffixes):
            return fmt
    return None


def parse_columns(text: str | Mapping[str, str] | None) -> dict[str, str]:
    """Read a column mapping ``ours=theirs,...`` (say ``decision_id=app_id``) into a dict.

    Raises
    ------
    DecisionLogError
        If an entry is not ``name=name`` or a name is mapped twice.
    """
    if not text:
        return {}
    pairs = text.items() if isinstance(text, Mapping) else (
        item.split("=", 1) if "=" in item else (item, "")
        for item in (p.strip() for p in str(text).split(",")) if item
    )
    out: dict[str, str] = {}
    for ours, theirs in pairs:
        ours, theirs = str(ours).strip(), str(theirs).strip()
        if not ours or not theirs:
            raise DecisionLogError(
                f"column mapping entry {ours + '=' + theirs!r} is malformed; expected "
                "ours=theirs, e.g. decision_id=app_id"
            )
        if ours in out:
            raise DecisionLogError(f"column mapping names {ours!r} twice")
        out[ours] = theirs
    dup = sorted({t for t in out.values() if list(out.values()).count(t) > 1})
    if dup:
        raise DecisionLogError(f"column mapping uses log column(s) {', '.join(dup)} twice")
    return out


def _renamed(frame: pd.DataFrame, columns: Mapping[str, str], where: str) -> pd.DataFrame:
    """The log's own column names replaced by ours, per ``columns`` (ours -> theirs)."""
    if not columns:
        return frame
    missing = [f"{theirs} (for {ours})" for ours, theirs in columns.items()
               if theirs not in frame.columns]
    if missing:
        raise DecisionLogError(
            f"{where} has no column {', '.join(missing)} named by the column mapping"
        )
    return frame.rename(columns={theirs: ours for ours, theirs in columns.items()})


@dataclass(frozen=True)
class FileDecisionLog:
    """Decision log in files of one declared format: a folder partitioned by decision date,
    or one file holding any number of nights.

    A folder holds one ``decision_date=YYYY-MM-DD`` partition per UTC decision date; every
    file in a partition must have the log's format (names starting with '.' or '_' are
    ignored, as writers use them for temporary and marker files). A single file is read whole
    and its rows are placed in nights by ``decided_at``, which must then carry a time zone on
    every row.

    Parameters
    ----------
    root : str or Path
        The folder or the file.
    format : {"parquet", "csv"}, default="parquet"
        The one format of the log's files. CSV values are read as text (empty = missing) and
        typed by validation against the model's schema.
    columns : mapping of str to str, optional
        Our column name -> the log's, for logs that name columns their own way.
    """

    root: Path
    format: str = "parquet"
    columns: Mapping[str, str] = field(default_factory=dict)

    def __init__(
        self, root: str | Path, format: str = "parquet", columns: Mapping[str, str] | None = None
    ) -> None:
        if format not in FORMATS:
            raise DecisionLogError(
                f"decision log format {format!r} is not supported; expected one of "
                f"{', '.join(FORMATS)}"
            )
        object.__setattr__(self, "root", Path(root))
        object.__setattr__(self, "format", format)
        object.__setattr__(self, "columns", dict(parse_columns(columns)))

    def describe(self) -> str:
        return f"{self.format}:{self.root}"

    @property
    def single_file(self) -> bool:
        return self.root.is_file()

    def partition(self, night: date) -> Path:
        return self.root / f"{PARTITION}={night.isoformat()}"

    def nights(self) -> list[date]:
        """Decision dates that have a partition (or rows, in a single file), oldest first."""
        if self.single_file:
            stamps = self._stamps(self._read_whole(), self.root)
            return sorted(set(stamps.dt.date))
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
        """The night's files, after checking each has the log's format.

        Raises
        ------
        DecisionLogError
            If the partition is missing, or holds a file of another format or a folder.
        """
        if self.single_file:
            return [self.root]
        folder = self.partition(night)
        if not folder.is_dir():
            raise DecisionLogError(f"no decision log for {night} at {folder}")
        out = []
        for path in sorted(folder.iterdir()):
            if path.name.startswith((".", "_")):
                continue
            if not path.is_file() or format_of(path) != self.format:
                raise DecisionLogError(
                    f"decision log file {path} is not {self.format} (the log at {self.root} "
                    f"is declared {self.format}); move it out or declare the log's format"
                )
            out.append(path)
        return out

    def _chunks(self, path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
        try:
            if self.format == "parquet":
                pf = pq.ParquetFile(path)
                for batch in pf.iter_batches(batch_size=chunk_rows):
                    yield batch.to_pandas()
            else:
                with pd.read_csv(
                    path, dtype=str, keep_default_na=False, na_values=[""], chunksize=chunk_rows
                ) as reader:
                    yield from reader
        # A damaged footer or pandas metadata surfaces as any of these, not only Arrow's own.
        except (pa.ArrowException, OSError, ValueError, KeyError, TypeError, IndexError,
                pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DecisionLogError(
                f"decision log file {path} is unreadable as {self.format}: {_one_line(exc)}"
            ) from exc

    def _read_whole(self) -> pd.DataFrame:
        chunks = [_renamed(c, self.columns, f"decision log file {self.root}")
                  for c in self._chunks(self.root, 1_000_000)]
        return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()

    @staticmethod
    def _stamps(frame: pd.DataFrame, path: Path) -> pd.Series:
        """UTC decision times of a single-file log; every row must be placeable in a night."""
        if DECIDED_AT not in frame.columns:
            raise DecisionLogError(f"decision log file {path} has no {DECIDED_AT!r} column")
        raw = frame[DECIDED_AT]
        if pd.api.types.is_datetime64_any_dtype(raw):
            if raw.dt.tz is None:
                raise DecisionLogError(
                    f"decision log file {path}: '{DECIDED_AT}' has no time zone; expected UTC "
                    "timestamps"
                )
            return raw.dt.tz_convert("UTC")
        text = raw.astype("string").str.strip()
        zoned = text.str.contains(ZONE_PATTERN, regex=True).fillna(False)
        parsed = pd.to_datetime(text.where(zoned), utc=True, errors="coerce", format="mixed")
        bad = parsed.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DecisionLogError(
                f"decision log file {path}: row {i} has {DECIDED_AT} {raw.iloc[i]!r}, which "
                "cannot be placed in a night; expected ISO 8601 with an offset or 'Z'"
            )
        return parsed

    def iter_night(self, night: date, chunk_rows: int = 50_000) -> Iterator[pd.DataFrame]:
        """Yield the night's rows as frames of at most ``chunk_rows`` rows.

        Raises
        ------
        DecisionLogError
            If the partition is missing, a file has another format or is unreadable, or a
            mapped column is absent.
        """
        if self.single_file:
            whole = self._read_whole()
            if whole.empty:
                return
            stamps = self._stamps(whole, self.root)
            start, end = night_bounds(night)
            rows = whole.loc[((stamps >= start) & (stamps < end)).to_numpy()]
            for i in range(0, len(rows), chunk_rows):
                yield rows.iloc[i : i + chunk_rows].reset_index(drop=True)
            return
        for path in self.files(night):
            for chunk in self._chunks(path, chunk_rows):
                yield _renamed(chunk, self.columns, f"decision log file {path}")

    def write_night(self, night: date, frame: pd.DataFrame, part: str = "part-0") -> Path:
        """Replace the night's partition with ``frame`` atomically and return the file written."""
        folder = self.partition(night)
        folder.mkdir(parents=True, exist_ok=True)
        suffix = _SUFFIXES[self.format][0]
        final = folder / f"{part}{suffix}"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
        os.close(fd)
        try:
            out = frame.reset_index(drop=True)
            if self.format == "parquet":
                out.to_parquet(tmp, index=False)
            else:
                out.to_csv(tmp, index=False)
            for old in folder.iterdir():
                if old != final and old.is_file() and format_of(old) == self.format:
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


class ParquetDecisionLog(FileDecisionLog):
    """Decision log stored as Parquet files partitioned by decision date::

        <root>/decision_date=2026-11-24/part-0.parquet
    """

    def __init__(self, root: str | Path, columns: Mapping[str, str] | None = None) -> None:
        super().__init__(root, "parquet", columns)


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
    columns : mapping of str to str, optional
        Our column name -> the table's.
    """

    url: str
    table: str
    timezone: str = "UTC"
    columns: Mapping[str, str] = field(default_factory=dict)

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
            stamp_col = self.columns.get(DECIDED_AT, DECIDED_AT)
            id_col = self.columns.get(ID, ID)
            for needed in (stamp_col, id_col):
                if needed not in table.c:
                    raise DecisionLogError(
                        f"decision log table {self.table!r} has no column {needed!r}"
                    )
            col = table.c[stamp_col]
            # SQLite stores naive text timestamps; compare in UTC without the offset there.
            lo, hi = (
                (start, end)
                if engine.dialect.name != "sqlite"
                else (start.replace(tzinfo=None), end.replace(tzinfo=None))
            )
            stmt = sa.select(table).where(col >= lo, col < hi).order_by(table.c[id_col])
            with engine.connect() as conn:
                for chunk in pd.read_sql(stmt, conn, chunksize=chunk_rows):
                    yield self._stamped(_renamed(chunk, self.columns, self.describe()))
        except sa.exc.OperationalError as exc:
            raise DecisionLogError(f"cannot read {self.describe()}: {_one_line(exc.orig)}") from exc
        finally:
            engine.dispose()


def open_source(
    spec: str, sql_url: str | None = None, columns: Mapping[str, str] | str | None = None
) -> FileDecisionLog | SqlDecisionLog:
    """The decision-log source ``spec`` names.

    ``table:<name>`` is a SQL table at ``sql_url``; ``parquet:<path>`` and ``csv:<path>``
    declare the format of a file or a date-partitioned folder; a bare path is a Parquet
    folder, or a file whose name ends in .parquet or .csv. ``columns`` maps our column names
    to the log's (``decision_id=app_id,...``).

    Raises
    ------
    DecisionLogError
        If the format cannot be told, a SQL table has no URL, or the mapping is malformed.
    """
    mapping = parse_columns(columns)
    kind, sep, rest = spec.partition(":")
    if sep and kind == "table":
        if not sql_url:
            raise DecisionLogError(f"decision log {spec!r} is a SQL table but no URL was given")
        return SqlDecisionLog(sql_url, rest, columns=mapping)
    if sep and kind in FORMATS:
        return FileDecisionLog(rest, kind, mapping)
    path = Path(spec)
    if path.is_file():
        fmt = format_of(path)
        if fmt is None:
            raise DecisionLogError(
                f"cannot tell the format of decision log file {path}; name it .parquet or "
                f".csv, or write parquet:{path} or csv:{path}"
            )
        return FileDecisionLog(path, fmt, mapping)
    return FileDecisionLog(path, "parquet", mapping)


def read_model_night(source: DecisionSource, night: date, model: str | None) -> pd.DataFrame:
    """The night's rows, only ``model``'s when one is named."""
    frame = read_night(source, night)
    if model is not None and len(frame) and MODEL_NAME in frame.columns:
        frame = frame.loc[frame[MODEL_NAME].astype(str) == model].reset_index(drop=True)
    return frame


def source_for(
    log: str, db_url: str, columns: Mapping[str, str] | str | None = None
) -> FileDecisionLog | SqlDecisionLog:
    """The decision-log source a ``--log`` value names (:func:`open_source`); a SQL table is
    read from $GOVERNANCE_LOG_URL, default the store."""
    return open_source(log, os.environ.get("GOVERNANCE_LOG_URL", db_url), columns)


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
