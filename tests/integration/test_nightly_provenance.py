"""Every row traceable to the settings and code that produced it; a resumed night recomputes
what changed; decisions the registered model does not reproduce are an alarm; the flow module
runs as a script. Real Prefect, real Dask, SQLite."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from governance.intake.decision_log import DECISION, DENIED, SCORE, ParquetDecisionLog
from tests.conftest import DEMO_NIGHT

ROWS = 160
CHUNK = 40
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_home(demo_home, tmp_path_factory) -> Path:
    """The demo registry with DEMO_NIGHT cut to its first 160 log rows (damaged ones kept)."""
    home = tmp_path_factory.mktemp("provenance") / "home"
    shutil.copytree(demo_home, home)
    log = ParquetDecisionLog(home / "decision-logs")
    frame = pd.read_parquet(log.files(DEMO_NIGHT)[0]).iloc[:ROWS]
    log.write_night(DEMO_NIGHT, frame)
    return home


@pytest.fixture
def home(small_home, tmp_path) -> Path:
    return Path(shutil.copytree(small_home, tmp_path / "home"))


def _read(url: str, sql: str, **params) -> pd.DataFrame:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text(sql), conn, params=params)
    engine.dispose()
    return frame


def _chunk_settings(url: str) -> pd.DataFrame:
    """Per committed chunk: its settings, as recorded."""
    frame = _read(
        url,
        "SELECT c.chunk_no, p.settings, p.code_version FROM run_chunks c "
        "JOIN result_provenance p ON p.id = c.provenance_id ORDER BY c.chunk_no",
    )
    frame["settings"] = frame["settings"].map(_json)
    return frame


def _json(value):  # noqa: ANN001, ANN202 - a JSON column as SQLite or PostgreSQL returns it
    return value if value is None or isinstance(value, dict | list) else json.loads(value)


def _row_settings(url: str, table: str) -> pd.Series:
    frame = _read(
        url,
        f"SELECT t.provenance_id, p.settings FROM {table} t "
        "LEFT JOIN result_provenance p ON p.id = t.provenance_id",
    )
    return frame["settings"].map(_json)


# -- provenance on resume ----------------------------------------------------------------------
def test_a_resumed_night_recomputes_what_other_settings_produced(run_nightly, home, tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first = run_nightly(DEMO_NIGHT, home, url, chunk_rows=CHUNK, max_points=8)
    n = first["counts"]["chunks"]
    assert n >= 3 and first["counts"]["chunks_skipped"] == 0

    same = run_nightly(DEMO_NIGHT, home, url, chunk_rows=CHUNK, max_points=8)
    assert same["counts"]["chunks_skipped"] == n  # same rows, settings and code: skipped

    wider = run_nightly(DEMO_NIGHT, home, url, chunk_rows=CHUNK, max_points=16)
    assert wider["counts"]["chunks_skipped"] == 0  # another budget: every chunk recomputed
    chunks = _chunk_settings(url)
    assert len(chunks) == n
    assert {s["max_points"] for s in chunks["settings"]} == {16}
    assert {s["model"]["training_sha256"] for s in chunks["settings"]} != {None}
    assert (chunks["code_version"] != "").all()
    assert {s["max_points"] for s in _row_settings(url, "decisions")} == {16}
    issued = _row_settings(url, "issued_recourse")
    assert len(issued) > 0 and {s["max_points"] for s in issued} == {16}

    off = run_nightly(DEMO_NIGHT, home, url, chunk_rows=CHUNK, recourse=False)
    assert off["counts"]["chunks_skipped"] == 0
    # no row of the earlier settings is left attributed to these
    assert _read(url, "SELECT COUNT(*) AS n FROM responsiveness")["n"][0] == 0
    assert _read(url, "SELECT COUNT(*) AS n FROM recourse_checks")["n"][0] == 0
    assert _read(url, "SELECT COUNT(*) AS n FROM reasons WHERE mu IS NOT NULL")["n"][0] == 0
    assert {s["recourse"] for s in _row_settings(url, "decisions")} == {False}
    # what was promised stays, with the settings that produced it
    kept = _row_settings(url, "issued_recourse")
    assert len(kept) == len(issued) and {s["max_points"] for s in kept} == {16}
    runs = _read(url, "SELECT run_key, attempts, parameters FROM runs")
    assert list(runs["run_key"]) == [f"nightly:{DEMO_NIGHT}:*"] and runs["attempts"][0] == 4


def test_a_corrected_log_row_is_recomputed_under_its_old_id(run_nightly, home, tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first = run_nightly(DEMO_NIGHT, home, url, chunk_rows=CHUNK, recourse=False)
    log = ParquetDecisionLog(home / "decision-logs")
    frame = pd.read_parquet(log.files(DEMO_NIGHT)[0])
    stored = set(_read(url, "SELECT decision_id FROM decisions")["decision_id"])
    row = next(i for i, d in enumerate(frame["decision_id"]) if d in stored)
    target = frame.loc[row, "decision_id"]
    frame.loc[row, "loan_amount"] = frame.loc[row, "loan_amount"] + 1_000.0
    log.write_night(DEMO_NIGHT, frame)
    again = run_nightly(DEMO_NIGHT, home, url, chunk_rows=CHUNK, recourse=False)
    assert again["counts"]["chunks_skipped"] == first["counts"]["chunks"] - 1
    features = _read(url, "SELECT features FROM decisions WHERE decision_id = :d", d=target)
    assert _json(features["features"][0])["loan_amount"] == frame.loc[row, "loan_amount"]


def test_an_erasure_that_rewrites_training_data_recomputes_the_night(
    run_nightly, dask_cluster, home, tmp_path
):
    """The recourse cost and stability spreads are fitted on the training data; after an
    erasure rewrites it, the same night's recourse differs (a rerun after `govern forget` is
    not a rerun with the same inputs), so the night is recomputed and says which data it used.
    """
    from governance.deletion.purge import purge_training_files
    from governance.registry.model_registry import ModelRegistry

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    run_nightly(DEMO_NIGHT, home, url, chunk_rows=CHUNK, max_points=8)
    before = _read(url, "SELECT recourse_id, cost FROM issued_recourse").set_index("recourse_id")
    registry = ModelRegistry(home / "registry")
    night = set(_read(url, "SELECT subject_id FROM decisions")["subject_id"])
    train = registry.training_frame("credit-default", "v1")
    subject = next(s for s in sorted(train["subject_id"]) if s not in night)
    purge_training_files(
        registry, "credit-default", [subject], request_id="R-test", erased_at=datetime.now(UTC)
    )
    after_sha = registry.manifest("credit-default", "v1").training_data.sha256
    # The same long-lived workers: their caches are keyed on the training data's hash, so
    # nothing fitted on the erased rows is reused.
    again = run_nightly(DEMO_NIGHT, home, url, chunk_rows=CHUNK, max_points=8)
    assert again["counts"]["chunks_skipped"] == 0
    chunks = _chunk_settings(url)
    assert {s["model"]["training_sha256"] for s in chunks["settings"]} == {after_sha}
    after = _read(url, "SELECT recourse_id, cost FROM issued_recourse").set_index("recourse_id")
    common = before.index.intersection(after.index)
    assert len(common) and (before.loc[common, "cost"] != after.loc[common, "cost"]).any()


# -- decisions the registered model does not reproduce ------------------------------------------
def _mismatched_home(home: Path, k: int = 4) -> list[str]:
    """Lower the logged score of ``k`` clean denials (still denials: the log stays valid)."""
    log = ParquetDecisionLog(home / "decision-logs")
    frame = pd.read_parquet(log.files(DEMO_NIGHT)[0])
    clean = (
        frame["annual_income"].notna()
        & (frame["revolving_utilization"] <= 1.5)
        & (frame["home_ownership"] != "CASTLE")
        & ~frame["decision_id"].duplicated(keep=False)
        & (frame[DECISION] == DENIED)
    )
    rows = frame.index[clean][:k]
    frame.loc[rows, SCORE] = frame.loc[rows, SCORE] * 0.5
    log.write_night(DEMO_NIGHT, frame)
    return list(frame.loc[rows, "decision_id"])


def _govern(capfd, *args: str) -> tuple[int, str]:
    from govern_cli.main import main

    old = sys.argv
    sys.argv = ["govern", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    out, err = capfd.readouterr()
    return code, out + err


def test_unreproduced_decisions_are_flagged_apart_in_counts_history_and_recourse(
    run_nightly, home, tmp_path, capfd
):
    from rich.console import Console

    from govern_cli import render

    ids = _mismatched_home(home)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    summary = run_nightly(DEMO_NIGHT, home, url, chunk_rows=CHUNK, max_points=8)
    counts = summary["counts"]
    denied = _read(url, "SELECT COUNT(*) AS n FROM decisions WHERE decision = 'denied'")["n"][0]
    assert counts["score_mismatch"] == counts["score_mismatch_denied"] == len(ids)
    assert counts["denied"] == denied - len(ids) == counts["responsiveness_scored"]
    issued = set(_read(url, "SELECT decision_id FROM issued_recourse")["decision_id"])
    assert not issued & set(ids)
    checked = set(_read(url, "SELECT decision_id FROM recourse_checks")["decision_id"])
    assert set(ids) <= checked  # the registered model's verdict is kept, apart

    console = Console(record=True, width=80)
    render.nightly_summary(console, [summary])
    text = console.export_text()
    assert "not reproduced by model" in text and "does not reproduce" in text

    subject = _read(url, "SELECT subject_id FROM decisions WHERE decision_id = :d", d=ids[0])
    subject = subject["subject_id"][0]
    for command in ("history", "recourse"):
        code, out = _govern(capfd, command, "--subject", subject, "--db", url)
        assert code == 0, out
        assert "the registered model does not reproduce this decision" in " ".join(out.split())
    code, out = _govern(capfd, "recourse", "--subject", subject, "--db", url)
    assert "Recommended action" not in out


def test_unreproduced_decisions_can_be_quarantined_or_fail_the_run(run_nightly, home, tmp_path):
    from governance.exceptions import ScoreMismatch

    ids = _mismatched_home(home)
    url = f"sqlite:///{tmp_path / 'quarantine.db'}"
    summary = run_nightly(
        DEMO_NIGHT, home, url, chunk_rows=CHUNK, recourse=False, score_mismatch="quarantine"
    )
    assert summary["counts"]["score_mismatch_quarantined"] == len(ids)
    assert summary["counts"]["score_mismatch"] == 0
    q = _read(url, 'SELECT decision_id, "check" FROM quarantine')
    flagged = q.loc[q["check"] == "score_reproduced_by_registered_model", "decision_id"]
    assert sorted(flagged) == sorted(ids)
    assert not set(ids) & set(_read(url, "SELECT decision_id FROM decisions")["decision_id"])

    url = f"sqlite:///{tmp_path / 'fail.db'}"
    with pytest.raises(ScoreMismatch, match=f"{len(ids)} logged decision"):
        run_nightly(DEMO_NIGHT, home, url, chunk_rows=CHUNK, recourse=False, score_mismatch="fail")
    run = _read(url, "SELECT status, error FROM runs")
    assert run["status"][0] == "failed" and run["error"][0].startswith("ScoreMismatch")
    assert _read(url, "SELECT COUNT(*) AS n FROM decisions")["n"][0] == 0


# -- the flow module as a script ------------------------------------------------------------------
def test_the_flow_module_runs_as_a_script(home, tmp_path, prefect_server):
    """`python flows/nightly.py DATE` runs the night and closes it as succeeded."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = {
        **os.environ,
        "GOVERNANCE_HOME": str(home),
        "GOVERNANCE_DB_URL": url,
        "PREFECT_API_URL": prefect_server,
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "flows" / "nightly.py"), DEMO_NIGHT.isoformat()],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    runs = _read(url, "SELECT status, counts FROM runs")
    assert list(runs["status"]) == ["succeeded"]
    assert _json(runs["counts"][0])["decisions"] > 0
