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


def _csv_rows(n: int, day: str) -> pd.DataFrame:
    log = _log(n, day)
    log["decided_at"] = log["decided_at"].map(lambda t: t.isoformat())
    return log


def test_csv_folder_log_reads_text_and_leaves_typing_to_validation(tmp_path):
    from governance.intake.decision_log import FileDecisionLog

    log = FileDecisionLog(tmp_path, "csv")
    log.write(pd.concat([_log(4, "2026-11-01"), _log(2, "2026-11-02")]))
    assert log.nights() == [date(2026, 11, 1), date(2026, 11, 2)]
    assert [p.name for p in log.files(date(2026, 11, 1))] == ["part-0.csv"]
    night = read_night(log, date(2026, 11, 1), chunk_rows=3)
    assert len(night) == 4
    assert night["x"].tolist() == ["0", "1", "2", "3"]  # text, as written
    assert night["decided_at"].iloc[0] == "2026-11-01 08:00:00+00:00"


def test_a_single_file_log_is_split_into_nights_by_utc_time(tmp_path):
    from governance.intake.decision_log import FileDecisionLog

    path = tmp_path / "decisions.csv"
    pd.concat([_csv_rows(3, "2026-11-01"), _csv_rows(2, "2026-11-02")]).to_csv(path, index=False)
    log = FileDecisionLog(path, "csv")
    assert log.nights() == [date(2026, 11, 1), date(2026, 11, 2)]
    assert read_night(log, date(2026, 11, 2))["decision_id"].tolist() == [
        "2026-11-02-0", "2026-11-02-1"
    ]
    assert read_night(log, date(2026, 11, 3)).empty
    rows = _csv_rows(2, "2026-11-01")
    rows.loc[1, "decided_at"] = "2026-11-01 09:00"  # no zone: cannot be placed in a night
    rows.to_csv(path, index=False)
    with pytest.raises(DecisionLogError, match=r"decisions.csv: row 1 has decided_at"):
        read_night(FileDecisionLog(path, "csv"), date(2026, 11, 1))


def test_a_file_of_another_format_in_a_partition_is_an_error_naming_it(tmp_path):
    log = ParquetDecisionLog(tmp_path)
    log.write_night(date(2026, 11, 1), _log(3, "2026-11-01"))
    stray = log.partition(date(2026, 11, 1)) / "extra.csv"
    _log(2, "2026-11-01").to_csv(stray, index=False)
    with pytest.raises(DecisionLogError, match=r"extra.csv is not parquet .*declared parquet"):
        read_night(log, date(2026, 11, 1))
    # hidden and marker files are a writer's business, not rows
    stray.unlink()
    (log.partition(date(2026, 11, 1)) / "_SUCCESS").write_text("")
    (log.partition(date(2026, 11, 1)) / ".part-1.tmp").write_text("x")
    assert len(read_night(log, date(2026, 11, 1))) == 3


def test_an_unreadable_csv_is_an_error_naming_the_file(tmp_path):
    from governance.intake.decision_log import FileDecisionLog

    log = FileDecisionLog(tmp_path, "csv")
    folder = log.partition(date(2026, 11, 1))
    folder.mkdir(parents=True)
    (folder / "part-0.csv").write_bytes(b"")
    with pytest.raises(DecisionLogError, match=r"part-0.csv is unreadable as csv"):
        read_night(log, date(2026, 11, 1))
    (folder / "part-0.csv").write_bytes(b'a,b\n1,"2\n')
    with pytest.raises(DecisionLogError, match=r"part-0.csv is unreadable as csv"):
        read_night(log, date(2026, 11, 1))


