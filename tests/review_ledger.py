"""A small ledger for the review pages, written through the store's own models, with hostile
values stored verbatim wherever the ledger keeps text: ids, features, checks, statements,
reviewers, errors. (The browser tests use a ledger the real flows built; this one is for the
fast tests, and reaches every table a page reads.)"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from governance.store import init_store, session_factory
from governance.store.models import (
    ActionSetRecord,
    CalibrationBin,
    CostModel,
    Decision,
    DeletionCheck,
    DeletionRequest,
    DeploymentCheck,
    DeploymentEvent,
    IssuedRecourse,
    MlflowAliasEvent,
    ModelVersion,
    Notice,
    Quarantine,
    Reason,
    ReasonStatement,
    RecourseCheck,
    RecourseValidity,
    Run,
    Tombstone,
)

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
SQL = "x'); DROP TABLE decisions;--"
UNICODE = "Zoë 🙂 \u202eevil"
FORMULA = '=HYPERLINK("http://evil.example")'
PATHY = "a/../b?c=d&e=1#f"
HOSTILE = (SCRIPT, IMG, SQL, UNICODE, FORMULA, PATHY)
NIGHT = date(2026, 10, 1)
T0 = datetime(2026, 10, 1, 9, tzinfo=UTC)
FEATURES = ["income", "debt_ratio", "age", SCRIPT]
MANIFEST = {
    "features": [
        {"name": "income", "dtype": "float", "min": 0, "max": 1e6, "description": "Income"},
        {"name": "debt_ratio", "dtype": "float", "min": 0, "max": 2, "description": IMG},
        {"name": "age", "dtype": "int", "min": 18, "max": 90},
        {"name": SCRIPT, "dtype": "float", "description": SQL},
    ],
    "threshold": 0.5,
    "favourable_class": 1,
    "notes": SCRIPT,
    "metrics": {"auc": 0.8},
}
ACTION_SET = {
    "name": "test",
    "features": [
        {"name": "income", "step_direction": 1},
        {"name": "debt_ratio", "step_direction": -1},
        {"name": "age", "step_direction": 0},
    ],
}


def subject_of(i: int) -> str:
    return HOSTILE[i % len(HOSTILE)] + f"-{i}" if i < len(HOSTILE) else f"S{i:04d}"


def decision_of(i: int) -> str:
    return (HOSTILE[(i + 1) % len(HOSTILE)] + f"#D{i}") if i < len(HOSTILE) else f"D{i:04d}"


def build(url: str, n: int = 12) -> dict:
    """Write the ledger at ``url``; what the tests need to know about it."""
    engine = init_store(url)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        v1 = ModelVersion(
            name="credit",
            version="v1",
            artifact_sha256="a" * 64,
            created_at=T0 - timedelta(days=30),
            manifest=MANIFEST,
        )
        v2 = ModelVersion(
            name="credit",
            version="v2",
            artifact_sha256="b" * 64,
            created_at=T0 + timedelta(days=1),
            manifest=MANIFEST,
        )
        s.add_all([v1, v2])
        s.flush()
        nightly = Run(
            run_key=f"nightly:{NIGHT}:credit",
            kind="nightly",
            night=NIGHT,
            model_name="credit",
            status="succeeded",
            parameters={"log": SCRIPT},
            code_version="0.1.0+test",
            started_at=T0,
            finished_at=T0 + timedelta(minutes=3),
            attempts=1,
            counts={"decisions": n, "denied": n // 2, "quarantined": 3},
            timings={"wall": 180.0},
        )
        failed = Run(
            run_key="nightly:2026-10-02:credit",
            kind="nightly",
            night=NIGHT + timedelta(days=1),
            model_name="credit",
            status="failed",
            parameters={},
            code_version="0.1.0+test",
            started_at=T0 + timedelta(days=1),
            finished_at=T0 + timedelta(days=1, minutes=1),
            attempts=2,
            counts={},
            timings={},
            error=f"DecisionLogError: {SCRIPT}",
        )
        redeploy = Run(
            run_key="redeploy:credit:v2",
            kind="redeploy",
            night=None,
            model_name="credit",
            status="succeeded",
            parameters={},
            code_version="0.1.0+test",
            started_at=T0 + timedelta(days=2),
            finished_at=T0 + timedelta(days=2, minutes=1),
            attempts=1,
            counts={"recourses_checked": n // 2},
            timings={},
        )
        s.add_all([nightly, failed, redeploy])
        s.flush()
        aset = ActionSetRecord(
            model_version_id=v1.id, name="test", version="1", sha256="c" * 64, body=ACTION_SET
        )
        cost = CostModel(sha256="d" * 64, kind="percentile", body={})
        s.add_all([aset, cost])
        s.flush()
        for i in range(n):
            denied = i % 2 == 0
            did, sid = decision_of(i), subject_of(i)
            s.add(
                Decision(
                    decision_id=did,
                    subject_id=sid,
                    decided_at=T0 + timedelta(minutes=i),
                    decision_date=NIGHT,
                    model_version_id=v1.id,
                    score=0.3 if denied else 0.8,
                    decision="denied" if denied else "approved",
                    features={"income": 1000.0 * i, "debt_ratio": 0.5, "age": 40, SCRIPT: IMG},
                    score_recomputed=0.3 if denied else 0.8,
                    run_id=nightly.id,
                    completed_at=T0 - timedelta(days=3) if i == 0 else None,
                )
            )
            if not denied:
                continue
            s.flush()
            for rank, feature in enumerate(FEATURES if i % 4 == 0 else FEATURES[:2], 1):
                s.add(
                    Reason(
                        decision_id=did,
                        model_version_id=v1.id,
                        rank=rank,
                        feature=feature,
                        attribution=-0.1 * (5 - rank),
                        mu=0.0 if rank > 1 else 0.4,
                    )
                )
            s.add(
                RecourseCheck(
                    decision_id=did,
                    model_version_id=v1.id,
                    action_set_id=aset.id,
                    status="recourse",
                    complete=True,
                    n_points=40,
                    reasons_given=2,
                    responsive_reasons=1,
                    all_reasons_unresponsive=False,
                    fixed_with_reasons=False,
                    run_id=nightly.id,
                )
            )
            rid = f"{did}@1"
            s.add(
                IssuedRecourse(
                    recourse_id=rid,
                    decision_id=did,
                    model_version_id=v1.id,
                    action_set_id=aset.id,
                    cost_model_id=cost.id,
                    issued_at=T0 + timedelta(minutes=i),
                    cost=0.05 * (i + 1),
                    score_before=0.3,
                    score_after=0.55,
                    complete=i % 4 == 0,
                    changes=[{"feature": "income", "from": 1000.0 * i, "to": 1000.0 * i + 500}],
                    x_after={"income": 1000.0 * i + 500},
                    run_id=nightly.id,
                    stability=0.2 + 0.05 * i,
                    kind="minimal",
                )
            )
            s.flush()
            s.add(
                RecourseValidity(
                    recourse_id=rid,
                    model_version_id=v2.id,
                    run_id=redeploy.id,
                    valid=i % 4 != 0,
                    score=0.45 if i % 4 == 0 else 0.6,
                    checked_at=T0 + timedelta(days=2),
                )
            )
        for k, check in enumerate((SCRIPT, "expect_column_values_to_be_unique", SQL)):
            s.add(
                Quarantine(
                    run_id=nightly.id,
                    row_number=100 + k,
                    decision_id=IMG,
                    subject_id=UNICODE,
                    model_name="credit",
                    model_version="v1",
                    check=check,
                    column=SCRIPT if k == 0 else "income",
                    value=FORMULA,
                    row_json="{}",
                    quarantined_at=T0,
                )
            )
        s.add(
            DeploymentCheck(
                run_id=redeploy.id,
                model_name="credit",
                new_version="v2",
                recourses_checked=n // 2,
                invalidated=(n + 3) // 4,
                invalidation_rate=((n + 3) // 4) / (n // 2),
                gate=0.1,
                passed=False,
                checked_at=T0 + timedelta(days=2),
            )
        )
        # champion moved to v2 in the MLflow registry, as `govern models sync` records it
        s.add(
            MlflowAliasEvent(
                tracking_uri="http://127.0.0.1:5000", registered_model="credit-mlflow",
                alias="champion", version="2", previous_version="1",
                observed_at=T0 + timedelta(days=2), via="poll", actor="reviewer",
                model_name="credit", action="recorded",
            )
        )  # fmt: skip
        # v2 deployed over its failed check: only a deployed version fills v_recontact
        common = {"model_name": "credit", "actor": "reviewer", "via": "govern deploy"}
        s.add_all(
            [
                DeploymentEvent(version="v1", state="deployed", at=T0, **common),
                DeploymentEvent(
                    version="v2", state="checked", at=T0 + timedelta(days=2), passed=False,
                    check_run_id=redeploy.id, gate=0.1, **common,
                ),
                DeploymentEvent(
                    version="v2", state="deployed", at=T0 + timedelta(days=2), forced=True,
                    reason="accepted by the model-risk committee", check_run_id=redeploy.id,
                    previous_version="v1", **common,
                ),
            ]
        )  # fmt: skip
        for b in range(3):
            s.add(
                CalibrationBin(
                    run_id=redeploy.id,
                    bin=b,
                    lower=b / 3,
                    upper=(b + 1) / 3,
                    n=2,
                    mean_stability=(b + 0.5) / 3,
                    realised_validity=0.5,
                    ci_low=0.1,
                    ci_high=0.9,
                )
            )
        now = datetime.now(UTC)
        for j, (status, received) in enumerate(
            (("received", now - timedelta(days=40)), ("purged", now - timedelta(days=10)))
        ):
            rid = f"del-{j}{SCRIPT}"
            s.add(
                DeletionRequest(
                    request_id=rid,
                    subject_hash=f"{j:064d}",
                    subject_id=None if status == "purged" else subject_of(0),
                    reason=SQL,
                    model_name="credit",
                    received_at=received,
                    due_at=received + timedelta(days=30),
                    status=status,
                    completed_at=now if status == "purged" else None,
                    counts={},
                )
            )
            s.flush()
            s.add(
                DeletionCheck(
                    request_id=rid,
                    model_name="credit",
                    current_version="v1",
                    candidate_version="v1-del",
                    training_rows_removed=1,
                    recourses_checked=5,
                    invalidated=1,
                    reasons_changed=2,
                    became_fixed=0,
                    gained_recourse=0,
                    run_id=nightly.id,
                )
            )
            if status == "purged":
                s.add(
                    Tombstone(
                        request_id=rid,
                        subject_hash=f"{j:064d}",
                        received_at=received,
                        purged_at=now,
                        counts={
                            "ledger_rows": {"decisions": 2, "reasons": 4},
                            "notices": {
                                "kept": 1,
                                "until": (now + timedelta(days=700)).isoformat(),
                                "basis": "Regulation B 1002.12(b); GDPR Art. 17(3)(b)",
                            },
                        },
                    )
                )
        for feature, direction, text in (
            ("income", "any", "Income insufficient for amount of credit requested"),
            ("debt_ratio", "high", IMG),
            (SCRIPT, "any", "Internal standards"),
        ):
            s.add(
                ReasonStatement(
                    model_version_id=v1.id,
                    feature=feature,
                    direction=direction,
                    statement=text,
                    reviewer=SCRIPT,
                    reviewed_at=T0,
                )
            )
        s.add(
            Notice(
                notice_id="N-test",
                decision_id=decision_of(2),
                subject_id=subject_of(2),
                model_version_id=v1.id,
                kind="credit",
                text=f"Notice text {SCRIPT}",
                html=f"<p>{SCRIPT}</p>",
                sha256="e" * 64,
                reasons=[],
                flags=[],
                issued_at=T0 + timedelta(days=5),
                due_at=T0 + timedelta(days=30),
                retain_until=T0 + timedelta(days=760),
            )
        )
    engine.dispose()
    return {
        "runs": {"nightly": nightly.id, "failed": failed.id, "redeploy": redeploy.id},
        "versions": {"v1": v1.id, "v2": v2.id},
        "n": n,
    }
