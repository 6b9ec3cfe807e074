"""Deletion requests: due dates, tombstone hashes, retraining without a subject and the purge."""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import zipfile
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from governance.deletion.purge import (
    carry_over,
    execute_erasure,
    external_log_notice,
    external_training_notice,
    plan_erasure,
    plan_training_files,
    purge_decision_logs,
    purge_training_files,
    subject_decision_ids,
    summarise_files,
)
from governance.deletion.requests import due_date, load_or_create_salt, subject_hash
from governance.deletion.retrain import (
    HOLDOUT_KEY,
    CandidateVersion,
    next_candidate_version,
    read_retrain_note,
    recourse_validity,
    refit_control,
    retrain_without,
)
from governance.deletion.scan import contains_needle, scan_for_subject, subject_needles
from governance.exceptions import (
    ArtifactHashMismatch,
    DecisionLogError,
    DeletionError,
    ManifestError,
)
from governance.hashing import sha256_file
from governance.intake.decision_log import ParquetDecisionLog
from governance.registry.model import DecisionModel
from governance.registry.model_registry import ModelRegistry, TrainingData
from governance.registry.schema import FeatureSchema
from governance.registry.training import TrainingRecipe

SUBJECT = "S0007"
INCOMES = [51234.56, 61234.56, 71234.56]  # the subject's three rows hold these exact incomes
RECIPE = TrainingRecipe("logistic_regression", {"C": 1.0}, seed=3, label="label")


def _training_frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "subject_id": [f"S{i:04d}" for i in range(n)],
            "income": rng.normal(50_000, 8_000, n).round(2),
            "region": rng.choice(["n", "s"], n),
        }
    )
    rows = [7, 100, 200]  # a returning applicant: three rows
    df.loc[rows, "subject_id"] = SUBJECT
    df.loc[rows, "income"] = INCOMES
    noise = rng.normal(0, 6_000, n)
    df["label"] = (df["income"] + 4_000 * (df["region"] == "n") + noise > 52_000).astype(int)
    return df


def _registry(tmp_path, metrics=None, id_column="subject_id"):
    df = _training_frame()
    data = tmp_path / "training-data"
    data.mkdir()
    path = data / "credit-v1.parquet"
    df.to_parquet(path, index=False)
    schema = FeatureSchema.from_frame(df[["income", "region"]])
    aset = tmp_path / "aset.json"
    aset.write_text('{"features": ["income"]}\n')
    reg = ModelRegistry(tmp_path / "registry")
    reg.register(
        "credit", "v1", RECIPE.fit(schema, df, df["label"]), schema, RECIPE,
        training_data=TrainingData(os.path.relpath(path, reg.root), sha256_file(path), len(df),
                                   "label", id_column),
        metrics=metrics or {}, action_set_path=aset,
    )
    return reg, df, schema


# -- due dates -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("received", "due"),
    [
        (datetime(2026, 1, 15, 10, 30, tzinfo=UTC), datetime(2026, 2, 15, 10, 30, tzinfo=UTC)),
        (datetime(2026, 1, 31, 9, 0, tzinfo=UTC), datetime(2026, 2, 28, 9, 0, tzinfo=UTC)),
        (datetime(2024, 1, 31, 9, 0, tzinfo=UTC), datetime(2024, 2, 29, 9, 0, tzinfo=UTC)),
        (datetime(2024, 1, 29, 0, 0, tzinfo=UTC), datetime(2024, 2, 29, 0, 0, tzinfo=UTC)),
        (datetime(2100, 1, 29, 0, 0, tzinfo=UTC), datetime(2100, 2, 28, 0, 0, tzinfo=UTC)),
        (datetime(2024, 2, 29, 12, 0, tzinfo=UTC), datetime(2024, 3, 29, 12, 0, tzinfo=UTC)),
        (datetime(2026, 3, 31, 23, 59, tzinfo=UTC), datetime(2026, 4, 30, 23, 59, tzinfo=UTC)),
        (datetime(2026, 12, 31, 8, 0, tzinfo=UTC), datetime(2027, 1, 31, 8, 0, tzinfo=UTC)),
        (datetime(2026, 12, 1, 8, 0, tzinfo=UTC), datetime(2027, 1, 1, 8, 0, tzinfo=UTC)),
    ],
)
def test_due_date_is_one_calendar_month_later_clamped_to_month_end(received, due):
    got = due_date(received)
    assert got == due and got.tzinfo == UTC


