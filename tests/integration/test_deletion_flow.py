"""Deletion requests end to end: retrain without the subject, check, purge, tombstone, scan."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from governance.deletion.requests import load_or_create_salt, subject_hash
from governance.deletion.scan import contains_needle, scan_for_subject, subject_needles
from governance.demo import record_first_deployment
from governance.registry.model_registry import ModelRegistry
from governance.store import deletions, deployments, init_store, session_factory
from governance.store.models import Base
from tests.conftest import DEMO_NIGHT, reset_pg


def _read(url: str, sql: str, **params) -> pd.DataFrame:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text(sql), conn, params=params)
    engine.dispose()
    return frame


def _request(url: str, home, subject: str, received: datetime | None = None) -> str:
    from governance.deletion.requests import due_date

    received = received or datetime.now(UTC)
    salt = load_or_create_salt(home / "secrets" / "tombstone.salt")
    with session_factory(init_store(url)).begin() as session:
        request_id, _ = deletions.record_deletion_request(
            session,
            subject,
            subject_hash(subject, salt),
            received_at=received,
            due_at=due_date(received),
            reason="test",
        )
    return request_id


@pytest.fixture(params=["sqlite", "postgresql"])
def setting(request, run_nightly, demo_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        reset_pg(url)
    record_first_deployment(url, "credit-default", "v1")
    run_nightly(DEMO_NIGHT, home, url)
    return home, url, request.param


def _borrower(url: str) -> str:
    """A past borrower (in the training data) who was decided on this night."""
    found = _read(
        url, "SELECT subject_id FROM decisions WHERE subject_id < 'S1' ORDER BY subject_id"
    )
    assert len(found), "the demo night has no past borrower"
    return found["subject_id"][0]


def _sql_hits(url: str, needles: list) -> list[tuple[str, str]]:
    """Every table's rows as text, searched for the needles (how a PostgreSQL store is scanned)."""
    hits = []
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                text = " ".join(str(v) for v in row)
                hits += [(table.name, str(n)) for n in needles if contains_needle(text, n)]
    engine.dispose()
    return hits


def test_forget_retrains_checks_purges_and_leaves_only_a_tombstone(dask_cluster, setting, tmp_path):
    from prefect_dask import DaskTaskRunner

    from flows.deletion import process_deletions

    home, url, backend = setting
    subject = _borrower(url)
    reg = ModelRegistry(home / "registry")
    training = reg.training_frame("credit-default", "v1")
    decisions = _read(url, "SELECT decision_id FROM decisions WHERE subject_id = :s", s=subject)
    needles = [subject, *subject_needles(training, [subject], min_chars=6)]
    assert len(needles) > 3
    others_recourse = _read(
        url,
        "SELECT COUNT(*) AS n FROM issued_recourse i JOIN decisions d "
        "ON d.decision_id = i.decision_id WHERE d.subject_id <> :s",
        s=subject,
    )["n"][0]
    request_id = _request(url, home, subject)

    flow = process_deletions.with_options(
        task_runner=DaskTaskRunner(address=dask_cluster.scheduler_address)
    )
    result = flow(
        request_ids=[request_id], home=str(home), db=url, recent_days=100_000, window_months=1_000
    )

    # 1. a candidate per version that held the subject, registered and not deployed
    checks = {c["model_name"]: c for c in result["checks"]}
    cand = checks["credit-default"]["candidate_version"]
    assert cand and cand in reg.versions("credit-default")
    with session_factory(init_store(url))() as session:
        assert deployments.deployed_version(session, "credit-default") == "v1"
    assert checks["credit-default"]["training_rows_removed"] >= 1
    assert checks["credit-default"]["sha256_before"] != checks["credit-default"]["sha256_after"]
    cand_frame = reg.training_frame("credit-default", cand)
    assert subject not in set(cand_frame["subject_id"])
    # 2. the exact invalidation check covered every other applicant's recourse
    assert checks["credit-default"]["recourses_checked"] == others_recourse
    stored = _read(
        url,
        "SELECT COUNT(*) AS n FROM recourse_validity v JOIN model_versions mv "
        "ON mv.id = v.model_version_id WHERE mv.version = :c",
        c=cand,
    )["n"][0]
    assert stored == others_recourse
    # the candidate is never deployed, so what it would invalidate is nobody to re-contact
    assert _read(url, "SELECT COUNT(*) AS n FROM v_recontact")["n"][0] == 0
    # the deletion's own effect and retraining's: v1's data was untouched, so the control
    # refit reproduces v1 and every invalidation is the deletion's
    c = checks["credit-default"]
    assert c["invalidated_by_retraining"] == 0
    assert c["invalidated_by_deletion"] == c["invalidated"]
    assert c["original_rows_removed"] == c["training_rows_removed"]
    # 3. the purge: nothing about the subject in any table, a tombstone and a closed request
    for table in Base.metadata.sorted_tables:
        if "subject_id" in table.c:
            left = _read(
                url, f"SELECT COUNT(*) AS n FROM {table.name} WHERE subject_id = :s", s=subject
            )["n"][0]
            assert left == 0, table.name
    assert (
        _read(
            url,
            "SELECT COUNT(*) AS n FROM decisions WHERE decision_id IN "
            f"({','.join(repr(d) for d in decisions['decision_id'])})",
        )["n"][0]
        == 0
    )
    req = _read(
        url, "SELECT status, subject_id FROM deletion_requests WHERE request_id = :r", r=request_id
    )
    assert req["status"][0] == "purged" and req["subject_id"].isna()[0]
    tomb = _read(url, "SELECT subject_hash, counts FROM tombstones")
    salt = load_or_create_salt(home / "secrets" / "tombstone.salt")
    assert tomb["subject_hash"].tolist() == [subject_hash(subject, salt)]
    # 4. no file or table we own still holds the subject's id or their own values
    scan_paths = [home] + ([tmp_path / "ledger.db"] if backend == "sqlite" else [])
    assert scan_for_subject(scan_paths, needles) == []
    assert _sql_hits(url, needles) == []
    # the subject's rows are gone from every training file and decision log we own
    for version in reg.versions("credit-default"):
        if reg.manifest("credit-default", version).training_data:
            assert subject not in set(reg.training_frame("credit-default", version)["subject_id"])


