"""Bad input through the real nightly flow and the `govern` command: damaged rows are
quarantined exactly while every valid row (hostile ids included) is stored verbatim; a log that
cannot be read at all is refused with one line and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.exceptions import DecisionLogError
from governance.intake.decision_log import ParquetDecisionLog, read_night
from tests.reliability.conftest import CHUNK_ROWS, NIGHT, copy_home, run_govern
from tests.reliability.ledger import column, scalar

HOSTILE = [
    "x' OR '1'='1",
    "'; DROP TABLE decisions; --",
    'Robert"); DELETE FROM runs;--',
    "Ünïcødé-ß-漢字-🙂",
    "[/] [bold]markup[/]",
    "%s %(x)s ? :id",
    "a" * 64,
]

# position -> (column, value, check the row must fail)
DAMAGE = {
    0: ("annual_income", np.nan, "expect_column_values_to_not_be_null"),
    1: ("revolving_utilization", np.inf, "expect_column_values_to_be_between"),
    2: ("debt_to_income", -1.0, "expect_column_values_to_be_between"),
    3: ("home_ownership", "CASTLE", "expect_column_values_to_be_in_set"),
    4: ("decision_id", "copy of 5", "expect_column_values_to_be_unique"),
    6: ("model_version", "v42", "model_version_is_registered"),
    7: ("model_name", "m" * 80, "model_version_is_registered"),
    8: ("decision_id", "D" * 65, "expect_column_value_lengths_to_be_between"),
    9: ("subject_id", "S" * 70, "expect_column_value_lengths_to_be_between"),
    10: ("decided_at", "next day", "decided_at_within_night"),
    11: ("score", 1.5, "expect_column_values_to_be_between"),
    12: ("decision", "flip", "decision_matches_score_and_threshold"),
    13: ("subject_id", "S\x00NUL", "expect_column_values_to_not_match_regex"),
    14: ("model_name", "m\x00del", "model_version_is_registered"),
    15: ("decision_id", "D\x00NUL", "expect_column_values_to_not_match_regex"),
}


def damaged_night(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, set[str]]]:
    """The night with one kind of damage per row 0-15 (5 is 4's duplicate), hostile but valid
    ids on rows 20-26, and decided_at in New York time (harmless)."""
    log = frame.copy()
    for col in ("decision_id", "subject_id", "model_name", "model_version", "home_ownership"):
        log[col] = log[col].astype(object)
    for i, text in enumerate(HOSTILE):
        log.at[20 + i, "decision_id"] = text
        log.at[20 + i, "subject_id"] = text
    expected: dict[int, set[str]] = {5: {"expect_column_values_to_be_unique"}}
    for row, (col, value, check) in DAMAGE.items():
        if value == "copy of 5":
            value = log.at[5, "decision_id"]
        elif value == "next day":
            value = log.at[row, "decided_at"] + pd.Timedelta(days=1)
        elif value == "flip":
            value = "approved" if log.at[row, "decision"] == "denied" else "denied"
        log.at[row, col] = value
        expected[row] = {check}
    log["decided_at"] = pd.to_datetime(log["decided_at"], utc=True).dt.tz_convert(
        "America/New_York"
    )
    return log, expected


def test_a_damaged_night_quarantines_exactly_the_damaged_rows(
    nightly, small_home, db_url, tmp_path
):
    home = copy_home(small_home, tmp_path / "home")
    log = ParquetDecisionLog(home / "decision-logs")
    frame, expected = damaged_night(pd.read_parquet(log.files(NIGHT)[0]))
    # two files in the partition: rows are numbered in file order
    log.write_night(NIGHT, frame.iloc[:150])
    frame.iloc[150:].to_parquet(log.partition(NIGHT) / "part-1.parquet", index=False)

    summary = nightly(NIGHT, home, db_url)

    counts = summary["counts"]
    assert counts["pulled"] == len(frame)
    assert counts["quarantined"] == len(expected)
    good = [r for r in range(len(frame)) if r not in expected]
    stored = column(db_url, "SELECT decision_id FROM decisions")
    assert sorted(stored) == sorted(frame.loc[good, "decision_id"])  # verbatim, hostile too
    assert set(HOSTILE) <= set(stored)
    sql = "SELECT subject_id FROM decisions WHERE decision_id = :d"
    assert column(db_url, sql, d=HOSTILE[1]) == [HOSTILE[1]]
    q = pd.DataFrame(
        {
            "row": column(db_url, "SELECT row_number FROM quarantine ORDER BY id"),
            "check": column(db_url, 'SELECT "check" FROM quarantine ORDER BY id'),
            "decision_id": column(db_url, "SELECT decision_id FROM quarantine ORDER BY id"),
        }
    )
    assert set(q["row"]) == set(expected)
    for row, checks in expected.items():
        assert checks <= set(q.loc[q["row"] == row, "check"]), row
    # identifiers too long for the ledger are kept, cut and marked, with the full row as JSON
    long_id = q.loc[q["row"] == 8, "decision_id"].iloc[0]
    assert len(long_id) == 64 and long_id.endswith("…")
    assert scalar(db_url, "SELECT COUNT(*) FROM attributions") == 20 * len(good)
    assert scalar(db_url, "SELECT status FROM runs") == "succeeded"
    assert scalar(db_url, "SELECT COUNT(*) FROM run_chunks") == -(-len(good) // CHUNK_ROWS)


# -- files that cannot be read --------------------------------------------------------------------
def _valid_bytes(small_home) -> bytes:
    return ParquetDecisionLog(small_home / "decision-logs").files(NIGHT)[0].read_bytes()


def _one_line_refusal(log: ParquetDecisionLog, match: str) -> None:
    with pytest.raises(DecisionLogError, match=match) as info:
        read_night(log, NIGHT)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "damage",
    ["empty file", "truncated", "no footer", "garbage", "text", "good file then corrupt"],
)
def test_unreadable_parquet_is_refused_in_one_line(small_home, tmp_path, damage):
    blob = _valid_bytes(small_home)
    log = ParquetDecisionLog(tmp_path)
    folder = log.partition(NIGHT)
    folder.mkdir(parents=True)
    bad = {
        "empty file": b"",
        "truncated": blob[: len(blob) // 2],
        "no footer": blob[:-8],
        "garbage": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
        "text": b"decision_id,score\nD1,0.5\n",
        "good file then corrupt": blob[: len(blob) // 3],
    }[damage]
    if damage == "good file then corrupt":
        (folder / "part-0.parquet").write_bytes(blob)
        (folder / "part-1.parquet").write_bytes(bad)
        _one_line_refusal(log, "part-1.parquet is unreadable")
    else:
        (folder / "part-0.parquet").write_bytes(bad)
        _one_line_refusal(log, "part-0.parquet is unreadable")


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    flips=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=8
    )
)
def test_flipped_bytes_give_rows_or_a_one_line_refusal(small_home, tmp_path_factory, flips):
    blob = bytearray(_valid_bytes(small_home))
    for where, mask in flips:
        blob[int(where * len(blob))] ^= mask
    log = ParquetDecisionLog(tmp_path_factory.mktemp("flip"))
    log.partition(NIGHT).mkdir(parents=True)
    (log.partition(NIGHT) / "part-0.parquet").write_bytes(bytes(blob))
    try:
        frame = read_night(log, NIGHT)
    except DecisionLogError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(frame, pd.DataFrame)


def test_an_empty_partition_and_a_file_without_rows_are_an_empty_night(small_home, tmp_path):
    log = ParquetDecisionLog(tmp_path)
    log.partition(NIGHT).mkdir(parents=True)
    assert read_night(log, NIGHT).empty
    empty = pd.read_parquet(ParquetDecisionLog(small_home / "decision-logs").files(NIGHT)[0])
    log.write_night(NIGHT, empty.iloc[:0])
    assert read_night(log, NIGHT).empty
    assert len(pq.ParquetFile(log.files(NIGHT)[0]).schema_arrow) == len(empty.columns)


# -- the command line --------------------------------------------------------------------------
GOVERN = str(Path(sys.executable).with_name("govern"))


def govern_process(args: list[str], api_url: str) -> subprocess.CompletedProcess:
    """`govern` as a user runs it: its own process and local Dask cluster (one worker), on the
    test Prefect server to save starting another."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_LOGGING_HANDLERS")}
    env["PREFECT_API_URL"] = api_url
    return subprocess.run([GOVERN, *args], capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture
def cli_env(monkeypatch, prefect_backend, rel_cluster):
    """`govern` in this process on the reliability cluster and test Prefect server; the
    variables it sets for its flows are undone afterwards."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_backend)
    for var in ("GOVERNANCE_HOME", "GOVERNANCE_DB_URL", "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"):
        monkeypatch.setenv(var, "unset")
        monkeypatch.delenv(var)
    return ["--dask-address", rel_cluster.scheduler_address]


def test_a_corrupt_log_is_one_line_and_exit_2_from_the_cli(
    small_home, db_url, tmp_path, prefect_backend
):
    home = copy_home(small_home, tmp_path / "home")
    path = ParquetDecisionLog(home / "decision-logs").files(NIGHT)[0]
    path.write_bytes(path.read_bytes()[:1000])
    result = govern_process(
        [
            "nightly",
            "--date",
            NIGHT.isoformat(),
            "--home",
            str(home),
            "--db",
            db_url,
            "--workers",
            "1",
        ],
        prefect_backend,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # nothing from Prefect or the Dask worker either
    assert "part-0.parquet is unreadable" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    # refused before the run opened: no run, no decision recorded
    assert scalar(db_url, "SELECT COUNT(*) FROM runs") == 0
    assert scalar(db_url, "SELECT COUNT(*) FROM decisions") == 0


def test_a_log_that_fails_while_running_is_recorded_as_a_failed_run(
    nightly, small_home, db_url, tmp_path
):
    """The flow itself (as a deployment runs it, without the command's checks first) records
    the failure in the ledger."""
    home = copy_home(small_home, tmp_path / "home")
    path = ParquetDecisionLog(home / "decision-logs").files(NIGHT)[0]
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DecisionLogError, match="part-0.parquet is unreadable"):
        nightly(NIGHT, home, db_url)
    assert scalar(db_url, "SELECT status FROM runs") == "failed"
    assert "DecisionLogError" in scalar(db_url, "SELECT error FROM runs")
    assert scalar(db_url, "SELECT COUNT(*) FROM decisions") == 0


def test_naive_timestamps_are_refused_from_the_cli(small_home, tmp_path, capfd, cli_env):
    home = copy_home(small_home, tmp_path / "home")
    log = ParquetDecisionLog(home / "decision-logs")
    frame = pd.read_parquet(log.files(NIGHT)[0])
    log.write_night(NIGHT, frame.assign(decided_at=frame["decided_at"].dt.tz_localize(None)))
    code, out, err = run_govern(
        ["nightly", "--date", NIGHT.isoformat(), "--home", str(home), *cli_env], capfd
    )
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "has no time zone" in lines[0], err
    assert "Traceback" not in out + err
