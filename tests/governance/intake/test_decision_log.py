"""Decision logs: date-partitioned Parquet and SQL tables, read one night in chunks."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from governance.exceptions import DecisionLogError
from governance.intake.decision_log import ParquetDecisionLog, SqlDecisionLog, read_night


def _log(n: int, day: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "decision_id": [f"{day}-{i}" for i in range(n)],
            "subject_id": [f"S{i}" for i in range(n)],
            "decided_at": pd.Timestamp(f"{day} 08:00", tz="UTC") + pd.to_timedelta(range(n), "min"),
            "model_name": "m", "model_version": "v1", "x": range(n), "score": 0.5,
            "decision": "approved",
        }
    )


def test_parquet_log_partitions_by_utc_date_and_reads_in_chunks(tmp_path):
    log = ParquetDecisionLog(tmp_path)
    log.write(pd.concat([_log(7, "2026-11-01"), _log(3, "2026-11-02")]))
    assert log.nights() == [date(2026, 11, 1), date(2026, 11, 2)]
    chunks = list(log.iter_night(date(2026, 11, 1), chunk_rows=3))
    assert [len(c) for c in chunks] == [3, 3, 1]
    night = read_night(log, date(2026, 11, 1), chunk_rows=3)
    assert night["decision_id"].tolist() == [f"2026-11-01-{i}" for i in range(7)]
    assert str(night["decided_at"].dt.tz) == "UTC"


def test_rewriting_a_night_replaces_it_atomically(tmp_path):
    log = ParquetDecisionLog(tmp_path)
    log.write_night(date(2026, 11, 1), _log(5, "2026-11-01"))
    log.write_night(date(2026, 11, 1), _log(2, "2026-11-01"))
    assert len(read_night(log, date(2026, 11, 1))) == 2
    assert len(log.files(date(2026, 11, 1))) == 1
    assert not list(log.partition(date(2026, 11, 1)).glob(".tmp-*"))


def test_missing_night_and_corrupt_file_are_clear_errors(tmp_path):
    log = ParquetDecisionLog(tmp_path)
    with pytest.raises(DecisionLogError, match="no decision log for 2026-11-05"):
        read_night(log, date(2026, 11, 5))
    folder = log.partition(date(2026, 11, 6))
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(DecisionLogError, match="part-0.parquet is unreadable"):
        read_night(log, date(2026, 11, 6))


def test_sql_log_reads_one_night_with_bound_parameters(tmp_path):
    url = f"sqlite:///{tmp_path / 'src.db'}"
    frame = pd.concat([_log(4, "2026-11-01"), _log(6, "2026-11-02")])
    engine = sa.create_engine(url)
    frame.to_sql("decision_log", engine, index=False)
    engine.dispose()
    src = SqlDecisionLog(url, "decision_log")
    got = read_night(src, date(2026, 11, 2), chunk_rows=4)
    assert got["decision_id"].tolist() == [f"2026-11-02-{i}" for i in range(6)]
    with pytest.raises(DecisionLogError, match="'nope' not found"):
        read_night(SqlDecisionLog(url, "nope"), date(2026, 11, 2))


def test_sql_log_description_hides_the_password():
    src = SqlDecisionLog("postgresql+psycopg://u:s3cret@db:5432/x", "log")
    assert "s3cret" not in src.describe() and "***" in src.describe()


def test_sql_log_reads_naive_timestamps_in_its_zone_and_converts_to_utc(tmp_path):
    url = f"sqlite:///{tmp_path / 'src.db'}"
    frame = _log(3, "2026-11-01")
    frame["decided_at"] = frame["decided_at"].dt.tz_localize(None) + pd.Timedelta(hours=1)
    engine = sa.create_engine(url)
    frame.to_sql("decision_log", engine, index=False)
    engine.dispose()
    got = read_night(SqlDecisionLog(url, "decision_log"), date(2026, 11, 1))
    assert str(got["decided_at"].dt.tz) == "UTC"
    assert got["decided_at"].iloc[0] == pd.Timestamp("2026-11-01 09:00", tz="UTC")
    berlin = read_night(SqlDecisionLog(url, "decision_log", timezone="Europe/Berlin"),
                        date(2026, 11, 1))
    assert berlin["decided_at"].iloc[0] == pd.Timestamp("2026-11-01 08:00", tz="UTC")