@pytest.mark.parametrize("setting", ["sqlite"], indirect=True)  # PostgreSQL: the test above
def test_deferred_requests_have_due_dates_and_are_carried_out_by_the_nightly_run(
    run_nightly, setting
):
    home, url, _ = setting
    subject = _borrower(url)
    old = datetime.now(UTC) - timedelta(days=40)
    late = _request(url, home, subject, received=old)
    from governance.store.queries import deletion_requests

    with session_factory(init_store(url))() as session:
        frame = deletion_requests(session).set_index("request_id")
    assert bool(frame.loc[late, "overdue"]) and frame.loc[late, "status"] == "received"
    assert (
        frame.loc[late, "due"] == (old + timedelta(days=30)).date()
        or frame.loc[late, "due"].month == (old.month % 12) + 1
    )
    summary = run_nightly(DEMO_NIGHT, home, url, recourse=False)
    assert summary["counts"]["deletions"]["requests"] == 1
    assert _read(url, "SELECT status FROM deletion_requests")["status"].tolist() == ["purged"]
    assert (
        _read(url, "SELECT COUNT(*) AS n FROM decisions WHERE subject_id = :s", s=subject)["n"][0]
        == 0
    )


def test_external_read_only_log_gets_a_notice_for_its_owner(
    dask_cluster, run_nightly, demo_home, tmp_path, monkeypatch
):
    import json

    from prefect_dask import DaskTaskRunner

    from flows.deletion import process_deletions
    from governance.intake.decision_log import ParquetDecisionLog, read_night

    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    source = f"sqlite:///{tmp_path / 'their-log.db'}"
    log = read_night(ParquetDecisionLog(home / "decision-logs"), DEMO_NIGHT)
    engine = sa.create_engine(source)
    log.to_sql("decision_log", engine, index=False)
    engine.dispose()
    monkeypatch.setenv("GOVERNANCE_LOG_URL", source)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    run_nightly(DEMO_NIGHT, home, url, log="table:decision_log", recourse=False)
    subject = _borrower(url)
    theirs = sorted(log.loc[log["subject_id"] == subject, "decision_id"])
    request_id = _request(url, home, subject)

    flow = process_deletions.with_options(
        task_runner=DaskTaskRunner(address=dask_cluster.scheduler_address)
    )
    result = flow(request_ids=[request_id], home=str(home), db=url, check=False)
    assert result["counts"]["notices"] == 1
    (path,) = (home / "erasure-notices").glob(f"{request_id}-*.json")
    notice = json.loads(path.read_text())
    assert notice["decision_ids"] == theirs and notice["source"].startswith("sql:")
    assert subject not in path.read_text()
    # we do not own that log: its rows stay until its owner acts on the notice
    engine = sa.create_engine(source)
    with engine.connect() as conn:
        still = conn.execute(
            sa.text("SELECT COUNT(*) FROM decision_log WHERE subject_id = :s"), {"s": subject}
        ).scalar()
    engine.dispose()
    assert still == len(theirs)
    assert (
        _read(url, "SELECT COUNT(*) AS n FROM decisions WHERE subject_id = :s", s=subject)["n"][0]
        == 0
    )
    # and the next nightly run does not take them back in from that log
    again = run_nightly(DEMO_NIGHT, home, url, log="table:decision_log", recourse=False,
                        force=True)
    assert again["counts"]["erased_rows_skipped"] == len(theirs)
    assert _read(url, "SELECT COUNT(*) AS n FROM decisions WHERE subject_id = :s",
                 s=subject)["n"][0] == 0
    assert _read(url, "SELECT COUNT(*) AS n FROM quarantine WHERE subject_id = :s",
                 s=subject)["n"][0] == 0