def test_column_mapping_renames_the_logs_own_names(tmp_path):
    from governance.intake.decision_log import FileDecisionLog, parse_columns

    theirs = _log(3, "2026-11-01").rename(columns={"decision_id": "app_id", "subject_id": "cust"})
    log = FileDecisionLog(tmp_path, "parquet", "decision_id=app_id, subject_id=cust")
    log.write_night(date(2026, 11, 1), theirs)
    night = read_night(log, date(2026, 11, 1))
    assert {"decision_id", "subject_id"} <= set(night.columns)
    assert "app_id" not in night.columns
    wrong = FileDecisionLog(tmp_path, "parquet", {"decision_id": "application"})
    with pytest.raises(DecisionLogError, match=r"no column application \(for decision_id\)"):
        read_night(wrong, date(2026, 11, 1))
    with pytest.raises(DecisionLogError, match="malformed"):
        parse_columns("decision_id")
    with pytest.raises(DecisionLogError, match="names 'a' twice"):
        parse_columns("a=b,a=c")


def test_sql_log_maps_column_names(tmp_path):
    url = f"sqlite:///{tmp_path / 'src.db'}"
    frame = _log(4, "2026-11-01").rename(columns={"decision_id": "app_id", "decided_at": "ts"})
    engine = sa.create_engine(url)
    frame.assign(ts=frame["ts"].dt.tz_localize(None)).to_sql("log", engine, index=False)
    engine.dispose()
    src = SqlDecisionLog(url, "log", columns={"decision_id": "app_id", "decided_at": "ts"})
    got = read_night(src, date(2026, 11, 1))
    assert got["decision_id"].tolist() == [f"2026-11-01-{i}" for i in range(4)]
    assert str(got["decided_at"].dt.tz) == "UTC"


def test_a_log_spec_declares_its_format(tmp_path):
    from governance.intake.decision_log import FileDecisionLog, open_source

    (tmp_path / "d.csv").write_text("a\n1\n")
    (tmp_path / "d.txt").write_text("a\n1\n")
    assert open_source(str(tmp_path / "d.csv")).format == "csv"
    assert open_source(f"parquet:{tmp_path}").describe() == f"parquet:{tmp_path}"
    assert open_source(f"csv:{tmp_path}").format == "csv"
    assert isinstance(open_source(str(tmp_path / "logs")), FileDecisionLog)
    assert open_source("table:log", "sqlite://").table == "log"
    with pytest.raises(DecisionLogError, match="cannot tell the format"):
        open_source(str(tmp_path / "d.txt"))
    with pytest.raises(DecisionLogError, match="not supported"):
        FileDecisionLog(tmp_path, "json")


def test_check_log_reports_each_night_without_a_ledger(tmp_path):
    from governance.intake.decision_log import FileDecisionLog
    from governance.intake.log_check import check_log
    from tests.helpers import CONTRACTS

    rows = pd.DataFrame(
        {
            "decision_id": ["A", "B", "C", "D"],
            "subject_id": ["S1", "S2", "S3", "S4"],
            "decided_at": ["2026-11-24T09:00:00Z", "2026-11-24T10:00:00+01:00",
                           "2026-11-25T09:00:00Z", "2026-11-24T11:00:00Z"],
            "model_name": "credit", "model_version": ["v1", "v1", "v1", "v2"],
            "income": ["5000", "x", "7000", "y"], "accounts": ["1", "2", "3", "4"],
            "home": ["RENT", "OWN", "OWN", "OWN"], "cosigner": ["0", "1", "1", "1"],
            "score": ["0.8", "0.9", "0.2", "0.9"],
            "decision": ["approved", "approved", "denied", "approved"],
        }
    )
    path = tmp_path / "log.csv"
    rows.to_csv(path, index=False)
    (key, contract), = CONTRACTS.items()
    results = check_log(FileDecisionLog(path, "csv"), key, contract)
    assert [r.to_dict()["night"] for r in results] == ["2026-11-24", "2026-11-25"]
    first, second = results
    assert (first.rows, first.valid, first.quarantined, first.status) == (2, 1, 1, "failed")
    assert first.other_models == 1  # v2's row is another version's business
    assert {"check": "expect_column_values_to_be_of_type", "column": "income",
            "failed_rows": 1} in first.checks
    assert (second.rows, second.quarantined, second.status) == (1, 0, "ok")
    empty = check_log(FileDecisionLog(path, "csv"), key, contract, [date(2026, 11, 26)])
    assert empty[0].status == "empty"