def test_due_date_counts_on_the_utc_calendar():
    # 23:30 on Jan 31 in New York is 04:30 on Feb 1 in UTC, so the deadline is Mar 1.
    received = datetime(2026, 1, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert due_date(received) == datetime(2026, 3, 1, 4, 30, tzinfo=UTC)


def test_due_date_refuses_naive_datetimes():
    with pytest.raises(DeletionError, match="time-zone aware"):
        due_date(datetime(2026, 1, 1))


# -- tombstone hashes and salt ---------------------------------------------------------------
def test_subject_hash_is_hmac_sha256_known_answer():
    # RFC 4231 test case 1: key 0x0b * 20, data "Hi There".
    assert subject_hash("Hi There", b"\x0b" * 20) == (
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    )


def test_subject_hash_stable_per_salt_different_across_salts_and_not_the_id():
    a, b = b"a" * 32, b"b" * 32
    h = subject_hash(SUBJECT, a)
    assert h == subject_hash(SUBJECT, a)
    assert h != subject_hash(SUBJECT, b)
    assert h != subject_hash("S0008", a)
    assert SUBJECT not in h and len(h) == 64 and int(h, 16) >= 0


def test_subject_hash_rejects_short_salt_and_empty_id():
    with pytest.raises(DeletionError, match="at least 16 bytes; got 8 bytes"):
        subject_hash(SUBJECT, b"x" * 8)
    with pytest.raises(DeletionError, match="non-empty string; got str of length 0"):
        subject_hash("", b"x" * 32)


def test_salt_created_once_with_owner_only_mode(tmp_path):
    path = tmp_path / "secrets" / "tombstone.salt"
    salt = load_or_create_salt(path)
    assert len(salt) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_salt(path) == salt
    assert load_or_create_salt(tmp_path / "other.salt") != salt
    assert [p.name for p in path.parent.iterdir()] == ["tombstone.salt"]  # no temp file left


def test_salt_refused_when_others_can_read_it_or_length_is_wrong(tmp_path):
    path = tmp_path / "s.salt"
    load_or_create_salt(path)
    path.chmod(0o644)
    with pytest.raises(DeletionError, match="mode 0644; expected 0600"):
        load_or_create_salt(path)
    short = tmp_path / "short.salt"
    short.write_bytes(b"x" * 5)
    short.chmod(0o600)
    with pytest.raises(DeletionError, match="holds 5 bytes; expected 32"):
        load_or_create_salt(short)


# -- candidate names -------------------------------------------------------------------------
def test_next_candidate_version_is_safe_and_free(tmp_path):
    reg, _, _ = _registry(tmp_path)
    assert next_candidate_version(reg, "credit", "v1", "req-7f3a9c21/..") == "v1-del-req7f3a9c21"
    retrain_without(reg, "credit", "v1", [SUBJECT], candidate_version="v1-del-req7f3a9c21")
    assert next_candidate_version(reg, "credit", "v1", "req-7f3a9c21") == "v1-del-req7f3a9c21-2"
    with pytest.raises(DeletionError, match="has no letter or digit"):
        next_candidate_version(reg, "credit", "v1", "--/")


# -- retraining ------------------------------------------------------------------------------
def test_retrain_without_removes_exactly_the_subjects_rows_and_registers_undeployed(tmp_path):
    reg, df, schema = _registry(tmp_path)
    before = sha256_file(reg.training_path("credit", "v1"))
    cand = retrain_without(reg, "credit", "v1", [SUBJECT], candidate_version="v1-del-r1",
                           notes="request r1")
    assert isinstance(cand, CandidateVersion)
    assert (cand.name, cand.version, cand.parent, cand.rows_removed) == (
        "credit", "v1-del-r1", "v1", 3)
    reduced = df[df["subject_id"] != SUBJECT].reset_index(drop=True)
    written = pd.read_parquet(cand.training_path)
    pd.testing.assert_frame_equal(written, reduced)
    assert cand.training_path == reg.training_path("credit", "v1-del-r1")
    assert cand.training_path.parent == reg.training_path("credit", "v1").parent
    m = reg.manifest("credit", "v1-del-r1")
    assert m.training_data.sha256 == cand.sha256_after == sha256_file(cand.training_path)
    assert m.training_data.rows == 297 and m.training_data.id_column == "subject_id"
    assert cand.sha256_before == before != cand.sha256_after
    assert read_retrain_note(m) == {"parent": "v1", "rows_removed": 3,
                                    "sha256_before": before, "sha256_after": cand.sha256_after}
    assert m.notes.endswith("\nrequest r1") and m.parent == "v1" and m.metrics == {}
    # Not deployed (the registry records no deployment at all; the ledger does); the action
    # set travelled with it; nothing about the subject in the manifest.
    assert "deployed" not in (reg.path("credit", "v1-del-r1") / "manifest.json").read_text()
    assert m.action_set_sha256 == reg.manifest("credit", "v1").action_set_sha256
    assert reg.action_set_path("credit", "v1-del-r1").read_text() == '{"features": ["income"]}\n'
    manifest_text = (reg.path("credit", "v1-del-r1") / "manifest.json").read_text()
    assert SUBJECT not in manifest_text and "51234.56" not in manifest_text
    # Predictions equal the recipe fitted on the reduced data.
    expected = RECIPE.fit(schema, reduced, reduced["label"])
    got = reg.load("credit", "v1-del-r1")
    want = expected.predict_proba(df[["income", "region"]])[:, 1]
    np.testing.assert_array_equal(got.score(df), want)
    assert reg.training_frame("credit", "v1").shape == df.shape  # the parent is untouched here


def test_retrain_without_recomputes_holdout_metrics_when_the_rule_is_recorded(tmp_path):
    reg, _, _ = _registry(tmp_path, metrics={HOLDOUT_KEY: 0.25, "auc": 0.9})
    cand = retrain_without(reg, "credit", "v1", [SUBJECT], candidate_version="c1")
    metrics = cand.manifest.metrics
    assert metrics[HOLDOUT_KEY] == 0.25 and metrics["test_rows"] == 75  # ceil(0.25 * 297)
    assert 0.5 < metrics["auc"] <= 1.0 and 0.0 <= metrics["accuracy"] <= 1.0


def test_retrain_without_returns_none_when_the_subject_has_no_training_rows(tmp_path):
    reg, _, _ = _registry(tmp_path)
    assert retrain_without(reg, "credit", "v1", ["S9999"], candidate_version="c1") is None
    assert reg.versions("credit") == ["v1"]
    assert sorted(p.name for p in (tmp_path / "training-data").iterdir()) == ["credit-v1.parquet"]


def test_retrain_without_error_paths(tmp_path):
    reg, _, _ = _registry(tmp_path)
    with pytest.raises(DeletionError, match="at least one id and no empty one; got 0 ids"):
        retrain_without(reg, "credit", "v1", [], candidate_version="c1")
    with pytest.raises(DeletionError, match="not a single string"):
        retrain_without(reg, "credit", "v1", SUBJECT, candidate_version="c1")
    with pytest.raises(ManifestError, match="version v1 already exists"):
        retrain_without(reg, "credit", "v1", [SUBJECT], candidate_version="v1")
    with pytest.raises(DeletionError, match="id column 'client' not in"):
        retrain_without(reg, "credit", "v1", [SUBJECT], candidate_version="c1", id_column="client")
    reg.training_path("credit", "v1").write_bytes(b"tampered")
    with pytest.raises(ArtifactHashMismatch, match="training data"):
        retrain_without(reg, "credit", "v1", [SUBJECT], candidate_version="c1")


def test_retrain_without_needs_an_id_column(tmp_path):
    reg, _, _ = _registry(tmp_path, id_column=None)
    with pytest.raises(DeletionError, match="records no id column .*; pass id_column"):
        retrain_without(reg, "credit", "v1", [SUBJECT], candidate_version="c1")
    cand = retrain_without(reg, "credit", "v1", [SUBJECT], candidate_version="c1",
                           id_column="subject_id")
    assert cand.rows_removed == 3


def test_recourse_validity_flags_points_valid_before_and_not_after():
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]})
    y = np.array([0, 0, 0, 1, 1, 1])
    schema = FeatureSchema.from_frame(X)
    est = TrainingRecipe("logistic_regression", {"C": 100.0}).fit(schema, X, y)
    s = est.predict_proba(X)[:, 1]
    current = DecisionModel(est, schema, threshold=0.5)
    candidate = DecisionModel(est, schema, threshold=float(s[4] + s[5]) / 2)
    out = recourse_validity(current, candidate, X)
    assert list(out.columns) == ["score_before", "score_after", "valid_before", "valid_after",
                                 "invalidated"]
    assert out["valid_before"].tolist() == [False, False, False, True, True, True]
    assert out["valid_after"].tolist() == [False, False, False, False, False, True]
    assert out["invalidated"].tolist() == [False, False, False, True, True, False]