def test_erasure_is_all_or_nothing_counts_truly_and_names_every_file(
    dask_cluster, run_nightly, demo_home, tmp_path, monkeypatch
):
    """An unreadable log file fails the request before any training or log row is touched;
    once it is gone the request completes with true counts and the files it rewrote named. A
    second request counts its own rows and the rows removed since v1 was registered; and when
    the ledger purge fails after the files were rewritten, the retry still counts them."""
    from prefect_dask import DaskTaskRunner

    import flows.deletion as deletion_flow
    from flows.deletion import process_deletions
    from governance.intake.decision_log import ParquetDecisionLog
    from governance.store.queries import deletion_requests

    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    record_first_deployment(url, "credit-default", "v1")
    run_nightly(DEMO_NIGHT, home, url, recourse=False)
    reg = ModelRegistry(home / "registry")
    training = reg.training_frame("credit-default", "v1")
    v2_training = reg.training_frame("credit-default", "v2")  # v1's rows and newer ones
    log = ParquetDecisionLog(home / "decision-logs")
    night_rows = pd.concat([pd.read_parquet(p) for p in log.files(DEMO_NIGHT)])
    first, second = _read(
        url, "SELECT DISTINCT subject_id FROM decisions WHERE subject_id < 'S1' "
        "ORDER BY subject_id"
    )["subject_id"][:2]
    flow = process_deletions.with_options(
        task_runner=DaskTaskRunner(address=dask_cluster.scheduler_address)
    )

    bad = log.partition(DEMO_NIGHT) / "part-9.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet file")
    snapshot = {p: p.read_bytes() for p in home.rglob("*.parquet") if p != bad}
    manifests = {p: p.read_bytes() for p in (home / "registry").rglob("manifest.json")}
    request = _request(url, home, first)
    with pytest.raises(Exception, match="part-9.parquet is unreadable"):
        flow(request_ids=[request], home=str(home), db=url, check=False)
    assert {p: p.read_bytes() for p in home.rglob("*.parquet") if p != bad} == snapshot
    assert {p: p.read_bytes() for p in (home / "registry").rglob("manifest.json")} == manifests
    assert _read(url, "SELECT COUNT(*) AS n FROM decisions WHERE subject_id = :s",
                 s=first)["n"][0] > 0
    assert _read(url, "SELECT status FROM deletion_requests")["status"].tolist() == ["failed"]

    bad.unlink()
    result = flow(request_ids=[request], home=str(home), db=url, check=False)
    files = result["counts"]["purged"]["files"]
    assert files["training_files"] == 2
    assert files["training_rows"] == int((training["subject_id"] == first).sum()) + int(
        (v2_training["subject_id"] == first).sum()
    )
    assert files["log_rows"] == int((night_rows["subject_id"] == first).sum()) > 0
    named = {e["path"] for e in files["rewritten"]}
    assert "training-data/credit-default-v1.parquet" in named
    assert any(p.startswith("decision-logs/") for p in named)
    tomb = _read(url, "SELECT counts FROM tombstones")["counts"][0]
    tomb = json.loads(tomb) if isinstance(tomb, str) else tomb
    assert tomb["files"]["rewritten"] == files["rewritten"]

    # the second request: its own rows against the file the first purge left, and all rows
    # removed since v1 was registered; the ledger purge fails once after the files changed
    request2 = _request(url, home, second)
    held = {  # every training file of a registered version, the first candidate's included
        reg.training_path("credit-default", v).resolve() for v in reg.versions("credit-default")
    }
    in_files = sum(int((pd.read_parquet(p)["subject_id"] == second).sum()) for p in held)
    real = deletion_flow.purge_subjects
    calls = []

    def fail_once(session, subjects):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the ledger went away")
        return real(session, subjects)

    monkeypatch.setattr(deletion_flow, "purge_subjects", fail_once)
    with pytest.raises(RuntimeError, match="the ledger went away"):
        flow(request_ids=[request2], home=str(home), db=url, check=False)
    again = flow(request_ids=[request2], home=str(home), db=url, check=False)
    (check,) = again["checks"]
    mine = int((training["subject_id"] == second).sum())
    earlier = int((training["subject_id"] == first).sum())
    assert check["training_rows_removed"] == mine
    assert check["original_rows_removed"] == mine + earlier
    files2 = again["counts"]["purged"]["files"]
    assert files2["log_rows"] == int((night_rows["subject_id"] == second).sum()) > 0
    assert files2["training_rows"] == in_files > mine
    assert "training-data/credit-default-v1.parquet" in {e["path"] for e in files2["rewritten"]}
    with session_factory(init_store(url))() as session:
        listed = deletion_requests(session).set_index("request_id")
    assert listed.loc[request2, "rows_removed"] == mine
    assert listed.loc[request2, "rows_vs_registered"] == mine + earlier
