"""Responsiveness, fixed predictions and recourse through the nightly flow, on German credit
(checked against reachml's golden verdicts) and on the demo lender."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance.intake.decision_log import ParquetDecisionLog, make_decisions
from governance.recourse.action_set import ActionSet
from governance.registry.model_registry import ModelRegistry, load_trusted
from governance.registry.schema import FeatureSchema
from governance.registry.training import TrainingRecipe
from tests.helpers import read_sql

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "german_hgb"
NIGHT = date(2026, 10, 5)




@pytest.fixture(scope="module")
def german_home(tmp_path_factory):
    """The golden German credit model registered with its action set, and a night of its
    denied applicants (every row reachml was run on)."""
    # the golden files are committed: a missing one is a failure, never a skip
    assert (GOLDEN / "model.skops").exists(), f"golden German credit files absent from {GOLDEN}"
    meta = json.loads((GOLDEN / "model.json").read_text())
    home = tmp_path_factory.mktemp("german")
    reg = ModelRegistry(home / "registry")
    schema = FeatureSchema.from_list(meta["schema"])
    estimator = load_trusted(GOLDEN / "model.skops")
    rows = pd.read_csv(GOLDEN / "rows.csv")
    train = home / "train.parquet"
    rows[meta["features"]].assign(y=0).to_parquet(train)  # reference data for the cost only
    from governance.hashing import sha256_file
    from governance.registry.model_registry import TrainingData

    reg.register(
        "german",
        "v1",
        estimator,
        schema,
        TrainingRecipe.from_dict(meta["recipe"]),
        favourable_class=meta["favourable_class"],
        threshold=meta["threshold"],
        training_data=TrainingData(str(train), sha256_file(train), len(rows), "y"),
        action_set_path=GOLDEN / "action_set.json",
    )
    model = reg.load("german", "v1")
    people = rows.assign(subject_id=[f"G{r:04d}" for r in rows["row"]])
    log = make_decisions(
        people,
        model.score(people),
        model.threshold,
        model_name="german",
        model_version="v1",
        decided_at=[datetime(2026, 10, 5, 9, tzinfo=UTC)] * len(people),
        features=schema.names,
        id_prefix="DG",
    )
    ParquetDecisionLog(home / "decision-logs").write_night(NIGHT, log)
    return home, rows, log


def test_german_credit_fixed_flags_and_scores_match_reachml(run_nightly, german_home, tmp_path):
    home, rows, log = german_home
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    summary = run_nightly(NIGHT, home, url, chunk_rows=100)
    counts = summary["counts"]
    assert counts["denied"] == counts["responsiveness_scored"] == len(rows)

    checks = read_sql(url, "SELECT decision_id, status, complete FROM recourse_checks")
    golden = pd.read_csv(GOLDEN / "reachml_verdicts.csv")
    by_id = dict(zip(log["decision_id"], rows["row"], strict=True))
    checks["row"] = checks["decision_id"].map(by_id)
    merged = checks.merge(golden, on="row", suffixes=("", "_reachml"))
    assert len(merged) == len(rows)
    differ = merged[merged["status"] != merged["status_reachml"]]
    assert differ.empty, differ.head(10).to_string()
    assert (merged["status"] == "fixed").sum() == (golden["status"] == "fixed").sum() > 0
    assert counts["fixed"] == (golden["status"] == "fixed").sum()

    mu = read_sql(url, "SELECT decision_id, feature, mu, mu_state FROM responsiveness")
    mu["row"] = mu["decision_id"].map(by_id)
    ref = pd.read_csv(GOLDEN / "reachml_scores.csv")
    both = mu.merge(ref, on=["row", "feature"], suffixes=("", "_reachml"))
    assert len(both) == len(ref)
    # the ledger keeps "no feasible change" apart; the paper (and reachml) score it 0
    empty = both["mu_state"] == "no_action"
    assert empty.any() and both.loc[empty, "mu"].isna().all()
    np.testing.assert_allclose(both.loc[empty, "mu_reachml"], 0.0)
    np.testing.assert_allclose(both.loc[~empty, "mu"], both.loc[~empty, "mu_reachml"], atol=1e-9)


def test_issued_recourse_flips_the_model_and_respects_the_action_set(
    run_nightly, german_home, tmp_path
):
    home, _, _ = german_home
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    run_nightly(NIGHT, home, url, chunk_rows=100)
    reg = ModelRegistry(home / "registry")
    model = reg.load("german", "v1")
    action_set = ActionSet.from_json(reg.action_set_path("german", "v1"))
    issued = read_sql(url, "SELECT recourse_id, x_after, score_after, changes FROM issued_recourse")
    checks = read_sql(url, "SELECT status FROM recourse_checks")
    assert len(issued) == (checks["status"] == "recourse").sum() > 0
    after = pd.DataFrame([json.loads(x) for x in issued["x_after"]])
    np.testing.assert_allclose(model.score(after), issued["score_after"], atol=1e-12)
    assert model.approve(after).all()
    assert action_set.validate(after[model.schema.names]).empty
    assert all(json.loads(c) for c in issued["changes"])  # every action changes something

    reasons = read_sql(url, "SELECT mu, mu_state FROM reasons")
    assert reasons["mu_state"].notna().all()
    assert (reasons["mu"].isna() == (reasons["mu_state"] == "no_action")).all()
    # every actionable German feature is discrete: a proven minimum holds over the action set
    claims = read_sql(url, "SELECT complete, minimal_over FROM issued_recourse")
    proven = claims["complete"].astype(bool)
    assert proven.any()
    assert set(claims.loc[proven, "minimal_over"]) == {"action_set"}