# -- purge of training files -----------------------------------------------------------------
def test_purge_training_files_rewrites_every_version_holding_the_subject(tmp_path):
    reg, df, _ = _registry(tmp_path)
    cand = retrain_without(reg, "credit", "v1", [SUBJECT], candidate_version="c1")
    v1_path = reg.training_path("credit", "v1")
    before = sha256_file(v1_path)
    roots = [reg.root, tmp_path / "training-data"]
    needles = [SUBJECT, *INCOMES]
    assert {(p.name, n) for p, n in scan_for_subject(roots, needles)} == {
        ("credit-v1.parquet", n) for n in ["S0007", "51234.56", "61234.56", "71234.56"]}
    when = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
    records = purge_training_files(reg, "credit", [SUBJECT], request_id="r-1", erased_at=when)
    assert len(records) == 1
    rec = records[0]
    assert (rec.path, rec.versions, rec.rows_removed, rec.sha256_before) == (
        v1_path.resolve(), ("v1",), 3, before)
    # The old version still loads and its training data verifies, without the subject.
    m = reg.manifest("credit", "v1")
    assert m.training_data.sha256 == rec.sha256_after == sha256_file(v1_path)
    assert m.training_data.rows == 297
    assert (f"erasure 2026-02-01T12:00:00+00:00 request r-1: 3 training rows removed; "
            f"training data sha256 before {before} after {rec.sha256_after}") in m.notes
    pd.testing.assert_frame_equal(reg.training_frame("credit", "v1"),
                                  df[df["subject_id"] != SUBJECT].reset_index(drop=True))
    reg.load("credit", "v1")
    assert reg.manifest("credit", "c1") == cand.manifest  # the candidate never held the subject
    assert scan_for_subject(roots, needles) == []
    assert purge_training_files(reg, "credit", [SUBJECT], request_id="r-1", erased_at=when) == []


def test_purge_training_files_refuses_tampered_files_and_naive_times(tmp_path):
    reg, _, _ = _registry(tmp_path)
    with pytest.raises(DeletionError, match="must be time-zone aware"):
        purge_training_files(reg, "credit", [SUBJECT], request_id="r1",
                             erased_at=datetime(2026, 1, 1))
    with pytest.raises(DeletionError, match="request id 'r 1' must be"):
        purge_training_files(reg, "credit", [SUBJECT], request_id="r 1",
                             erased_at=datetime(2026, 1, 1, tzinfo=UTC))
    path = reg.training_path("credit", "v1")
    original = path.read_bytes()
    pd.read_parquet(path).iloc[:10].to_parquet(path)
    with pytest.raises(ArtifactHashMismatch, match="refusing to rewrite it"):
        purge_training_files(reg, "credit", [SUBJECT], request_id="r1",
                             erased_at=datetime(2026, 1, 1, tzinfo=UTC))
    path.write_bytes(original)


# -- all or nothing, true counts, and whose files -------------------------------------------
WHEN = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def _files(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_an_unreadable_log_file_fails_the_plan_before_any_file_changes(tmp_path):
    reg, _, _ = _registry(tmp_path)
    log = ParquetDecisionLog(tmp_path / "decisions")
    d1, d2 = date(2026, 1, 10), date(2026, 1, 11)
    log.write_night(d1, _night(d1, [SUBJECT, "S0001"], 0))
    log.write_night(d2, _night(d2, [SUBJECT], 0))
    (log.partition(d2) / "part-1.parquet").write_bytes(b"PAR1 not really")
    before = _files(tmp_path)
    with pytest.raises(DecisionLogError, match=r"part-1\.parquet is unreadable"):
        plan_erasure(reg, ["credit"], log, [SUBJECT])
    assert _files(tmp_path) == before  # neither the training rows nor any log row touched
    (log.partition(d2) / "part-1.parquet").unlink()
    plan = plan_erasure(reg, ["credit"], log, [SUBJECT])
    assert [(f.kind, f.rows) for f in plan.files] == [("training", 3), ("log", 1), ("log", 1)]
    # a file that changed after the plan stops the whole erasure before anything is written
    log.write_night(d2, _night(d2, [SUBJECT, "S0002"], 0))
    before = _files(tmp_path)
    with pytest.raises(ArtifactHashMismatch, match="changed since the erasure was planned"):
        execute_erasure(plan, reg, [SUBJECT], request_id="r-1", erased_at=WHEN)
    assert _files(tmp_path) == before
    plan = plan_erasure(reg, ["credit"], log, [SUBJECT])
    done = execute_erasure(plan, reg, [SUBJECT], request_id="r-1", erased_at=WHEN, root=tmp_path)
    summary = summarise_files(done)
    assert (summary["training_files"], summary["training_rows"]) == (1, 3)
    assert (summary["log_files"], summary["log_rows"], summary["log_nights"]) == (2, 2, 2)
    assert [e["path"] for e in summary["rewritten"]] == [
        "training-data/credit-v1.parquet",
        "decisions/decision_date=2026-01-10/part-0.parquet",
        "decisions/decision_date=2026-01-11/part-0.parquet",
    ]
    assert plan_erasure(reg, ["credit"], log, [SUBJECT]).files == []


def test_carry_over_counts_what_an_interrupted_attempt_rewrote(tmp_path):
    reg, _, _ = _registry(tmp_path)
    plan = plan_training_files(reg, ["credit"], [SUBJECT])
    recorded = plan.entries(tmp_path)  # kept in the ledger before any file is rewritten
    assert carry_over(recorded, tmp_path) == []  # not rewritten yet: the next plan counts it
    execute_erasure(plan, reg, [SUBJECT], request_id="r-1", erased_at=WHEN)  # then a crash
    assert plan_training_files(reg, ["credit"], [SUBJECT]).files == []  # a retry finds nothing
    (carried,) = carry_over(recorded, tmp_path)
    assert carried["rows"] == 3 and carried["path"] == "training-data/credit-v1.parquet"
    assert carried["sha256_after"] == sha256_file(reg.training_path("credit", "v1"))


def test_a_training_file_outside_the_data_folder_is_rewritten_only_when_declared_owned(
    tmp_path,
):
    df = _training_frame()
    schema = FeatureSchema.from_frame(df[["income", "region"]])
    est = RECIPE.fit(schema, df, df["label"])
    reg = ModelRegistry(tmp_path / "home" / "registry")
    files = {}
    for name, owned in (("theirs", False), ("ours", True)):
        path = tmp_path / name / "train.parquet"
        path.parent.mkdir()
        df.to_parquet(path, index=False)
        files[name] = path
        reg.register(name, "v1", est, schema, RECIPE, training_data=TrainingData(
            str(path), sha256_file(path), len(df), "label", "subject_id", owned=owned))
    plan = plan_training_files(reg, ["theirs", "ours"], [SUBJECT])
    assert [f.versions for f in plan.files] == [(("ours", "v1"),)]
    (foreign,) = plan.foreign
    assert foreign.path == files["theirs"] and foreign.rows == {SUBJECT: [7, 100, 200]}
    untouched = files["theirs"].read_bytes()
    assert purge_training_files(reg, "theirs", [SUBJECT], request_id="r-1", erased_at=WHEN) == []
    assert files["theirs"].read_bytes() == untouched
    (record,) = purge_training_files(reg, "ours", [SUBJECT], request_id="r-1", erased_at=WHEN)
    assert record.rows_removed == 3 and SUBJECT not in set(pd.read_parquet(files["ours"])[
        "subject_id"])
    hashed = subject_hash(SUBJECT, b"k" * 32)
    notice = external_training_notice(
        foreign, SUBJECT, hashed, request_id="r-1", received_at=WHEN
    )
    assert notice["row_positions"] == [7, 100, 200] and notice["rows"] == 3
    assert notice["sha256"] == sha256_file(files["theirs"])
    assert notice["subject_hash"] == hashed and "theirs v1" in notice["source"]
    text = json.dumps(notice)
    assert SUBJECT not in text and "51234.56" not in text
    assert external_training_notice(
        foreign, "S0001", hashed, request_id="r-1", received_at=WHEN) is None
    # a candidate of a foreign file's version is written into the data folder, never theirs
    cand = retrain_without(reg, "theirs", "v1", [SUBJECT], candidate_version="c1")
    assert cand.training_path.parent == (tmp_path / "home" / "training-data").resolve()
    assert sorted(p.name for p in files["theirs"].parent.iterdir()) == ["train.parquet"]


def test_earlier_erasures_are_counted_against_the_data_as_registered(tmp_path):
    reg, _, _ = _registry(tmp_path)
    registered = sha256_file(reg.training_path("credit", "v1"))
    purge_training_files(reg, "credit", ["S0001"], request_id="r-1", erased_at=WHEN)
    purge_training_files(reg, "credit", ["S0002"], request_id="r-2", erased_at=WHEN)
    td = reg.manifest("credit", "v1").training_data
    assert (td.rows, td.original_rows, td.original_sha256) == (298, 300, registered)
    cand = retrain_without(reg, "credit", "v1", [SUBJECT], candidate_version="c1")
    assert (cand.rows_removed, cand.original_rows_removed) == (3, 5)


def test_the_control_refit_reproduces_the_registered_version_on_its_data(tmp_path):
    reg, df, schema = _registry(tmp_path)
    control = DecisionModel(refit_control(reg, "credit", "v1"), schema)
    np.testing.assert_array_equal(control.score(df), reg.load("credit", "v1").score(df))


# -- decision logs ---------------------------------------------------------------------------
def _night(day: date, subjects: list[str], start: int) -> pd.DataFrame:
    n = len(subjects)
    return pd.DataFrame(
        {
            "decision_id": [f"D{day:%m%d}-{start + i:03d}" for i in range(n)],
            "subject_id": subjects,
            "decided_at": pd.date_range(pd.Timestamp(day, tz="UTC"), periods=n, freq="h"),
            "income": [40_000.25 + 1000 * (start + i) for i in range(n)],
            "score": np.linspace(0.1, 0.9, n),
            "decision": ["denied" if i % 2 else "approved" for i in range(n)],
        }
    )


@pytest.fixture
def decision_log(tmp_path):
    log = ParquetDecisionLog(tmp_path / "decisions")
    d1, d2, d3 = date(2026, 1, 10), date(2026, 1, 11), date(2026, 1, 12)
    frames = {
        d1: _night(d1, ["S0001", SUBJECT, "S0002"], 0),
        d2: _night(d2, ["S0003", "S0004"], 10),
        d3: _night(d3, ["S0005", "S0006"], 20),
    }
    for night, frame in frames.items():
        log.write_night(night, frame)
    # Night 3 has a second file holding the subject twice.
    extra = _night(d3, [SUBJECT, "S0008", SUBJECT], 30)
    extra.to_parquet(log.partition(d3) / "part-1.parquet", index=False)
    return log, frames


def test_purge_decision_logs_removes_exactly_the_subjects_rows(decision_log):
    log, _ = decision_log
    d1, d2, d3 = log.nights()
    files = [p for night in (d1, d2, d3) for p in log.files(night)]
    raw = {p: p.read_bytes() for p in files}
    before = {p: pd.read_parquet(p) for p in files}
    needles = [SUBJECT, 41_000.25, 70_000.25, 72_000.25]  # the subject's id and incomes
    assert {n for _, n in scan_for_subject([log.root], needles)} == {
        SUBJECT, "41000.25", "70000.25", "72000.25"}
    removed = purge_decision_logs(log, [SUBJECT])
    assert removed == {d1: 1, d2: 0, d3: 2}
    assert [p for night in (d1, d2, d3) for p in log.files(night)] == files
    for path in files:
        old = before[path]
        want = old[old["subject_id"] != SUBJECT].reset_index(drop=True)
        pd.testing.assert_frame_equal(pd.read_parquet(path), want)  # same values and dtypes
        if len(want) == len(old):
            assert path.read_bytes() == raw[path]  # files without the subject are not rewritten
    assert len(pd.read_parquet(log.partition(d3) / "part-1.parquet")) == 1
    assert purge_decision_logs(log, [SUBJECT]) == {d1: 0, d2: 0, d3: 0}
    assert scan_for_subject([log.root], needles) == []


def test_purge_decision_logs_needs_a_subject_column(tmp_path):
    log = ParquetDecisionLog(tmp_path)
    log.write_night(date(2026, 1, 1), pd.DataFrame({"decision_id": ["D1"], "x": [1.0]}))
    with pytest.raises(DecisionLogError, match="has no 'subject_id' column"):
        purge_decision_logs(log, [SUBJECT])


def test_subject_decision_ids_lists_the_subjects_decisions_per_night(decision_log):
    log, _ = decision_log
    d1, d2, d3 = log.nights()
    assert subject_decision_ids(log, [d1, d2, d3], [SUBJECT]) == {
        d1: ["D0110-001"], d3: ["D0112-030", "D0112-032"]}


def test_external_log_notice_names_rows_and_hash_never_the_id():
    h = subject_hash(SUBJECT, b"k" * 32)
    received = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    notice = external_log_notice("sql:postgresql://lender/decisions", h, ["D2", "D1", "D2"],
                                 request_id="r-1", received_at=received)
    assert notice["decision_ids"] == ["D1", "D2"] and notice["rows"] == 2
    assert notice["subject_hash"] == h and notice["request_id"] == "r-1"
    assert notice["due_at"] == "2026-02-28T09:00:00+00:00"
    assert notice["format"] == "governance.erasure-notice/1"
    assert SUBJECT not in json.dumps(notice)
    with pytest.raises(DeletionError, match="never the id itself"):
        external_log_notice("sql:x", SUBJECT, ["D1"], request_id="r-1", received_at=received)
    with pytest.raises(DeletionError, match="time-zone aware"):
        external_log_notice("sql:x", h, ["D1"], request_id="r-1",
                            received_at=datetime(2026, 1, 1))


# -- scanning --------------------------------------------------------------------------------
def test_subject_needles_keeps_ids_and_values_only_the_subject_holds():
    frame = pd.DataFrame(
        {
            "subject_id": ["A1", SUBJECT, "A2", SUBJECT],
            "income": [50_000.0, 50_000.0, 41_000.5, 73_210.75],
            "age": [37, 88, 40, 88],
            "city": ["Lyon", "Marseille", "Lyon", "Marseille"],
        }
    )
    assert subject_needles(frame, [SUBJECT]) == [SUBJECT, 73_210.75, "Marseille"]
    assert subject_needles(frame, [SUBJECT], min_chars=2) == [SUBJECT, 73_210.75, 88.0,
                                                             "Marseille"]


def test_numbers_are_found_only_as_whole_numbers(tmp_path, monkeypatch):
    import governance.deletion.scan as scan

    # Other people's values that merely contain the subject's digits are not hits.
    for text in ["0.06751", "10.0675", "-0.0675", "0.0675e-3", "[0.06752, 1.5]"]:
        assert not contains_needle(text, 0.0675), text
    for text in ["0.0675", '{"dti": 0.0675}', "0.0675,x", "a 0.0675e b"]:
        assert contains_needle(text, 0.0675), text
    assert contains_needle("88", 88.0) and not contains_needle("188.5", 88.0)
    assert contains_needle("xS-1y", "S-1")  # text needles match anywhere
    # In files too, even when the file is read in blocks that cut a number in two.
    monkeypatch.setattr(scan, "_SCAN_BLOCK", 7)
    near = tmp_path / "near.json"
    near.write_text('{"a": 0.067512, "b": 10.0675}')
    exact = tmp_path / "exact.json"
    exact.write_text('{"a": 1.25, "dti": 0.0675}')
    assert scan_for_subject([near, exact], [0.0675]) == [(exact, "0.0675")]


def test_scan_finds_planted_values_in_parquet_json_csv_sqlite_and_zip(tmp_path):
    # Others span the subject's values, so Parquet's min/max statistics do not hold them.
    other = pd.DataFrame({"subject_id": [f"{c}{i:04d}" for i in range(100) for c in "AZ"],
                          "income": np.linspace(30_000.125, 90_000.125, 200)})
    planted = pd.concat([other, pd.DataFrame({"subject_id": [SUBJECT], "income": [51234.56]})],
                        ignore_index=True)
    pq_path = tmp_path / "a" / "log.parquet"
    pq_path.parent.mkdir()
    planted.to_parquet(pq_path, compression="gzip")
    raw = pq_path.read_bytes()
    # Only decoding can find these in a gzip-compressed file.
    assert SUBJECT.encode() not in raw and struct.pack("<d", 51234.56) not in raw
    (tmp_path / "a" / "export.json").write_text(json.dumps({"who": SUBJECT}))
    (tmp_path / "b.csv").write_text("id,income\nS0001,40000.5\nX,51234.56\n")
    db = tmp_path / "store.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id TEXT, income INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [("S0001", 40_000), ("X", 987_654)])
    assert b"987654" not in db.read_bytes()  # a 4-byte integer: only SQL finds it
    with zipfile.ZipFile(tmp_path / "model.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("coef.npy", np.array([1.5, 51234.56, 2.5]).tobytes() * 50)
    hits = scan_for_subject([tmp_path], [SUBJECT, 51234.56, 987_654])
    rel = sorted((str(p.relative_to(tmp_path)), n) for p, n in hits)
    assert rel == [
        ("a/export.json", SUBJECT),
        ("a/log.parquet", "51234.56"),
        ("a/log.parquet", SUBJECT),
        ("b.csv", "51234.56"),
        ("model.zip", "51234.56"),
        ("store.sqlite", "987654.0"),
    ]
    assert scan_for_subject([tmp_path / "b.csv"], ["40000.5"]) == [(tmp_path / "b.csv", "40000.5")]


def test_scan_finds_nothing_after_purging_and_sees_rows_sqlite_left_in_free_pages(tmp_path):
    db = tmp_path / "store.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA secure_delete = OFF")
    conn.execute("CREATE TABLE t (id TEXT, income REAL)")
    conn.executemany("INSERT INTO t VALUES (?, ?)",
                     [(f"S{i:04d}", 40_000.5 + i) for i in range(50)] + [(SUBJECT, 51234.56)])
    conn.commit()
    needles = [SUBJECT, 51234.56]
    assert len(scan_for_subject([tmp_path], needles)) == 2
    conn.execute("DELETE FROM t WHERE id = ?", (SUBJECT,))
    conn.commit()
    assert conn.execute("SELECT COUNT(*) FROM t WHERE id = ?", (SUBJECT,)).fetchone() == (0,)
    assert {n for _, n in scan_for_subject([tmp_path], needles)} == {SUBJECT, "51234.56"}
    conn.execute("VACUUM")
    conn.close()
    assert scan_for_subject([tmp_path], needles) == []


def test_scan_rejects_empty_needles(tmp_path):
    with pytest.raises(DeletionError, match="at least one needle"):
        scan_for_subject([tmp_path], [])
    with pytest.raises(DeletionError, match="empty or not finite"):
        scan_for_subject([tmp_path], [""])
    with pytest.raises(DeletionError, match="empty or not finite"):
        scan_for_subject([tmp_path], [float("nan")])
